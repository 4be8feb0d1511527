"""How much of PainDiffusion's distance to the data is frame-to-frame jitter: re-score the generations that
``painface evaluate`` saved (``generations.npz``) after a Gaussian low-pass of the AUs over time (sigma 1, 2,
3, 5 frames), beside the stimulus lookup. Run it on a ``--split val`` evaluation (choosing settings).

    python3 benchmarks/check_smoothing.py results/val/generations.npz
"""

from __future__ import annotations

import sys

import numpy as np
from scipy.ndimage import gaussian_filter1d

from painface.evaluate import metrics as M
from painface.face.code import AU_NAMES, FEATURE_NAMES, pspi

FPS, LEAD, SPAN = 25.0, 160, 250


def report(name: str, face: np.ndarray, gt: np.ndarray, gt_pspi: np.ndarray) -> None:
    """One row: Sim, Corr, PSPI W1, Peak W1 (means over tries) and AU speed of ``face`` [P, K, L, D]."""
    ps = pspi(face, FEATURE_NAMES)
    k = range(face.shape[1])
    sim = np.mean([M.sim(ps[:, i], gt_pspi).mean() for i in k])
    corr = np.mean([M.pearson(ps[:, i], gt_pspi).mean() for i in k])
    w1 = np.mean([M.pspi_w1(ps[:, i], gt_pspi) for i in k])
    peak = np.mean([M.peak_w1(ps[:, i], gt_pspi, LEAD, SPAN) for i in k])
    speed = M.au_speed(face.reshape(-1, *face.shape[2:]), FEATURE_NAMES, FPS).mean()
    gt_speed = M.au_speed(gt, FEATURE_NAMES, FPS).mean()
    print(f"| {name} | {sim:.3f} | {corr:.3f} | {w1:.3f} | {peak:.3f} | {speed:.3f} (gt {gt_speed:.3f}) |")


def main() -> None:
    with np.load(sys.argv[1]) as g:
        arrays = {k: g[k] for k in g.files}
    gt, gt_pspi = arrays["ground_truth"], arrays["ground_truth_pspi"]
    au = np.array([n in AU_NAMES for n in FEATURE_NAMES])
    for mode in ("seeded", "cold"):
        print(f"\n{mode}\n| method | Sim | Corr | PSPI W1 | Peak W1 | AU speed |\n|---|---:|---:|---:|---:|---:|")
        report("stimulus lookup", arrays[f"{mode}/stimulus_lookup/face"], gt, gt_pspi)
        face = arrays[f"{mode}/paindiffusion/face"]
        report("PainDiffusion", face, gt, gt_pspi)
        for sigma in (1, 2, 3, 5):
            smooth = face.copy()
            smooth[..., au] = gaussian_filter1d(face[..., au], sigma, axis=2, mode="nearest")
            report(f"low-pass, sigma {sigma} frames", smooth, gt, gt_pspi)


if __name__ == "__main__":
    main()
