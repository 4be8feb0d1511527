"""Speed of ``painface analyze``: images/s and video frames/s on 1 and 2 interpreter threads.

Inputs are built from scikit-image's ``astronaut`` photo (a real face, shipped with scikit-image), so
the benchmark needs no data: ``--images`` copies with small shifts and scales saved as JPEG (read from
disk, decoded, detected, landmarks, blendshapes, pose, AUs), and an mp4 of ``--frames`` frames of the
same jittered photo (decoded by PyAV). Each setting is run ``--repeats`` times; the table gives the
median and the ratio against 1 thread measured in the same run. Faces/s = images/s here (one face
per image).

Usage: ``python benchmarks/bench_analyze.py [--images 40] [--frames 150] [--repeats 5] [--threads 1 2]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def jittered(n: int, seed: int = 0, size: int = 512) -> list[np.ndarray]:
    """``n`` RGB frames ``[size, size, 3]``: the astronaut photo shifted by up to 30 px and scaled 0.9-1.1."""
    from skimage import data

    base = Image.fromarray(data.astronaut())
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = rng.uniform(0.9, 1.1)
        dx, dy = rng.uniform(-30, 30, 2)
        img = base.transform((size, size), Image.Transform.AFFINE, (1 / s, 0, dx, 0, 1 / s, dy),
                             resample=Image.Resampling.BILINEAR)
        out.append(np.asarray(img))
    return out


def write_video(frames: list[np.ndarray], path: Path, fps: int = 25) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median wall seconds and median process CPU seconds of ``fn()`` over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    from painface.analyze import Detector

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i, f in enumerate(jittered(args.images, seed=1)):
            Image.fromarray(f).save(folder / f"{i:03d}.jpg", quality=92)
        video = Path(tmp) / "clip.mp4"
        write_video(jittered(args.frames, seed=2), video)
        rows = []
        for n in args.threads:
            det = Detector(threads=n)
            det.detect(folder, progress=False)  # warm-up
            t_img, c_img = timed(lambda d=det: d.detect(folder, progress=False), args.repeats)
            t_vid, c_vid = timed(lambda d=det: d.detect_video(video, progress=False), args.repeats)
            rows.append((n, args.images / t_img, 1000 * c_img / args.images, args.frames / t_vid,
                         1000 * c_vid / args.frames))
    base_img, base_vid = rows[0][1], rows[0][3]
    print(f"painface analyze speed, median of {args.repeats} runs ({args.images} JPEG images 512 px from disk; "
          f"{args.frames}-frame 512 px mp4); CPU ms = process CPU time per face (all threads)")
    print("| threads | images/s | vs 1st | CPU ms/image | video frames/s | vs 1st | CPU ms/frame |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, img, cimg, vid, cvid in rows:
        print(f"| {n} | {img:.1f} | {img / base_img:.2f}x | {cimg:.1f} | {vid:.1f} | {vid / base_vid:.2f}x "
              f"| {cvid:.1f} |")


if __name__ == "__main__":
    main()
