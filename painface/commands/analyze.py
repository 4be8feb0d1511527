"""``painface analyze PATH... --out table.csv``: read faces in images, folders and videos into a table.

One row per face per frame (columns in :mod:`painface.analyze.detector`): head pose, the 52
blendshapes, AU intensities, PSPI. A file that cannot be read or holds no face gives a row with
``face_detected`` false (and ``error`` set when unreadable); the run goes on and the table is written
atomically (``.csv``, or ``.parquet`` with pyarrow). ``--plot`` also saves a figure per input: the
per-frame AU/PSPI plot for a video, the image with its landmarks and readout for an image.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from painface.errors import InputError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, or folders of them")
    parser.add_argument("--out", required=True, help="the table to write: .csv or .parquet")
    parser.add_argument("--landmarks", action="store_true", help="add the 478 landmarks (x_i, y_i, z_i pixels)")
    parser.add_argument("--calibration", default="offset",
                        help="AU map: 'offset' (default; blendshape less its resting level on rendered neutral "
                             "faces), 'regression' (fitted on rendered faces), 'uncalibrated' (blendshape x 5) "
                             "or a calibration JSON")
    parser.add_argument("--every", type=int, default=1, help="analyze every n-th video frame (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop each video after this many frames")
    parser.add_argument("--max-faces", type=int, default=1, help="faces per frame (default 1)")
    parser.add_argument("--min-score", type=float, default=0.5, help="face detection threshold 0..1 (default 0.5)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--plot", default=None, metavar="DIR", help="save a figure per input into DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run(args: argparse.Namespace) -> int:
    from painface.analyze.detector import Detector, write_table

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out: expected a .csv or .parquet file name, got {args.out!r}")
    if out.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("--out .parquet needs pyarrow (pip install pyarrow); or write .csv") from None
    for name in ("every", "max_faces", "threads"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {getattr(args, name)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames: expected an integer >= 1, got {args.max_frames}")
    if not 0.0 < args.min_score < 1.0:
        raise InputError(f"--min-score: expected a number in 0..1, got {args.min_score}")
    if args.calibration not in ("offset", "regression", "uncalibrated") and not Path(args.calibration).is_file():
        raise InputError(f"--calibration: {args.calibration!r} is none of offset, regression, uncalibrated "
                         "nor a file")
    det = Detector(calibration=args.calibration, threads=args.threads, min_score=args.min_score,
                   max_faces=args.max_faces)
    df = det.detect(args.paths, landmarks=args.landmarks, every=args.every, max_frames=args.max_frames,
                    progress=not args.quiet)
    write_table(df, out)
    if args.plot:
        from painface.analyze.plot import plot_inputs

        plot_inputs(df, Path(args.plot))
    if not args.quiet:
        files = df["file"].nunique()
        errors = df.loc[df["error"] != "", ["file", "error"]].drop_duplicates()
        frames = df.groupby(["file", "frame"])["face_detected"].any()
        print(f"{len(df)} rows from {files} file(s): a face in {int(frames.sum())} of {len(frames)} frames; "
              f"{len(errors)} file(s) with errors -> {out}")
        for msg in errors["error"]:
            print(f"  error: {msg}", file=sys.stderr)
    return 0
