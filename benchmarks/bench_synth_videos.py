"""Throughput of ``painface synth videos``: clips/s on this machine, median of several runs.

Each run makes a fresh folder of ``--subjects`` subjects x 5 classes x ``--clips`` clips x ``--views``
(137 frames each: simulation, rendering, alignment, H.264 encoding, tables) in a temporary folder with
``--workers`` processes, timed end to end, after one warm-up run. Prints the median clips/s, the
load average at the start and end, and the time the default dataset (87 subjects x 5 x 20 x 2 views =
17,400 clips at 160 px) would take at that rate.
Usage: ``python benchmarks/bench_synth_videos.py [--subjects 2] [--clips 1] [--runs 3] [--workers 1] [--size 96]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from painface.synth.videos import SynthVideosConfig, make_videos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--views", default="front,side")
    ap.add_argument("--source", default="corpus")
    args = ap.parse_args()
    views = tuple(args.views.split(","))
    cfg = SynthVideosConfig(subjects=args.subjects, clips=args.clips, size=args.size, views=views, source=args.source)
    with tempfile.TemporaryDirectory() as d:  # warm-up: numba kernels from the on-disk cache, imports
        make_videos(SynthVideosConfig(subjects=1, clips=1, size=args.size, views=views[:1], source=args.source),
                    Path(d) / "w", workers=1, progress=False)
    load0 = os.getloadavg()
    rates = []
    for _ in range(args.runs):
        d = tempfile.mkdtemp()
        t0 = time.perf_counter()
        make_videos(cfg, Path(d) / "v", workers=args.workers, progress=False)
        rates.append(cfg.n_clips / (time.perf_counter() - t0))
        shutil.rmtree(d)
    med = float(np.median(rates))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {load0[0]:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end; {cfg.n_clips} clips per run ({args.subjects} subjects x 5 x "
          f"{args.clips} x {len(views)} views, {args.size} px, source {args.source}), {args.workers} workers")
    print("clips/s per run: " + ", ".join(f"{r:.2f}" for r in rates))
    print(f"median {med:.2f} clips/s -> the default 17,400 clips in {17400 / med / 3600:.1f} h")


if __name__ == "__main__":
    main()
