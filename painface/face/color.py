"""The sRGB transfer curve (IEC 61966-2-1), both ways: colours are authored in sRGB, shading happens in
linear light, and rendered images go back to sRGB bytes."""

from __future__ import annotations

import numpy as np


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] -> linear light, float32 (computed in the input's precision)."""
    c = np.asarray(c)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] -> sRGB values, in the input's precision."""
    c = np.asarray(c)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
