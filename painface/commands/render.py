"""``painface render``: a face-code file -> a video (mp4/gif), the face alone or beside its plot."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("codes", type=Path, help="face-code npz (painface generate output or a corpus subject)")
    parser.add_argument("--out", type=Path, required=True, help="output video: .mp4 (H.264) or .gif")
    parser.add_argument("--size", type=int, default=256, help="face size in pixels (square; default 256)")
    parser.add_argument("--yaw", type=float, default=0.0, help="camera yaw in degrees (> 0: subject's left)")
    parser.add_argument("--layout", choices=("face", "plot"), default="plot",
                        help="face alone, or face beside a scrolling stimulus/PSPI plot (default)")
    parser.add_argument("--identity", type=int, default=None,
                        help="seed of a generated identity (default: an average adult)")
    parser.add_argument("--face", choices=("head", "mask"), default="head",
                        help="the whole head (default) or the older face mask")
    parser.add_argument("--sample", type=int, default=0, help="which sample of a [samples, frames, D] file")
    parser.add_argument("--fps", type=float, default=None, help="frame rate when the file stores none")
    parser.add_argument("--flame", type=Path, default=None, help="FLAME model (.pkl or .npz) for FLAME-space codes")


def run(args: argparse.Namespace) -> int:
    from painface.errors import InputError
    from painface.face.codes import load_codes, render_codes
    from painface.face.identity import make_identity
    from painface.io import check_npz, check_output

    check_npz(args.codes, "codes")  # input checks first: nothing is rendered for an output that cannot be written
    check_output(args.out, "--out", (".mp4", ".gif"))
    if args.flame is not None and not Path(args.flame).is_file():
        raise InputError(f"--flame {args.flame}: no such file; expected a FLAME model (.pkl or .npz)")
    codes = load_codes(args.codes, args.sample, args.fps)
    ident = make_identity(args.identity) if args.identity is not None else None
    out = render_codes(codes.face, codes.names, codes.fps, args.out, stimulus=codes.stimulus, pspi=codes.pspi,
                       size=args.size, yaw=args.yaw, layout=args.layout, identity=ident, face=args.face,
                       flame=args.flame, label=args.codes.stem, source=str(args.codes))
    print(f"wrote {out} ({codes.face.shape[0]} frames at {codes.fps:g} fps)")
    return 0
