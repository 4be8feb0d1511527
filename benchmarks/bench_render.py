"""Rendering speed of the built-in face: frames/s at 256 and 512 pixels, 1 and 2 Numba threads.

Renders a batch of deformed faces (random AU codes, seeded) per call; prints the median over several
runs and the ratio to the 256 px / 1 thread baseline measured in the same run. Also times the rig.
Usage: ``python benchmarks/bench_render.py [--frames 32] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import platform
import time

import numba
import numpy as np

from painface.face.code import AU_NAMES, FEATURE_NAMES
from painface.face.mesh import vertex_colors
from painface.face.render import render
from painface.face.rig import build_rig, deform


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rig = build_rig()
    codes = np.zeros((args.frames, len(FEATURE_NAMES)), np.float32)
    codes[:, : len(AU_NAMES)] = rng.uniform(0, 3, (args.frames, len(AU_NAMES)))
    codes[:, len(AU_NAMES) :] = rng.uniform(-10, 10, (args.frames, 3))
    verts = deform(codes, rig)
    colors = vertex_colors(rig.mesh)
    print(
        f"machine: {platform.processor() or platform.machine()}, {numba.config.NUMBA_NUM_THREADS} cores "
        f"visible; mesh {rig.mesh.n_vertices} vertices, {len(rig.mesh.triangles)} triangles; "
        f"batch {args.frames} frames; median of {args.repeats}"
    )
    t_rig = median_seconds(lambda: deform(codes, rig), args.repeats)
    print(f"rig deform: {args.frames / t_rig:8.0f} frames/s")
    print(f"{'size':>5} {'threads':>7} {'ms/frame':>9} {'frames/s':>9} {'vs 256/1':>9}")
    base = None
    for size in (256, 512):
        for threads in (1, 2):
            if threads > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(threads)
            t = median_seconds(lambda s=size: render(verts, rig.mesh.triangles, colors, size=s), args.repeats)
            fps = args.frames / t
            base = base or fps
            print(f"{size:>5} {threads:>7} {1000 * t / args.frames:>9.2f} {fps:>9.1f} {fps / base:>8.2f}x")


if __name__ == "__main__":
    main()
