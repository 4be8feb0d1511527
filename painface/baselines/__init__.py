"""The generators PainDiffusion is compared with, and the one protocol every generator obeys.

* :mod:`painface.baselines.fsq`: the FSQ-VAE autoregressive baseline (tokenizer + transformer; its
  shipped checkpoint is ``painface/assets/fsq_ar.*``), trained by :mod:`painface.baselines.fsq_train`
  (``painface train-fsq``).
* The simple baselines of Table I (ground truth, random training sequence, nearest neighbour, mean face)
  are in :mod:`painface.evaluate.baselines`.

:class:`Generator` is what evaluation, sweeps and ablations ask of a model; :class:`painface.express.PainDiffusion`
and :class:`painface.baselines.fsq.FsqAR` satisfy it (tests/test_baselines_protocol.py checks both).
This module imports neither torch nor a model.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Generator(Protocol):
    """A face-code generator: ``fps`` (frames per second of its output), ``feature_names`` (the ``D``
    columns of the face code), and :meth:`generate`."""

    fps: float

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def generate(self, stimulus: np.ndarray, expressiveness: Any = 1.0, emotion: Any = "Neutral", *,
                 samples: int = 1, seed: int = 0, context: np.ndarray | None = None, **sampler: Any) -> np.ndarray:
        """Face codes ``[P * samples, L, D]`` float32, patient-major (an array, or an object that
        ``np.asarray`` turns into one, like PainDiffusion's :class:`~painface.generation.Generation`), for
        a stimulus ``[L]`` or ``[P, L]`` (normalized units: 0 = baseline, 1 = the person's tolerance),
        expressiveness (PSPI, a number or ``[P]``) and emotion (a name, a blend or probabilities),
        reproducible from ``seed``; ``context``: face-code frames ``[P * samples, C, D]`` the sequences
        continue from."""
        ...
