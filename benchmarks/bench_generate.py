"""Generation speed of PainDiffusion as a real-time factor at 25 fps, per inference backend.

Real-time factor (RTF) = seconds of face generated per second of compute (> 1: faster than real time).
Runs the checkpoint's sampler settings (or ``--steps``) for the full-sequence and pyramid schedules at batch 1
and 8, for every inference backend in ``--inference`` (painface.model.inference; the first is the baseline),
the backends interleaved within each repeat so that they share the machine's load; prints the median of
``--repeats`` runs, the ratio against the baseline measured in the same run, and the load average.

    python3 benchmarks/bench_generate.py [--checkpoint PATH] [--seconds 60] [--repeats 5] [--threads 2]
        [--inference torch,auto] [--steps N] [--stimulus sine|biovid|elbow]

``--inference auto,auto+distilled`` compares the guided sampler's four network passes per solver stage with the
distilled network's one (painface.model.distill) on the same backend.
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


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--inference", default="torch,auto", help="backends, the first is the baseline; NAME+distilled: "
                    "with the distilled guided network (painface distill), else with the four guided passes")
    ap.add_argument("--schedules", default="full,pyramid")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--steps", type=int, default=None, help="solver steps (default: the checkpoint's)")
    ap.add_argument("--stimulus", default="sine", choices=["sine", "biovid", "elbow"],
                    help="sine: a rectified sine (about half rest); biovid / elbow: what `painface generate` makes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    backends = args.inference.split(",")
    models = {b: PainDiffusion.load(args.checkpoint, device=args.device, inference=b.removesuffix("+distilled"),
                                    distilled=b.endswith("+distilled")) for b in backends}
    fps = models[backends[0]].fps
    frames = int(args.seconds * fps)
    if args.stimulus == "sine":
        stim = np.clip(np.sin(np.linspace(0, 12, frames)), 0, 1).astype(np.float32)
    else:
        from painface.express import make_stimulus

        stim = np.asarray(make_stimulus(args.stimulus, args.seconds, fps, 0, None, False), np.float32)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {args.threads}, device {args.device}; {args.stimulus} stimulus, {args.seconds:g} s at {fps:g} fps, "
          f"median of {args.repeats}; "
          f"load average at start {load()}")
    print("| schedule | batch | backend | seconds of compute | real-time factor (per sequence x batch) | ratio vs "
          f"{backends[0]} |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m in models.values():
        m.generate(stim[:200], 1.0, "Neutral", samples=1, steps=2)  # warm-up: graphs built / exported
        m.generate(stim[:200], 1.0, "Neutral", samples=8, steps=2)
    for schedule in args.schedules.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            times: dict[str, list[float]] = {b: [] for b in backends}
            for r in range(args.repeats):
                for b in backends:
                    t0 = time.perf_counter()
                    models[b].generate(stim, 1.0, "Neutral", samples=batch, seed=r, schedule=schedule, steps=args.steps)
                    times[b].append(time.perf_counter() - t0)
            base = statistics.median(times[backends[0]])
            for b in backends:
                med = statistics.median(times[b])
                print(f"| {schedule} | {batch} | {b} | {med:.2f} | {args.seconds * batch / med:.1f} | "
                      f"{base / med:.2f}x |", flush=True)
    print(f"load average at end {load()}")


if __name__ == "__main__":
    main()
