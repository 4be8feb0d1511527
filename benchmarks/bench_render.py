"""Rendering speed of the whole head and of the older face mask: frames/s at 256 and 512 pixels, 1 and 2
Numba threads.

Renders a batch of deformed faces (random AU codes, seeded) per call; prints the median over several
runs and the ratio to the mask at 256 px / 1 thread measured in the same run. Also times the rigs.
The head is timed as ``painface render`` draws it: deform (eyes looking at the camera) + fold colours +
per-pixel shading.
Usage: ``python benchmarks/bench_render.py [--frames 32] [--repeats 5] [--face head|mask|both]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np

from painface.face import head as fh
from painface.face.code import AU_NAMES, FEATURE_NAMES
from painface.face.identity import make_identity
from painface.face.mesh import vertex_colors
from painface.face.render import HEAD_LIGHTING, render
from painface.face.rig import build_rig, deform
from painface.face.video import head_camera

CPU: list[float] = []


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs; the median CPU time (all threads of this process)
    of the same runs is appended to :data:`CPU` (on a shared machine, frames per CPU-second is the
    figure that does not depend on what else runs)."""
    fn()  # warm-up (compilation, caches)
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    CPU.append(float(np.median(cpu)))
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--face", choices=("head", "mask", "both"), default="both")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    codes = np.zeros((args.frames, len(FEATURE_NAMES)), np.float32)
    codes[:, : len(AU_NAMES)] = rng.uniform(0, 3, (args.frames, len(AU_NAMES)))
    codes[:, len(AU_NAMES) :] = rng.uniform(-10, 10, (args.frames, 3))
    jobs = {}
    if args.face in ("mask", "both"):
        rig = build_rig()
        colors = vertex_colors(rig.mesh)
        verts = deform(codes, rig)
        jobs["mask"] = (lambda: deform(codes, rig), lambda s: render(verts, rig.mesh.triangles, colors, size=s),
                        f"{rig.mesh.n_vertices} vertices, {len(rig.mesh.triangles)} triangles")
    if args.face in ("head", "both"):
        head = fh.build_head(make_identity(3))  # a long-haired identity: the largest mesh
        cam = head_camera()
        eye = cam.position()

        def draw_head(s: int) -> np.ndarray:
            v = fh.deform(codes, head, look_at=eye)
            return render(v, head.triangles, fh.frame_colors(codes, head, linear=True), size=s, camera=cam,
                          lighting=HEAD_LIGHTING, specular=head.specular, linear_colors=True, cull_back=True)

        jobs["head"] = (lambda: fh.deform(codes, head, look_at=eye), draw_head,
                        f"{head.n_vertices} vertices, {len(head.triangles)} triangles")
    print(f"machine: {platform.processor() or platform.machine()}, {numba.config.NUMBA_NUM_THREADS} cores "
          f"visible; batch {args.frames} frames; median of {args.repeats}")
    print(f"{'face':>5} {'size':>5} {'threads':>7} {'ms/frame':>9} {'frames/s':>9} {'vs first':>9} "
          f"{'frames/CPU-s':>12}")
    base = None
    for name, (rig_fn, draw, desc) in jobs.items():
        t_rig = median_seconds(rig_fn, args.repeats)
        print(f"  (load average {os.getloadavg()[0]:.1f})")
        print(f"{name}: {desc}; rig alone {args.frames / t_rig:.0f} frames/s")
        for size in (256, 512):
            for threads in (1, 2):
                if threads > numba.config.NUMBA_NUM_THREADS:
                    continue
                numba.set_num_threads(threads)
                t = median_seconds(lambda s=size, d=draw: d(s), args.repeats)
                fps = args.frames / t
                base = base or fps
                ms = 1000 * t / args.frames
                per_cpu = args.frames / CPU[-1]
                print(f"{name:>5} {size:>5} {threads:>7} {ms:>9.2f} {fps:>9.1f} {fps / base:>8.2f}x {per_cpu:>12.1f}")


if __name__ == "__main__":
    main()
