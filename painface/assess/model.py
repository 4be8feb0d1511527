"""ViTPain-small: a Vision Transformer that reads PSPI-AU intensities, PSPI and PSPI >= 1/2/3 from a face.

Small enough to train from scratch on two CPU cores. The image (``[B, C, S, S]``, 0..1, the aligned
crop of :mod:`painface.face.align`) goes through a convolutional stem of four stride-2 3x3 convolutions
(``S/16 x S/16`` tokens of width ``dim``: early convolutions make small ViTs far more sample-efficient
than a linear patchify, Xiao et al. 2021), a class token, learned position embeddings, ``depth``
pre-norm transformer blocks and a final LayerNorm. Heads on the class feature:

* ``aus``: ``[B, 6]`` AU4, AU6, AU7, AU9, AU10, AU43 intensities, ``5 sigmoid``, 0..5;
* ``pspi``: ``[B]`` PSPI, ``16 sigmoid`` (ViTPain's form), 0..16;
* ``logits``: ``[B, 3]`` logits of PSPI >= 1, 2, 3.

Variants (``ViTConfig.variant``): ``"a"`` RGB student; ``"b"`` the same network trained with feature
distillation from a heatmap teacher (``in_channels=1``, see :mod:`painface.assess.train`); ``"c"``
adds a neutral reference image of the same person: it is encoded by the same network (no gradient) and
the heads read ``[cls, cls - cls_ref]``; ``"teacher"`` reads the 1-channel heatmap.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from painface.errors import InputError

MODEL_TYPE = "painface-vitpain"
FORMAT_VERSION = 1
VARIANTS = ("a", "b", "c", "teacher")
AU_OUT = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")


@dataclass(frozen=True)
class ViTConfig:
    """Network shape. ``size``: input side (pixels, a multiple of 16); ``dim``: token width."""

    variant: str = "a"
    size: int = 112
    dim: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 3.0
    dropout: float = 0.1

    @property
    def in_channels(self) -> int:
        return 1 if self.variant == "teacher" else 3

    @property
    def tokens(self) -> int:
        return (self.size // 16) ** 2

    def check(self) -> None:
        if self.variant not in VARIANTS:
            raise InputError(f"variant: expected one of {VARIANTS}, got {self.variant!r}")
        if self.size % 16 or not 32 <= self.size <= 512:
            raise InputError(f"size: expected a multiple of 16 in 32..512, got {self.size}")
        if self.dim % self.heads:
            raise InputError(f"dim {self.dim} is not a multiple of heads {self.heads}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ViTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"model config: unknown field(s) {sorted(unknown)}")
        cfg = cls(**d)
        cfg.check()
        return cfg


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(ln(x))``, ``x + mlp(ln(x))``; x ``[B, T, dim]``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.ln1(x)
        a, w = self.attn(h, h, h, need_weights=need_weights, average_attn_weights=True)
        x = x + self.drop(a)
        return x + self.drop(self.mlp(self.ln2(x))), w


def _stem(cin: int, dim: int) -> nn.Sequential:
    chans = [cin, dim // 4, dim // 2, dim // 2, dim]
    layers: list[nn.Module] = []
    for k in range(4):
        layers.append(nn.Conv2d(chans[k], chans[k + 1], 3, stride=2, padding=1, bias=k == 3))
        if k < 3:
            layers += [nn.BatchNorm2d(chans[k + 1]), nn.GELU()]
    return nn.Sequential(*layers)


class ViTPain(nn.Module):
    """See the module docstring. ``forward(image, neutral=None)`` -> dict of ``aus``, ``pspi``,
    ``logits``, ``tokens`` (``[B, T+1, dim]`` final features, for distillation)."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        config.check()
        self.config = config
        d = config.dim
        self.stem = _stem(config.in_channels, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, config.tokens + 1, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, config.heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(d)
        feat = 2 * d if config.variant == "c" else d
        self.head = nn.Sequential(nn.Linear(feat, d), nn.GELU(), nn.Linear(d, 6 + 1 + 3))
        # student -> teacher feature projector (variant b only; unused at inference)
        self.proj = nn.Linear(d, d) if config.variant == "b" else None
        self.register_buffer("mean", torch.tensor([0.5] * config.in_channels).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([0.25] * config.in_channels).view(1, -1, 1, 1))

    def encode(self, image: torch.Tensor, attention: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, C, S, S]`` (0..1) -> final tokens ``[B, T+1, dim]`` and, on request, the last block's
        class-token attention over the patches ``[B, T]``."""
        c, s = self.config.in_channels, self.config.size
        if image.ndim != 4 or image.shape[1] != c or image.shape[2] != s or image.shape[3] != s:
            raise InputError(f"image: expected [B, {c}, {s}, {s}], got {list(image.shape)}")
        x = self.stem((image - self.mean) / self.std).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        w = None
        for k, blk in enumerate(self.blocks):
            x, w = blk(x, need_weights=attention and k == len(self.blocks) - 1)
        return self.norm(x), (w[:, 0, 1:] if w is not None else None)

    def forward(self, image: torch.Tensor, neutral: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        tokens, _ = self.encode(image)
        f = tokens[:, 0]
        if self.config.variant == "c":
            if neutral is None:
                raise InputError("variant c needs a neutral reference image of the same person")
            with torch.no_grad():
                ref = self.encode(neutral)[0][:, 0]
            f = torch.cat([f, f - ref], 1)
        out = self.head(f)
        return {"aus": 5 * torch.sigmoid(out[:, :6]), "pspi": 16 * torch.sigmoid(out[:, 6]),
                "logits": out[:, 7:], "tokens": tokens}


@torch.no_grad()
def read(model: ViTPain, image: torch.Tensor, neutral: torch.Tensor | None = None, *, flip: bool = True,
         gate: float | None = None) -> dict[str, torch.Tensor]:
    """Inference: ``aus``, ``pspi``, ``logits`` of ``model`` (put in eval mode) for ``image``.

    ``flip``: average the outputs for the image and its mirror image (training flips faces at random, and the
    PSPI AUs are bilateral), which lowered the validation PSPI error of the ViTPain runs by 4-5 % (docs/assess.md).
    ``gate``: a soft hurdle on the PSPI head: where the model's own P(PSPI >= 1) = ``p`` is below ``gate``, the
    PSPI is scaled by ``(p / gate) ** 4`` (:func:`gated`), falling to 0 as the model grows sure there is no
    pain. The ``16 sigmoid`` head cannot reach 0 (on faces with PSPI 0 it reads about 0.7), and a sixth of the
    synthetic faces have PSPI 0; a hard cut to 0 would tie those faces and cost AUROC, the ramp keeps their
    order. The gate is tuned on training predictions (:func:`tune_gate`) and stored in the checkpoint as
    ``gate``. The AU intensities and logits are not gated.
    """
    model.eval()
    out = model(image, neutral)
    res = {k: out[k] for k in ("aus", "pspi", "logits")}
    if flip:
        mirror = model(image.flip(3), None if neutral is None else neutral.flip(3))
        res = {k: (v + mirror[k]) / 2 for k, v in res.items()}
    if gate:
        res["pspi"] = gated(res["pspi"], torch.sigmoid(res["logits"][:, 0]), gate)
    return res


def gated(pspi, p1, gate: float):
    """``pspi * min(1, p1 / gate) ** 4`` (tensors or arrays; ``gate`` 0: ``pspi`` unchanged), see :func:`read`."""
    if not gate:
        return pspi
    return pspi * (p1 / gate).clip(max=1.0) ** 4


GATES = tuple(round(0.05 * k, 2) for k in range(19))  # 0 (no gate) .. 0.9


def tune_gate(y, pspi, p1) -> float:
    """The :func:`read` gate in :data:`GATES` with the lowest PSPI MAE for true PSPI ``y``, ungated predictions
    ``pspi`` and P(PSPI >= 1) ``p1`` (use on training predictions only; ties go to the smaller gate)."""
    import numpy as np

    y, pspi, p1 = (np.asarray(a, np.float64) for a in (y, pspi, p1))
    if not (len(y) == len(pspi) == len(p1)) or not len(y):
        raise InputError(f"tune_gate: expected equal, non-empty arrays, got {len(y)}, {len(pspi)}, {len(p1)}")
    errs = [np.abs(gated(pspi, p1, g) - y).mean() for g in GATES]
    return GATES[int(np.argmin(errs))]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save(path: str | Path, model: ViTPain, info: dict[str, Any], half: bool = False) -> Path:
    """Write ``path.safetensors`` (weights; fp16 with ``half``) + ``path.json`` (config and ``info``)."""
    from painface.io import atomic_write_json
    from painface.model.checkpoint import save_tensors_atomic

    path = Path(path).with_suffix(".safetensors")
    meta = {"format": MODEL_TYPE, "version": FORMAT_VERSION, "config": model.config.to_dict(), **info}
    sd = {k: (v.half() if half and v.is_floating_point() else v) for k, v in model.state_dict().items()
          if not k.startswith("proj.")}
    save_tensors_atomic(path, sd, {"painface": json.dumps(meta)})
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load(path: str | Path) -> tuple[ViTPain, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`; refuses other model types with a clear error."""
    from painface.model.checkpoint import read_tensors

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors, header = read_tensors(path)
    try:
        meta = json.loads(header.get("painface", "{}"))
    except json.JSONDecodeError:
        raise InputError(f"{path}: checkpoint metadata is not JSON") from None
    if meta.get("format") != MODEL_TYPE:
        raise InputError(f"{path}: not a ViTPain checkpoint (format {meta.get('format')!r}, expected {MODEL_TYPE!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: ViTPain checkpoint version {meta.get('version')}, "
                         f"this painface reads {FORMAT_VERSION}")
    model = ViTPain(ViTConfig.from_dict(meta["config"]))
    want = {k: v for k, v in model.state_dict().items() if not k.startswith("proj.")}
    missing = sorted(set(want) - set(tensors))
    extra = sorted(set(tensors) - set(want))
    if missing or extra:
        raise InputError(f"{path}: tensors do not match the config (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in tensors.items():
        if v.shape != want[k].shape:
            raise InputError(f"{path}: tensor {k} has shape {list(v.shape)}, expected {list(want[k].shape)}")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, strict=False)
    return model.eval(), meta
