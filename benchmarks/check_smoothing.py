"""How much of PainDiffusion's distance to the data is frame-to-frame jitter: re-score the generations that
``painface evaluate`` saved (``generations.npz``) after a Gaussian low-pass of the AUs over time (sigma 1, 2,
3, 5 frames), beside the stimulus lookup. Run it on a ``--split val`` evaluation (choosing settings).

    python3 benchmarks/check_smoothing.py results/val/generations.npz
"""
import sys

import numpy as np
from scipy.ndimage import gaussian_filter1d

from painface.evaluate import metrics as M
from painface.face.code import AU_NAMES, FEATURE_NAMES, pspi

g = np.load(sys.argv[1])
gt, gtp = g["ground_truth"], g["ground_truth_pspi"]
au = np.array([n in AU_NAMES for n in FEATURE_NAMES])
def rep(name, face):
    P, K = face.shape[:2]
    ps = pspi(face, FEATURE_NAMES)
    sim = np.mean([M.sim(ps[:, k], gtp).mean() for k in range(K)])
    cor = np.mean([M.pearson(ps[:, k], gtp).mean() for k in range(K)])
    w1 = np.mean([M.pspi_w1(ps[:, k], gtp) for k in range(K)])
    pk = np.mean([M.peak_w1(ps[:, k], gtp, 160, 250) for k in range(K)])
    sp = M.au_speed(face.reshape(-1, *face.shape[2:]), FEATURE_NAMES, 25).mean()
    print(f"{name:24s} Sim {sim:.3f} Corr {cor:.3f} W1 {w1:.3f} PeakW1 {pk:.3f} speed {sp:.3f} (gt {M.au_speed(gt, FEATURE_NAMES, 25).mean():.3f})")
for mode in ("seeded", "cold"):
    print(mode)
    rep("lookup", g[f"{mode}/stimulus_lookup/face"])
    f = g[f"{mode}/paindiffusion/face"]
    rep("paindiffusion", f)
    for s in (1, 2, 3, 5):
        sm = f.copy(); sm[..., au] = gaussian_filter1d(f[..., au], s, axis=2, mode="nearest")
        rep(f"pd gauss {s}", sm)
