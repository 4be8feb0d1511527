"""The paper's evaluation metrics ([PainDiffusion, §IV-B, Table I]), as plain functions of arrays.

Two modalities, as in Table I:

* **PSPI signals** ``[N, L]`` (N sequences of L frames, PSPI units 0-16): :func:`sim` (DTW) and
  :func:`pearson` (-> ``corr`` = mean over sequences, ``corr_max`` = maximum over sequences, the number the
  authors' code reported).
* **Face codes** ``[N, L, D]`` (face-code units: AU intensity 0-5, head pose in degrees; FLAME
  coefficients): :func:`dist`, :func:`divrs`, :func:`var`. Features are put on one footing by an optional
  per-feature ``scale`` ``[D]`` (``painface evaluate`` passes the training subjects' per-feature standard
  deviation, so these metrics are in units of training variance and head pose in degrees does not drown
  the AUs).

Every function returns one value per sequence (or per stimulus for :func:`divrs`); averaging over
sequences and tries is left to the caller (:func:`summarize`). For a corpus in FLAME space, PSPI comes from
a :class:`PspiRegressor` (ridge regression) fitted on the training subjects (:func:`fit_pspi_regressor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from dtaidistance import dtw

from painface.data.corpus import Corpus
from painface.errors import InputError
from painface.face.code import feature_space, pspi

CONSTANT_EPS = 1e-6
"""A signal whose standard deviation is at most this (PSPI units) counts as constant in :func:`pearson`."""


# --- input checks ---------------------------------------------------------------------------------
def _signals(a: Any, b: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Two PSPI batches as float64 ``[N, L]``; ``b`` may be ``[L]`` (one ground truth for all rows)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if y.ndim == 1:
        y = np.broadcast_to(y, x.shape)
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] < 1:
        raise InputError(f"{name}: expected generated and ground-truth PSPI of equal shape [sequences, frames], "
                         f"got {np.shape(a)} and {np.shape(b)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError(f"{name}: PSPI signals contain NaN or infinity")
    return x, y


def _faces(x: Any, name: str, ndim: int = 3) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim or min(arr.shape) < 1:
        shape = "[sequences, frames, features]" if ndim == 3 else "[stimuli, tries, frames, features]"
        raise InputError(f"{name}: expected face codes {shape}, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: face codes contain NaN or infinity")
    return arr


def _scaled(x: np.ndarray, scale: Any, name: str) -> np.ndarray:
    if scale is None:
        return x
    s = np.asarray(scale, dtype=np.float64)
    if s.shape != (x.shape[-1],) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(f"{name}: scale must be {x.shape[-1]} positive finite numbers (one per feature), "
                         f"got shape {s.shape}")
    return x / s


# --- PSPI metrics ---------------------------------------------------------------------------------
def dtw_cost(a: np.ndarray, b: np.ndarray, window: int | None = None) -> float:
    """DTW cost ``min over warping paths of sum (a_i - b_j)^2`` (PSPI^2) between two 1-D signals.

    Standard DTW (steps (1,0), (0,1), (1,1), both ends matched); ``window``: Sakoe-Chiba band half-width in
    frames (None: unconstrained; a band needs equal lengths). Computed by dtaidistance (C), which returns
    the square root of this cost.
    """
    x = np.require(a, dtype=np.double, requirements=["C", "W"])  # dtaidistance wants writable buffers
    y = np.require(b, dtype=np.double, requirements=["C", "W"])
    if x.ndim != 1 or y.ndim != 1 or x.size < 1 or y.size < 1:
        raise InputError(f"dtw_cost: expected two non-empty 1-D signals, got shapes {x.shape} and {y.shape}")
    if window is not None and (window < 0 or x.size != y.size):
        raise InputError(f"dtw_cost: window {window} needs window >= 0 and signals of equal length, got "
                         f"{x.size} and {y.size} frames")
    kw: dict[str, Any] = {} if window is None else {"window": int(window) + 1}
    # use_pruning=False: dtaidistance's pruning (on by default in distance_fast) returned inf for some
    # short pairs in our brute-force tests. use_c=True falls back to pure Python without the C extension.
    d = dtw.distance(x, y, use_c=True, use_pruning=False, **kw)
    return float(d) ** 2


def sim(generated: Any, ground_truth: Any, window: int | None = None) -> np.ndarray:
    """Sim (lower is better) per sequence ``[N]`` in PSPI units: the DTW-aligned RMS difference

        sim = sqrt( DTW(g, y) / L ),   DTW(g, y) = min over warping paths P of sum_{(i,j) in P} (g_i - y_j)^2

    between generated PSPI ``g`` ``[N, L]`` and ground-truth PSPI ``y`` ``[N, L]`` (or ``[L]``). Dividing
    by the length L (not the path length) makes sim independent of the sequence length and bounds it by
    the plain RMSE (the diagonal path is one of the paths): 0 <= sim <= sqrt(mean((g - y)^2)), 0 iff the
    signals are equal up to a warping. ``window``: Sakoe-Chiba half-width in frames (None: unconstrained).
    """
    x, y = _signals(generated, ground_truth, "sim")
    length = x.shape[1]
    return np.array([np.sqrt(dtw_cost(g, t, window) / length) for g, t in zip(x, y, strict=True)])


def pearson(generated: Any, ground_truth: Any) -> np.ndarray:
    """Pearson r per sequence ``[N]`` (unitless, -1..1) between generated and ground-truth PSPI ``[N, L]``.

        r = sum (g - mean g)(y - mean y) / sqrt( sum (g - mean g)^2 * sum (y - mean y)^2 )

    Constant signals (standard deviation <= :data:`CONSTANT_EPS`), where r is undefined: two constant
    signals that are equal (within CONSTANT_EPS) give r = 1 (a perfect reproduction, e.g. ground truth of a
    subject who never moved); otherwise a constant signal on either side gives r = 0 (no linear relation
    can be shown). The share of such sequences is reported by :func:`constant_share`.
    """
    x, y = _signals(generated, ground_truth, "corr")
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sx, sy = np.sqrt((xc**2).mean(axis=1)), np.sqrt((yc**2).mean(axis=1))
    const = (sx <= CONSTANT_EPS) | (sy <= CONSTANT_EPS)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).mean(axis=1) / (sx * sy)
    same = np.all(np.abs(x - y) <= CONSTANT_EPS, axis=1)
    r = np.where(const, np.where(same, 1.0, 0.0), r)
    return np.clip(r, -1.0, 1.0)


def constant_share(generated: Any, ground_truth: Any) -> float:
    """Share (0-1) of sequence pairs in which either PSPI signal is constant (r fixed by :func:`pearson`'s rule)."""
    x, y = _signals(generated, ground_truth, "constant_share")
    return float(np.mean((x.std(axis=1) <= CONSTANT_EPS) | (y.std(axis=1) <= CONSTANT_EPS)))


# --- face-code metrics ----------------------------------------------------------------------------
def dist(generated: Any, ground_truth: Any, scale: Any = None) -> np.ndarray:
    """Dist (lower is better) per sequence ``[N]``: the MSE between generated and ground-truth face codes

        dist = mean over frames t and features d of ((g[t, d] - y[t, d]) / s_d)^2

    for ``[N, L, D]`` arrays; ``s`` = ``scale`` ``[D]`` (default 1: squared face-code units)."""
    g = _faces(generated, "dist: generated")
    y = _faces(ground_truth, "dist: ground truth")
    if g.shape != y.shape:
        raise InputError(f"dist: generated {g.shape} and ground truth {y.shape} differ in shape")
    return (_scaled(g - y, scale, "dist") ** 2).mean(axis=(1, 2))


def divrs(generated: Any, scale: Any = None) -> np.ndarray:
    """Divrs (higher is more diverse) per stimulus ``[P]``: the mean pairwise MSE among K generations

        divrs = 2 / (K (K - 1)) * sum_{i < j} mean over t, d of ((x_i[t, d] - x_j[t, d]) / s_d)^2

    of ``generated`` ``[P, K, L, D]`` (P stimuli, K >= 2 tries each); ``s`` = ``scale`` ``[D]`` (default 1)."""
    x = _scaled(_faces(generated, "divrs", ndim=4), scale, "divrs")
    k = x.shape[1]
    if k < 2:
        raise InputError(f"divrs: needs at least 2 generations per stimulus, got {k}")
    pairs = [((x[:, i] - x[:, j]) ** 2).mean(axis=(1, 2)) for i in range(k) for j in range(i + 1, k)]
    return np.mean(pairs, axis=0)


def var(generated: Any, scale: Any = None) -> np.ndarray:
    """Var per sequence ``[N]``: the variance over time, averaged over features

        var = mean over d of (1 / L) sum_t ((x[t, d] - mean_t x[t, d]) / s_d)^2

    of face codes ``[N, L, D]`` (population variance); ``s`` = ``scale`` ``[D]`` (default 1)."""
    x = _scaled(_faces(generated, "var"), scale, "var")
    return x.var(axis=1).mean(axis=1)


def summarize(values: Iterable[float]) -> dict[str, float]:
    """``{"mean", "std"}`` (population std) of a list of per-try (or per-stimulus) values."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InputError(f"summarize: expected finite values, got {v.tolist()[:5]}")
    return {"mean": float(v.mean()), "std": float(v.std())}


def sequence_metrics(
    gen_pspi: Any, gt_pspi: Any, gen_face: Any, gt_face: Any, scale: Any = None, window: int | None = None
) -> dict[str, np.ndarray]:
    """Per-sequence sim, corr (Pearson r), dist and var of one batch ``[N, L]`` / ``[N, L, D]``."""
    return {
        "sim": sim(gen_pspi, gt_pspi, window),
        "corr": pearson(gen_pspi, gt_pspi),
        "dist": dist(gen_face, gt_face, scale),
        "var": var(gen_face, scale),
    }


# --- distribution and movement: what a conditional-mean predictor cannot match ----------------------
PSPI_AUS: tuple[str, ...] = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
"""The AUs of the PSPI formula, whose movement :func:`au_speed` measures."""


def pspi_w1(generated: Any, ground_truth: Any) -> float:
    """Wasserstein-1 distance (PSPI units) between the pooled PSPI values of all generated frames and of all
    ground-truth frames: how alike the two *distributions* of pain display are (how often the face is at
    rest, how high it goes), whatever their timing. A lookup's averaged face, never at rest and never at
    full display, is far from a person's here even when it correlates well."""
    from scipy.stats import wasserstein_distance

    x, y = _signals(generated, ground_truth, "pspi_w1")
    return float(wasserstein_distance(x.ravel(), y.ravel()))


def peak_pspi(pspi_signals: Any, onset: int, span: int) -> np.ndarray:
    """``[N]`` the highest PSPI of each sequence ``[N, L]`` in frames ``onset .. onset + span`` (the response
    to the stimulus that starts at ``onset``)."""
    x = np.asarray(pspi_signals, dtype=np.float64)
    if x.ndim != 2 or not 0 <= onset < x.shape[1] or span < 1:
        raise InputError(f"peak_pspi: need [sequences, frames] and 0 <= onset < frames, span >= 1; got shape "
                         f"{x.shape}, onset {onset}, span {span}")
    return x[:, onset:onset + span].max(axis=1)


def peak_w1(generated: Any, ground_truth: Any, onset: int, span: int) -> float:
    """Wasserstein-1 distance between the per-trial response peaks (:func:`peak_pspi`) of the generated and
    the ground-truth sequences: people respond strongly to some trials and not at all to others; a
    predictor that returns the same average response every time does not."""
    from scipy.stats import wasserstein_distance

    x, y = _signals(generated, ground_truth, "peak_w1")
    return float(wasserstein_distance(peak_pspi(x, onset, span), peak_pspi(y, onset, span)))


def au_speed(face: Any, feature_names: Sequence[str], fps: float) -> np.ndarray:
    """``[N]`` mean AU speed of each sequence ``[N, L, D]``: mean over frames and over the PSPI AUs
    (:data:`PSPI_AUS`) of ``|dAU/dt|``, in AU intensity units per second."""
    x = _faces(face, "au_speed")
    cols = [list(feature_names).index(a) for a in PSPI_AUS if a in feature_names]
    if not cols or fps <= 0 or x.shape[1] < 2:
        raise InputError(f"au_speed: needs the PSPI AUs among the features, fps > 0 and >= 2 frames; got "
                         f"{len(cols)} AUs, fps {fps}, {x.shape[1]} frames")
    return np.abs(np.diff(x[..., cols], axis=1)).mean(axis=(1, 2)) * fps


def paired_ci(a: Any, b: Any, *, seed: int = 0, draws: int = 2000, level: float = 0.95) -> dict[str, float]:
    """Mean of ``a - b`` over paired units (e.g. windows, each method's metric averaged over tries) with a
    percentile bootstrap confidence interval over the units: ``{"mean", "lo", "hi", "n"}``."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 2 or not np.all(np.isfinite(d)):
        raise InputError(f"paired_ci: expected two equal 1-D finite arrays of >= 2 values, got {np.shape(a)}, "
                         f"{np.shape(b)}")
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, size=(draws, d.size))].mean(axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "n": int(d.size)}


# --- PSPI for FLAME-space corpora -----------------------------------------------------------------
@dataclass
class PspiRegressor:
    """Ridge regression face code ``[..., D]`` -> PSPI ``[...]``, for corpora whose face code has no AUs.

        pspi_hat = b + sum_d w_d (x_d - mu_d) / sigma_d,   w = argmin sum (y - pspi_hat)^2 + alpha |w|^2

    on standardized features (mu, sigma: training mean and std per feature; b: training mean PSPI).
    Predictions are clipped to the PSPI range 0-16. ``r2_val``: coefficient of determination on the
    validation subjects (1 = perfect; 0 = no better than the mean), reported next to every result.
    """

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    intercept: float
    alpha: float
    r2_train: float = float("nan")
    r2_val: float = float("nan")

    def predict(self, face: Any) -> np.ndarray:
        x = np.asarray(face, dtype=np.float64)
        if x.shape[-1] != self.weights.shape[0]:
            raise InputError(f"PspiRegressor: face has {x.shape[-1]} features, expected {self.weights.shape[0]}")
        y = self.intercept + ((x - self.mean) / self.std) @ self.weights
        return np.clip(y, 0.0, 16.0).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"kind": "ridge", "alpha": self.alpha, "r2_train": self.r2_train, "r2_val": self.r2_val,
                "features": int(self.weights.shape[0])}

    @classmethod
    def fit(cls, faces: Sequence[np.ndarray], pspis: Sequence[np.ndarray], alpha: float = 1.0) -> PspiRegressor:
        """Fit on pairs of face codes ``[T_i, D]`` and PSPI ``[T_i]`` (one pair per subject), streaming."""
        if alpha < 0 or not faces or len(faces) != len(pspis):
            raise InputError(f"PspiRegressor.fit: need alpha >= 0 and equal non-empty lists, got alpha={alpha}, "
                             f"{len(faces)} faces and {len(pspis)} PSPI arrays")
        d = np.asarray(faces[0]).shape[-1]
        n, sx, sxx, sy, sxy = 0, np.zeros(d), np.zeros((d, d)), 0.0, np.zeros(d)
        for f, p in zip(faces, pspis, strict=True):
            x, y = np.asarray(f, np.float64), np.asarray(p, np.float64)
            if x.ndim != 2 or x.shape[1] != d or y.shape != (x.shape[0],):
                raise InputError(f"PspiRegressor.fit: face {x.shape} and PSPI {y.shape} do not pair up (D={d})")
            n += x.shape[0]
            sx += x.sum(0)
            sxx += x.T @ x
            sy += y.sum()
            sxy += x.T @ y
        if n < 2:
            raise InputError("PspiRegressor.fit: needs at least 2 frames")
        mu = sx / n
        cov = sxx / n - np.outer(mu, mu)
        std = np.sqrt(np.clip(np.diag(cov), 0, None))
        std = np.where(std > 1e-8, std, 1.0)
        ybar = sy / n
        cxy = sxy / n - mu * ybar
        a = cov / np.outer(std, std) + alpha / n * np.eye(d)
        w = np.linalg.solve(a, cxy / std)
        reg = cls(weights=w, mean=mu, std=std, intercept=float(ybar), alpha=float(alpha))
        reg.r2_train = reg.r2(faces, pspis)
        return reg

    def r2(self, faces: Sequence[np.ndarray], pspis: Sequence[np.ndarray]) -> float:
        """Coefficient of determination 1 - SS_res / SS_tot over all frames of the given subjects."""
        ss_res, n, sy, syy = 0.0, 0, 0.0, 0.0
        for f, p in zip(faces, pspis, strict=True):
            y = np.asarray(p, np.float64)
            ss_res += float(((self.predict(f) - y) ** 2).sum())
            n, sy, syy = n + y.size, sy + y.sum(), syy + (y**2).sum()
        ss_tot = syy - sy * sy / max(n, 1)
        return float(1.0 - ss_res / ss_tot) if ss_tot > 0 else float("nan")


def fit_pspi_regressor(corpus: Corpus, alpha: float = 1.0, stride: int = 1) -> PspiRegressor:
    """Fit a :class:`PspiRegressor` on the corpus's training subjects' (face, PSPI) frames (every
    ``stride``-th frame) and record its R^2 on the validation subjects."""
    if stride < 1:
        raise InputError(f"stride: must be >= 1, got {stride}")

    def pairs(split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
        subs = [corpus.subject(s) for s in corpus.ids(split)]
        return [s.face[::stride] for s in subs], [s.pspi[::stride] for s in subs]

    train = pairs("train")
    if not train[0]:
        raise InputError("fit_pspi_regressor: the corpus has no training subjects")
    reg = PspiRegressor.fit(*train, alpha=alpha)
    val = pairs("val")
    if val[0]:
        reg.r2_val = reg.r2(*val)
    return reg


def pspi_of(face: Any, feature_names: Sequence[str], regressor: PspiRegressor | None = None) -> np.ndarray:
    """PSPI ``[...]`` of face codes ``[..., D]``: exact (FACS space, :func:`painface.face.code.pspi`) or
    from ``regressor`` (FLAME space; required there)."""
    if feature_space(feature_names) == "facs":
        return pspi(face, feature_names)
    if regressor is None:
        raise InputError("pspi_of: a FLAME-space face code needs a fitted PspiRegressor (fit_pspi_regressor)")
    return regressor.predict(face)
