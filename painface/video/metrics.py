"""Metrics of video pain classification: AUROC, F1, accuracy, macro precision and recall.

Binary (BL1 vs PA4): ``y`` 0/1, ``s`` the score of PA4; F1, accuracy, precision and recall at a
threshold chosen on *training* predictions (:func:`painface.assess.metrics.tune_threshold`).
Five classes: ``y`` 0..4, ``p`` probabilities ``[N, 5]``; the predicted class is the most probable;
AUROC is the mean one-vs-rest AUROC over classes; ``AUROC_BL1_PA4`` scores the BL1 and PA4 clips by
the expected class ``sum_k k p_k``.
"""

from __future__ import annotations

import numpy as np

from painface.assess.metrics import auroc, f1


def _macro_pr(y: np.ndarray, pred: np.ndarray, k: int) -> tuple[float, float, float]:
    """Macro precision, recall and F1 over classes 0..k-1 (a class never predicted has precision 0)."""
    ps, rs, fs = [], [], []
    for c in range(k):
        tp = float(((pred == c) & (y == c)).sum())
        npred, ntrue = float((pred == c).sum()), float((y == c).sum())
        p = tp / npred if npred else 0.0
        r = tp / ntrue if ntrue else 0.0
        ps.append(p)
        rs.append(r)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(ps)), float(np.mean(rs)), float(np.mean(fs))


def binary_metrics(y, s, threshold: float) -> dict[str, float]:
    y, s = np.asarray(y, int), np.asarray(s, float)
    pred = (s >= threshold).astype(int)
    prec, rec, _ = _macro_pr(y, pred, 2)
    return {"n": int(len(y)), "AUROC": auroc(y, s), "F1": f1(y, s, threshold), "accuracy": float((pred == y).mean()),
            "precision_macro": prec, "recall_macro": rec}


def multiclass_metrics(y, p) -> dict[str, float]:
    y, p = np.asarray(y, int), np.asarray(p, float)
    k = p.shape[1]
    pred = p.argmax(1)
    prec, rec, f = _macro_pr(y, pred, k)
    aucs = [auroc(y == c, p[:, c]) for c in range(k)]
    ends = (y == 0) | (y == k - 1)
    expected = p @ np.arange(k)
    return {"n": int(len(y)), "accuracy": float((pred == y).mean()), "F1_macro": f, "precision_macro": prec,
            "recall_macro": rec, "AUROC": float(np.nanmean(aucs)),
            "AUROC_BL1_PA4": auroc(y[ends] == k - 1, expected[ends]) if ends.any() else float("nan")}
