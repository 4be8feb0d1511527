"""painface: synthesize and assess facial expressions of pain.

The Python front door (docs/python.md)::

    from painface import PainDiffusion
    result = PainDiffusion.load().generate(stimulus)   # a Generation: .to_frame(), .plot(), .render(), .save()

Names below are imported on first use, so ``import painface`` stays light (no torch until a model is used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "PainDiffusion": "painface.express",
    "ExtrapolationWarning": "painface.express",
    "Generation": "painface.generation",
    "HeatCalibration": "painface.subjects.protocols",
    "Stimulus": "painface.subjects.protocols",
    "STIMULUS_RANGE": "painface.subjects.protocols",
    "biovid_heat": "painface.subjects.protocols",
    "elbow_exercise": "painface.subjects.protocols",
    "csv_stimulus": "painface.subjects.protocols",
    "Detector": "painface.analyze",
    "InputError": "painface.errors",
    "PainfaceError": "painface.errors",
}
"""Public name -> the module that defines it."""

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'painface' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
