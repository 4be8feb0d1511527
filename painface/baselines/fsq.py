"""The FSQ-VAE autoregressive baseline ([PainDiffusion, §IV, Table I]; after [FSQ-AR]).

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

The networks are in :mod:`painface.baselines.fsq_nets`; this module loads a checkpoint and generates.
Training: :mod:`painface.baselines.fsq_train` (``painface train-fsq``); docs: docs/fsq.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from painface.baselines.fsq_nets import ARConfig, FsqTokenizer, TokenizerConfig, TokenTransformer
from painface.data.windows import FeatureNormalizer
from painface.errors import InputError
from painface.face.code import clip_aus, feature_space, neutral_face
from painface.model.checkpoint import read_tensors
from painface.model.conditions import Conditions
from painface.subjects.protocols import check_stimulus

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "fsq_ar.safetensors"
FORMAT = "painface-fsq-ar"
"""Checkpoint format name (written by :func:`painface.baselines.fsq_train.save_fsq`)."""
VERSION = 1


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
