"""Why long holds keep the guided passes: mean generated PSPI over a 30 s hold (check_sustained's plateau at 1.0)
with the four guided passes, the distilled network with the long-hold rule (the default) and the distilled network
alone (the rule off), at two expressiveness levels, against the simulator's 10th-90th percentile band 15-30 s after
onset (from ``check_sustained.py --reference``, when given).

    python3 benchmarks/plot_distilled_hold.py [--samples 6] [--reference sim_ref.npz]
        [--out docs/figures/distilled_hold.png]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from check_sustained import FPS, plateau

from painface.express import PainDiffusion
from painface.face.code import FEATURE_NAMES, pspi
from painface.model import distill


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--levels", default="0.5,1.0", help="expressiveness values")
    ap.add_argument("--reference", default=None, help="check_sustained.py's simulator reference npz (optional)")
    ap.add_argument("--out", default="docs/figures/distilled_hold.png")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    guided = PainDiffusion.load(args.checkpoint, distilled=False)
    student = PainDiffusion.load(args.checkpoint, distilled=True)
    stim = plateau()
    t = np.arange(stim.size) / FPS
    levels = [float(v) for v in args.levels.split(",")]
    ref = np.load(args.reference) if args.reference else None
    fig, axes = plt.subplots(1, len(levels), figsize=(5.5 * len(levels), 3.4), sharey=True, constrained_layout=True)
    for ax, level in zip(np.atleast_1d(axes), levels, strict=True):
        runs = {"four guided passes": (guided, None), "distilled + long-hold rule (default)": (student, None),
                "distilled alone": (student, -1.0)}
        for label, (model, gate) in runs.items():
            keep = distill.HOLD_GATE
            if gate is not None:
                distill.HOLD_GATE = gate  # no frame counts as held
            try:
                p = pspi(model.generate(stim, level, samples=args.samples, seed=0).codes, FEATURE_NAMES).mean(0)
            finally:
                distill.HOLD_GATE = keep
            late = p[int(20 * FPS):int(35 * FPS)].mean()
            ax.plot(t, p, lw=1.2, label=f"{label} (15-30 s: {late:.2f})")
            print(f"expressiveness {level:g}: {label}: mean PSPI 15-30 s after onset {late:.2f}", flush=True)
        if ref is not None:
            sim_e, sim_late = ref["expr"], ref["late"]
            near = np.abs(sim_e - level) <= 0.3 * max(level, 0.1)
            if near.any():
                lo, hi = np.percentile(sim_late[near], [10, 90])
                ax.axhspan(lo, hi, xmin=20 / t[-1], xmax=35 / t[-1], color="0.85", label="simulator p10-p90, 15-30 s")
        ax.plot(t, 4 * stim, color="tab:red", lw=0.8, alpha=0.5, label="stimulus x4")
        ax.set_title(f"30 s hold at the tolerance, expressiveness {level:g}, {args.samples} samples")
        ax.set_xlabel("time (s)")
        ax.legend(fontsize=7, loc="upper right")
    np.atleast_1d(axes)[0].set_ylabel("mean generated PSPI")
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
