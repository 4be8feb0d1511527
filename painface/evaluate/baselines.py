"""Simple baselines of Table I ([PainDiffusion, §IV-B]), with PainDiffusion's generator signature.

Every method here answers ``generate(stimulus [P, L], expressiveness [P], emotion, *, samples=K, seed,
context=None, **ignored) -> [P*K, L, D]`` face codes (patient-major, face-code units), like
:meth:`painface.express.PainDiffusion.generate`, so ``painface evaluate`` treats all methods alike. They
ignore expressiveness, emotion, context and sampler options (that is what makes them baselines).

* :class:`GroundTruth`: the recorded faces of the windows being evaluated (an upper bound).
* :class:`RandomTraining`: a random training sequence of the same length (random subject, random start).
* :class:`NearestNeighbor`: the training window whose stimulus is closest (Euclidean distance between
  stimulus vectors subsampled every ``step`` frames; exact search in a scipy cKDTree over training windows
  starting every ``stride`` frames). Deterministic: all K tries are equal.
* :class:`MeanFace`: the mean face code of all training frames, held still.
* :class:`StimulusLookup`: the plain stimulus-response method a model must beat: the mean training face
  code for the current value of a lagged causal moving average of the stimulus (a lookup table over its
  bins; window and lag chosen on the training subjects), the AUs scaled by the person's expressiveness
  over the training subjects' mean. It estimates the conditional mean response, so it scores well on
  correlation with any one recording, but its faces are as smooth and alike as an average.

All are built from a :class:`TrainingPool`: the training subjects' face codes and stimuli in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from painface.data.corpus import Corpus
from painface.errors import InputError


def _stimulus(stimulus: Any) -> np.ndarray:
    s = np.asarray(stimulus, dtype=np.float32)
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[1] < 1 or not np.all(np.isfinite(s)):
        raise InputError(f"stimulus: expected finite values [patients, frames] or [frames], got shape {s.shape}")
    return s


def _samples(samples: int) -> int:
    if int(samples) < 1:
        raise InputError(f"samples: must be >= 1, got {samples}")
    return int(samples)


@dataclass
class TrainingPool:
    """The training subjects' recordings: ``faces[i]`` ``[T_i, D]`` (face-code units) and ``stimuli[i]``
    ``[T_i]`` (normalized units), with the per-feature mean and standard deviation over all frames."""

    faces: list[np.ndarray]
    stimuli: list[np.ndarray]
    feature_names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    expressiveness: np.ndarray | None = None
    fps: float = 25.0

    @classmethod
    def from_corpus(cls, corpus: Corpus, split: str = "train") -> TrainingPool:
        """Load every subject of ``split``; the stimulus must be in normalized units."""
        if corpus.stimulus_units != "normalized":
            raise InputError(f"corpus: stimulus in {corpus.stimulus_units!r} units; the baselines and models "
                             "need 'normalized' stimuli (0 = baseline, 1 = tolerance)")
        ids = corpus.ids(split)
        if not ids:
            raise InputError(f"corpus: no {split!r} subjects to build the baselines from")
        faces, stims, expr = [], [], []
        for sid in ids:
            sub = corpus.subject(sid)
            faces.append(np.ascontiguousarray(sub.face, dtype=np.float32))
            stims.append(np.ascontiguousarray(sub.stimulus, dtype=np.float32))
            expr.append(float(sub.info.get("expressiveness", np.nan)))
        n = sum(f.shape[0] for f in faces)
        mean = sum(f.sum(0, dtype=np.float64) for f in faces) / n
        sq = sum(((f - mean) ** 2).sum(0, dtype=np.float64) for f in faces) / n
        return cls(faces, stims, corpus.feature_names, mean.astype(np.float32), np.sqrt(sq).astype(np.float32),
                   np.asarray(expr, np.float32), float(corpus.fps))

    @property
    def feature_dim(self) -> int:
        return len(self.feature_names)

    def spans(self, length: int) -> np.ndarray:
        """``[subjects]`` number of windows of ``length`` frames each recording holds (0 if too short)."""
        return np.array([max(0, f.shape[0] - length + 1) for f in self.faces], dtype=np.int64)


class GroundTruth:
    """The recorded face codes of the evaluated windows, ``faces`` ``[P, L, D]``, returned K times (row p
    for stimulus row p; :meth:`select` gives the ground truth of a batch of windows)."""

    name = "ground_truth"

    def __init__(self, faces: np.ndarray):
        self.faces = np.asarray(faces, dtype=np.float32)
        if self.faces.ndim != 3:
            raise InputError(f"GroundTruth: expected faces [windows, frames, features], got {self.faces.shape}")

    def select(self, rows: slice | np.ndarray) -> GroundTruth:
        """The ground truth of a subset of the windows (for batched evaluation)."""
        return GroundTruth(self.faces[rows])

    def generate(self, stimulus: Any, expressiveness: Any = None, emotion: Any = None, *, samples: int = 1,
                 seed: int = 0, context: Any = None, **ignored: Any) -> np.ndarray:
        s = _stimulus(stimulus)
        if s.shape != self.faces.shape[:2]:
            raise InputError(f"GroundTruth: stimulus {s.shape} does not match the recorded windows "
                             f"{self.faces.shape[:2]}")
        return np.repeat(self.faces, _samples(samples), axis=0)


class RandomTraining:
    """A random training sequence of the stimulus's length per output (subject drawn in proportion to its
    number of windows, start uniform), from ``numpy.random.default_rng(seed)``."""

    name = "random"

    def __init__(self, pool: TrainingPool):
        self.pool = pool

    def generate(self, stimulus: Any, expressiveness: Any = None, emotion: Any = None, *, samples: int = 1,
                 seed: int = 0, context: Any = None, **ignored: Any) -> np.ndarray:
        s = _stimulus(stimulus)
        n, length = s.shape[0] * _samples(samples), s.shape[1]
        spans = self.pool.spans(length).astype(np.float64)
        if spans.sum() == 0:
            raise InputError(f"RandomTraining: no training recording holds {length} frames")
        rng = np.random.default_rng(seed)
        subs = rng.choice(len(spans), size=n, p=spans / spans.sum())
        starts = (rng.random(n) * spans[subs]).astype(np.int64)
        return np.stack([self.pool.faces[i][t:t + length] for i, t in zip(subs, starts, strict=True)])


class NearestNeighbor:
    """The training window whose stimulus is closest (Euclidean, on every ``step``-th frame) to the query.

    Windows of the query's length start every ``stride`` frames in every training recording; their
    subsampled stimuli go into a cKDTree (built once per length, exact search). Ties go to the first.
    """

    name = "nearest_neighbor"

    def __init__(self, pool: TrainingPool, stride: int = 16, step: int = 8):
        if stride < 1 or step < 1:
            raise InputError(f"NearestNeighbor: stride and step must be >= 1, got {stride} and {step}")
        self.pool, self.stride, self.step = pool, int(stride), int(step)
        self._index: dict[int, tuple[cKDTree, np.ndarray]] = {}

    def index(self, length: int) -> tuple[cKDTree, np.ndarray]:
        """(tree over ``[windows, ceil(length / step)]`` stimulus vectors, ``[windows, 2]`` (subject, start))."""
        if length not in self._index:
            vecs, where = [], []
            for i, st in enumerate(self.pool.stimuli):
                starts = np.arange(0, st.shape[0] - length + 1, self.stride)
                if starts.size == 0:
                    continue
                cols = starts[:, None] + np.arange(0, length, self.step)[None, :]
                vecs.append(st[cols])
                where.append(np.stack([np.full(starts.size, i), starts], axis=1))
            if not vecs:
                raise InputError(f"NearestNeighbor: no training recording holds {length} frames")
            self._index[length] = (cKDTree(np.concatenate(vecs).astype(np.float64)), np.concatenate(where))
        return self._index[length]

    def neighbors(self, stimulus: Any) -> np.ndarray:
        """``[P, 2]`` (training subject index, start frame) of the nearest window for each stimulus row."""
        s = _stimulus(stimulus)
        tree, where = self.index(s.shape[1])
        _, idx = tree.query(s[:, :: self.step].astype(np.float64), k=1)
        return where[np.asarray(idx).reshape(-1)]

    def generate(self, stimulus: Any, expressiveness: Any = None, emotion: Any = None, *, samples: int = 1,
                 seed: int = 0, context: Any = None, **ignored: Any) -> np.ndarray:
        s = _stimulus(stimulus)
        length = s.shape[1]
        out = np.stack([self.pool.faces[i][t:t + length] for i, t in self.neighbors(s)])
        return np.repeat(out, _samples(samples), axis=0)


class MeanFace:
    """The training subjects' mean face code, held for every frame."""

    name = "mean_face"

    def __init__(self, pool: TrainingPool):
        self.mean = pool.mean.astype(np.float32)

    def generate(self, stimulus: Any, expressiveness: Any = None, emotion: Any = None, *, samples: int = 1,
                 seed: int = 0, context: Any = None, **ignored: Any) -> np.ndarray:
        s = _stimulus(stimulus)
        n = s.shape[0] * _samples(samples)
        return np.broadcast_to(self.mean, (n, s.shape[1], self.mean.shape[0])).copy()


def lagged_average(stimulus: np.ndarray, window: int, lag: int) -> np.ndarray:
    """Causal moving average of ``stimulus`` ``[..., L]`` over ``window`` frames ending ``lag`` frames before
    each frame: ``mean(s[t - lag - window + 1 .. t - lag])``; frames before the start hold the first value."""
    s = np.asarray(stimulus, dtype=np.float64)
    pad = window + lag - 1
    padded = np.concatenate([np.repeat(s[..., :1], pad, axis=-1), s], axis=-1)
    c = np.cumsum(padded, axis=-1)
    c = np.concatenate([np.zeros_like(c[..., :1]), c], axis=-1)
    length = s.shape[-1]
    end = np.arange(length) + pad - lag + 1  # exclusive end in padded coordinates
    return (c[..., end] - c[..., end - window]) / window


class StimulusLookup:
    """Face code as a lookup table of the lagged causal moving average of the stimulus (see the module
    docstring). ``fit`` picks the averaging window and lag (seconds, from ``windows_s`` x ``lags_s``) that
    maximize the mean per-subject Pearson correlation between the mean recorded PSPI of each bin and the
    recorded PSPI of the training subjects; the table holds the mean face code of the training frames in
    each of ``bins`` equal bins of the averaged stimulus over 0..``top`` (values beyond are clipped into the
    last bin; an empty bin takes its nearest non-empty neighbour). At generation the AUs are multiplied by the person's
    expressiveness over the training subjects' mean expressiveness (head pose is not scaled). Deterministic:
    all K tries are equal."""

    name = "stimulus_lookup"

    def __init__(self, pool: TrainingPool, *, bins: int = 24, top: float = 1.2,
                 windows_s: tuple[float, ...] = (0.5, 1.0, 1.5, 2.0, 3.0),
                 lags_s: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)):
        from painface.face.code import AU_NAMES, pspi

        if bins < 2 or not top > 0:
            raise InputError(f"StimulusLookup: need bins >= 2 and top > 0, got {bins} and {top}")
        if pool.expressiveness is None or not np.all(np.isfinite(pool.expressiveness)):
            raise InputError("StimulusLookup: the training pool has no expressiveness per subject")
        self.pool, self.bins, self.top = pool, int(bins), float(top)
        self.names = pool.feature_names
        self.au_mask = np.array([n in AU_NAMES for n in self.names])
        self.mean_expressiveness = float(np.mean(pool.expressiveness))
        self._pspi = lambda f: pspi(f, self.names)
        recorded = self._pspi(np.concatenate(pool.faces)).astype(np.float64)
        bounds = np.cumsum([0] + [f.shape[0] for f in pool.faces])
        best = None
        for w_s in windows_s:
            for lag_s in lags_s:
                w, lag = max(1, int(round(w_s * pool.fps))), int(round(lag_s * pool.fps))
                b = np.concatenate([self._bin(lagged_average(st, w, lag)) for st in pool.stimuli])
                pred = self._table(b, recorded[None])[b, 0]  # mean recorded PSPI per bin (selection only)
                score = float(np.mean([_pearson(pred[i:j], recorded[i:j])
                                       for i, j in zip(bounds[:-1], bounds[1:], strict=True)]))
                if best is None or score > best[0]:
                    best = (score, w, lag, b)
        assert best is not None
        self.train_corr, self.window, self.lag, b = best
        self.table = self._table(b, np.ascontiguousarray(np.concatenate(pool.faces).T, dtype=np.float64))
        self.table_pspi = self._pspi(self.table)

    def _bin(self, avg: np.ndarray) -> np.ndarray:
        return np.clip((avg / self.top * self.bins).astype(np.int64), 0, self.bins - 1)

    def _table(self, b: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Mean face ``[bins, D]`` of the frames (``faces`` ``[D, frames]``) in each bin ``b``; empty bins copy
        their nearest neighbour."""
        counts = np.bincount(b, minlength=self.bins).astype(np.float64)
        sums = np.stack([np.bincount(b, weights=col, minlength=self.bins) for col in faces], 1)
        filled = np.flatnonzero(counts > 0)
        nearest = filled[np.abs(np.arange(self.bins)[:, None] - filled[None, :]).argmin(1)]
        return (sums[nearest] / counts[nearest, None]).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"window_s": self.window / self.pool.fps, "lag_s": self.lag / self.pool.fps, "bins": self.bins,
                "top": self.top, "train_corr": round(self.train_corr, 4),
                "mean_expressiveness": round(self.mean_expressiveness, 4)}

    def generate(self, stimulus: Any, expressiveness: Any = None, emotion: Any = None, *, samples: int = 1,
                 seed: int = 0, context: Any = None, **ignored: Any) -> np.ndarray:
        s = _stimulus(stimulus)
        k = _samples(samples)
        faces = self.table[self._bin(lagged_average(s, self.window, self.lag))]  # [P, L, D]
        if expressiveness is not None:
            x = np.broadcast_to(np.asarray(expressiveness, dtype=np.float32).reshape(-1), (s.shape[0],))
            ratio = x / max(self.mean_expressiveness, 1e-6)
            faces = faces.copy()
            faces[..., self.au_mask] = np.clip(faces[..., self.au_mask] * ratio[:, None, None], 0.0, 5.0)
        return np.repeat(faces.astype(np.float32), k, axis=0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def simple_baselines(pool: TrainingPool, ground_truth: np.ndarray | None = None) -> dict[str, Any]:
    """The baselines by method name (``ground_truth`` only when its faces are given)."""
    out: dict[str, Any] = {}
    if ground_truth is not None:
        out["ground_truth"] = GroundTruth(ground_truth)
    out.update(random=RandomTraining(pool), nearest_neighbor=NearestNeighbor(pool), mean_face=MeanFace(pool))
    if pool.expressiveness is not None:
        out["stimulus_lookup"] = StimulusLookup(pool)
    return out
