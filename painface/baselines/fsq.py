"""The FSQ-VAE autoregressive baseline (papers/001 §IV, Table I, after Dam et al., FG 2024).

The PainDiffusion authors compared against "FSQ-VAE autoregressive", the winning REACT 2024 model
(finite scalar quantization as a facial tokenizer + an autoregressive model over the tokens) given the
stimulus as input; they never released it. This is a re-implementation from the published description:

* **Tokenizer** (:class:`FsqTokenizer`): the face code (normalized, ``[frames, D]``) is cut into chunks of
  ``chunk`` frames (default 4); a per-chunk MLP encodes each chunk to ``len(levels)`` numbers that
  :class:`FSQ` (Mentzer et al. 2023) bounds and rounds to the level grid (default levels [8, 5, 5, 5]:
  an implicit codebook of 1000 tokens, the paper's recommendation for ~2^10). A causal 1-D conv decoder
  turns the quantized chunk codes back into frames (it sees the current and previous chunks, so appending
  tokens never changes frames already decoded).
* **Autoregressive model** (:class:`TokenTransformer`): a causal transformer over token ids. Position i
  reads the previous token (a BOS token at i = 0), the stimulus of chunk i (its ``chunk`` frame values),
  and one global condition embedding (expressiveness and emotion), and predicts token i.
* **Generation** (:meth:`FsqAR.generate`): a prefix of context tokens (encoded context frames, or a neutral
  face for a cold start), then one token per chunk by sampling (temperature, top-k), then decoding. The
  transformer reads BOS + up to ``max_tokens - 1`` previous tokens, with cached keys and values; when the
  window is full it restarts from the last ``max_tokens // 2`` tokens (so any length can be generated).
  Row ``(patient p, sample s)`` draws its random numbers from a generator seeded by ``(seed, s)`` alone,
  so a patient's generations do not depend on the other patients in the batch.

Training: :mod:`painface.baselines.fsq_train` (``painface train-fsq``); docs: docs/fsq.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painface.data.windows import FeatureNormalizer
from painface.errors import InputError
from painface.face.code import EMOTIONS, clip_aus, feature_space, neutral_face
from painface.io import config_from_dict
from painface.model.checkpoint import read_tensors
from painface.model.conditions import Conditions
from painface.subjects.protocols import check_stimulus

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "fsq_ar.safetensors"
FORMAT = "painface-fsq-ar"
"""Checkpoint format name (written by :func:`painface.baselines.fsq_train.save_fsq`)."""
VERSION = 1
EXPR_SCALE = 4.0
"""Expressiveness (PSPI units) is divided by this before it enters the network (typical values 0..4)."""


# --- finite scalar quantization -----------------------------------------------------------------
def round_ste(z: Tensor) -> Tensor:
    """Round to the nearest integer with a straight-through gradient (identity in the backward pass)."""
    return z + (torch.round(z) - z).detach()


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023) of ``[..., len(levels)]`` vectors.

    Channel j is bounded to ``L_j`` values by ``tanh(z + shift) * half_l - offset`` (half_l =
    (L_j - 1)(1 - eps)/2; offset 0.5 for even L_j, so the grid is -L/2..L/2-1; shift = atanh(offset /
    half_l) so z = 0 maps to 0), rounded with a straight-through estimator and divided by ``L_j // 2``:
    codes lie on the grid ``{-(L//2), ..., L - 1 - L//2} / (L//2)`` within [-1, 1]. A code vector is one
    token id in ``0..prod(levels)-1`` (mixed radix, first channel least significant).
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3):
        super().__init__()
        lv = [int(v) for v in levels]
        if not lv or any(v < 3 for v in lv):
            raise InputError(f"FSQ levels: expected one or more integers >= 3, got {list(levels)}")
        self.levels = tuple(lv)
        self.eps = float(eps)
        lt = torch.tensor(lv, dtype=torch.float32)
        half_l = (lt - 1) * (1 - self.eps) / 2
        offset = torch.where(lt % 2 == 0, 0.5, 0.0)
        self.register_buffer("half_l", half_l, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half_l), persistent=False)
        self.register_buffer("half_width", torch.floor(lt / 2), persistent=False)
        self.register_buffer("lv", torch.tensor(lv, dtype=torch.int64), persistent=False)
        basis = torch.cumprod(torch.tensor([1, *lv[:-1]], dtype=torch.int64), 0)
        self.register_buffer("basis", basis, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.levels)

    @property
    def codebook_size(self) -> int:
        return int(math.prod(self.levels))

    def bound(self, z: Tensor) -> Tensor:
        """``[..., dim]`` -> values in (-L/2, L/2) (before rounding), 0 -> 0."""
        return torch.tanh(z + self.shift) * self.half_l - self.offset

    def forward(self, z: Tensor) -> Tensor:
        """Quantize ``z [..., dim]`` to normalized codes on the level grid (straight-through gradient)."""
        if z.shape[-1] != self.dim:
            raise InputError(f"FSQ: input has {z.shape[-1]} channels, expected {self.dim}")
        return round_ste(self.bound(z)) / self.half_width

    def codes_to_ids(self, codes: Tensor) -> Tensor:
        """Normalized codes ``[..., dim]`` (on the grid) -> token ids ``[...]`` int64."""
        idx = torch.round(codes * self.half_width + self.half_width).to(torch.int64)
        if (idx < 0).any() or (idx >= self.lv).any():
            raise InputError("FSQ: codes off the level grid")
        return (idx * self.basis).sum(-1)

    def ids_to_codes(self, ids: Tensor) -> Tensor:
        """Token ids ``[...]`` -> normalized codes ``[..., dim]`` float32."""
        ids = torch.as_tensor(ids, dtype=torch.int64, device=self.basis.device)
        if (ids < 0).any() or (ids >= self.codebook_size).any():
            raise InputError(f"FSQ: token ids must lie in 0..{self.codebook_size - 1}")
        idx = (ids[..., None] // self.basis) % self.lv
        return (idx.to(torch.float32) - self.half_width) / self.half_width


# --- configs -----------------------------------------------------------------------------------
@dataclass
class TokenizerConfig:
    """Tokenizer architecture: ``features`` D per frame, ``chunk`` frames per token, FSQ ``levels``,
    ``hidden`` width, ``blocks`` causal residual conv blocks (kernel 3 over chunks) in the decoder."""

    features: int = 20
    chunk: int = 4
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    hidden: int = 128
    blocks: int = 2

    @classmethod
    def from_dict(cls, d: Any) -> TokenizerConfig:
        cfg = config_from_dict(cls, d, "tokenizer config")
        if cfg.features < 1 or cfg.chunk < 1 or cfg.hidden < 1 or cfg.blocks < 0:
            raise InputError("tokenizer config: need features, chunk, hidden >= 1 and blocks >= 0")
        FSQ(cfg.levels)
        return cfg


@dataclass
class ARConfig:
    """Transformer: ``vocab`` token ids (+1 BOS), ``chunk`` stimulus values per token, width ``d_model``,
    ``layers``, ``heads``, ``max_tokens`` positions (the sliding window), ``dropout``."""

    vocab: int = 1000
    chunk: int = 4
    d_model: int = 128
    layers: int = 3
    heads: int = 4
    max_tokens: int = 32
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, d: Any) -> ARConfig:
        cfg = config_from_dict(cls, d, "autoregressive config")
        if min(cfg.vocab, cfg.chunk, cfg.d_model, cfg.layers, cfg.heads) < 1 or cfg.max_tokens < 2:
            raise InputError("autoregressive config: need vocab, chunk, d_model, layers, heads >= 1, max_tokens >= 2")
        if cfg.d_model % cfg.heads:
            raise InputError(f"autoregressive config: d_model {cfg.d_model} is not a multiple of heads {cfg.heads}")
        return cfg


# --- tokenizer ---------------------------------------------------------------------------------
class CausalBlock(nn.Module):
    """Residual block over ``[B, N, H]``: LayerNorm, two causal convs (kernel 3 over N), GELU."""

    def __init__(self, hidden: int, kernel: int = 3):
        super().__init__()
        self.pad = kernel - 1
        self.norm = nn.LayerNorm(hidden)
        self.conv1 = nn.Conv1d(hidden, hidden, kernel)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel)

    def forward(self, x: Tensor) -> Tensor:
        h = F.gelu(self.norm(x)).transpose(1, 2)
        h = self.conv1(F.pad(h, (self.pad, 0)))
        h = self.conv2(F.pad(F.gelu(h), (self.pad, 0)))
        return x + h.transpose(1, 2)


class FsqTokenizer(nn.Module):
    """Face-code chunks <-> FSQ tokens. Input ``[B, T, D]`` normalized face code, T a multiple of chunk."""

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        c, d, h = config.chunk, config.features, config.hidden
        self.fsq = FSQ(config.levels)
        self.encoder = nn.Sequential(
            nn.Linear(c * d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, self.fsq.dim)
        )
        self.dec_in = nn.Linear(self.fsq.dim, h)
        self.dec_blocks = nn.ModuleList(CausalBlock(h) for _ in range(config.blocks))
        self.dec_norm = nn.LayerNorm(h)
        self.dec_out = nn.Linear(h, c * d)

    def _chunks(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        c = self.config.chunk
        if d != self.config.features or t % c:
            raise InputError(
                f"tokenizer: expected [batch, frames, {self.config.features}] with frames a multiple of {c}, "
                f"got {tuple(x.shape)}"
            )
        return x.reshape(b, t // c, c * d)

    def encode(self, x: Tensor) -> Tensor:
        """``[B, T, D]`` -> quantized codes ``[B, T/chunk, len(levels)]`` (chunk by chunk, independent)."""
        return self.fsq(self.encoder(self._chunks(x)))

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``[B, N, len(levels)]`` -> frames ``[B, N*chunk, D]`` (causal over chunks)."""
        h = self.dec_in(codes)
        for blk in self.dec_blocks:
            h = blk(h)
        y = self.dec_out(F.gelu(self.dec_norm(h)))
        b, n, _ = y.shape
        return y.reshape(b, n * self.config.chunk, self.config.features)

    def tokenize(self, x: Tensor) -> Tensor:
        """``[B, T, D]`` -> token ids ``[B, T/chunk]`` int64."""
        return self.fsq.codes_to_ids(self.encode(x))

    def detokenize(self, ids: Tensor) -> Tensor:
        """Token ids ``[B, N]`` -> frames ``[B, N*chunk, D]``."""
        return self.decode(self.fsq.ids_to_codes(ids))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Reconstruction ``[B, T, D]`` and codes ``[B, T/chunk, len(levels)]``."""
        codes = self.encode(x)
        return self.decode(codes), codes


# --- autoregressive transformer -----------------------------------------------------------------
class Block(nn.Module):
    """Pre-norm transformer block with causal self-attention over ``[B, N, d]``."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(dropout))

    def forward(self, x: Tensor, cache: list[Tensor] | None = None) -> Tensor:
        """x ``[B, N, d]``. ``cache``: an empty list is filled with this call's keys and values; a filled one
        (then N must be 1) is extended, and the new position attends to all cached ones."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        if cache is not None:
            cache[:] = [k, v]
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, is_causal=n > 1, dropout_p=p)
        x = x + F.dropout(self.proj(a.transpose(1, 2).reshape(b, n, d)), p, self.training)
        return x + self.mlp(self.ln2(x))


class TokenTransformer(nn.Module):
    """Causal transformer: logits ``[B, N, vocab]`` for token i from tokens < i, stimulus chunks <= i and
    the global conditions. Token id ``vocab`` is BOS; the output head shares the token embedding."""

    def __init__(self, config: ARConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.tok = nn.Embedding(config.vocab + 1, d)
        self.stim = nn.Linear(config.chunk, d)
        self.cond = nn.Linear(1 + len(EMOTIONS), d)
        self.pos = nn.Parameter(torch.zeros(config.max_tokens, d))
        self.blocks = nn.ModuleList(Block(d, config.heads, config.dropout) for _ in range(config.layers))
        self.ln = nn.LayerNorm(d)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    @property
    def bos(self) -> int:
        return self.config.vocab

    def forward(self, prev: Tensor, stim: Tensor, expressiveness: Tensor, emotion: Tensor, *, start: int = 0,
                cache: list[list[Tensor]] | None = None) -> Tensor:
        """prev ``[B, N]`` int64 (BOS first), stim ``[B, N, chunk]``, expressiveness ``[B]`` (PSPI),
        emotion ``[B, 8]`` -> logits ``[B, N, vocab]``. Incremental decoding: pass ``cache`` (one empty list
        per layer) with the whole prompt, then one position at a time with ``start`` = its position."""
        b, n = prev.shape
        if start + n > self.config.max_tokens or stim.shape != (b, n, self.config.chunk):
            raise InputError(
                f"transformer: positions {start}..{start + n - 1} (at most {self.config.max_tokens}) and stimulus "
                f"{tuple(stim.shape)} (expected [{b}, {n}, {self.config.chunk}]) do not fit"
            )
        cond = self.cond(torch.cat([expressiveness[:, None] / EXPR_SCALE, emotion], dim=1))
        x = self.tok(prev) + self.stim(stim) + cond[:, None, :] + self.pos[start:start + n]
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if cache is None else cache[i])
        return F.linear(self.ln(x), self.tok.weight[: self.config.vocab])


# --- checkpoints -------------------------------------------------------------------------------
def _load_part(path: Path, module: nn.Module, tensors: dict[str, Tensor], prefix: str) -> None:
    part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(part)), sorted(set(part) - set(expected))
    if missing or unexpected:
        raise InputError(f"{path}: {prefix[:-1]} weights do not match the config: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    wrong = [f"{k} {tuple(part[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if tuple(part[k].shape) != tuple(v.shape)]
    if wrong:
        raise InputError(f"{path}: {prefix[:-1]} weight shapes do not match the config: {wrong[:3]}")
    if any(not torch.isfinite(v).all() for v in part.values() if v.is_floating_point()):
        raise InputError(f"{path}: {prefix[:-1]} weights hold NaN or inf")
    module.load_state_dict(part)


def load_fsq(path: str | os.PathLike) -> tuple[FsqTokenizer, TokenTransformer, dict[str, Any]]:
    """Read a checkpoint written by :func:`~painface.baselines.fsq_train.save_fsq` (safetensors + config in its
    header); every mismatch is an :class:`InputError`."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors, header = read_tensors(path)
    try:
        meta = json.loads(header["painface"])
    except (KeyError, json.JSONDecodeError):
        raise InputError(f"{path}: no valid painface config in the safetensors header") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"{path}: not an FSQ-AR checkpoint (format {meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise InputError(f"{path}: FSQ-AR checkpoint version {meta.get('version')!r}, expected {VERSION}")
    for key in ("tokenizer", "ar", "normalizer"):
        if key not in meta:
            raise InputError(f"{path}: the checkpoint's config lacks {key!r}")
    tok = FsqTokenizer(TokenizerConfig.from_dict(meta["tokenizer"]))
    ar = TokenTransformer(ARConfig.from_dict(meta["ar"]))
    if ar.config.vocab != tok.fsq.codebook_size or ar.config.chunk != tok.config.chunk:
        raise InputError(f"{path}: the transformer's vocab/chunk do not match the tokenizer's")
    _load_part(path, tok, tensors, "tokenizer.")
    _load_part(path, ar, tensors, "ar.")
    return tok.eval(), ar.eval(), meta


# --- the model as one object ---------------------------------------------------------------------
def sample_tokens(logits: Tensor, u: Tensor, temperature: float = 1.0, top_k: int = 0) -> Tensor:
    """Draw one token per row from ``logits [B, V]`` by inverse CDF with uniforms ``u [B]`` in [0, 1);
    ``temperature`` 0 is greedy; ``top_k`` > 0 keeps only the k most likely tokens."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.double() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    cdf = torch.softmax(logits, -1).cumsum(-1)
    idx = torch.searchsorted(cdf, (u.double() * cdf[:, -1]).unsqueeze(1).contiguous(), right=True)
    return idx.squeeze(1).clamp_max(logits.shape[-1] - 1)


class FsqAR:
    """A trained FSQ-VAE autoregressive baseline in face-code units. ``FsqAR.load()`` takes the shipped one."""

    def __init__(self, tokenizer: FsqTokenizer, ar: TokenTransformer, info: dict[str, Any],
                 device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.tokenizer, self.ar, self.info = tokenizer.to(self.device).eval(), ar.to(self.device).eval(), info
        self.normalizer = FeatureNormalizer.from_dict(info["normalizer"])
        if len(self.normalizer.feature_names) != tokenizer.config.features:
            raise InputError("FSQ-AR: the normalizer's features do not match the tokenizer's")
        samp = info.get("sampling") or {}
        self.temperature = float(samp.get("temperature", 1.0))
        self.top_k = int(samp.get("top_k", 0))
        self.context_chunks = int(samp.get("context_chunks", 4))
        self.keep = ar.config.max_tokens // 2
        """Tokens a full window restarts from (sampled PSPI barely changes with it: docs/fsq.md)."""
        self.fps = float((info.get("corpus") or {}).get("fps") or 25.0)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> FsqAR:
        """Load a checkpoint (default: the shipped one, trained on the default virtual corpus)."""
        p = Path(path) if path is not None else SHIPPED
        if path is None and not SHIPPED.is_file():
            raise InputError(f"no shipped FSQ-AR checkpoint at {SHIPPED}; train one with painface train-fsq")
        tok, ar, meta = load_fsq(p)
        try:
            return cls(tok, ar, meta, device)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{p}: the checkpoint's normalizer or sampling settings are invalid: {e}") from None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.normalizer.feature_names

    @property
    def chunk(self) -> int:
        return self.tokenizer.config.chunk

    def neutral(self) -> np.ndarray:
        """The resting face ``[D]`` a cold start begins from (neutral face; the data mean outside FACS space)."""
        if feature_space(self.feature_names) == "facs":
            return neutral_face(1)[0]
        return np.asarray(self.normalizer.mean, np.float32)

    def _context(self, context: np.ndarray | None, batch: int) -> Tensor:
        c = self.chunk
        if context is None:
            face = np.broadcast_to(self.neutral(), (batch, self.context_chunks * c, len(self.feature_names)))
        else:
            face = np.asarray(context)
            d = len(self.feature_names)
            if face.ndim != 3 or face.shape[0] != batch or face.shape[2] != d or face.shape[1] < c:
                raise InputError(f"context: expected face-code frames [{batch}, frames >= {c}, {d}] "
                                 f"(one row per patient x sample), got shape {face.shape}")
            if not np.issubdtype(face.dtype, np.number) or not np.all(np.isfinite(face)):
                raise InputError("context: expected finite numbers (face-code units)")
            keep = min(face.shape[1] // c, self.ar.config.max_tokens - 1) * c
            face = face[:, face.shape[1] - keep:]
        x = torch.as_tensor(self.normalizer.normalize(np.asarray(face, np.float32)), device=self.device)
        return self.tokenizer.tokenize(x)

    @torch.no_grad()
    def generate(
        self,
        stimulus: np.ndarray,
        expressiveness: float | Sequence[float] = 1.0,
        emotion: Any = "Neutral",
        *,
        samples: int = 1,
        seed: int = 0,
        context: np.ndarray | None = None,
        temperature: float | None = None,
        top_k: int | None = None,
    ) -> np.ndarray:
        """Face codes ``[P*samples, L, D]`` float32 (face-code units; patient-major) for a stimulus ``[L]``
        or ``[P, L]`` (the corpus's stimulus units, normalized for the built-in corpora), expressiveness
        (PSPI, a number or ``[P]``), emotion (a name, a blend, ``[8]`` or ``[P, 8]``). ``context``:
        face-code frames ``[P*samples, c >= chunk, D]`` to continue from (its last whole chunks are used;
        they are taken to have happened under the stimulus's first value); default: a cold start from the
        neutral face. ``temperature`` / ``top_k``: sampling (default: the checkpoint's)."""
        stim = np.asarray(stimulus)
        if stim.ndim == 1:
            stim = check_stimulus(stim)[None]
        elif stim.ndim == 2:
            stim = np.stack([check_stimulus(row, source=f"stimulus[{i}]") for i, row in enumerate(stim)])
        else:
            raise InputError(f"stimulus: expected [frames] or [patients, frames], got shape {stim.shape}")
        if stim.shape[0] < 1 or stim.shape[1] < 1:
            raise InputError(f"stimulus: expected at least one patient and one frame, got shape {stim.shape}")
        if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
            raise InputError(f"samples: expected an integer >= 1, got {samples!r}")
        temperature = self.temperature if temperature is None else float(temperature)
        top_k = self.top_k if top_k is None else int(top_k)
        if not math.isfinite(temperature) or temperature < 0 or top_k < 0:
            raise InputError(f"temperature {temperature} and top_k {top_k}: expected temperature >= 0, top_k >= 0")
        patients, length = stim.shape
        cond = Conditions.build(stim, expressiveness, emotion, batch=patients).to(self.device)
        rep = torch.arange(patients, device=self.device).repeat_interleave(samples)
        batch, c = patients * samples, self.chunk
        prefix = self._context(context, batch)
        n0, n_new = prefix.shape[1], math.ceil(length / c)
        s = cond.stimulus[rep]
        s = torch.cat([s[:, :1].expand(-1, n0 * c), s, s[:, -1:].expand(-1, n_new * c - length)], dim=1)
        s = s.reshape(batch, n0 + n_new, c)
        expr, emo = cond.expressiveness[rep], cond.emotion[rep]
        gens = [torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0]))
                for k in range(samples)]
        bos = torch.full((batch, 1), self.ar.bos, dtype=torch.int64, device=self.device)
        max_t, tokens = self.ar.config.max_tokens, prefix

        def prompt(lo: int, i: int) -> tuple[Tensor, list[list[Tensor]]]:
            """Fresh cache for the window [BOS, tokens lo..i-1]; logits for token i."""
            cache: list[list[Tensor]] = [[] for _ in self.ar.blocks]
            return self.ar(torch.cat([bos, tokens[:, lo:i]], 1), s[:, lo:i + 1], expr, emo, cache=cache)[:, -1], cache

        lo = max(0, n0 - (max_t - 1))
        logits, cache = prompt(lo, n0)
        for i in range(n0, n0 + n_new):
            u = torch.cat([torch.rand(1, generator=g) for g in gens]).repeat(patients).to(self.device)
            tokens = torch.cat([tokens, sample_tokens(logits, u, temperature, top_k)[:, None]], 1)
            if i + 1 == n0 + n_new:
                break
            if i + 2 - lo > max_t:  # the window is full: restart it with the last `keep` tokens
                lo = i + 1 - self.keep
                logits, cache = prompt(lo, i + 1)
            else:
                logits = self.ar(tokens[:, i:i + 1], s[:, i + 1:i + 2], expr, emo, start=i + 1 - lo, cache=cache)[:, -1]
        x = self.tokenizer.detokenize(tokens)[:, n0 * c:n0 * c + length]
        face = self.normalizer.denormalize(x.cpu().numpy()).astype(np.float32)
        if feature_space(self.feature_names) == "facs":
            face = clip_aus(face, self.feature_names)
        return face
