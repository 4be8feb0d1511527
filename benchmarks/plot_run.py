"""Plot a training run's loss curves (RUN/log.jsonl) to a PNG.

    python3 benchmarks/plot_run.py runs/shipped --out docs/figures/training_loss.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder with log.jsonl")
    ap.add_argument("--out", type=Path, default=Path("docs/figures/training_loss.png"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in (args.run / "log.jsonl").read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"{args.run}/log.jsonl: no records")
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(steps, [r["loss"] for r in rows], label="training loss (running mean)")
    ax.plot(steps, [r["val_loss"] for r in rows], label="validation loss (26 held-out subjects)", marker="o", ms=3)
    ax.set_xlabel("step (batch 32 windows of 64 frames)")
    ax.set_ylabel("EDM-weighted loss")
    ax.set_title(f"{args.run.name}: {steps[-1]} steps, {sum(1 for _ in rows)} checkpoints")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}; last: step {steps[-1]}, loss {rows[-1]['loss']:.4f}, val {rows[-1]['val_loss']:.4f}")


if __name__ == "__main__":
    main()
