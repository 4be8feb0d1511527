"""``painface classify-video``: pain scores of video clips with a ``train-video`` model (docs/videos.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "video_binary.safetensors"


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", type=Path, nargs="+", help="mp4 clips and/or BioVid-Part-A-style folders")
    p.add_argument("--model", type=Path, default=SHIPPED,
                   help="a train-video checkpoint, or a shipped one by name: binary (default; BL1 vs PA4 per clip), "
                        "person (BL1 vs PA4 calibrated on each person's clips: at least 4 per person and view) or "
                        "5class")
    p.add_argument("--out", type=Path, default=None, help="write the table here (.csv)")
    p.add_argument("--threads", type=int, default=1)


def run(args: argparse.Namespace) -> int:
    from painface.video.classify import classify_from_args

    return classify_from_args(args)
