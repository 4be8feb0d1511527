"""``painface synth faces`` (3DPain-style images, :mod:`painface.synth.faces`) and ``painface synth videos``
(BioVid-Part-A-style clips, :mod:`painface.synth.videos`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    f = sub.add_parser("faces", help="images of synthetic identities in pain and not, with exact AU/PSPI labels",
                       description="3DPain-style dataset: per identity a neutral face and --expressions "
                                   "expressions (pain patterns and hard negatives) from --views views; "
                                   "metadata.csv, heatmaps, landmarks, datasheet. Resumable.")
    f.add_argument("--out", type=Path, required=True, help="output folder (new, empty, or this dataset to resume)")
    f.add_argument("--identities", type=int, default=2500)
    f.add_argument("--expressions", type=int, default=10, help="expressions per identity besides the neutral one")
    f.add_argument("--negatives", type=int, default=2, help="how many of --expressions are hard negatives")
    f.add_argument("--views", type=int, default=3, help="camera views (yaw 0, -35, +35, -60, +60, ...)")
    f.add_argument("--size", type=int, default=224, help="image size in pixels (square)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--format", choices=("jpg", "png"), default="jpg", help="jpg (quality 95, 4:4:4) or png")
    f.add_argument("--blur", action="store_true", help="mild random blur (0-1.2 px)")
    f.add_argument("--noise", action="store_true", help="random sensor noise (sd 0-6 of 255)")
    f.add_argument("--jpeg-artifacts", action="store_true", help="re-encode at a random JPEG quality 40-95")
    f.add_argument("--shard-size", type=int, default=20, help="identities per shard (the unit of resuming)")
    f.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU core)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("videos", help="BioVid-Part-A-style pain clips of virtual subjects (BL1, PA1..PA4)",
                       description="5.5 s clips around every heat stimulus of virtual subjects, one identity "
                                   "each, from every view; samples.csv, face codes and exact PSPI. Resumable.")
    v.add_argument("--out", type=Path, required=True, help="output folder (new, empty, or this dataset to resume)")
    v.add_argument("--subjects", type=int, default=87)
    v.add_argument("--views", default="front,side", help="comma-separated: front, side, left, half, profile")
    v.add_argument("--source", default="corpus", help="motion: corpus (the simulator) or paindiffusion")
    v.add_argument("--size", type=int, default=160, help="frame size in pixels (square)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--clips", type=int, default=20, help="clips per class per subject (1..20)")
    v.add_argument("--classes", default="BL1,PA1,PA2,PA3,PA4",
                   help="comma-separated classes to film (BL1 and PA1..PA4; BL1,PA4 for the binary task only)")
    v.add_argument("--split", default="all", help="film all subjects, or only the simulator's train, val or test ones")
    v.add_argument("--checkpoint", default=None, help="PainDiffusion checkpoint (default: the shipped one)")
    v.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    v.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from painface.errors import InputError
    from painface.synth.faces import SynthFacesConfig, make_faces

    if args.what == "videos":
        return run_videos(args)

    if args.workers is not None and not 1 <= args.workers <= 64:
        raise InputError(f"--workers: expected 1..64, got {args.workers}")
    cfg = SynthFacesConfig(identities=args.identities, expressions=args.expressions, negatives=args.negatives,
                           views=args.views, size=args.size, seed=args.seed, image_format=args.format,
                           blur=args.blur, noise=args.noise, jpeg_artifacts=args.jpeg_artifacts,
                           shard_size=args.shard_size)
    meta = make_faces(cfg, args.out, workers=args.workers, progress=not args.quiet)
    c = meta["counts"]
    print(f"wrote {args.out}: {c['images']} images of {c['identities']} identities "
          f"(train/val/test identities {c['identities_by_split']})")
    return 0


def run_videos(args: argparse.Namespace) -> int:
    from painface.errors import InputError
    from painface.synth.videos import SynthVideosConfig, make_videos

    if not 1 <= args.workers <= 64:
        raise InputError(f"--workers: expected 1..64, got {args.workers}")
    views = tuple(v.strip() for v in args.views.split(",") if v.strip())
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip())
    cfg = SynthVideosConfig(subjects=args.subjects, views=views, source=args.source, size=args.size, seed=args.seed,
                            clips=args.clips, split=args.split, checkpoint=args.checkpoint, classes=classes)
    meta = make_videos(cfg, args.out, workers=args.workers, progress=not args.quiet)
    c = meta["counts"]
    print(f"wrote {args.out}: {c['clips']} clips ({c['samples']} samples x {len(views)} views) of "
          f"{c['subjects']} subjects (train/val {c['subjects_by_split']})")
    return 0
