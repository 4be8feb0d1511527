"""The temporal latent U-Net of PainDiffusion ([PainDiffusion, §III-C, Fig. 2]).

Input: a face-code window ``x`` ``[B, T, D]`` (already scaled by EDM's c_in), the per-frame noise
embedding input ``c_noise`` ``[B, T]``, the :class:`~painface.model.conditions.Conditions` and a null
mask ``[B, 3]``. Output: ``[B, T, D]`` (EDM's F_theta).

Layout: frames are stacked ``frames_per_token`` at a time into the channel axis (frame stacking,
Chen et al. 2024), so a 64-frame window is 16 tokens. Each level of the down/up path is a 1-D conv
ResNet block (GroupNorm, SiLU) whose features are scale-shifted (FiLM) by the token's noise embedding,
then cross-attention to the condition tokens, then temporal self-attention over tokens with a
sinusoidal frame-position embedding. Because every frame has its own noise level, the noise embedding
is per token: the per-frame Fourier features of c_noise are stacked like the frames and mixed by an
MLP; coarser levels average it over the merged tokens.

Condition tokens: one per stimulus token (an MLP of the token's ``frames_per_token`` stimulus values
plus the token's position embedding), one for expressiveness (an MLP of ln(PSPI + 0.05)
and PSPI, which spreads the small values typical of mean PSPI, 0.05-1, over a unit range) and one for emotion
(a linear embedding of the 8-way probability vector). Each condition has a learned null embedding
that replaces it where the null mask says so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painface.errors import InputError
from painface.face.code import EMOTIONS
from painface.io import config_from_dict
from painface.model.conditions import CONDITION_NAMES, Conditions
from painface.stimulus import memory_decays


@dataclass
class UNetConfig:
    """Network hyper-parameters (JSON-serializable with :meth:`to_dict` / :meth:`from_dict`).

    feature_dim: face-code features D; frames_per_token: frames stacked per token; channels: width of
    the first level; channel_mults: width multiplier per level (its length is the number of levels);
    depth: ResNet+attention blocks per level on the way down; heads: attention heads; cond_dim: width of
    condition tokens and position features; noise_dim: Fourier features per frame of c_noise; dropout:
    dropout in the ResNet blocks; groups: GroupNorm groups; stimulus_history: frames of stimulus history
    (a causal filter bank) each token's scale-shift sees; stimulus_memory: time constants (frames) of the
    stimulus's moving averages the network reads besides the stimulus (:func:`~painface.model.conditions.
    stimulus_memory`; empty: none, the stimulus is ``[B, T]``; else ``[B, T, 1 + K]``).
    """

    feature_dim: int = 20
    frames_per_token: int = 2
    channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2)
    depth: int = 1
    heads: int = 4
    cond_dim: int = 64
    noise_dim: int = 32
    dropout: float = 0.0
    groups: int = 8
    stimulus_history: int = 48
    stimulus_memory: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.stimulus_memory = tuple(float(t) for t in self.stimulus_memory)
        memory_decays(self.stimulus_memory)
        for name in ("feature_dim", "frames_per_token", "channels", "depth", "heads", "cond_dim", "noise_dim",
                     "groups", "stimulus_history"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"UNetConfig.{name}: {value!r}; expected a positive integer")
        if not self.channel_mults or min(self.channel_mults) < 1:
            raise InputError(f"UNetConfig.channel_mults: {self.channel_mults}; expected positive integers")
        if self.noise_dim % 2 or self.cond_dim % 2:
            raise InputError("UNetConfig.noise_dim and cond_dim must be even (sine/cosine pairs)")
        for m in self.channel_mults:
            width = self.channels * m
            if width % self.groups or width % self.heads:
                raise InputError(f"UNetConfig: level width {width} must be divisible by groups ({self.groups}) "
                                 f"and heads ({self.heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"UNetConfig.dropout: {self.dropout}; expected a value in [0, 1)")

    @property
    def frame_multiple(self) -> int:
        """Window lengths must be a multiple of this: frames_per_token x 2^(levels - 1)."""
        return self.frames_per_token * 2 ** (len(self.channel_mults) - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["stimulus_memory"] = list(self.stimulus_memory)
        return d

    @property
    def stimulus_channels(self) -> int:
        """Channels of the stimulus the network takes: 1 + len(stimulus_memory) (shape ``[B, T]`` when 1)."""
        return 1 + len(self.stimulus_memory)

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        return config_from_dict(cls, d, "UNetConfig")


def sinusoidal_embedding(pos: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Transformer sine/cosine embedding of positions ``pos`` ``[...]`` (frames) -> ``[..., dim]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=pos.device, dtype=torch.float32) / half)
    args = pos.to(torch.float32)[..., None] * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def noise_fourier_features(c_noise: Tensor, dim: int) -> Tensor:
    """Fourier features of c_noise = ln(sigma)/4 ``[...]`` -> ``[..., dim]``; frequencies 0.5..64 rad per unit,
    geometric, which resolves the c_noise range of EDM (about -1.6..1.1) both coarsely and finely."""
    half = dim // 2
    freqs = torch.exp(torch.linspace(math.log(0.5), math.log(64.0), half, device=c_noise.device))
    args = c_noise.to(torch.float32)[..., None] * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """1-D conv ResNet block; the noise embedding enters by scale-shift after the second norm."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv1d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv1d(cout, cout, 3, padding=1))
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        """h ``[B, C, N]``, emb ``[B, N, E]`` (one embedding per token) -> ``[B, Cout, N]``."""
        y = self.conv1(F.silu(self.norm1(h)))
        scale, shift = self.film(F.silu(emb)).transpose(1, 2).chunk(2, dim=1)
        y = self.norm2(y) * (1 + scale) + shift
        return self.skip(h) + self.conv2(self.drop(F.silu(y)))


class Attention(nn.Module):
    """Multi-head attention of tokens ``[B, C, N]`` to themselves (temporal) or to condition tokens (cross).

    Queries (and, for self-attention, keys) see the tokens' sinusoidal frame positions.
    """

    def __init__(self, channels: int, heads: int, groups: int, pos_dim: int, context_dim: int | None = None):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.pos = nn.Linear(pos_dim, channels)
        self.q = nn.Linear(channels, channels)
        self.kv = nn.Linear(context_dim or channels, 2 * channels)
        self.out = _zero(nn.Linear(channels, channels))

    def forward(self, h: Tensor, pos: Tensor, context: Tensor | None = None) -> Tensor:
        """h ``[B, C, N]``; pos ``[N, pos_dim]``; context ``[B, M, context_dim]`` or None -> ``[B, C, N]``."""
        b, c, n = h.shape
        x = self.norm(h).transpose(1, 2)
        xq = x + self.pos(pos)
        k, v = self.kv(xq if context is None else context).chunk(2, dim=-1)

        def split(t: Tensor) -> Tensor:
            return t.reshape(b, -1, self.heads, c // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.q(xq)), split(k), split(v))
        return h + self.out(a.transpose(1, 2).reshape(b, n, c)).transpose(1, 2)


class Block(nn.Module):
    """ResNet block -> condition cross-attention -> temporal self-attention ([PainDiffusion, Fig. 2])."""

    def __init__(self, cin: int, cout: int, cfg: UNetConfig, emb_dim: int) -> None:
        super().__init__()
        self.res = ResBlock(cin, cout, emb_dim, cfg.groups, cfg.dropout)
        self.cross = Attention(cout, cfg.heads, cfg.groups, cfg.cond_dim, context_dim=cfg.cond_dim)
        self.temporal = Attention(cout, cfg.heads, cfg.groups, cfg.cond_dim)

    def forward(self, h: Tensor, emb: Tensor, pos: Tensor, cond: Tensor) -> Tensor:
        h = self.res(h, emb)
        h = self.cross(h, pos, cond)
        return self.temporal(h, pos)


class ConditionEncoder(nn.Module):
    """Conditions + null mask -> condition tokens ``[B, N + 2, cond_dim]`` (N stimulus tokens)."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        d, k = cfg.cond_dim, cfg.frames_per_token
        self.k = k
        self.stimulus = nn.Sequential(nn.Linear(k, d), nn.SiLU(), nn.Linear(d, d))
        self.expressiveness = nn.Sequential(nn.Linear(2, d), nn.SiLU(), nn.Linear(d, d))
        self.emotion = nn.Linear(len(EMOTIONS), d)
        self.null = nn.Parameter(torch.randn(len(CONDITION_NAMES), d) * 0.02)  # learned null embeddings
        self.kind = nn.Parameter(torch.randn(2, d) * 0.02)  # type embeddings: expressiveness, emotion
        # Local path: each token also sees the stimulus of the last `history` frames through a causal
        # filter bank, so the response's latency (about a second) is one linear filter away.
        self.history = cfg.stimulus_history
        self.stimulus_filter = nn.Conv1d(1, d, self.history)
        # Memory path: the stimulus's moving averages (seconds to a minute) per token, added to both the
        # stimulus tokens and the local features, so a token knows how long the stimulus has lasted.
        m = len(cfg.stimulus_memory)
        self.memory = nn.Sequential(nn.Linear(m, d), nn.SiLU(), nn.Linear(d, d)) if m else None

    def _memory(self, cond: Conditions) -> Tensor | float:
        """Per-token memory features ``[B, N, cond_dim]`` (0 for networks without memory)."""
        mem = cond.memory
        if self.memory is None or mem is None:
            return 0.0
        b, t, m = mem.shape
        return self.memory(mem.reshape(b, t // self.k, self.k, m).mean(2))

    def local(self, cond: Conditions, drop: Tensor) -> Tensor:
        """Per-token features of the stimulus history ``[B, N, cond_dim]`` (the stimulus null where dropped):
        a causal filter over the last ``history`` frames, averaged over each token's frames."""
        b, t = cond.raw.shape
        x = F.pad(cond.raw[:, None, :], (self.history - 1, 0), mode="replicate")
        feats = self.stimulus_filter(x).transpose(1, 2).reshape(b, t // self.k, self.k, -1).mean(2)
        feats = feats + self._memory(cond)
        i_stim = CONDITION_NAMES.index("stimulus")
        return torch.where(drop[:, i_stim, None, None], self.null[i_stim].to(feats.dtype), F.silu(feats))

    def forward(self, cond: Conditions, drop: Tensor, pos: Tensor) -> Tensor:
        b, t = cond.raw.shape
        null = self.null.to(pos.dtype)
        i_emo, i_expr, i_stim = (CONDITION_NAMES.index(n) for n in ("emotion", "expressiveness", "stimulus"))
        stim = self.stimulus(cond.raw.reshape(b, t // self.k, self.k)) + self._memory(cond)
        stim = torch.where(drop[:, i_stim, None, None], null[i_stim], stim) + pos
        e = cond.expressiveness[:, None]
        expr = self.expressiveness(torch.cat([torch.log(e.clamp_min(0.0) + 0.05), e], dim=-1))
        expr = torch.where(drop[:, i_expr, None], null[i_expr], expr) + self.kind[0]
        emo = self.emotion(cond.emotion)
        emo = torch.where(drop[:, i_emo, None], null[i_emo], emo) + self.kind[1]
        return torch.cat([stim, expr[:, None], emo[:, None]], dim=1)


class TemporalUNet(nn.Module):
    """The denoising network F_theta: ``forward(x, c_noise, cond, drop) -> [B, T, D]`` (see module docstring)."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or UNetConfig()
        k, emb_dim = cfg.frames_per_token, 4 * cfg.channels
        widths = [cfg.channels * m for m in cfg.channel_mults]
        self.noise_mlp = nn.Sequential(nn.Linear(k * cfg.noise_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.time_mlp = nn.Sequential(nn.Linear(cfg.cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conditions = ConditionEncoder(cfg)
        # Conditions also enter every ResNet block by scale-shift: the global ones (expressiveness, emotion
        # tokens) and the local stimulus history per token (a departure from [PainDiffusion], see docs/model.md).
        self.cond_mlp = nn.Sequential(nn.Linear(3 * cfg.cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv1d(k * cfg.feature_dim, widths[0], 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skip_widths, cur = [widths[0]], widths[0]
        for level, w in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(cfg.depth):
                blocks.append(Block(cur, w, cfg, emb_dim))
                cur = w
                skip_widths.append(cur)
            self.down.append(blocks)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv1d(cur, cur, 3, stride=2, padding=1))
                skip_widths.append(cur)
        self.mid = nn.ModuleList([Block(cur, cur, cfg, emb_dim), Block(cur, cur, cfg, emb_dim)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, w in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(cfg.depth + 1):
                blocks.append(Block(cur + skip_widths.pop(), w, cfg, emb_dim))
                cur = w
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv1d(cur, cur, 3, padding=1))
        self.norm_out = nn.GroupNorm(cfg.groups, cur)
        self.conv_out = _zero(nn.Conv1d(cur, k * cfg.feature_dim, 3, padding=1))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def check_inputs(self, x: Tensor, c_noise: Tensor, cond: Conditions, drop: Tensor) -> None:
        """Raise :class:`InputError` unless the shapes fit this network (see :meth:`forward`)."""
        cfg = self.config
        if x.ndim != 3 or x.shape[-1] != cfg.feature_dim:
            raise InputError(f"x: expected shape [batch, frames, {cfg.feature_dim}] (face-code features), "
                             f"got {tuple(x.shape)}")
        b, t = x.shape[:2]
        if t % cfg.frame_multiple:
            raise InputError(f"x: {t} frames; the window length must be a multiple of {cfg.frame_multiple} "
                             f"({cfg.frames_per_token} frames per token x 2^{len(cfg.channel_mults) - 1} "
                             "for the down-sampling levels)")
        if c_noise.shape != (b, t):
            raise InputError(f"c_noise: expected shape [{b}, {t}] (one noise level per frame), got "
                             f"{tuple(c_noise.shape)}")
        want = (b, t) if cfg.stimulus_channels == 1 else (b, t, cfg.stimulus_channels)
        if cond.stimulus.shape != want:
            extra = "" if cfg.stimulus_channels == 1 else (
                f" (the stimulus and its {cfg.stimulus_channels - 1} memory channels, conditions.stimulus_memory)")
            raise InputError(f"stimulus: expected shape {list(want)} to match the face window{extra}, got "
                             f"{tuple(cond.stimulus.shape)}")
        if drop.shape != (b, len(CONDITION_NAMES)) or drop.dtype != torch.bool:
            raise InputError(f"null mask: expected a bool tensor of shape [{b}, {len(CONDITION_NAMES)}] "
                             f"(columns {list(CONDITION_NAMES)}), got {drop.dtype} {tuple(drop.shape)}")

    def forward(self, x: Tensor, c_noise: Tensor, cond: Conditions, drop: Tensor | None = None) -> Tensor:
        """x ``[B, T, D]``; c_noise ``[B, T]``; cond with stimulus ``[B, T]``; drop ``[B, 3]`` bool or None
        (nothing dropped) -> ``[B, T, D]``. T must be a multiple of ``config.frame_multiple``."""
        if drop is None:
            drop = torch.zeros(x.shape[0], len(CONDITION_NAMES), dtype=torch.bool, device=x.device)
        self.check_inputs(x, c_noise, cond, drop)
        cfg = self.config
        b, t, d = x.shape
        k, n = cfg.frames_per_token, t // cfg.frames_per_token
        emb = self.noise_mlp(noise_fourier_features(c_noise, cfg.noise_dim).reshape(b, n, k * cfg.noise_dim))
        positions = [self._positions(n >> i, k << i, x.device) for i in range(len(cfg.channel_mults))]
        emb = emb + self.time_mlp(positions[0])  # temporal embedding, also by scale-shift ([PainDiffusion, §III-C])
        drop = drop.to(x.device)
        context = self.conditions(cond, drop, positions[0])
        local = self.conditions.local(cond, drop)
        glob = context[:, -2:].reshape(b, 1, -1).expand(b, n, -1)
        emb = emb + self.cond_mlp(torch.cat([local, glob], dim=-1))
        embs = [emb]
        for _ in range(len(cfg.channel_mults) - 1):
            embs.append(F.avg_pool1d(embs[-1].transpose(1, 2), 2).transpose(1, 2))

        h = self.conv_in(x.reshape(b, n, k * d).transpose(1, 2))
        skips = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, embs[level], positions[level], context)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
                skips.append(h)
        for block in self.mid:
            h = block(h, embs[-1], positions[-1], context)
        for i, blocks in enumerate(self.up):
            level = len(self.up) - 1 - i
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), embs[level], positions[level], context)
            if level > 0:
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.conv_out(F.silu(self.norm_out(h)))
        return out.transpose(1, 2).reshape(b, t, d)

    def _positions(self, tokens: int, frames_per_token: int, device: torch.device) -> Tensor:
        """Sinusoidal embedding ``[tokens, cond_dim]`` of each token's centre frame."""
        centre = (torch.arange(tokens, device=device, dtype=torch.float32) + 0.5) * frames_per_token
        return sinusoidal_embedding(centre, self.config.cond_dim)
