"""BlazeFace short-range face detection: letterbox, anchors, box decoding, weighted NMS.

Settings follow MediaPipe's face detector graph for the short-range model (published facts, not
code): SSD anchors over a 128 x 128 input with 4 layers, strides (8, 16, 16, 16), one aspect ratio
plus one interpolated anchor per location, fixed anchor size, offset 0.5 (896 anchors); 16 regressor
values per anchor in x-first order (box centre x, y, width, height, then 6 keypoints x, y), scaled
by 128; scores are sigmoid(clip(logit, -100, 100)) with a 0.5 threshold; weighted non-maximum
suppression at IoU 0.3. Keypoints: 0 right eye, 1 left eye (the subject's), 2 nose tip, 3 mouth
centre, 4 right ear tragion, 5 left ear tragion.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from painface.analyze.models import TFLiteModel, sigmoid

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    """One detected face in image pixels (continuous coordinates: pixel i spans [i, i+1)).

    ``box`` (x0, y0, x1, y1); ``keypoints`` ``[6, 2]`` (x, y); ``score`` 0..1.
    """

    box: tuple[float, float, float, float]
    keypoints: np.ndarray
    score: float


@lru_cache(maxsize=1)
def anchors() -> np.ndarray:
    """Anchor centres ``[896, 2]`` (x, y) in 0..1 of the 128 x 128 input, in the model's output order."""
    out = []
    layer = 0
    while layer < len(STRIDES):
        stride = STRIDES[layer]
        n_same = 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:
            n_same += 1
            layer += 1
        per_location = 2 * n_same  # aspect ratio 1 + the interpolated anchor, per merged layer
        cells = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) / cells, (ys.ravel() + 0.5) / cells], axis=1)
        out.append(np.repeat(centres, per_location, axis=0))
    return np.concatenate(out).astype(np.float32)


def letterbox(image: Image.Image) -> tuple[np.ndarray, float, float, float]:
    """Scale an RGB image to fit 128 x 128 keeping its aspect ratio, centred on black.

    Returns the model input ``[1, 128, 128, 3]`` in -1..1 and (scale, offset x, offset y) such that
    input pixel = image pixel x scale + offset.
    """
    w, h = image.size
    scale = INPUT_SIZE / max(w, h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = image.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    ox, oy = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = np.asarray(resized, np.float32) / 127.5
    canvas[oy : oy + nh, ox : ox + nw] -= 1.0
    canvas[:oy], canvas[oy + nh :], canvas[:, :ox], canvas[:, ox + nw :] = -1.0, -1.0, -1.0, -1.0
    return canvas[None], nw / w, float(ox), float(oy)


def decode(regressors: np.ndarray, logits: np.ndarray, min_score: float = MIN_SCORE) -> tuple[np.ndarray, ...]:
    """Raw outputs ``[896, 16]``, ``[896]`` -> boxes ``[n, 4]`` (x0, y0, x1, y1), keypoints ``[n, 6, 2]``
    (both in 0..1 of the input) and scores ``[n]`` of the anchors scoring at least ``min_score``."""
    scores = sigmoid(np.clip(logits, -SCORE_CLIP, SCORE_CLIP)).astype(np.float32)
    keep = np.flatnonzero(scores >= min_score)
    a = anchors()[keep]
    r = regressors[keep] / INPUT_SIZE
    cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
    w, h = r[:, 2], r[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = r[:, 4:16].reshape(-1, 6, 2) + a[:, None, :]
    return boxes, kps, scores[keep]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one box ``[4]`` with many ``[n, 4]`` (x0, y0, x1, y1)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray,
                 threshold: float = NMS_IOU) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Weighted non-maximum suppression: the best remaining candidate and every candidate overlapping
    it by IoU > ``threshold`` are merged into their score-weighted mean box and keypoints; the merged
    detection keeps the best score. Returns (box [4], keypoints [6, 2], score), best first."""
    order = np.argsort(-scores, kind="stable")
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    alive = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = np.flatnonzero(alive & (iou(boxes[i], boxes) > threshold))
        group = np.union1d(group, [i])
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kp = (kps[group].reshape(len(group), -1) * w).sum(0).reshape(6, 2) / w.sum()
        out.append((box, kp, float(scores[i])))
        alive[group] = False
    return out


class FaceDetector:
    """BlazeFace short-range on an RGB :class:`PIL.Image.Image`; returns :class:`Detection` s, best first.

    ``min_score`` (0..1) is the detection threshold; ``max_faces`` caps the number returned.
    """

    def __init__(self, threads: int = 1, min_score: float = MIN_SCORE, max_faces: int = 1) -> None:
        self.model = TFLiteModel("face_detector.tflite", threads)
        self.min_score = float(min_score)
        self.max_faces = int(max_faces)

    def __call__(self, image: Image.Image) -> list[Detection]:
        x, scale, ox, oy = letterbox(image)
        regressors, logits = self.model(x)
        boxes, kps, scores = decode(regressors[0], logits[0, :, 0], self.min_score)
        dets = []
        for box, kp, score in weighted_nms(boxes, kps, scores)[: self.max_faces]:
            px_box = (box * INPUT_SIZE - np.array([ox, oy, ox, oy])) / scale
            px_kp = (kp * INPUT_SIZE - np.array([ox, oy])) / scale
            dets.append(Detection(tuple(float(v) for v in px_box), px_kp.astype(np.float32), score))
        return dets
