"""The three conditions PainDiffusion is steered by, their validation, and the null masks.

A :class:`Conditions` holds, for a batch of ``B`` sequences of ``T`` frames:

* ``stimulus`` ``[B, T]`` float: the pain stimulus per frame in normalized units (0 = baseline,
  1 = the person's pain tolerance; the data layer does the normalization); or ``[B, T, 1 + K]``: the
  same in channel 0 followed by the K channels of its :func:`stimulus_memory` (for networks configured
  with a stimulus memory, ``UNetConfig.stimulus_memory``);
* ``expressiveness`` ``[B]`` float: the person's mean PSPI (PSPI units, 0..16, typically 0..4);
* ``emotion`` ``[B, 8]`` float: a probability vector (one-hot or a blend) over
  :data:`painface.face.code.EMOTIONS`.

Dropping a condition (classifier-free guidance, [PainDiffusion, §III-D]) is expressed by one boolean
**null mask** ``[B, 3]``, columns in :data:`CONDITION_NAMES` order; ``True`` means "replace this
condition by its learned null embedding". Training builds the mask with :func:`drop_mask`, guided
sampling with :func:`null_mask`; the network consumes it in one place, so "dropped in training" and
"nulled in sampling" are the same computation.

:func:`check_samples` and :func:`check_settings` validate the same conditions as they arrive from outside
(stimulus samples, patient settings, guidance strengths from the CLI, the live engine or a web page),
with errors a server can send back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from painface.errors import InputError
from painface.face.code import EMOTIONS

CONDITION_NAMES: tuple[str, ...] = ("emotion", "expressiveness", "stimulus")
"""Column order of null masks and of guidance strengths (the paper's E, X, S order)."""

EXPRESSIVENESS_RANGE: tuple[float, float] = (0.0, 16.0)
"""Valid expressiveness values: the PSPI scale's range."""

EMOTION_SUM_TOLERANCE = 1e-2
"""How far an emotion vector's sum may be from 1."""

GUIDANCE_MAX = 10.0
"""Largest guidance strength accepted per condition."""

STIMULUS_RANGE = (0.0, 1.5)
"""Accepted stimulus samples (normalized units; 1 = the patient's tolerance, a little above allowed)."""


def emotion_vector(spec: str | Mapping[str, float] | Sequence[float] | np.ndarray) -> np.ndarray:
    """Turn an emotion specification into a probability vector ``[8]`` (float32).

    ``spec`` is a class name (``"Neutral"``, case-insensitive), a mapping name -> weight (a blend;
    weights are normalized to sum 1), or 8 numbers already forming a probability vector.
    Raises :class:`InputError` for an unknown name or an invalid vector.
    """
    lower = {name.lower(): i for i, name in enumerate(EMOTIONS)}
    if isinstance(spec, str):
        if spec.lower() not in lower:
            raise InputError(f"emotion: unknown emotion {spec!r}; expected one of {list(EMOTIONS)}")
        out = np.zeros(len(EMOTIONS), np.float32)
        out[lower[spec.lower()]] = 1.0
        return out
    if isinstance(spec, Mapping):
        out = np.zeros(len(EMOTIONS), np.float64)
        for name, weight in spec.items():
            if str(name).lower() not in lower:
                raise InputError(f"emotion: unknown emotion {str(name)[:40]!r}; expected names from {list(EMOTIONS)}")
            try:
                w = float(weight) if not isinstance(weight, bool | str | bytes) else math.nan
            except (TypeError, ValueError, OverflowError):
                w = math.nan
            if not math.isfinite(w) or w < 0:
                raise InputError(f"emotion: weight of {name!r} is {str(weight)[:40]}; expected a finite number >= 0")
            out[lower[str(name).lower()]] += w
        if not np.isfinite(out).all():  # finite weights whose sum overflows: the ratios still hold
            out = np.zeros_like(out)
            for name, weight in spec.items():
                out[lower[str(name).lower()]] += float(weight) / 1e300
        if out.max() <= 0:
            raise InputError("emotion: the blend's weights sum to 0; expected at least one positive weight")
        out = out / out.max()  # first to 0..1, so huge weights keep their ratios
        return (out / out.sum()).astype(np.float32)
    try:
        arr = np.asarray(spec, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"emotion: expected a name, a blend or {len(EMOTIONS)} probabilities") from None
    if arr.shape != (len(EMOTIONS),):
        raise InputError(f"emotion: expected a name or {len(EMOTIONS)} probabilities, got shape {arr.shape}")
    _check_emotion(torch.as_tensor(arr))
    return arr.astype(np.float32)


def _check_emotion(emotion: Tensor) -> None:
    if emotion.shape[-1] != len(EMOTIONS):
        raise InputError(f"emotion: expected width {len(EMOTIONS)} (one probability per class in {list(EMOTIONS)}), "
                         f"got shape {tuple(emotion.shape)}")
    if not torch.isfinite(emotion).all():
        raise InputError("emotion: contains NaN or infinity; expected probabilities in [0, 1]")
    if (emotion < 0).any():
        raise InputError("emotion: contains negative values; expected probabilities in [0, 1]")
    sums = emotion.sum(-1)
    if ((sums - 1).abs() > EMOTION_SUM_TOLERANCE).any():
        raise InputError(f"emotion: each row must sum to 1 (one-hot or probability vector); row sums are "
                         f"{sums.flatten()[:8].tolist()}")


@dataclass(frozen=True)
class Conditions:
    """The conditions of a batch (validated on construction). Shapes: see the module docstring."""

    stimulus: Tensor
    expressiveness: Tensor
    emotion: Tensor

    def __post_init__(self) -> None:
        for name in ("stimulus", "expressiveness", "emotion"):
            if not isinstance(getattr(self, name), Tensor):
                raise InputError(f"{name}: expected a torch.Tensor, got {type(getattr(self, name)).__name__}")
        s, x, e = self.stimulus, self.expressiveness, self.emotion
        if s.ndim not in (2, 3) or (s.ndim == 3 and s.shape[-1] < 1):
            raise InputError(f"stimulus: expected shape [batch, frames] or [batch, frames, 1 + memory channels], "
                             f"got {tuple(s.shape)}")
        batch = s.shape[0]
        if x.shape != (batch,):
            raise InputError(f"expressiveness: expected shape [{batch}] (one PSPI value per sequence), "
                             f"got {tuple(x.shape)}")
        if e.ndim != 2 or e.shape[0] != batch:
            raise InputError(f"emotion: expected shape [{batch}, {len(EMOTIONS)}], got {tuple(e.shape)}")
        if not torch.isfinite(s).all():
            raise InputError("stimulus: contains NaN or infinity; expected finite normalized values "
                             "(0 = baseline, 1 = tolerance)")
        lo, hi = EXPRESSIVENESS_RANGE
        if not torch.isfinite(x).all() or (x < lo).any() or (x > hi).any():
            raise InputError(f"expressiveness: values {x[:8].tolist()} out of range; expected PSPI units "
                             f"in [{lo}, {hi}]")
        _check_emotion(e)

    @property
    def batch(self) -> int:
        return int(self.stimulus.shape[0])

    @property
    def frames(self) -> int:
        return int(self.stimulus.shape[1])

    @property
    def raw(self) -> Tensor:
        """The stimulus itself ``[B, T]`` (channel 0 when memory channels are attached)."""
        return self.stimulus if self.stimulus.ndim == 2 else self.stimulus[..., 0]

    @property
    def memory(self) -> Tensor | None:
        """The stimulus-memory channels ``[B, T, K]``, or None when the stimulus has none."""
        return None if self.stimulus.ndim == 2 else self.stimulus[..., 1:]

    @classmethod
    def build(cls, stimulus: object, expressiveness: object, emotion: object, batch: int | None = None,
              device: torch.device | str | None = None) -> Conditions:
        """Build conditions from numbers, arrays or names, broadcasting single values over the batch.

        stimulus ``[T]`` or ``[B, T]``; expressiveness a float or ``[B]``; emotion a name, a blend
        mapping, ``[8]`` or ``[B, 8]``; ``batch`` forces the batch size (default: the largest given).
        """
        if isinstance(emotion, str | Mapping):
            emo = torch.as_tensor(emotion_vector(emotion))
        else:
            emo = torch.as_tensor(np.asarray(emotion, dtype=np.float32))
        stim = torch.as_tensor(np.asarray(stimulus, dtype=np.float32))
        expr = torch.as_tensor(np.asarray(expressiveness, dtype=np.float32))
        if stim.ndim not in (1, 2):
            raise InputError(f"stimulus: expected shape [frames] or [batch, frames], got {tuple(stim.shape)}")
        if expr.ndim > 1:
            raise InputError(f"expressiveness: expected a number or shape [batch], got {tuple(expr.shape)}")
        if emo.ndim not in (1, 2):
            raise InputError(f"emotion: expected a name, shape [8] or [batch, 8], got {tuple(emo.shape)}")
        sizes = {t.shape[0] for t, single in ((stim, 1), (expr, 0), (emo, 1)) if t.ndim == single + 1}
        if batch is None:
            batch = max(sizes) if sizes else 1
        if any(n != batch for n in sizes):
            raise InputError(f"conditions: batch sizes {sorted(sizes)} disagree (batch {batch}); give one value "
                             "per sequence or a single value for all")
        stim = stim.expand(batch, -1) if stim.ndim == 1 else stim
        expr = expr.expand(batch) if expr.ndim == 0 else expr
        emo = emo.expand(batch, -1) if emo.ndim == 1 else emo
        return cls(stim.contiguous().to(device), expr.contiguous().to(device), emo.contiguous().to(device))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Conditions:
        return Conditions(self.stimulus.to(device, dtype), self.expressiveness.to(device, dtype),
                          self.emotion.to(device, dtype))

    def repeat(self, n: int) -> Conditions:
        """The batch tiled ``n`` times: ``[n * B, ...]``, copy-major (row ``k * B + b`` is sequence ``b``)."""
        stim = self.stimulus.repeat(n, *([1] * (self.stimulus.ndim - 1)))
        return Conditions(stim, self.expressiveness.repeat(n), self.emotion.repeat(n, 1))

    def rows(self, index: Tensor) -> Conditions:
        """The sequences at ``index`` (a 1-D index tensor), in that order."""
        index = index.to(self.stimulus.device)
        return Conditions(self.stimulus[index], self.expressiveness[index], self.emotion[index])

    def frames_slice(self, start: int, stop: int) -> Conditions:
        """The same conditions with the stimulus cut to frames ``[start, stop)``."""
        return Conditions(self.stimulus[:, start:stop], self.expressiveness, self.emotion)


def drop_mask(batch: int, p: float = 0.1, generator: torch.Generator | None = None,
              device: torch.device | str | None = None) -> Tensor:
    """Training null mask ``[batch, 3]`` bool: each condition dropped independently with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise InputError(f"condition drop probability: {p}; expected a value in [0, 1]")
    u = torch.rand(batch, len(CONDITION_NAMES), generator=generator)
    return (u < p).to(device)


def null_mask(batch: int, dropped: Iterable[str] = (), device: torch.device | str | None = None) -> Tensor:
    """Sampling null mask ``[batch, 3]`` bool with the named conditions dropped for every sequence."""
    mask = torch.zeros(batch, len(CONDITION_NAMES), dtype=torch.bool, device=device)
    for name in dropped:
        if name not in CONDITION_NAMES:
            raise InputError(f"condition: unknown name {name!r}; expected one of {list(CONDITION_NAMES)}")
        mask[:, CONDITION_NAMES.index(name)] = True
    return mask


# --- checks of values from outside (CLI options, the live engine, a server's messages) -----------------
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
