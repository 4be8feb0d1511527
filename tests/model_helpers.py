"""Small networks and inputs shared by the model tests."""

import torch

from painface.face.code import EMOTIONS
from painface.model.conditions import Conditions
from painface.model.unet import TemporalUNet, UNetConfig

TINY = dict(feature_dim=6, channels=16, cond_dim=16, heads=2, noise_dim=8)


def randomized(config: UNetConfig, seed: int = 0) -> TemporalUNet:
    """A network whose zero-initialized layers are given random weights, so every path is live."""
    torch.manual_seed(seed)
    net = TemporalUNet(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().any():
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return net


def inputs(b: int = 3, t: int = 16, d: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Conditions]:
    """Random (x [b, t, d], c_noise [b, t], conditions) with a blended emotion per row."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, d, generator=g)
    c_noise = torch.randn(b, t, generator=g)
    emo = torch.softmax(torch.randn(b, len(EMOTIONS), generator=g), -1)
    return x, c_noise, Conditions(torch.rand(b, t, generator=g), 4 * torch.rand(b, generator=g), emo)
