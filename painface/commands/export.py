"""``painface export``: a face-code file -> ARKit CSV/JSON or an animated glTF (.glb)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from painface.face.export import FACE_MODELS, FORMATS

    parser.add_argument("codes", type=Path, help="face-code npz (painface generate output or a corpus subject)")
    parser.add_argument("--to", choices=FORMATS, required=True, help="output format")
    parser.add_argument("--out", type=Path, required=True, help="output file")
    parser.add_argument("--sample", type=int, default=0, help="which sample of a [samples, frames, D] file")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when the file stores none")
    parser.add_argument("--identity", type=int, default=None, help="glb: seed of a generated identity")
    parser.add_argument("--face", choices=FACE_MODELS, default="head", help="glb: the whole head (default) or the mask")


def run(args: argparse.Namespace) -> int:
    from painface.errors import InputError
    from painface.face.code import feature_space
    from painface.face.codes import load_codes
    from painface.face.export import export
    from painface.face.identity import make_identity
    from painface.io import check_npz, check_output

    check_npz(args.codes, "codes")  # input checks first
    check_output(args.out, "--out")
    codes = load_codes(args.codes, args.sample, args.fps)
    if feature_space(codes.names) != "facs":
        raise InputError(f"{args.codes}: export needs a FACS-space face code (AUs + head pose); got FLAME features")
    ident = make_identity(args.identity) if args.identity is not None else None
    out = export(codes.face, codes.fps, args.to, args.out, ident, args.face)
    print(f"wrote {out} ({codes.face.shape[0]} frames, {args.to})")
    return 0
