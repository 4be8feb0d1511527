"""Input checks of the live engine (:mod:`painface.stream`): stimulus samples and patient settings, with
clear errors for a server to send back."""

from __future__ import annotations

from typing import Any

import numpy as np

from painface.errors import InputError
from painface.model.conditions import CONDITION_NAMES, EXPRESSIVENESS_RANGE, emotion_vector
from painface.subjects.protocols import STIMULUS_RANGE  # accepted samples, normalized units

GUIDANCE_MAX = 10.0
"""Largest guidance strength accepted per condition."""


def check_samples(samples: Any, source: str = "stimulus samples") -> np.ndarray:
    """Validate stimulus samples (a number or 1-D sequence of numbers in :data:`STIMULUS_RANGE`)."""
    if isinstance(samples, str | bytes | dict) or samples is None:
        raise InputError(f"{source}: expected a number or a list of numbers, got {type(samples).__name__}")
    try:
        arr = np.asarray(samples)
        if arr.dtype == object:  # e.g. integers too large for int64
            arr = arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{source}: expected a number or a list of (finite, float-sized) numbers") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"{source}: expected numbers, got {arr.dtype} values")
    arr = arr.astype(np.float64).reshape(-1) if arr.ndim == 0 else arr.astype(np.float64)
    if arr.ndim != 1:
        raise InputError(f"{source}: expected a number or a 1-D list, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: NaN or infinity at sample {int(np.argmax(~np.isfinite(arr)))}")
    lo, hi = STIMULUS_RANGE
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise InputError(f"{source}: values {arr.min():.3g}..{arr.max():.3g} out of range; expected normalized "
                         f"stimulus in [{lo}, {hi}] (0 = baseline, 1 = tolerance)")
    return arr.astype(np.float32)


def check_settings(expressiveness: Any = None, emotion: Any = None, guidance: Any = None
                   ) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    """Validate patient settings; returns (expressiveness, emotion [8], guidance [3]) with None kept."""
    expr = emo = gui = None
    if expressiveness is not None:
        if isinstance(expressiveness, bool) or not isinstance(expressiveness, int | float | np.number):
            raise InputError(f"expressiveness: expected a number (PSPI), got {type(expressiveness).__name__}")
        try:
            expr = float(expressiveness)
        except OverflowError:
            expr = float("inf")
        lo, hi = EXPRESSIVENESS_RANGE
        if not (np.isfinite(expr) and lo <= expr <= hi):
            raise InputError(f"expressiveness: {str(expressiveness)[:40]}; expected a PSPI value in [{lo:g}, {hi:g}]")
    if emotion is not None:
        emo = emotion_vector(emotion)  # a name, a blend {name: weight} or 8 probabilities
    if guidance is not None:
        if isinstance(guidance, str | bytes | dict):
            raise InputError(f"guidance: expected 3 numbers ({', '.join(CONDITION_NAMES)})")
        try:
            gui = np.asarray(guidance, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"guidance: expected 3 numbers ({', '.join(CONDITION_NAMES)})") from None
        if gui.shape == (3,) and any(isinstance(g, bool) for g in np.asarray(guidance, dtype=object).tolist()):
            raise InputError("guidance: expected 3 numbers, got true/false")
        if gui.shape != (3,) or not np.all(np.isfinite(gui)) or gui.min() < 0 or gui.max() > GUIDANCE_MAX:
            raise InputError(f"guidance: {str(gui.tolist())[:80]}; expected 3 numbers in [0, {GUIDANCE_MAX:g}] "
                             f"({', '.join(CONDITION_NAMES)})")
        gui = gui.astype(np.float32)
    return expr, emo, gui
