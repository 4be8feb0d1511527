"""No divergence: generate 10,000 frames (400 s) in one run and compare the last 1,000 frames with the
training data.

For every feature, the mean and the variance of the last 1,000 generated frames must lie within the range
of the same statistics over all 1,000-frame chunks of the training subjects. Prints a table and writes a
figure of PSPI over the whole run.

    python3 benchmarks/check_drift.py --data corpus [--checkpoint PATH] [--out docs/figures/drift_pspi.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from painface.data.corpus import open_corpus
from painface.express import PainDiffusion
from painface.face.code import pspi
from painface.subjects.protocols import HeatProtocol, biovid_heat

CHUNK = 1000


def training_ranges(corpus_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature [min, max] of chunk means and of chunk variances over the training subjects."""
    corpus = open_corpus(corpus_dir)
    means, variances = [], []
    for sid in corpus.ids("train"):
        face = corpus.subject(sid).face
        for s in range(0, face.shape[0] - CHUNK + 1, CHUNK):
            means.append(face[s : s + CHUNK].mean(0))
            variances.append(face[s : s + CHUNK].var(0))
    m, v = np.stack(means), np.stack(variances)
    return np.stack([m.min(0), m.max(0)]), np.stack([v.min(0), v.max(0)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("corpus"))
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/figures/drift_pspi.png"))
    args = ap.parse_args()
    model = PainDiffusion.load(args.checkpoint)
    stim = biovid_heat(43.0, 47.5, np.random.default_rng(args.seed), HeatProtocol()).normalized[: args.frames]
    face = model.generate(stim, 1.0, "Neutral", seed=args.seed).codes[0]
    names = model.feature_names
    mean_rng, var_rng = training_ranges(args.data)
    tail = face[-CHUNK:]
    m, v = tail.mean(0), tail.var(0)
    ok_m = (m >= mean_rng[0] - 1e-6) & (m <= mean_rng[1] + 1e-6)
    ok_v = (v >= var_rng[0] - 1e-6) & (v <= var_rng[1] + 1e-6)
    print(f"{face.shape[0]} frames generated; last {CHUNK} frames vs training {CHUNK}-frame chunks")
    print("| feature | mean | training range | variance | training range | within |")
    print("| --- | --- | --- | --- | --- | --- |")
    for i, n in enumerate(names):
        print(
            f"| {n} | {m[i]:.3f} | {mean_rng[0, i]:.3f}..{mean_rng[1, i]:.3f} | {v[i]:.3f} | "
            f"{var_rng[0, i]:.3f}..{var_rng[1, i]:.3f} | {'yes' if ok_m[i] and ok_v[i] else 'NO'} |"
        )
    print(f"features within range: {int((ok_m & ok_v).sum())} / {len(names)}")
    ps = pspi(face, names)
    t = np.arange(face.shape[0]) / model.fps
    fig, ax = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    ax[0].plot(t, stim, color="tab:red", lw=0.8)
    ax[0].set_ylabel("stimulus (normalized)")
    ax[1].plot(t, ps, color="k", lw=0.6)
    ax[1].axvspan(t[-CHUNK], t[-1], color="tab:blue", alpha=0.1, label=f"last {CHUNK} frames (checked)")
    ax[1].set_ylabel("generated PSPI")
    ax[1].set_xlabel("time (s)")
    ax[1].legend(loc="upper right")
    fig.suptitle(
        f"PainDiffusion, one run of {face.shape[0]} frames ({face.shape[0] / model.fps:.0f} s), "
        "BioVid protocol, expressiveness 1, Neutral"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"figure: {args.out}")


if __name__ == "__main__":
    main()
