"""Trials and stimulus events of one recording: where trials start, whether the face responded,
where the stimulus changes.

These are small pure functions over per-frame arrays so that ``painface inspect``, the training
windows and the evaluation code share one definition:

* a **trial** starts at the first frame of its ``trial`` index (the simulator's ramp-up start) or,
  without a ``trial`` array, where ``level`` becomes non-zero or changes to another non-zero class;
  it lasts until the next trial's start (the last one until the end of the recording);
* a trial's response is **visible** when the PSPI peak (max from the onset to the next onset) rises at
  least ``threshold`` (default 1 PSPI point) above the trial's baseline (mean PSPI over the
  ``baseline_s`` seconds, default 1 s, before the onset);
* a **stimulus change point** is the first frame of a rise or a fall of the stimulus signal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from painface.errors import InputError

PSPI_BINS = 17
"""PSPI histogram bins: the integers 0..16."""


@dataclass(frozen=True)
class TrialResponse:
    """One trial and the face's response to it.

    index: the trial's number in the recording (0-based); level: its heat class (1-4, 0 if unknown);
    onset / end: first frame and one past the last frame; baseline: mean PSPI over the second before
    the onset; peak: max PSPI over ``[onset, end)``; visible: ``peak - baseline >= threshold``.
    """

    index: int
    level: int
    onset: int
    end: int
    baseline: float
    peak: float
    visible: bool

    @property
    def rise(self) -> float:
        """PSPI rise of the peak over the baseline (PSPI points)."""
        return self.peak - self.baseline

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_1d(name: str, arr: Any, n: int | None = None) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise InputError(f"{name}: expected a 1-D per-frame array, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise InputError(f"{name}: has {a.shape[0]} frames, expected {n}")
    return a


def trial_onsets_from_level(level: np.ndarray) -> np.ndarray:
    """Trial start frames from a per-frame stimulus class ``[frames]`` (0 at rest, 1..4 in a trial).

    A trial starts where the class becomes non-zero, or changes from one non-zero class to another.
    Returns ``[trials]`` int64 frame indices, ascending.
    """
    lv = _as_1d("level", level).astype(np.int64)
    prev = np.concatenate([[0], lv[:-1]])
    return np.flatnonzero((lv > 0) & (lv != prev)).astype(np.int64)


def trial_index_from_level(level: np.ndarray) -> np.ndarray:
    """Per-frame trial index ``[frames]`` int16: -1 before the first trial, else the number of the
    latest trial whose start (see :func:`trial_onsets_from_level`) is at or before the frame."""
    lv = _as_1d("level", level)
    onsets = trial_onsets_from_level(lv)
    if onsets.size > np.iinfo(np.int16).max:
        raise InputError(f"level: {onsets.size} trials do not fit the int16 trial index")
    idx = np.searchsorted(onsets, np.arange(lv.shape[0]), side="right") - 1
    return idx.astype(np.int16)


def trial_onsets(trial: np.ndarray | None = None, level: np.ndarray | None = None) -> np.ndarray:
    """Trial start frames ``[trials]`` int64 from the per-frame ``trial`` index (preferred) or ``level``."""
    if trial is not None:
        tr = _as_1d("trial", trial).astype(np.int64)
        prev = np.concatenate([[-1], tr[:-1]])
        return np.flatnonzero((tr >= 0) & (tr != prev)).astype(np.int64)
    if level is not None:
        return trial_onsets_from_level(level)
    raise InputError("trial_onsets: needs a per-frame 'trial' or 'level' array")


def trial_responses(
    pspi: np.ndarray,
    *,
    fps: float,
    trial: np.ndarray | None = None,
    level: np.ndarray | None = None,
    baseline_s: float = 1.0,
    threshold: float = 1.0,
) -> list[TrialResponse]:
    """Per-trial PSPI responses of one recording.

    pspi: ``[frames]`` PSPI; fps: frames per second; trial / level: per-frame trial index and stimulus
    class (at least one). A trial's level is the largest class seen within it (0 without ``level``).
    Baseline: mean PSPI over ``round(baseline_s * fps)`` frames before the onset (fewer at the start of
    the recording; the onset frame itself when none precede it).
    """
    ps = _as_1d("pspi", pspi).astype(np.float64)
    n = ps.shape[0]
    if trial is not None:
        _as_1d("trial", trial, n)
    lv = None if level is None else _as_1d("level", level, n).astype(np.int64)
    if not fps > 0:
        raise InputError(f"fps: must be positive, got {fps!r}")
    if baseline_s < 0:
        raise InputError(f"baseline_s: must be >= 0 seconds, got {baseline_s!r}")
    onsets = trial_onsets(trial, lv)
    nb = int(round(baseline_s * fps))
    ends = np.append(onsets[1:], n)
    out = []
    for k, (on, end) in enumerate(zip(onsets.tolist(), ends.tolist(), strict=True)):
        pre = ps[max(0, on - nb) : on]
        base = float(pre.mean()) if pre.size else float(ps[on])
        peak = float(ps[on:end].max())
        lev = int(lv[on:end].max()) if lv is not None else 0
        out.append(
            TrialResponse(
                index=k,
                level=lev,
                onset=on,
                end=end,
                baseline=base,
                peak=peak,
                visible=bool(peak - base >= threshold - 1e-9),
            )
        )
    return out


def response_share_by_level(
    trials: Iterable[TrialResponse], levels: Sequence[int] = (1, 2, 3, 4)
) -> dict[str, float | None]:
    """Share (0-1) of trials with a visible response, per heat level (keys "1".."4"; None: no trial)."""
    trials = list(trials)
    out: dict[str, float | None] = {}
    for lev in levels:
        sel = [t.visible for t in trials if t.level == lev]
        out[str(lev)] = float(np.mean(sel)) if sel else None
    return out


def pspi_histogram_counts(pspi: np.ndarray) -> np.ndarray:
    """Frame counts per integer PSPI bin ``[17]`` int64: values rounded to the nearest integer and
    clipped to 0..16 (bin k holds PSPI in [k - 0.5, k + 0.5))."""
    ps = np.asarray(pspi, dtype=np.float64).ravel()
    bins = np.clip(np.floor(ps + 0.5), 0, PSPI_BINS - 1).astype(np.int64)
    return np.bincount(bins, minlength=PSPI_BINS)


def stimulus_changes(
    stimulus: np.ndarray,
    *,
    slope_eps: float = 1e-3,
    min_change: float = 0.1,
    merge_gap: int = 2,
    kinds: str = "both",
) -> np.ndarray:
    """Change points of a stimulus signal ``[frames]``: the first frame of every rise and every fall.

    Works from the signal alone (normalized, °C or any unit): a frame-to-frame step counts as rising /
    falling when it exceeds ``slope_eps`` x the signal's range; runs of same-direction steps separated
    by at most ``merge_gap`` flat steps are joined; a run counts when its total change is at least
    ``min_change`` x the range (so sensor jitter and controller ripple are ignored). The change point
    is the first frame whose value differs from the level before the run. ``kinds``: "both", "rise"
    or "fall". Returns ``[changes]`` int64 frame indices, ascending; empty for a flat signal.
    """
    s = _as_1d("stimulus", stimulus).astype(np.float64)
    if kinds not in ("both", "rise", "fall"):
        raise InputError(f"kinds: {kinds!r}, expected 'both', 'rise' or 'fall'")
    if not np.all(np.isfinite(s)):
        raise InputError("stimulus: holds NaN or inf")
    if s.size < 2:
        return np.zeros(0, dtype=np.int64)
    span = float(s.max() - s.min())
    if span <= 0:
        return np.zeros(0, dtype=np.int64)
    d = np.diff(s)
    state = np.where(d > slope_eps * span, 1, np.where(d < -slope_eps * span, -1, 0))
    nz = np.flatnonzero(state)
    if nz.size == 0:
        return np.zeros(0, dtype=np.int64)
    # group the non-flat steps into runs of one direction with gaps <= merge_gap
    breaks = (np.diff(nz) > merge_gap + 1) | (state[nz[1:]] != state[nz[:-1]])
    starts = np.concatenate([[0], np.flatnonzero(breaks) + 1])
    ends = np.concatenate([starts[1:], [nz.size]])
    out = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        first, last = int(nz[a]), int(nz[b - 1])
        total = float(s[last + 1] - s[first])
        sign = int(state[first])
        if abs(total) < min_change * span:
            continue
        if kinds == "rise" and sign < 0 or kinds == "fall" and sign > 0:
            continue
        out.append(first + 1)
    return np.asarray(out, dtype=np.int64)
