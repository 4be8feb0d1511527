"""Stimuli beyond BioVid's 4 s plateaus: long plateaus, staircases, elbow exercises at several speeds and
random walks (:class:`MixedProtocol`), appended to a BioVid session in the virtual corpus (docs/stimulus.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from painface.errors import InputError
from painface.subjects.protocols import ElbowProtocol, elbow_exercise

BLOCK_KINDS: tuple[str, ...] = ("rest", "biovid", "plateau", "staircase", "elbow", "walk")
"""Codes of the per-frame ``block`` array of a mixed session (index into this tuple)."""


@dataclass
class MixedProtocol:
    """Sustained and movement-driven stimuli appended to a BioVid session (virtual corpus, issue of
    sanity beyond 4 s plateaus), in normalized units, blocks in random order with rests between:

    * ``plateaus`` long plateaus (``plateau_min_s``..``plateau_max_s``, level ``level_min``..``level_max``,
      5 s ramps), the tonic-pain case (a clinician holding a painful position);
    * ``staircases`` staircases of ``stair_steps`` rising steps of ``step_min_s``..``step_max_s`` up to a
      random top in ``level_min``..``level_max``, then back to baseline;
    * one elbow range-of-motion block per speed in ``elbow_speeds`` (deg/s), ``elbow_cycles`` cycles each
      (:class:`ElbowProtocol` mapping of angle to stimulus);
    * ``walks`` random walks of ``walk_s`` seconds: an Ornstein-Uhlenbeck signal (time constant
      ``walk_tau_s``) around ``level_min``, clipped to 0..``level_max``.
    """

    fps: float = 25.0
    plateaus: int = 3
    plateau_min_s: float = 10.0
    plateau_max_s: float = 60.0
    level_min: float = 0.3
    level_max: float = 1.0
    ramp_s: float = 5.0
    staircases: int = 1
    stair_steps: int = 4
    step_min_s: float = 8.0
    step_max_s: float = 15.0
    elbow_speeds: tuple[float, ...] = (15.0, 30.0, 60.0)
    elbow_cycles: int = 3
    walks: int = 1
    walk_s: float = 60.0
    walk_tau_s: float = 4.0
    rest_min_s: float = 15.0
    rest_max_s: float = 25.0

    def validate(self) -> None:
        checks = [
            (self.fps > 0, "fps must be > 0"),
            (min(self.plateaus, self.staircases, self.walks, self.elbow_cycles) >= 0, "counts must be >= 0"),
            (0 < self.plateau_min_s <= self.plateau_max_s, "need 0 < plateau_min_s <= plateau_max_s"),
            (0 <= self.level_min <= self.level_max <= 1.25, "need 0 <= level_min <= level_max <= 1.25"),
            (self.stair_steps >= 1 and 0 < self.step_min_s <= self.step_max_s, "bad staircase settings"),
            (all(v > 0 for v in self.elbow_speeds), "elbow_speeds must be > 0"),
            (self.walk_s > 0 and self.walk_tau_s > 0 and self.ramp_s > 0, "walk_s, walk_tau_s, ramp_s must be > 0"),
            (0 <= self.rest_min_s <= self.rest_max_s, "need 0 <= rest_min_s <= rest_max_s"),
        ]
        for ok, msg in checks:
            if not ok:
                raise InputError(f"mixed protocol: {msg}")


def _plateau(rng: np.random.Generator, p: MixedProtocol) -> tuple[list[float], list[float]]:
    level, hold = rng.uniform(p.level_min, p.level_max), rng.uniform(p.plateau_min_s, p.plateau_max_s)
    return [p.ramp_s, hold, p.ramp_s], [level, level, 0.0]


def _staircase(rng: np.random.Generator, p: MixedProtocol) -> tuple[list[float], list[float]]:
    top = rng.uniform(p.level_min, p.level_max)
    dt, vals = [], []
    for k in range(1, p.stair_steps + 1):
        dt += [1.0, rng.uniform(p.step_min_s, p.step_max_s)]
        vals += [top * k / p.stair_steps] * 2
    return dt + [p.ramp_s], vals + [0.0]


def _segments(times: list[float], values: list[float], fps: float) -> np.ndarray:
    """Piecewise-linear signal from 0 through (durations, values) pairs, sampled at ``fps``."""
    t = np.concatenate([[0.0], np.cumsum(times)])
    v = np.concatenate([[0.0], values])
    return np.interp(np.arange(int(np.floor(t[-1] * fps)) + 1) / fps, t, v)


def mixed_blocks(rng: np.random.Generator, protocol: MixedProtocol | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of a :class:`MixedProtocol` in random order, each followed by a rest at baseline.
    Returns (normalized stimulus ``[frames]`` float32, block code ``[frames]`` int8 into
    :data:`BLOCK_KINDS`)."""
    p = protocol or MixedProtocol()
    p.validate()
    kinds = (["plateau"] * p.plateaus + ["staircase"] * p.staircases
             + [f"elbow:{v}" for v in p.elbow_speeds if p.elbow_cycles] + ["walk"] * p.walks)
    sig, code = [], []
    for kind in [kinds[i] for i in rng.permutation(len(kinds))]:
        if kind == "plateau":
            x = _segments(*_plateau(rng, p), p.fps)
        elif kind == "staircase":
            x = _segments(*_staircase(rng, p), p.fps)
        elif kind == "walk":
            n = int(round(p.walk_s * p.fps))
            a = np.exp(-1.0 / (p.fps * p.walk_tau_s))
            w = lfilter_ou(rng, n, a) * 0.35 + p.level_min
            edge = np.arange(n) / (p.ramp_s * p.fps)
            ramp = np.minimum(1.0, edge) * np.minimum(1.0, edge[::-1])
            x = np.clip(w * ramp, 0.0, p.level_max)
        else:
            speed = float(kind.split(":")[1])
            _, st = elbow_exercise(rng, ElbowProtocol(fps=p.fps, speed_deg_per_s=speed, cycles=p.elbow_cycles))
            x = st.normalized.astype(np.float64)
        rest = np.zeros(int(round(rng.uniform(p.rest_min_s, p.rest_max_s) * p.fps)))
        sig += [x, rest]
        code += [np.full(x.size, BLOCK_KINDS.index(kind.split(":")[0]), np.int8), np.zeros(rest.size, np.int8)]
    if not sig:
        return np.zeros(0, np.float32), np.zeros(0, np.int8)
    return np.concatenate(sig).astype(np.float32), np.concatenate(code)


def lfilter_ou(rng: np.random.Generator, n: int, a: float) -> np.ndarray:
    """Unit-variance AR(1) (discrete Ornstein-Uhlenbeck) sequence of ``n`` values with coefficient ``a``,
    started from a stationary draw. (Like :func:`painface.subjects.simulate.ou_noise`, but drawing the start
    before the innovations, the order the virtual corpus was made with.)"""
    start = rng.standard_normal()
    e = rng.standard_normal(n) * np.sqrt(1.0 - a * a)
    return lfilter([1.0], [1.0, -a], e, zi=[a * start])[0]
