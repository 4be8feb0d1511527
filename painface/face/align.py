"""Face alignment: one framing for rendered and real faces.

A face crop is the similarity transform (rotation, uniform scale, translation) that sends five points
(the two eye centres, the nose tip and the two mouth corners) as close as possible, in least squares, to
a fixed template in the crop (:data:`TEMPLATE`, in units of the crop size; the subject's right eye on
the image's left). painface's synthetic datasets frame their renders this way from the head's exact
landmarks, and :func:`painface.analyze` frames real photos the same way from MediaPipe's landmarks
(:data:`MEDIAPIPE_5`), so a model sees the same framing on both.

The template places the eyes 26 % of the crop apart at 40 % of its height, the nose tip at 57 % and the
mouth at 70 % (an adult face's proportions: mouth width ~0.8 and eye-to-mouth ~1.15 inter-ocular
distances): the whole face from the hairline to the chin (wider than the tight ArcFace crop, because
pain shows in the brows and the chin too).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from painface.errors import InputError

TEMPLATE = np.array([
    [0.37, 0.40],  # subject's right eye centre (image left)
    [0.63, 0.40],  # subject's left eye centre
    [0.50, 0.57],  # nose tip
    [0.405, 0.70],  # right mouth corner
    [0.595, 0.70],  # left mouth corner
])  # fmt: skip
"""Target positions of the five points, as fractions of the crop's width and height."""

MEDIAPIPE_5 = ((33, 133), (263, 362), (4,), (61,), (291,))
"""MediaPipe Face Landmarker indices whose mean gives each of the five points (eye corners for the eyes)."""


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity ``A`` minimising ``sum |A [src, 1] - dst|^2`` (Umeyama, no reflection)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise InputError(f"similarity: expected two [N, 2] point sets with N >= 2, got {src.shape} and {dst.shape}")
    if not (np.all(np.isfinite(src)) and np.all(np.isfinite(dst))):
        raise InputError("similarity: points must be finite")
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = (s**2).sum() / len(s)
    if var <= 1e-12:
        raise InputError("similarity: the source points coincide")
    cov = d.T @ s / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / var
    a = scale * rot
    return np.concatenate([a, (md - a @ ms)[:, None]], axis=1)


def crop_matrix(points5: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 map from image pixels to a ``size`` x ``size`` crop for five points ``[5, 2]`` (pixels)."""
    return similarity(points5, TEMPLATE * size)


def warp(image: np.ndarray | Image.Image, matrix: np.ndarray, size: int, fill: tuple[int, ...] = (0, 0, 0),
         resample: int = Image.BILINEAR) -> np.ndarray:
    """Apply the 2x3 image -> crop ``matrix``: uint8 ``[size, size, channels]``."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    m = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(m)  # PIL wants crop -> image
    out = img.transform((int(size), int(size)), Image.AFFINE, data=tuple(inv[:2].ravel()), resample=resample,
                        fillcolor=fill if img.mode in ("RGB", "RGBA") else fill[0])
    return np.asarray(out)


def mediapipe_points(landmarks: np.ndarray) -> np.ndarray:
    """The five alignment points ``[5, 2]`` from MediaPipe's 478 landmarks ``[478, >=2]`` (pixels)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
        raise InputError(f"landmarks: expected MediaPipe landmarks [478, 2 or 3], got {lm.shape}")
    return np.stack([lm[list(idx), :2].mean(0) for idx in MEDIAPIPE_5])


def project(points: np.ndarray, camera, size: int) -> np.ndarray:
    """Pixel positions ``[..., 2]`` of head-frame points ``[..., 3]`` (mm) seen by ``camera`` in a
    ``size`` x ``size`` render (the conventions of :func:`painface.face.render.render`)."""
    p = np.asarray(points, np.float64)
    view = camera.view()
    c = p @ view[:, :3].T + view[:, 3]
    focal = 0.5 * size / np.tan(np.radians(camera.fov) / 2)
    depth = -c[..., 2]
    return np.stack([0.5 * size + focal * c[..., 0] / depth, 0.5 * size - focal * c[..., 1] / depth], -1)
