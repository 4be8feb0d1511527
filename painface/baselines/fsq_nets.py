"""The networks of the FSQ-VAE autoregressive baseline (see :mod:`painface.baselines.fsq` for the whole
model): :class:`FSQ` (finite scalar quantization, Mentzer et al. 2023), the chunk tokenizer
:class:`FsqTokenizer` and the causal transformer over tokens :class:`TokenTransformer`, with their configs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painface.errors import InputError
from painface.face.code import EMOTIONS
from painface.io import config_from_dict

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
