"""Training throughput of PainDiffusion (frames per second) on a small simulated corpus.

python3 benchmarks/bench_train.py [--steps 60] [--batch-size 32] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol
from painface.train import TrainConfig, Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = simulate_corpus(
            Path(tmp) / "c", n_subjects=6, seed=0, protocol=HeatProtocol(repetitions=4), progress=False
        )
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {args.device}; "
            f"batch {args.batch_size} x 64 frames, default network, median of {args.repeats} runs of {args.steps} steps"
        )
        print("| threads | frames/s | steps/s |")
        print("| --- | --- | --- |")
        for threads in args.threads:
            torch.set_num_threads(threads)
            rates = []
            for r in range(args.repeats):
                cfg = TrainConfig(
                    steps=args.steps, batch_size=args.batch_size, ckpt_every=10**9, val_every=10**9, warmup=10, seed=r
                )
                trainer = Trainer(corpus, Path(tmp) / f"run{threads}_{r}", cfg, device=args.device, progress=False)
                trainer.run()  # includes one final validation and checkpoint
                t0 = time.perf_counter()
                trainer.cfg.steps += args.steps
                trainer.run()
                rates.append(args.steps / (time.perf_counter() - t0))
            med = statistics.median(rates)
            print(f"| {threads} | {med * args.batch_size * 64:.0f} | {med:.2f} |")


if __name__ == "__main__":
    main()
