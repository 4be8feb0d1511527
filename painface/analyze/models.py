"""MediaPipe Face Landmarker's three models, run with ai-edge-litert, and the constants they need.

The ``.tflite`` files ship in ``painface/analyze/assets`` (Apache-2.0, provenance and sha256 in
``assets/NOTICE.txt``; ``scripts/extract_mediapipe_models.py`` re-extracts them). Nothing is downloaded.

Model I/O (float32):

* ``face_detector.tflite`` (BlazeFace short range): ``[1, 128, 128, 3]`` RGB in -1..1 ->
  regressors ``[1, 896, 16]`` (box centre x/y, width, height, 6 keypoints x/y, in input pixels
  relative to the anchor) and logits ``[1, 896, 1]``.
* ``face_landmarks_detector.tflite``: ``[1, 256, 256, 3]`` RGB in 0..1 -> 478 x (x, y, z) in crop
  pixels, and a face-presence logit.
* ``face_blendshapes.tflite``: ``[1, 146, 2]`` (x, y) image pixels of :data:`BLENDSHAPE_SUBSET` ->
  52 scores 0..1 in the order :data:`BLENDSHAPE_OUTPUTS`.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path

import numpy as np

from painface.errors import InputError

BLENDSHAPE_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67,
    70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146,
    148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181,
    185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293,
    295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361,
    362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398,
    400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip
"""The 146 of 478 landmarks the blendshape model reads (MediaPipe face_blendshapes_graph.cc,
``kLandmarksSubsetIdxs``)."""

BLENDSHAPE_OUTPUTS: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
"""The blendshape model's 52 outputs in order (``kBlendshapeNames``): a ``_neutral`` score and 51
ARKit blendshapes (ARKit's ``tongueOut`` is not among them)."""

MODEL_FILES: dict[str, str] = {
    "detector": "face_detector.tflite",
    "landmarks": "face_landmarks_detector.tflite",
    "blendshapes": "face_blendshapes.tflite",
}


def asset_path(name: str) -> Path:
    """Path of a file in ``painface/analyze/assets`` (raises :class:`InputError` if it is missing)."""
    path = Path(str(resources.files("painface.analyze") / "assets" / name))
    if not path.exists():
        raise InputError(f"{path}: model file missing; reinstall painface or run "
                         "scripts/extract_mediapipe_models.py")
    return path


class TFLiteModel:
    """One ``.tflite`` model on ai-edge-litert's CPU interpreter (XNNPACK), ``threads`` threads.

    Calling it with the input array (shape and dtype of the model's input) returns the list of output
    arrays (copies). A lock makes one instance safe to share between threads.
    """

    def __init__(self, file: str, threads: int = 1) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as e:  # pragma: no cover - a dependency
            raise InputError("painface.analyze needs ai-edge-litert: pip install ai-edge-litert") from e
        self.path = asset_path(file)
        self._it = Interpreter(model_path=str(self.path), num_threads=int(threads))
        self._it.allocate_tensors()
        inp = self._it.get_input_details()[0]
        self.input_index = inp["index"]
        self.input_shape = tuple(int(s) for s in inp["shape"])
        self._outputs = [d["index"] for d in self._it.get_output_details()]
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != self.input_shape:
            raise InputError(f"{self.path.name}: expected input {self.input_shape}, got {x.shape}")
        with self._lock:
            self._it.set_tensor(self.input_index, x)
            self._it.invoke()
            return [self._it.get_tensor(i).copy() for i in self._outputs]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, computed stably for large |x|."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))
