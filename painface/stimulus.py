"""Signals computed from a pain stimulus that the data layer and the model share (neither imports the other),
and the one-pole low-pass they are made of (:func:`one_pole`, also the simulator's and the sampler's smoothing).

The **stimulus memory** (:func:`stimulus_memory`) is what PainDiffusion reads besides the stimulus of its window:
exponential moving averages of the stimulus over seconds to a minute. The training windows compute it over
each whole recording (``painface.data.windows``), the samplers and the live engine carry its state from window
to window (``painface.model.sampling``, ``painface.stream``), so all three see the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from painface.errors import InputError


def one_pole(x: Any, tau: float, state: Any = None, axis: int = -1) -> np.ndarray:
    """Causal first-order low-pass with unit DC gain along ``axis`` of ``x``: ``y[n] = a y[n - 1] + (1 - a) x[n]``,
    ``a = exp(-1 / tau)`` (``tau`` in samples, > 0), from ``y[-1] = state`` (shape of ``x`` without ``axis``;
    default 0). Returns ``y`` float64, the shape of ``x``; ``y`` at the last sample is the state to continue from."""
    from scipy.signal import lfilter

    x = np.asarray(x, dtype=np.float64)
    a = float(np.exp(-1.0 / tau))
    if state is None:
        return lfilter([1.0 - a], [1.0, -a], x, axis=axis)
    zi = np.expand_dims(a * np.asarray(state, dtype=np.float64), axis)
    return lfilter([1.0 - a], [1.0, -a], x, axis=axis, zi=zi)[0]


def memory_decays(taus: Sequence[float]) -> np.ndarray:
    """Per-frame decay ``exp(-1 / tau)`` of each stimulus-memory channel (``taus`` in frames, each > 0)."""
    arr = np.asarray(list(taus), dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or (arr <= 0).any():
        raise InputError(f"stimulus memory time constants: {list(taus)}; expected positive numbers of frames")
    return np.exp(-1.0 / arr)


def stimulus_memory(stimulus: Any, taus: Sequence[float], state: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Causal memory of a stimulus: its exponential moving averages with the time constants ``taus`` (frames).

    ``stimulus`` ``[..., N]``; ``state`` ``[..., K]`` the averages after the frame before the first (default 0:
    the stimulus rested at baseline before). Returns (memory ``[..., N, K]`` float32, new state ``[..., K]``
    float64): ``m[n] = a m[n - 1] + (1 - a) s[n]`` with ``a = exp(-1 / tau)``. Running it chunk by chunk with
    the returned state gives the same values as one call on the whole stimulus (the live engine relies on it).
    A step from 0 to 1 reaches ``1 - exp(-t / tau)`` after t frames, so channels at 5, 20 and 60 s tell the network
    how long a stimulus has lasted and what came before its window: what adaptation and tonic pain depend on.
    """
    x = np.asarray(stimulus, dtype=np.float64)
    decays = memory_decays(taus)
    k = decays.size
    z = np.zeros((*x.shape[:-1], k)) if state is None else np.asarray(state, dtype=np.float64)
    if z.shape != (*x.shape[:-1], k):
        raise InputError(f"stimulus memory state: expected shape {(*x.shape[:-1], k)}, got {z.shape}")
    if x.shape[-1] == 0:
        return np.zeros((*x.shape, k), np.float32), z
    out = np.empty((*x.shape, k), np.float64)
    for j, tau in enumerate(np.asarray(list(taus), dtype=np.float64)):
        out[..., j] = one_pole(x, tau, z[..., j])
    return out.astype(np.float32), out[..., -1, :]
