"""Generation speed of PainDiffusion as a real-time factor at 25 fps.

Real-time factor (RTF) = seconds of face generated per second of compute (> 1: faster than real time).
Runs the default sampler settings (20 steps, window 64, horizon 48) for the full-sequence and pyramid
schedules at batch 1 and 8, median of several runs, and prints a markdown table.

    python3 benchmarks/bench_generate.py [--checkpoint PATH] [--seconds 60] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from painface.express import PainDiffusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = PainDiffusion.load(args.checkpoint, device=args.device)
    frames = int(args.seconds * model.fps)
    stim = np.clip(np.sin(np.linspace(0, 12, frames)), 0, 1).astype(np.float32)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads "
        f"{args.threads}, device {args.device}; {args.seconds:g} s at {model.fps:g} fps, median of {args.repeats}"
    )
    print("| schedule | batch | seconds of compute | real-time factor (per sequence x batch) |")
    print("| --- | --- | --- | --- |")
    model.generate(stim[:96], 1.0, "Neutral", samples=1)  # warm-up
    for schedule in ("full", "pyramid"):
        for batch in (1, 8):
            times = []
            for r in range(args.repeats):
                t0 = time.perf_counter()
                model.generate(stim, 1.0, "Neutral", samples=batch, seed=r, schedule=schedule)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(f"| {schedule} | {batch} | {med:.2f} | {args.seconds * batch / med:.1f} |")


if __name__ == "__main__":
    main()
