"""The face code: the one representation that travels through painface.

A face code is a float array ``[frames, features]`` whose columns are named. Two spaces exist:

* **FACS space** (built in): 17 FACS action-unit intensities on the 0-5 scale (0 = absent,
  1..5 = FACS A..E) followed by head pitch, yaw and roll in degrees. PSPI is exact here and every rig
  is driven from it.
* **FLAME space** (real BioVid features): 100 EMOCA expression coefficients ``exp0..exp99`` and the
  3 jaw-pose axis-angle components ``jaw0..jaw2`` (scaled by 100, as the PainDiffusion authors did).

Head pose sign convention (degrees, right-handed, camera looking at the face): pitch > 0 is the head
tilted down (chin toward the chest), yaw > 0 turns the face to the subject's left, roll > 0 tilts the
head toward the subject's left shoulder.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from painface.errors import InputError

AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12",
    "AU15", "AU17", "AU20", "AU25", "AU26", "AU27", "AU43", "AU45",
)  # fmt: skip
"""Action units of the built-in face code, in column order."""

AU_DESCRIPTIONS: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU20": "lip stretcher",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU27": "mouth stretch",
    "AU43": "eyes closed",
    "AU45": "blink",
}

POSE_NAMES: tuple[str, ...] = ("head_pitch", "head_yaw", "head_roll")
"""Head rotation in degrees (see the module docstring for signs)."""

FEATURE_NAMES: tuple[str, ...] = AU_NAMES + POSE_NAMES
"""All columns of a FACS-space face code, in order."""

FLAME_NAMES: tuple[str, ...] = tuple(f"exp{i}" for i in range(100)) + ("jaw0", "jaw1", "jaw2")
"""Columns of a FLAME-space face code (EMOCA expression + jaw pose x 100)."""

EMOTIONS: tuple[str, ...] = (
    "Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise",
)  # fmt: skip
"""The 8 HSEmotion classes, in the index order HSEmotion uses."""

AU_MAX = 5.0
POSE_LIMITS_DEG: dict[str, float] = {"head_pitch": 45.0, "head_yaw": 60.0, "head_roll": 40.0}
"""Head pose limits (degrees, +-): generated face codes and live links clamp the pose to them (a neck's
comfortable range; the model can extrapolate far beyond it under extreme conditions)."""
AU43_CLOSED_THRESHOLD = 2.5
"""AU43 intensity from which the eyes count as closed in PSPI (more than half of full closure)."""

ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft",
    "jawRight", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
    "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
    "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft", "browDownRight",
    "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip
"""Apple ARKit's 52 blendshape names, in ARKit's documented order."""

ARKIT_MAP: dict[str, tuple[tuple[str, float], ...]] = {
    "AU1": (("browInnerUp", 1.0),),
    "AU2": (("browOuterUpLeft", 1.0), ("browOuterUpRight", 1.0)),
    "AU4": (("browDownLeft", 1.0), ("browDownRight", 1.0)),
    "AU5": (("eyeWideLeft", 1.0), ("eyeWideRight", 1.0)),
    "AU6": (("cheekSquintLeft", 1.0), ("cheekSquintRight", 1.0)),
    "AU7": (("eyeSquintLeft", 1.0), ("eyeSquintRight", 1.0)),
    "AU9": (("noseSneerLeft", 1.0), ("noseSneerRight", 1.0)),
    "AU10": (("mouthUpperUpLeft", 1.0), ("mouthUpperUpRight", 1.0)),
    "AU12": (("mouthSmileLeft", 1.0), ("mouthSmileRight", 1.0)),
    "AU15": (("mouthFrownLeft", 1.0), ("mouthFrownRight", 1.0)),
    "AU17": (("mouthShrugLower", 1.0), ("mouthShrugUpper", 0.5)),
    "AU20": (("mouthStretchLeft", 1.0), ("mouthStretchRight", 1.0)),
    "AU25": (("jawOpen", 0.15), ("mouthLowerDownLeft", 0.5), ("mouthLowerDownRight", 0.5)),
    "AU26": (("jawOpen", 0.6),),
    "AU27": (("jawOpen", 1.0), ("mouthStretchLeft", 0.3), ("mouthStretchRight", 0.3)),
    "AU43": (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
    "AU45": (("eyeBlinkLeft", 1.0), ("eyeBlinkRight", 1.0)),
}
"""AU -> ARKit blendshapes with the weight each reaches at AU intensity 5.

A blendshape fed by several AUs takes the largest contribution (so eyeBlink is 1 when either AU43 or
AU45 is at 5, and jawOpen follows the strongest of AU25/26/27). Regions follow py-feat's map.
"""


def feature_space(names: Sequence[str]) -> str:
    """Return ``"facs"`` or ``"flame"`` for a list of feature names, or raise :class:`InputError`."""
    names = tuple(str(n) for n in names)
    if names == FEATURE_NAMES:
        return "facs"
    if names == FLAME_NAMES:
        return "flame"
    unknown = [n for n in names if n not in FEATURE_NAMES and n not in FLAME_NAMES]
    if unknown:
        raise InputError(
            f"feature_names: unknown feature(s) {unknown[:5]}; expected the FACS names "
            f"{list(FEATURE_NAMES)} or the FLAME names exp0..exp99, jaw0..jaw2"
        )
    raise InputError(
        f"feature_names: {len(names)} names in an unexpected order or subset; expected exactly "
        f"{list(FEATURE_NAMES)} (FACS) or exp0..exp99, jaw0..jaw2 (FLAME)"
    )


def check_face(face: np.ndarray, names: Sequence[str], *, source: str = "face") -> np.ndarray:
    """Validate a face code and return it as a float32 array ``[frames, features]``.

    Checks: 2-D, one column per name, finite values, names of a known space, and for FACS space AU
    intensities within 0..5 (a tolerance of 1e-3 absorbs rounding). ``source`` names the input in errors.
    """
    arr = np.asarray(face)
    if arr.ndim != 2:
        raise InputError(f"{source}: expected a 2-D array [frames, features], got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"{source}: expected a float array, got dtype {arr.dtype}")
    if arr.shape[1] != len(names):
        raise InputError(f"{source}: has {arr.shape[1]} columns but {len(names)} feature names")
    space = feature_space(names)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{source}: NaN or inf at frame {bad[0]}, feature {names[bad[1]]!r}")
    if space == "facs" and arr.shape[0] > 0:
        aus = arr[:, : len(AU_NAMES)]
        lo, hi = float(aus.min()), float(aus.max())
        if lo < -1e-3 or hi > AU_MAX + 1e-3:
            raise InputError(f"{source}: AU intensities must lie in 0..{AU_MAX:g}, found {lo:.3f}..{hi:.3f}")
    return arr.astype(np.float32, copy=False)


def clip_aus(face: np.ndarray, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """Return a copy of a FACS face code with AU columns clipped to 0..5 and head pose to
    :data:`POSE_LIMITS_DEG`."""
    if feature_space(names) != "facs":
        raise InputError("clip_aus: needs a FACS-space face code")
    out = np.array(face, dtype=np.float32, copy=True)
    out[..., : len(AU_NAMES)] = np.clip(out[..., : len(AU_NAMES)], 0.0, AU_MAX)
    for name, limit in POSE_LIMITS_DEG.items():
        if name in names:
            i = list(names).index(name)
            out[..., i] = np.clip(out[..., i], -limit, limit)
    return out


def column(face: np.ndarray, names: Sequence[str], name: str) -> np.ndarray:
    """The column ``name`` of ``face`` (works on ``[..., features]``)."""
    names = list(names)
    if name not in names:
        raise InputError(f"feature {name!r} is not among the face code's features {names[:20]}")
    return np.asarray(face)[..., names.index(name)]


def pspi(
    face: np.ndarray,
    names: Sequence[str] = FEATURE_NAMES,
    *,
    include_au43: bool = True,
    au43_threshold: float = AU43_CLOSED_THRESHOLD,
) -> np.ndarray:
    """Prkachin & Solomon Pain Intensity per frame (range 0-16, or 0-15 without AU43).

    PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, with AU intensities on the FACS 0-5 scale and
    AU43 counted as 1 when the AU43 intensity is at least ``au43_threshold`` (eyes more than half
    closed), else 0, as in the original binary coding. Blinks (AU45) never count.
    ``include_au43=False`` gives the PSPI-without-AU43 variant the PainDiffusion authors used.
    Works on ``[..., features]`` and returns ``[...]`` float32.
    """
    if feature_space(names) != "facs":
        raise InputError("pspi: needs a FACS-space face code; FLAME codes need a fitted PSPI regressor")
    f = np.asarray(face, dtype=np.float32)
    if f.shape[-1] != len(names):
        raise InputError(f"pspi: face has {f.shape[-1]} features, expected {len(names)}")

    def au(n: str) -> np.ndarray:
        return f[..., AU_NAMES.index(n)]

    score = au("AU4") + np.maximum(au("AU6"), au("AU7")) + np.maximum(au("AU9"), au("AU10"))
    if include_au43:
        score = score + (au("AU43") >= au43_threshold).astype(np.float32)
    return score.astype(np.float32)


def arkit_matrix() -> np.ndarray:
    """The linear part of the AU -> ARKit map: ``[len(AU_NAMES), 52]`` weights per unit AU intensity."""
    m = np.zeros((len(AU_NAMES), len(ARKIT_NAMES)), dtype=np.float32)
    for au_name, targets in ARKIT_MAP.items():
        for shape, weight in targets:
            m[AU_NAMES.index(au_name), ARKIT_NAMES.index(shape)] = weight / AU_MAX
    return m


def to_arkit(face: np.ndarray, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """ARKit-52 blendshape weights (0-1) per frame: ``[frames, features] -> [frames, 52]``.

    Each blendshape takes the largest of its AUs' contributions (intensity / 5 x weight, see
    :data:`ARKIT_MAP`); AUs are clipped to 0..5 first. Head pose is not a blendshape: read it from the
    pose columns.
    """
    if feature_space(names) != "facs":
        raise InputError("to_arkit: needs a FACS-space face code")
    arr = np.asarray(face, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != len(names) or not np.all(np.isfinite(arr)):
        raise InputError(f"to_arkit: expected a finite array [frames, {len(names)}], got shape {arr.shape}")
    aus = clip_aus(arr, names)[:, : len(AU_NAMES)]
    contrib = aus[:, :, None] * arkit_matrix()[None, :, :]  # [frames, AUs, 52]
    return np.clip(contrib.max(axis=1), 0.0, 1.0).astype(np.float32)


def emotion_index(name: str) -> int:
    """Index of an emotion class name (case-insensitive) in :data:`EMOTIONS`."""
    for i, e in enumerate(EMOTIONS):
        if e.lower() == str(name).strip().lower():
            return i
    raise InputError(f"emotion: unknown name {name!r}; expected one of {', '.join(EMOTIONS)}")


def neutral_face(frames: int = 1) -> np.ndarray:
    """A resting neutral face code ``[frames, len(FEATURE_NAMES)]`` (all AUs 0, head straight)."""
    return np.zeros((frames, len(FEATURE_NAMES)), dtype=np.float32)
