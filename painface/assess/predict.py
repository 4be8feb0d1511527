"""Reading PSPI from real photos and videos with a ViTPain checkpoint: the ``painface analyze`` table.

:class:`Assessor` finds faces with :class:`painface.analyze.Detector` (BlazeFace + MediaPipe
landmarks), crops each with the five-point similarity of :mod:`painface.face.align` (the framing of
the synthetic training images) at the model's side, and runs the model. The table has exactly the
columns of ``painface analyze`` (file, frame, time, face, face_detected, error, box, pose, the 52
blendshapes from MediaPipe, AUs, AU45, PSPI) plus ``p_pspi1``, ``p_pspi2``, ``p_pspi3`` (the model's
probabilities of PSPI >= 1, 2, 3): AU4, AU6, AU7, AU9, AU10, AU43 and PSPI come from the model, the
AUs it does not read (AU1, AU2, AU5, AU12, ...) and AU45 are NaN. No face: a row with
``face_detected`` false; an unreadable file: such a row with ``error`` set.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from painface.assess.model import AU_OUT, load, read
from painface.errors import InputError

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "vitpain.safetensors"
EXTRA_COLUMNS = ("p_pspi1", "p_pspi2", "p_pspi3")


def aligned_crop(image: Any, landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``[size, size, 3]`` crop of an RGB image from MediaPipe landmarks ``[478, >=2]`` (pixels)."""
    from painface.face import align

    m = align.crop_matrix(align.mediapipe_points(landmarks), size)
    return align.warp(image, m, size)


class Assessor:
    """A ViTPain model with a face detector. ``model``: a checkpoint path or None for the shipped one;
    ``neutral``: for variant-c models, a photo of the same person with a neutral face."""

    def __init__(self, model: str | Path | None = None, *, neutral: str | Path | None = None, threads: int = 1) -> None:
        from painface.analyze import Detector

        path = Path(model) if model is not None else SHIPPED
        self.model, self.info = load(path)
        self.size = self.model.config.size
        if self.model.config.variant == "teacher":
            raise InputError(f"{path}: a heatmap teacher reads heatmaps, not photos; use a student (a, b or c)")
        self.detector = Detector(threads=threads)
        self.ref: torch.Tensor | None = None
        if self.model.config.variant == "c":
            if neutral is None:
                raise InputError(f"{path}: a neutral-reference model (variant c) needs --neutral PHOTO of the person")
            crops = self.crops(str(neutral))
            if not crops:
                raise InputError(f"{neutral}: no face found in the neutral reference photo")
            self.ref = self._tensor(crops[0])

    def _tensor(self, crop: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255.0

    def crops(self, image: Any) -> list[np.ndarray]:
        """Aligned crops ``[size, size, 3]`` of the faces in one image (path, array or PIL image)."""
        from painface.analyze import inputs as I

        src = I.expand([image])[0]
        img = next(iter(I.frames(src)))[2]
        small, _ = I.limit_size(img)
        return [aligned_crop(small, r.landmarks, self.size) for _, r in self.detector.read_faces(small)]

    @torch.no_grad()
    def predict_crops(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for uint8 crops ``[N, size, size, 3]``: ``aus`` ``[N, 6]``, ``pspi`` ``[N]``,
        ``p`` ``[N, 3]``."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.size, self.size, 3):
            raise InputError(f"crops: expected [N, {self.size}, {self.size}, 3], got {list(crops.shape)}")
        x = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float() / 255.0
        ref = self.ref.expand(len(x), -1, -1, -1) if self.ref is not None else None
        out = read(self.model, x, ref, flip=self.info.get("mirror", True), gate=self.info.get("gate"))
        return {"aus": out["aus"].numpy(), "pspi": out["pspi"].numpy(), "p": torch.sigmoid(out["logits"]).numpy()}

    def iter_rows(self, inputs: Any, *, every: int = 1, max_frames: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows of the table (dicts) for every face of every frame of ``inputs``: the detector's rows with
        the AU, PSPI and PSPI >= 1/2/3 columns filled by this model."""

        def fill(image: Any, found: list, rows: list[dict[str, Any]]) -> None:
            crops = np.stack([aligned_crop(image, r.landmarks, self.size) for _, r in found])
            pred = self.predict_crops(crops)
            for k, row in enumerate(rows):
                row.update({au: float(v) for au, v in zip(AU_OUT, pred["aus"][k], strict=True)})
                row["PSPI"] = float(pred["pspi"][k])
                row.update({c: float(v) for c, v in zip(EXTRA_COLUMNS, pred["p"][k], strict=True)})

        yield from self.detector.iter_rows(inputs, every=every, max_frames=max_frames, progress=False, annotate=fill)

    def assess(self, inputs: Any, *, every: int = 1, max_frames: int | None = None) -> pd.DataFrame:
        """The table (module docstring) for images, arrays, PIL images, folders and videos."""
        from painface.analyze.detector import DETECTED_AUS, make_table

        if not isinstance(every, int) or every < 1:
            raise InputError(f"every: expected an integer >= 1, got {every!r}")
        rows = list(self.iter_rows(inputs, every=every, max_frames=max_frames))
        df = make_table(rows)
        for au in DETECTED_AUS:
            if au not in AU_OUT:
                df[au] = np.nan
        df["AU45"] = np.nan
        for c in EXTRA_COLUMNS:
            df[c] = pd.Series([r.get(c, np.nan) for r in rows], dtype="float64")
        df.attrs["painface"] = {"model": "vitpain", "variant": self.model.config.variant,
                                "checkpoint_step": self.info.get("step"), "size": self.size}
        return df
