"""From blendshape scores (0..1) to FACS AU intensities (0..5) and PSPI.

Three maps, all 0..5:

* **uncalibrated** (:func:`uncalibrated_aus`): each AU is its ARKit region's blendshape (mean of the
  left and right scores) x 5 / the weight that blendshape reaches at AU 5 in painface's own
  AU -> ARKit map (:data:`painface.face.code.ARKIT_MAP`). For the PSPI AUs this is exactly
  browDown -> AU4, cheekSquint -> AU6, eyeSquint -> AU7, noseSneer -> AU9, mouthUpperUp -> AU10,
  eyeBlink -> AU43, x 5.
* **offset** (the default, ``assets/au_map_offset.json``): the same region blendshape, less its
  median score on rendered *neutral* faces, rescaled so that a score of 1 still reads 5
  (``5 (b - b0) / (1 - b0) / weight``). Fitted on painface renders; MediaPipe scores a relaxed face
  above 0 (eyeSquint ~0.3), and this removes that resting level.
* **regression** (``assets/au_map_regression.json``): per AU a ridge regression on all
  :data:`FEATURES` (left/right averaged), fitted on painface-rendered faces with exactly known AUs.
  Best on painface's own renders; fitted on the face mask it reads real faces worse (docs/analyze.md).

Both fitted maps are :class:`Calibration` s (per-AU affine maps of :data:`FEATURES`) and are refitted
by ``painface analyze-calibrate``.

PSPI is :func:`painface.face.code.pspi` of the estimated AUs (AU43 counts 1 from intensity 2.5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from painface.analyze.models import BLENDSHAPE_OUTPUTS, asset_path
from painface.errors import InputError
from painface.face.code import AU_MAX, AU_NAMES, FEATURE_NAMES, pspi

UNCALIBRATED: dict[str, tuple[tuple[str, ...], float]] = {
    "AU1": (("browInnerUp",), 1.0),
    "AU2": (("browOuterUpLeft", "browOuterUpRight"), 1.0),
    "AU4": (("browDownLeft", "browDownRight"), 1.0),
    "AU5": (("eyeWideLeft", "eyeWideRight"), 1.0),
    "AU6": (("cheekSquintLeft", "cheekSquintRight"), 1.0),
    "AU7": (("eyeSquintLeft", "eyeSquintRight"), 1.0),
    "AU9": (("noseSneerLeft", "noseSneerRight"), 1.0),
    "AU10": (("mouthUpperUpLeft", "mouthUpperUpRight"), 1.0),
    "AU12": (("mouthSmileLeft", "mouthSmileRight"), 1.0),
    "AU15": (("mouthFrownLeft", "mouthFrownRight"), 1.0),
    "AU17": (("mouthShrugLower",), 1.0),
    "AU20": (("mouthStretchLeft", "mouthStretchRight"), 1.0),
    "AU25": (("mouthLowerDownLeft", "mouthLowerDownRight"), 0.5),
    "AU26": (("jawOpen",), 0.6),
    "AU43": (("eyeBlinkLeft", "eyeBlinkRight"), 1.0),
}
"""AU -> (blendshapes averaged, weight at AU 5); the weights are painface's ARKit map's."""

DETECTED_AUS: tuple[str, ...] = tuple(a for a in AU_NAMES if a in UNCALIBRATED)
"""The face-code AUs the analyzer reports, in face-code order (AU27 and AU45 are not told apart from
AU26 and AU43 in a single frame, so they are left out)."""

PSPI_AUS: tuple[str, ...] = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")


def _feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for b in BLENDSHAPE_OUTPUTS[1:]:
        base = b.removesuffix("Left").removesuffix("Right")
        if base not in names:
            names.append(base)
    return tuple(names)


FEATURES: tuple[str, ...] = _feature_names()
"""The calibrated map's inputs: the 51 blendshapes with left/right pairs averaged (31 features,
named without the side, e.g. ``browDown``)."""


def _feature_matrix() -> np.ndarray:
    m = np.zeros((len(BLENDSHAPE_OUTPUTS), len(FEATURES)))
    for i, name in enumerate(BLENDSHAPE_OUTPUTS[1:], start=1):
        m[i, FEATURES.index(name.removesuffix("Left").removesuffix("Right"))] = 1.0
    return m / m.sum(axis=0)


def _uncalibrated_matrix() -> np.ndarray:
    m = np.zeros((len(BLENDSHAPE_OUTPUTS), len(DETECTED_AUS)))
    for j, au in enumerate(DETECTED_AUS):
        shapes, weight = UNCALIBRATED[au]
        for s in shapes:
            m[BLENDSHAPE_OUTPUTS.index(s), j] = AU_MAX / weight / len(shapes)
    return m


_FEATURE_MATRIX = _feature_matrix()  # [52, 31]: side averaging
_UNCALIBRATED_MATRIX = _uncalibrated_matrix()  # [52, len(DETECTED_AUS)]


def features(blendshapes: np.ndarray) -> np.ndarray:
    """``[..., 52]`` model scores (order of ``BLENDSHAPE_OUTPUTS``) -> ``[..., len(FEATURES)]``."""
    return np.asarray(blendshapes, np.float64) @ _FEATURE_MATRIX


def uncalibrated_aus(blendshapes: np.ndarray) -> dict[str, np.ndarray]:
    """AU intensities 0..5 ``{AU: [...]}`` from ``[..., 52]`` scores by the region map x 5."""
    v = np.clip(np.asarray(blendshapes, np.float64) @ _UNCALIBRATED_MATRIX, 0.0, AU_MAX)
    return {au: v[..., j] for j, au in enumerate(DETECTED_AUS)}


@dataclass
class Calibration:
    """Per-AU affine maps from :data:`FEATURES` to AU intensity, clipped to 0..5.

    ``weights[AU]`` ``[len(FEATURES)]``, ``bias[AU]``; ``meta`` says how it was fitted (data, split,
    command, scores). AUs without a fitted map fall back to the uncalibrated one.
    """

    weights: dict[str, np.ndarray]
    bias: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def __call__(self, blendshapes: np.ndarray) -> dict[str, np.ndarray]:
        fitted = [au for au in DETECTED_AUS if au in self.weights]
        w = np.stack([self.weights[au] for au in fitted], axis=1) if fitted else np.zeros((len(FEATURES), 0))
        b = np.array([self.bias[au] for au in fitted])
        v = np.clip(features(blendshapes) @ w + b, 0.0, AU_MAX)
        out = {au: v[..., j] for j, au in enumerate(fitted)}
        if len(fitted) < len(DETECTED_AUS):
            raw = uncalibrated_aus(blendshapes)
            out.update({au: raw[au] for au in DETECTED_AUS if au not in out})
        return {au: out[au] for au in DETECTED_AUS}

    def to_dict(self) -> dict[str, Any]:
        return {"format": "painface-au-calibration", "version": 1, "features": list(FEATURES),
                "aus": {au: {"bias": round(float(self.bias[au]), 6),
                             "weights": [round(float(w), 6) for w in self.weights[au]]} for au in self.weights},
                "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        from painface.io import atomic_write_json

        atomic_write_json(Path(path), self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        """Read a calibration JSON; checks its format, feature list and sizes."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: cannot read a calibration JSON ({e})") from None
        if not isinstance(d, dict) or d.get("format") != "painface-au-calibration" or d.get("version") != 1:
            raise InputError(f"{path}: not a painface AU calibration (format/version missing or unknown)")
        if d.get("features") != list(FEATURES):
            raise InputError(f"{path}: calibration features differ from this painface's {len(FEATURES)} features")
        weights, bias = {}, {}
        for au, m in dict(d.get("aus", {})).items():
            w = np.asarray(m.get("weights"), np.float64)
            if au not in DETECTED_AUS or w.shape != (len(FEATURES),) or not np.all(np.isfinite(w)):
                raise InputError(f"{path}: bad entry for {au!r} (expected one of {DETECTED_AUS}, "
                                 f"{len(FEATURES)} finite weights)")
            weights[au], bias[au] = w, float(m.get("bias", 0.0))
        return cls(weights, bias, dict(d.get("meta", {})))


SHIPPED_MAPS: dict[str, str] = {"offset": "au_map_offset.json", "regression": "au_map_regression.json"}
"""Names of the fitted maps shipped in ``painface/analyze/assets`` -> file."""


def shipped_map(name: str) -> Calibration:
    """A shipped fitted map by name (:data:`SHIPPED_MAPS`)."""
    if name not in SHIPPED_MAPS:
        raise InputError(f"AU map {name!r}: expected one of {('uncalibrated', *SHIPPED_MAPS)} or a JSON file")
    return Calibration.load(asset_path(SHIPPED_MAPS[name]))


def pspi_from_aus(aus: dict[str, np.ndarray]) -> np.ndarray:
    """PSPI ``[...]`` of estimated AU intensities (AUs missing from ``aus`` count 0)."""
    shape = np.shape(next(iter(aus.values())))
    code = np.zeros(shape + (len(FEATURE_NAMES),), np.float32)
    for au, v in aus.items():
        code[..., AU_NAMES.index(au)] = np.clip(v, 0.0, AU_MAX)
    return pspi(code, FEATURE_NAMES)
