"""Face crop, 478 landmarks, blendshape scores and head pose for one detected face.

* Crop (MediaPipe's detection-to-ROI settings): a square around the detection box centre, side
  1.5 x the box's longer side, rotated so that the line from the right to the left eye keypoint is
  horizontal; warped to 256 x 256 with bilinear sampling (images much larger than the crop are first
  box-averaged down, so the warp never aliases).
* Landmarks: the model's crop pixels mapped back to image pixels; z in the same pixel units
  (smaller = nearer the camera), relative to the face.
* Blendshapes: the 146-landmark subset, (x, y) in image pixels, into the blendshape model.
* Head pose: a similarity fit (Umeyama 1991) of MediaPipe's canonical face (468 vertices) to the
  landmarks, the rotation split into pitch/yaw/roll with painface's face-code convention (see
  :mod:`painface.face.code`: pitch > 0 chin down, yaw > 0 face turned to the subject's left, roll > 0
  head tilted toward the subject's left shoulder).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from painface.analyze.blazeface import Detection
from painface.analyze.models import BLENDSHAPE_OUTPUTS, BLENDSHAPE_SUBSET, TFLiteModel, sigmoid

CROP_SIZE = 256
ROI_SCALE = 1.5
MIN_PRESENCE = 0.5


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre (x, y), side, rotation (radians, image y down)."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_to_image(self) -> np.ndarray:
        """Affine ``[2, 3]`` mapping crop pixels (0..256) to image pixels."""
        c, s, k = math.cos(self.angle), math.sin(self.angle), self.size / CROP_SIZE
        return np.array([[c * k, -s * k, self.cx - 0.5 * self.size * (c - s)],
                         [s * k, c * k, self.cy - 0.5 * self.size * (s + c)]])


def roi_from_detection(det: Detection) -> Roi:
    """MediaPipe's ROI for the landmark model from a BlazeFace detection (scale 1.5, square, rotated)."""
    x0, y0, x1, y1 = det.box
    (ex0, ey0), (ex1, ey1) = det.keypoints[0], det.keypoints[1]
    angle = -math.atan2(-(ey1 - ey0), ex1 - ex0)
    return Roi(0.5 * (x0 + x1), 0.5 * (y0 + y1), ROI_SCALE * max(x1 - x0, y1 - y0), angle)


def crop(image: Image.Image, roi: Roi) -> np.ndarray:
    """The ROI warped to ``[256, 256, 3]`` float32 RGB in 0..1 (outside the image: black)."""
    m = roi.crop_to_image()
    k = int(roi.size // (2 * CROP_SIZE))
    if k >= 2:  # box-average first: a bilinear warp from far larger would alias
        image = image.reduce(k)
        m = m / k
    warped = image.transform((CROP_SIZE, CROP_SIZE), Image.Transform.AFFINE, tuple(m.ravel()),
                             resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(warped, np.float32) / 255.0


@lru_cache(maxsize=1)
def canonical_face() -> np.ndarray:
    """MediaPipe's canonical face ``[468, 3]`` (cm; +x subject's left, +y up, +z toward the viewer)."""
    with resources.files("painface.face").joinpath("assets/canonical_face.npz").open("rb") as fh:
        return np.load(fh)["vertices"].astype(np.float64)


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Least-squares rotation R, scale s and translation t with ``dst ~ s R src + t`` (Umeyama 1991).

    ``src``, ``dst`` ``[n, 3]``; R ``[3, 3]`` a proper rotation."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum() / (a**2).sum(1).mean())
    return rot, scale, mu_d - scale * rot @ mu_s


def rotation_to_pose(rot: np.ndarray) -> tuple[float, float, float]:
    """Split a head rotation (head frame -> camera frame, +y up, +z toward the camera) into face-code
    (pitch, yaw, roll) degrees, the inverse of ``painface.face.rig.head_rotation``:
    ``R = Ry(yaw) Rx(pitch) Rz(-roll)``."""
    pitch = math.asin(float(np.clip(-rot[1, 2], -1.0, 1.0)))
    yaw = math.atan2(rot[0, 2], rot[2, 2])
    roll = -math.atan2(rot[1, 0], rot[1, 1])
    return math.degrees(pitch), math.degrees(yaw), math.degrees(roll)


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) degrees from 478 (or 468) image landmarks ``[n, 3]`` (x right, y down, z away)."""
    pts = np.asarray(landmarks[:468], np.float64) * np.array([1.0, -1.0, -1.0])
    rot, _, _ = similarity_fit(canonical_face(), pts)
    return rotation_to_pose(rot)


@dataclass(frozen=True)
class FaceReading:
    """What the models read from one face.

    ``landmarks`` ``[478, 3]`` image pixels; ``presence`` 0..1; ``blendshapes`` ``[52]`` 0..1 in the
    order of :data:`~painface.analyze.models.BLENDSHAPE_OUTPUTS`; ``pose`` (pitch, yaw, roll) degrees.
    """

    landmarks: np.ndarray
    presence: float
    blendshapes: np.ndarray
    pose: tuple[float, float, float]

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_OUTPUTS.index(name)])


class FaceReader:
    """Landmarks, blendshapes and pose of the face in an ROI (see the module docstring)."""

    def __init__(self, threads: int = 1) -> None:
        self.landmark_model = TFLiteModel("face_landmarks_detector.tflite", threads)
        self.blendshape_model = TFLiteModel("face_blendshapes.tflite", threads)
        self._subset = np.asarray(BLENDSHAPE_SUBSET)

    def landmarks(self, image: Image.Image, roi: Roi) -> tuple[np.ndarray, float]:
        """``[478, 3]`` image-pixel landmarks and the face-presence probability in the ROI."""
        outs = self.landmark_model(crop(image, roi)[None])
        raw = next(o for o in outs if o.size == 478 * 3).reshape(478, 3).astype(np.float64)
        presence = float(sigmoid(next(o for o in outs if o.size == 1 and o.ndim == 4).ravel()[0]))
        m = roi.crop_to_image()
        xy = raw[:, :2] @ m[:, :2].T + m[:, 2]
        z = raw[:, 2] * roi.size / CROP_SIZE
        return np.column_stack([xy, z]).astype(np.float32), presence

    def blendshapes(self, landmarks: np.ndarray) -> np.ndarray:
        """52 scores 0..1 from image-pixel landmarks ``[478, >=2]``."""
        pts = np.asarray(landmarks, np.float32)[self._subset, :2]
        return np.clip(self.blendshape_model(pts[None])[0].ravel(), 0.0, 1.0)

    def __call__(self, image: Image.Image, roi: Roi) -> FaceReading:
        lm, presence = self.landmarks(image, roi)
        return FaceReading(lm, presence, self.blendshapes(lm), head_pose(lm))
