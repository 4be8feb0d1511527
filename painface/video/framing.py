"""Face framing of whole video frames: the crop ``painface synth videos`` gives its clips, made for real footage.

Synthetic clips are already face crops: one steady five-point similarity crop per clip, computed from the
clip's mean landmark positions (:mod:`painface.face.align`), in which the head moves. Real footage (BioVid's
frames show the upper body in a room) gets the same crop here: MediaPipe's landmarks (through
:class:`painface.analyze.Detector`, tracking from frame to frame) give the five points in every frame with a
face, their mean gives one crop for the whole clip. A clip with no face in any frame is an error naming it
(the clip readers skip and report such clips).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from painface.errors import InputError

MIN_SIDE = 192  # frames smaller than this are upscaled before the face is looked for


def for_detection(frame: np.ndarray) -> tuple[Image.Image, float]:
    """The frame as a PIL image at least :data:`MIN_SIDE` on its short side, and the factor it was upscaled by."""
    im = Image.fromarray(frame)
    scale = max(1.0, MIN_SIDE / min(im.size))
    if scale > 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.BILINEAR)
    return im, scale


def frame_clip(clip: np.ndarray, size: int, detector: Any, name: str = "clip") -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` -> the clip's steady face crop uint8 ``[T, size, size, 3]``."""
    from painface.face import align

    clip = np.asarray(clip)
    if clip.ndim != 4 or clip.shape[-1] != 3 or not len(clip):
        raise InputError(f"{name}: expected frames [T, H, W, 3], got {list(clip.shape)}")
    points, previous = [], None
    for frame in clip:
        im, scale = for_detection(frame)
        found = detector.read_faces(im, previous)
        previous = [found[0][1].landmarks] if found else None
        if found:
            points.append(align.mediapipe_points(found[0][1].landmarks) / scale)
    if not points:
        raise InputError(f"{name}: no face found in any of its {len(clip)} frames")
    m = align.crop_matrix(np.mean(points, axis=0), size)
    return np.stack([align.warp(f, m, size) for f in clip])
