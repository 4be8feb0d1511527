"""Metrics of pain assessment, as in the ViTPain and UNBC-McMaster literature.

All functions take 1-D arrays: ``y`` true PSPI (0-16), ``s`` predicted PSPI (the score). Binary tasks
are ``y >= k`` for k = 1, 2, 3, scored by ``s``. F1 needs a threshold on ``s``: :func:`tune_threshold`
picks it on *training* predictions and :func:`f1` applies it elsewhere. :func:`bootstrap` gives
percentile confidence intervals by resampling whole identities (the unit that is independent).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from painface.errors import InputError

LEVELS = (1, 2, 3)


def _pair(y, s) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y, np.float64).ravel(), np.asarray(s, np.float64).ravel()
    if len(y) != len(s):
        raise InputError(f"metrics: {len(y)} labels but {len(s)} predictions")
    if len(y) == 0:
        raise InputError("metrics: no samples")
    if not (np.isfinite(y).all() and np.isfinite(s).all()):
        raise InputError("metrics: labels and predictions must be finite (drop no-face rows first)")
    return y, s


def mae(y, s) -> float:
    """Mean absolute error."""
    y, s = _pair(y, s)
    return float(np.abs(y - s).mean())


def pearson(y, s) -> float:
    """Pearson r; NaN when either side is constant."""
    y, s = _pair(y, s)
    if np.ptp(y) == 0 or np.ptp(s) == 0:
        return float("nan")
    yc, sc = y - y.mean(), s - s.mean()
    den = np.sqrt((yc**2).sum() * (sc**2).sum())
    return float((yc * sc).sum() / den) if den > 0 else float("nan")


def auroc(labels, s) -> float:
    """Area under the ROC curve of binary ``labels`` (0/1) scored by ``s`` (Mann-Whitney, ties count
    half); NaN when one class is absent."""
    labels, s = _pair(labels, s)
    pos = labels > 0.5
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(ss):  # average ranks over ties
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def f1(labels, s, threshold: float) -> float:
    """F1 of ``s >= threshold`` against binary ``labels``; 0 when there are no positives at all."""
    labels, s = _pair(labels, s)
    t, p = labels > 0.5, s >= threshold
    tp = float((t & p).sum())
    den = float(t.sum() + p.sum())
    return 2 * tp / den if den > 0 else 0.0


def tune_threshold(labels, s) -> float:
    """The threshold on ``s`` that maximizes F1 on these (training) data: a midpoint between two
    consecutive distinct scores (or just below the lowest)."""
    labels, s = _pair(labels, s)
    u = np.unique(s)
    cands = np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2]) if len(u) > 1 else u - 1e-6
    if len(cands) > 2000:
        cands = np.quantile(s, np.linspace(0, 1, 2001))
    scores = [f1(labels, s, c) for c in cands]
    return float(cands[int(np.argmax(scores))])


def icc31(y, s) -> float:
    """ICC(3,1) (two-way mixed, consistency, single rater; Shrout & Fleiss 1979) of the two raters y, s."""
    y, s = _pair(y, s)
    x = np.stack([y, s], 1)
    n, k = x.shape
    if n < 2:
        return float("nan")
    grand = x.mean()
    ss_rows = k * ((x.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms, ems = ss_rows / (n - 1), ss_err / ((n - 1) * (k - 1))
    den = bms + (k - 1) * ems
    return float((bms - ems) / den) if den > 0 else float("nan")


def summary(y, s, thresholds: dict[int, float] | None = None) -> dict[str, float]:
    """MAE, r, ICC(3,1), AUROC at each level and, when ``thresholds`` {level: t} are given, F1."""
    y, s = _pair(y, s)
    out = {"MAE": mae(y, s), "r": pearson(y, s), "ICC": icc31(y, s)}
    for k in LEVELS:
        out[f"AUROC{k}"] = auroc(y >= k, s)
        if thresholds is not None:
            out[f"F1_{k}"] = f1(y >= k, s, thresholds[k])
    return out


def tune_thresholds(y, s) -> dict[int, float]:
    """{level: F1-best threshold on ``s``} for PSPI >= 1, 2, 3 (use on training predictions only)."""
    y, s = _pair(y, s)
    return {k: tune_threshold(y >= k, s) for k in LEVELS}


def bootstrap(groups, fn: Callable[[np.ndarray], dict[str, float]], n: int = 1000, seed: int = 0,
              level: float = 0.95) -> dict[str, tuple[float, float, float]]:
    """Percentile CIs by resampling groups (identities) with replacement.

    ``groups`` ``[N]``: the group of each sample; ``fn(index array) -> {name: value}``. Returns
    ``{name: (value on all samples, low, high)}``.
    """
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    members = [np.flatnonzero(groups == u) for u in uniq]
    full = fn(np.arange(len(groups)))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in full}
    for _ in range(n):
        pick = rng.integers(0, len(uniq), len(uniq))
        res = fn(np.concatenate([members[i] for i in pick]))
        for k, v in res.items():
            draws[k].append(v)
    a = (1 - level) / 2
    return {k: (full[k], float(np.nanquantile(draws[k], a)), float(np.nanquantile(draws[k], 1 - a))) for k in full}
