"""Stimulus protocols: what is done to the (virtual or real) patient over time.

Every protocol yields a :class:`Stimulus` sampled at the frame rate. The model sees the stimulus in
**normalized units**: 0 = baseline (32 °C skin temperature, or the pain-free joint angle) and 1 = the
person's pain tolerance (their T4 in BioVid, or the end of the painful range of motion). The
converters :func:`celsius_to_normalized` and :func:`normalized_to_celsius` map between °C and
normalized units for a person's baseline and tolerance; :class:`HeatCalibration` holds one person's
baseline, threshold and tolerance, and :func:`check_normalized` refuses values outside
:data:`STIMULUS_RANGE` with an error that names the unit.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from painface.errors import InputError

BIOVID_BASELINE_C = 32.0
BIOVID_MAX_C = 50.5


def celsius_to_normalized(temp_c: np.ndarray | float, baseline_c: float, tolerance_c: float) -> np.ndarray:
    """°C -> normalized stimulus: (T - baseline) / (tolerance - baseline)."""
    if not tolerance_c > baseline_c:
        raise InputError(f"tolerance_c ({tolerance_c}) must be above baseline_c ({baseline_c})")
    return ((np.asarray(temp_c, dtype=np.float64) - baseline_c) / (tolerance_c - baseline_c)).astype(np.float32)


def normalized_to_celsius(stim: np.ndarray | float, baseline_c: float, tolerance_c: float) -> np.ndarray:
    """Normalized stimulus -> °C: baseline + s * (tolerance - baseline)."""
    if not tolerance_c > baseline_c:
        raise InputError(f"tolerance_c ({tolerance_c}) must be above baseline_c ({baseline_c})")
    return (baseline_c + np.asarray(stim, dtype=np.float64) * (tolerance_c - baseline_c)).astype(np.float32)


@dataclass
class Stimulus:
    """A stimulus sampled at ``fps``.

    normalized: ``[frames]`` float32 (0 = baseline, 1 = tolerance); temperature: ``[frames]`` °C or
    None; level: ``[frames]`` int8 stimulus class (0 at rest, 1..4 while a trial's stimulus is above
    baseline, ramps included); trial: ``[frames]`` int16, index of the current trial from its onset to
    the next trial's onset (-1 before the first); onsets: frame of each trial's onset.
    """

    fps: float
    normalized: np.ndarray
    temperature: np.ndarray | None = None
    level: np.ndarray | None = None
    trial: np.ndarray | None = None
    onsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    trial_levels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))

    @property
    def frames(self) -> int:
        return int(self.normalized.shape[0])

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def check_stimulus(values: np.ndarray, *, source: str = "stimulus", frames: int | None = None) -> np.ndarray:
    """Validate a 1-D finite stimulus signal (optionally of a given length); return float32."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{source}: expected a 1-D signal [frames], got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputError(f"{source}: expected numbers, got dtype {arr.dtype}")
    if frames is not None and arr.shape[0] != frames:
        raise InputError(f"{source}: has {arr.shape[0]} frames, expected {frames}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: NaN or inf at frame {int(np.argmax(~np.isfinite(arr)))}")
    return arr.astype(np.float32)


STIMULUS_RANGE = (0.0, 1.5)
"""Normalized stimulus values PainDiffusion accepts (generation, the live server): 0 = baseline up to half
the baseline-to-tolerance span above the tolerance (training data reach 1)."""


def check_normalized(values: np.ndarray, *, source: str = "stimulus", celsius_hint: str = "") -> np.ndarray:
    """A finite stimulus in :data:`STIMULUS_RANGE` as float32, or an :class:`InputError` that names the
    unit; when the values look like °C (a maximum of 20-60), the error adds ``celsius_hint`` (how the
    caller's user passes °C, e.g. ``"pass --celsius"``)."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{source}: NaN or inf at index {int(np.argmax(~np.isfinite(arr.ravel())))}")
    lo, hi = STIMULUS_RANGE
    if arr.size and (arr.min() < lo or arr.max() > hi):
        msg = (f"{source}: values {arr.min():.4g}..{arr.max():.4g} lie outside {lo:g}..{hi:g}, the range of the "
               "normalized stimulus (0 = baseline skin temperature, 1 = the patient's pain tolerance; "
               "docs/stimulus.md)")
        if celsius_hint and 20.0 <= arr.max() <= 60.0:
            msg += f"; {arr.max():.4g} looks like °C: {celsius_hint}"
        raise InputError(msg)
    return arr.astype(np.float32)


@dataclass(frozen=True)
class HeatCalibration:
    """One person's heat calibration in °C, as BioVid measured it before recording (Walter et al. 2013):
    the thermode's resting ``baseline_c``, the pain ``threshold_c`` (T1) and the pain ``tolerance_c``
    (T4). Normalized stimulus = (T - baseline) / (tolerance - baseline); the threshold places the
    BioVid levels (:meth:`levels_c`). Defaults: BioVid's 32 °C baseline and the mean person of
    painface's virtual population (43 °C, 47.5 °C; docs/stimulus.md): pass the patient's own values."""

    baseline_c: float = BIOVID_BASELINE_C
    threshold_c: float = 43.0
    tolerance_c: float = 47.5

    def __post_init__(self) -> None:
        values = (self.baseline_c, self.threshold_c, self.tolerance_c)
        if not all(isinstance(v, int | float | np.number) and not isinstance(v, bool) and np.isfinite(v)
                   for v in values):
            raise InputError(f"heat calibration: baseline, threshold, tolerance = {values}; expected finite °C")
        if not self.baseline_c < self.threshold_c < self.tolerance_c:
            raise InputError(f"heat calibration: expected baseline_c < threshold_c < tolerance_c (°C), got "
                             f"{self.baseline_c:g}, {self.threshold_c:g}, {self.tolerance_c:g}")

    def to_normalized(self, temp_c: np.ndarray | float, source: str = "stimulus") -> np.ndarray:
        """°C -> normalized units, refusing temperatures whose normalized value lies outside
        :data:`STIMULUS_RANGE` with an error in both units."""
        temp = np.asarray(temp_c, dtype=np.float64)
        if not np.all(np.isfinite(temp)):
            raise InputError(f"{source}: NaN or inf at index {int(np.argmax(~np.isfinite(temp.ravel())))}")
        s = celsius_to_normalized(temp, self.baseline_c, self.tolerance_c)
        lo, hi = (float(v) for v in self.to_celsius(np.asarray(STIMULUS_RANGE)))
        if s.size and (s.min() < STIMULUS_RANGE[0] or s.max() > STIMULUS_RANGE[1]):
            raise InputError(f"{source}: {temp.min():.4g}..{temp.max():.4g} °C; expected {lo:.4g}..{hi:.4g} °C "
                             f"(normalized {STIMULUS_RANGE[0]:g}..{STIMULUS_RANGE[1]:g} for baseline "
                             f"{self.baseline_c:g} °C and tolerance {self.tolerance_c:g} °C)")
        return s

    def to_celsius(self, stim: np.ndarray | float) -> np.ndarray:
        """Normalized units -> °C."""
        return normalized_to_celsius(stim, self.baseline_c, self.tolerance_c)

    def levels_c(self, levels: int = 4) -> np.ndarray:
        """BioVid's stimulus levels T1..T4 (°C): threshold to tolerance, equally spaced."""
        return heat_levels(self.threshold_c, self.tolerance_c, levels)

    def to_dict(self) -> dict[str, float]:
        return {"baseline_c": float(self.baseline_c), "threshold_c": float(self.threshold_c),
                "tolerance_c": float(self.tolerance_c)}


# --- (a) BioVid heat ---------------------------------------------------------------------------


@dataclass
class HeatProtocol:
    """The BioVid HeatPain protocol (Walter et al. 2013) as used for Part A-C recordings.

    Four levels equally spaced between the person's threshold (T1) and tolerance (T4), each applied
    ``repetitions`` times in random order; each stimulus ramps up from baseline at ``ramp_c_per_s``,
    holds ``plateau_s`` at its level, ramps back down; rests at baseline for a uniform random
    ``rest_min_s``..``rest_max_s`` between stimuli.
    """

    fps: float = 25.0
    baseline_c: float = BIOVID_BASELINE_C
    levels: int = 4
    repetitions: int = 20
    plateau_s: float = 4.0
    rest_min_s: float = 8.0
    rest_max_s: float = 12.0
    ramp_c_per_s: float = 5.0
    lead_in_s: float = 10.0
    tail_s: float = 10.0

    def validate(self) -> None:
        checks = [
            (self.fps > 0, "fps must be > 0"),
            (self.levels >= 1, "levels must be >= 1"),
            (self.repetitions >= 1, "repetitions must be >= 1"),
            (self.plateau_s > 0, "plateau_s must be > 0"),
            (0 <= self.rest_min_s <= self.rest_max_s, "need 0 <= rest_min_s <= rest_max_s"),
            (self.ramp_c_per_s > 0, "ramp_c_per_s must be > 0"),
            (self.lead_in_s >= 0 and self.tail_s >= 0, "lead_in_s and tail_s must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"heat protocol: {msg}")


def heat_levels(threshold_c: float, tolerance_c: float, levels: int = 4) -> np.ndarray:
    """The stimulus temperatures: T1 = threshold .. T_levels = tolerance, equally spaced (°C)."""
    if not (tolerance_c > threshold_c):
        raise InputError(f"tolerance_c ({tolerance_c}) must be above threshold_c ({threshold_c})")
    if levels == 1:
        return np.array([tolerance_c])
    return np.linspace(threshold_c, tolerance_c, levels)


def biovid_heat(
    threshold_c: float,
    tolerance_c: float,
    rng: np.random.Generator,
    protocol: HeatProtocol | None = None,
    order: Sequence[int] | None = None,
) -> Stimulus:
    """One BioVid-like heat session for a person with the given threshold and tolerance (°C).

    ``order``: the levels (1..levels) to apply, in order, instead of the protocol's random order of
    ``repetitions`` x each level (a demo or a controlled experiment)."""
    p = protocol or HeatProtocol()
    p.validate()
    if not p.baseline_c < threshold_c:
        raise InputError(f"threshold_c ({threshold_c}) must be above the baseline ({p.baseline_c} °C)")
    temps = heat_levels(threshold_c, tolerance_c, p.levels)
    if order is None:
        order = rng.permutation(np.repeat(np.arange(1, p.levels + 1), p.repetitions)).astype(np.int8)
    else:
        order = np.asarray(order, dtype=np.int8)
        if order.ndim != 1 or order.size == 0 or order.min() < 1 or order.max() > p.levels:
            raise InputError(f"order: expected a list of levels in 1..{p.levels}, got {order.tolist()}")
    rests = rng.uniform(p.rest_min_s, p.rest_max_s, size=order.size)

    # Build the waveform as breakpoints (time s, temperature °C), then sample at the frame rate.
    t, times, values, onsets_s, ends_s = p.lead_in_s, [0.0, p.lead_in_s], [p.baseline_c] * 2, [], []
    for k, lvl in enumerate(order):
        target = temps[lvl - 1]
        ramp = (target - p.baseline_c) / p.ramp_c_per_s
        onsets_s.append(t)
        times += [t + ramp, t + ramp + p.plateau_s, t + 2 * ramp + p.plateau_s]
        values += [target, target, p.baseline_c]
        t += 2 * ramp + p.plateau_s
        ends_s.append(t)
        t += rests[k] if k + 1 < order.size else p.tail_s
        times.append(t)
        values.append(p.baseline_c)
    n = int(np.floor(t * p.fps)) + 1
    ft = np.arange(n) / p.fps
    temperature = np.interp(ft, times, values).astype(np.float32)

    onsets = np.round(np.asarray(onsets_s) * p.fps).astype(np.int64)
    ends = np.round(np.asarray(ends_s) * p.fps).astype(np.int64)
    level = np.zeros(n, dtype=np.int8)
    trial = np.full(n, -1, dtype=np.int16)
    for k in range(order.size):
        level[onsets[k] : ends[k]] = order[k]
        trial[onsets[k] :] = k
    return Stimulus(
        fps=p.fps,
        normalized=celsius_to_normalized(temperature, p.baseline_c, tolerance_c),
        temperature=temperature,
        level=level,
        trial=trial,
        onsets=onsets,
        trial_levels=order,
    )


# --- (b) the elbow robot -----------------------------------------------------------------------


@dataclass
class ElbowProtocol:
    """The PainDiffusion robot's range-of-motion exercise on a one-joint elbow.

    The clinician flexes the elbow from ``rest_deg`` to a peak angle and back, ``cycles`` times; the
    peak of each cycle is drawn uniformly from ``peak_min_deg``..``peak_max_deg``. The joint angle is
    mapped linearly onto the stimulus: ``pain_onset_deg`` -> 0 (baseline), ``pain_max_deg`` -> 1
    (tolerance), clipped to 0..1 (angles outside the painful range hurt no more).
    """

    fps: float = 25.0
    rest_deg: float = 0.0
    peak_min_deg: float = 60.0
    peak_max_deg: float = 130.0
    pain_onset_deg: float = 40.0
    pain_max_deg: float = 120.0
    speed_deg_per_s: float = 30.0
    hold_s: float = 2.0
    rest_s: float = 4.0
    cycles: int = 10

    def validate(self) -> None:
        if not self.pain_max_deg > self.pain_onset_deg:
            raise InputError("elbow protocol: pain_max_deg must be above pain_onset_deg")
        if not self.peak_max_deg >= self.peak_min_deg >= self.rest_deg:
            raise InputError("elbow protocol: need rest_deg <= peak_min_deg <= peak_max_deg")
        if self.speed_deg_per_s <= 0 or self.fps <= 0 or self.cycles < 1:
            raise InputError("elbow protocol: speed_deg_per_s and fps must be > 0, cycles >= 1")


def angle_to_stimulus(angle_deg: np.ndarray | float, pain_onset_deg: float, pain_max_deg: float) -> np.ndarray:
    """Joint angle (degrees) -> normalized stimulus, linear between the two angles, clipped to 0..1."""
    if not pain_max_deg > pain_onset_deg:
        raise InputError(f"pain_max_deg ({pain_max_deg}) must be above pain_onset_deg ({pain_onset_deg})")
    s = (np.asarray(angle_deg, dtype=np.float64) - pain_onset_deg) / (pain_max_deg - pain_onset_deg)
    return np.clip(s, 0.0, 1.0).astype(np.float32)


def elbow_exercise(rng: np.random.Generator, protocol: ElbowProtocol | None = None) -> tuple[np.ndarray, Stimulus]:
    """A range-of-motion session: returns (joint angle [frames] in degrees, the stimulus)."""
    p = protocol or ElbowProtocol()
    p.validate()
    times, angles, onsets_s = [0.0, p.rest_s], [p.rest_deg, p.rest_deg], []
    t = p.rest_s
    for _ in range(p.cycles):
        peak = rng.uniform(p.peak_min_deg, p.peak_max_deg)
        move = (peak - p.rest_deg) / p.speed_deg_per_s
        onsets_s.append(t)
        times += [t + move, t + move + p.hold_s, t + 2 * move + p.hold_s, t + 2 * move + p.hold_s + p.rest_s]
        angles += [peak, peak, p.rest_deg, p.rest_deg]
        t = times[-1]
    n = int(np.floor(t * p.fps)) + 1
    angle = np.interp(np.arange(n) / p.fps, times, angles).astype(np.float32)
    stim = angle_to_stimulus(angle, p.pain_onset_deg, p.pain_max_deg)
    onsets = np.round(np.asarray(onsets_s) * p.fps).astype(np.int64)
    trial = np.full(n, -1, dtype=np.int16)
    for k, o in enumerate(onsets):
        trial[o:] = k
    return angle, Stimulus(fps=p.fps, normalized=stim, trial=trial, onsets=onsets)


# --- (c) a user's CSV --------------------------------------------------------------------------


def read_csv_signal(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV of (time in seconds, value) rows; a header row is allowed. Returns (times, values)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: CSV file not found")
    times, values = [], []
    try:
        rows = list(enumerate(csv.reader(path.read_text(encoding="utf-8").splitlines()), start=1))
    except (UnicodeDecodeError, csv.Error, OSError) as e:
        raise InputError(f"{path}: not a text CSV of (time_s, value) rows: {type(e).__name__}") from None
    for lineno, row in rows:
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise InputError(f"{path}:{lineno}: expected two columns (time_s, value), got {str(row)[:60]}")
        try:
            t, v = float(row[0]), float(row[1])
        except ValueError:
            if not times:  # a header row
                continue
            raise InputError(f"{path}:{lineno}: not numbers: {row[:2]!r}") from None
        times.append(t)
        values.append(v)
    if len(times) < 2:
        raise InputError(f"{path}: needs at least two (time, value) rows, found {len(times)}")
    t_arr, v_arr = np.asarray(times), np.asarray(values)
    if not (np.all(np.isfinite(t_arr)) and np.all(np.isfinite(v_arr))):
        raise InputError(f"{path}: NaN or inf among the times or values")
    steps = np.diff(t_arr)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise InputError(
            f"{path}: times must be strictly increasing; row {i + 2} ({t_arr[i + 1]} s) follows {t_arr[i]} s"
        )
    return t_arr, v_arr


def csv_stimulus(
    path: str | Path,
    *,
    fps: float = 25.0,
    units: str = "normalized",
    baseline_c: float = BIOVID_BASELINE_C,
    tolerance_c: float | None = None,
    max_seconds: float = 86400.0,
) -> Stimulus:
    """A stimulus from a user's CSV of (time s, value), linearly resampled to ``fps`` from the first
    to the last time. ``units``: "normalized" (used as is) or "celsius" (converted with the person's
    ``baseline_c`` and ``tolerance_c``; the °C signal is kept as ``temperature``)."""
    if fps <= 0:
        raise InputError(f"fps must be > 0, got {fps}")
    t, v = read_csv_signal(path)
    if t[-1] - t[0] > max_seconds:
        raise InputError(f"{path}: spans {t[-1] - t[0]:.3g} s; expected at most {max_seconds:g} s")
    n = int(np.floor((t[-1] - t[0]) * fps)) + 1
    values = np.interp(t[0] + np.arange(n) / fps, t, v)
    if units == "normalized":
        return Stimulus(fps=fps, normalized=values.astype(np.float32))
    if units == "celsius":
        if tolerance_c is None:
            raise InputError("a CSV in °C needs the person's tolerance_c to normalize it")
        temp = values.astype(np.float32)
        return Stimulus(fps=fps, normalized=celsius_to_normalized(temp, baseline_c, tolerance_c), temperature=temp)
    raise InputError(f"units: {units!r}, expected 'normalized' or 'celsius'")
