"""Throughput of ``painface synth faces``: images/s on this machine, median of several runs.

Each run makes a fresh dataset of ``--identities`` identities (defaults as the command: 10 expressions,
3 views, 224 px, JPEG) in a temporary folder with ``--workers`` processes, and times it end to end
(rendering, heatmaps, alignment, encoding, tables). Prints the median images/s and the time the default
82,500-image dataset would take at that rate.
Usage: ``python benchmarks/bench_synth.py [--identities 24] [--runs 3] [--workers 2] [--size 224]``
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

from painface.synth.faces import SynthFacesConfig, make_faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=24)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args()
    cfg = SynthFacesConfig(identities=args.identities, size=args.size, shard_size=max(1, args.identities // 8))
    # one small warm-up run (numba kernels from the on-disk cache, imports)
    with tempfile.TemporaryDirectory() as d:
        make_faces(SynthFacesConfig(identities=1, size=args.size), Path(d) / "w", workers=1, progress=False)
    rates = []
    for _ in range(args.runs):
        d = tempfile.mkdtemp()
        t0 = time.perf_counter()
        make_faces(cfg, Path(d) / "ds", workers=args.workers, progress=False)
        dt = time.perf_counter() - t0
        shutil.rmtree(d)
        rates.append(cfg.n_images / dt)
    med = float(np.median(rates))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {cfg.n_images} images per run "
          f"({args.identities} identities x 11 x 3, {args.size} px), {args.workers} workers")
    print("images/s per run: " + ", ".join(f"{r:.1f}" for r in rates))
    print(f"median {med:.1f} images/s -> 82,500 images in {82500 / med / 60:.1f} min")


if __name__ == "__main__":
    main()
