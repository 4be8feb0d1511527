"""``painface demo``: four virtual patients react to the BioVid protocol: demo.mp4 and demo.png."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default ./demo)")
    p.add_argument("--seconds", type=float, default=60.0, help="length (default 60)")
    p.add_argument("--size", type=int, default=256, help="face size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from painface.demo import PATIENTS, demo_stimulus, summary_figure
    from painface.errors import InputError
    from painface.express import PainDiffusion
    from painface.face.code import EMOTIONS, FEATURE_NAMES, emotion_index, pspi
    from painface.face.identity import make_identity
    from painface.face.video import render_grid_video
    from painface.io import atomic_write_bytes

    if not (np.isfinite(args.seconds) and 0 < args.seconds <= 3600):
        raise InputError(f"--seconds {args.seconds}: expected a length in seconds, > 0 and <= 3600")
    if not 16 <= args.size <= 2048:
        raise InputError(f"--size {args.size}: expected 16..2048 pixels")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder; expected an output folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {args.out}: cannot create the folder: {e.strerror or e}") from None
    t0 = time.perf_counter()
    model = PainDiffusion.load(args.checkpoint)
    stim = demo_stimulus(model.fps, args.seconds)
    emotions = np.stack([np.eye(len(EMOTIONS), dtype=np.float32)[emotion_index(p.emotion)] for p in PATIENTS])
    faces = model.generate(
        np.repeat(stim[None], len(PATIENTS), 0), [p.expressiveness for p in PATIENTS], emotions, seed=args.seed
    ).codes
    t_gen = time.perf_counter() - t0
    identities = [make_identity(p.identity_seed, sex=p.sex, skin_tone=p.skin_tone) for p in PATIENTS]
    pspis = [pspi(f, FEATURE_NAMES) for f in faces]
    render_grid_video(
        list(faces),
        [stim] * len(PATIENTS),
        pspis,
        [p.label for p in PATIENTS],
        args.out / "demo.mp4",
        model.fps,
        size=args.size,
        identities=identities,
    )
    summary_figure(args.out / "demo.png", stim, faces, model.fps, identities)
    arrays = {
        "face": faces,
        "feature_names": np.asarray(FEATURE_NAMES),
        "stimulus": stim,
        "pspi": np.stack(pspis),
        "fps": np.asarray(model.fps),
        "labels": np.asarray([p.label for p in PATIENTS]),
    }
    atomic_write_bytes(args.out / "demo.npz", lambda fh: np.savez_compressed(fh, **arrays))
    total = time.perf_counter() - t0
    print(
        f"wrote {args.out}/demo.mp4, demo.png, demo.npz: {len(PATIENTS)} patients x {args.seconds:g} s "
        f"(generation {t_gen:.1f} s, total {total:.1f} s)"
    )
    return 0
