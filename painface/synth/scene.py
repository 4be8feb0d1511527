"""Scene variation for synthetic face images: backgrounds, compositing and photo degradations.

* Backgrounds (:func:`background`): ``plain`` (one colour), ``gradient`` (two colours along a random
  direction) and ``clutter`` (a blurred gradient with 6-14 random rectangles and ellipses, a stand-in
  for a room behind a patient). Colours are drawn in sRGB 0.05..0.85.
* :func:`composite` lays a render (with its coverage ``alpha`` from ``render(..., return_alpha=True)``,
  drawn over black) over a background.
* Degradations (:func:`degrade`), each optional: Gaussian blur (radius 0-1.2 px), sensor noise (sd 0-6
  of 255) and JPEG re-encoding (quality 40-95).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BACKGROUNDS = ("plain", "gradient", "clutter")


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.05, 0.85, 3)


def background(rng: np.random.Generator, size: int, kind: str | None = None) -> tuple[np.ndarray, str]:
    """A uint8 ``[size, size, 3]`` background and its kind (drawn from :data:`BACKGROUNDS` if None)."""
    kind = kind or BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if kind == "plain":
        img = np.broadcast_to(_colour(rng), (size, size, 3))
    else:
        a, b = _colour(rng), _colour(rng)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = np.clip((np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) + 0.5, 0, 1)[..., None]
        img = a * (1 - t) + b * t
    out = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    if kind == "clutter":
        pil = Image.fromarray(out)
        draw = ImageDraw.Draw(pil)
        for _ in range(int(rng.integers(6, 15))):
            x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
            w, h = rng.uniform(0.1, 0.6, 2) * size
            col = tuple(int(c) for c in (_colour(rng) * 255))
            (draw.rectangle if rng.random() < 0.6 else draw.ellipse)([x0, y0, x0 + w, y0 + h], fill=col)
        out = np.asarray(pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 3.0)))))
    return np.ascontiguousarray(out), kind


def composite(fg: np.ndarray, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """``fg`` (uint8 ``[H, W, 3]``, rendered over black, so premultiplied) over ``bg`` with coverage ``alpha``."""
    out = fg.astype(np.float32) + (1.0 - alpha[..., None]) * bg.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def degrade(img: np.ndarray, rng: np.random.Generator, *, blur: bool, noise: bool, jpeg: bool
            ) -> tuple[np.ndarray, dict[str, float]]:
    """Optional blur, noise and JPEG artefacts; returns the image and the parameters used (0 = off)."""
    params = {"blur_px": 0.0, "noise_sd": 0.0, "jpeg_quality": 0.0}
    pil = Image.fromarray(img)
    if blur:
        params["blur_px"] = float(rng.uniform(0.0, 1.2))
        pil = pil.filter(ImageFilter.GaussianBlur(radius=params["blur_px"]))
    arr = np.asarray(pil)
    if noise:
        params["noise_sd"] = float(rng.uniform(0.0, 6.0))
        arr = np.clip(arr + rng.normal(0.0, params["noise_sd"], arr.shape), 0, 255).astype(np.uint8)
    if jpeg:
        params["jpeg_quality"] = float(int(rng.integers(40, 96)))
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(params["jpeg_quality"]))
        arr = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return np.ascontiguousarray(arr), params
