"""The face-code reader of the ``code`` video encoder: a network that reads the whole 20-number face code (17 AU
intensities and head pitch, yaw, roll; :data:`painface.face.code.FEATURE_NAMES`) from one frame.

PSPI's six AUs alone separate BL1 from PA4 less well than the whole code (benchmarks/check_video_ceiling.py:
the faint non-PSPI AUs and head movement carry the rest), and synthetic clips come with the exact code of every
frame. So the reader is the shipped ViTPain's network (its convolutional stem and transformer, weights from
``painface/assets/vitpain.safetensors``) with a new head for the 20 numbers, fine-tuned on frames of the
training clips against their exact codes: AU intensities ``5 sigmoid`` (0..5), head angles in degrees.

Loss: mean squared error of each number divided by its spread over the training frames (so faint AUs weigh as
much as head angles); AdamW, linear warm-up then cosine decay; colour, blur and noise augmentation only (a
turn or a flip would change the head-angle labels). Frames are uint8 ``[N, S, S, 3]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from painface.assess.model import ViTConfig, ViTPain
from painface.errors import InputError

CODE_FEATURES = 20
N_AUS = 17
POSE_SCALE = 10.0  # degrees per unit of the head's pose outputs


class CodeReader(nn.Module):
    """Frames ``[B, S, S, 3]`` (uint8 or 0..255 floats) -> face codes ``[B, 20]``."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        self.net = ViTPain(ViTConfig(**{**config.to_dict(), "variant": "a"}))
        d = config.dim
        self.code = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, CODE_FEATURES))
        with torch.no_grad():
            self.code[-1].bias[:N_AUS] = -3.0  # AUs start near 0.25, not mid-scale: most frames barely move

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        s = self.config.size
        if frames.ndim != 4 or frames.shape[1:] != (s, s, 3):
            raise InputError(f"frames: expected [B, {s}, {s}, 3], got {list(frames.shape)}")
        x = frames.float().div(255.0).permute(0, 3, 1, 2)
        out = self.code(self.net.encode(x)[0][:, 0])
        return torch.cat([5 * torch.sigmoid(out[:, :N_AUS]), POSE_SCALE * out[:, N_AUS:]], 1)

    @torch.no_grad()
    def read(self, frames: np.ndarray | torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Face codes of many frames ``[..., S, S, 3]`` -> ``[..., 20]`` (eval mode, batched)."""
        self.eval()
        f = torch.as_tensor(frames)
        flat = f.reshape(-1, *f.shape[-3:])
        out = torch.cat([self(flat[i : i + batch]) for i in range(0, len(flat), batch)]) if len(flat) else \
            torch.zeros(0, CODE_FEATURES)
        return out.reshape(*f.shape[:-3], CODE_FEATURES)


def from_vitpain(path) -> CodeReader:
    """A reader whose network starts from a ViTPain checkpoint's weights (its heads are not used)."""
    from painface.assess.model import load

    vit, _ = load(path)
    reader = CodeReader(vit.config)
    own = reader.net.state_dict()
    reader.net.load_state_dict({k: v for k, v in vit.state_dict().items() if k in own}, strict=True)
    return reader


def train_reader(reader: CodeReader, frames: np.ndarray, codes: np.ndarray, *, steps: int, lr: float = 3e-4,
                 batch: int = 32, seed: int = 0, augment: float = 0.5, progress: bool = True,
                 desc: str = "reader") -> CodeReader:
    """Fine-tune ``reader`` on frames uint8 ``[N, S, S, 3]`` against their exact codes ``[N, 20]``."""
    from tqdm import tqdm

    from painface.assess.data import augment as jitter
    from painface.training import warmup_cosine

    if len(frames) != len(codes) or not len(frames):
        raise InputError(f"reader training: {len(frames)} frames for {len(codes)} codes")
    if codes.shape[1:] != (CODE_FEATURES,) or not np.isfinite(codes).all():
        raise InputError(f"reader training: expected finite codes [N, {CODE_FEATURES}], got {list(codes.shape)}")
    torch.manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(frames))
    y = torch.from_numpy(codes.astype(np.float32))
    spread = y.std(0).clamp_min(0.05)
    opt = torch.optim.AdamW(reader.parameters(), lr=lr, weight_decay=0.05)
    reader.train()
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    for step in range(steps):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, len(x), (batch,), generator=g)
        img = x[idx].float().div(255.0).permute(0, 3, 1, 2)
        img = jitter(img, g, strength=augment, geometry=False)[0]
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step, steps, lr, min(100, steps // 10))
        pred = reader((img * 255.0).permute(0, 2, 3, 1))
        loss = (((pred - y[idx]) / spread) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reader.parameters(), 1.0)
        opt.step()
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return reader.eval()
