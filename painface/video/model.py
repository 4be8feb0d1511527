"""Video pain classifiers small enough to train on 2 CPU cores.

Two encoders, compared in docs/videos.md:

* ``c3d``: a small 3D CNN on grayscale clips ``[B, 1, T, S, S]`` (four strided 3x3x3 convolutions with
  batch norm, global average pooling): learns space and time together from the pixels.
* ``vit``: the shipped ViTPain (painface/assets/vitpain.safetensors, frozen) reads every frame
  ``[T, 3, 96, 96]``; its class token (128) and its AU (6) and PSPI (1) outputs make a per-frame feature
  ``[T, 135]``, computed once per clip; a trainable temporal head (a 1-D convolution over time, a GRU,
  attention pooling over frames) classifies the sequence.

Both end in ``classes`` logits (1 for the binary BL1 vs PA4 task, 5 for BL1, PA1..PA4). Checkpoints:
safetensors + JSON (:func:`save`, :func:`load`); a ``vit`` checkpoint holds the temporal head only and
records the SHA-256 of the ViTPain file it was trained on, checked on load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from painface.errors import InputError

ENCODERS = ("c3d", "vit")
TASKS = {"binary": ("BL1", "PA4"), "5class": ("BL1", "PA1", "PA2", "PA3", "PA4")}
VIT_FEATURES = 135
FORMAT = "painface-video-classifier"
VERSION = 1
VITPAIN = Path(__file__).resolve().parent.parent / "assets" / "vitpain.safetensors"


@dataclass(frozen=True)
class VideoConfig:
    """``frames`` sampled ``stride`` apart from the middle of each clip; ``size``: c3d input side (px)."""

    encoder: str = "c3d"
    task: str = "binary"
    frames: int = 16
    stride: int = 8
    size: int = 48
    width: int = 16

    def check(self) -> None:
        if self.encoder not in ENCODERS:
            raise InputError(f"--encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.task not in TASKS:
            raise InputError(f"--task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        for name, lo, hi in (("frames", 4, 128), ("stride", 1, 32), ("size", 16, 256), ("width", 4, 256)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise InputError(f"--{name}: expected an integer in {lo}..{hi}, got {v!r}")

    @property
    def classes(self) -> tuple[str, ...]:
        return TASKS[self.task]

    @property
    def outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.classes)

    @property
    def read_size(self) -> int:
        """Side of the frames read from the clips: 96 (ViTPain's input) or ``size``."""
        return 96 if self.encoder == "vit" else self.size


def _block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class Clip3DCNN(nn.Module):
    """uint8-range grayscale clips ``[B, 1, T, S, S]`` (0..1) -> logits ``[B, outputs]``."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        w = cfg.width
        self.body = nn.Sequential(_block(1, w // 2, (1, 2, 2)), _block(w // 2, w, (2, 2, 2)),
                                  _block(w, 2 * w, (2, 2, 2)), _block(2 * w, 2 * w, (2, 2, 2)))
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(2 * w, cfg.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body((x - 0.5) / 0.25).mean(dim=(2, 3, 4))
        return self.fc(self.drop(h))


class TemporalHead(nn.Module):
    """Per-frame features ``[B, T, 135]`` -> logits ``[B, outputs]``: normalisation, a 1-D convolution
    over time, a GRU, attention pooling over the frames."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        w = cfg.width
        self.norm = nn.LayerNorm(VIT_FEATURES)
        self.conv = nn.Conv1d(VIT_FEATURES, w, 3, padding=1)
        self.gru = nn.GRU(w, w, batch_first=True)
        self.att = nn.Linear(w, 1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(w, cfg.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(self.norm(x).transpose(1, 2))).transpose(1, 2)
        h, _ = self.gru(h)
        a = torch.softmax(self.att(h), dim=1)
        return self.fc(self.drop((a * h).sum(1)))


def build(cfg: VideoConfig) -> nn.Module:
    cfg.check()
    return Clip3DCNN(cfg) if cfg.encoder == "c3d" else TemporalHead(cfg)


class FrameEncoder:
    """Turns a clip uint8 ``[T, H, W, 3]`` (already at ``cfg.read_size``) into the model's input for
    one clip: c3d: float16 ``[1, T, S, S]`` grey 0..1; vit: float32 ``[T, 135]`` frozen ViTPain features."""

    def __init__(self, cfg: VideoConfig) -> None:
        self.cfg = cfg
        self.vit = None
        if cfg.encoder == "vit":
            from painface.assess.model import load as load_vit

            self.vit, _ = load_vit(VITPAIN)
            self.vit.eval()

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(clip)).float().div_(255.0)  # [T, H, W, 3]
        if self.vit is None:
            grey = x @ torch.tensor([0.299, 0.587, 0.114])
            return grey[None].numpy().astype(np.float16)
        with torch.no_grad():
            out = self.vit(x.permute(0, 3, 1, 2))
        feat = torch.cat([out["tokens"][:, 0], out["aus"], out["pspi"][:, None]], 1)
        return feat.numpy().astype(np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save(path: str | Path, model: nn.Module, cfg: VideoConfig, info: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its JSON (config, info) atomically."""
    from safetensors.torch import save as st_save

    from painface.io import atomic_write_bytes, atomic_write_json

    path = Path(path)
    meta = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(cfg), **info}
    if cfg.encoder == "vit":
        meta["vitpain_sha256"] = sha256(VITPAIN)
    data = st_save({k: v.detach().contiguous() for k, v in model.state_dict().items()})
    atomic_write_bytes(path, lambda fh: fh.write(data))
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load(path: str | Path) -> tuple[nn.Module, VideoConfig, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`; checks format, config, tensors and the ViTPain file."""
    from safetensors.torch import load_file

    path = Path(path)
    js = path.with_suffix(".json")
    if not path.is_file() or not js.is_file():
        raise InputError(f"--model {path}: expected {path.name} and {js.name} (a train-video checkpoint)")
    try:
        meta = json.loads(js.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{js}: unreadable ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise InputError(f"{js}: not a {FORMAT} v{VERSION} checkpoint (format {meta.get('format')!r}, "
                         f"version {meta.get('version')!r})")
    from painface.io import config_from_dict

    cfg = config_from_dict(VideoConfig, meta.get("config"), str(js))
    cfg.check()
    if cfg.encoder == "vit" and meta.get("vitpain_sha256") != sha256(VITPAIN):
        raise InputError(f"{js}: trained on another ViTPain ({str(meta.get('vitpain_sha256'))[:12]}...) than "
                         f"{VITPAIN.name} here; retrain it with painface train-video")
    model = build(cfg)
    try:
        model.load_state_dict(load_file(str(path)))
    except (RuntimeError, OSError) as e:
        raise InputError(f"{path}: tensors do not fit the config in {js.name} ({str(e)[:200]})") from None
    model.eval()
    return model, cfg, meta
