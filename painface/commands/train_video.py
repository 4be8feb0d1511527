"""``painface train-video``: train a video pain classifier (BL1 vs PA4, or 5 classes) on synthetic and/or
BioVid Part A clips (docs/videos.md)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, help="a synth videos folder (train subjects train, val subjects test)")
    p.add_argument("--extra-data", type=Path, nargs="+", default=[],
                   help="more synth videos folders of other virtual populations (another --seed): every clip of them "
                        "trains (refused when one holds a person or a face of --data or --test)")
    p.add_argument("--real", type=Path, help="a BioVid Part A folder (licensed; video/, samples.csv)")
    p.add_argument("--protocol", default="synthetic", help="synthetic, real or mixed (synthetic + --real-subjects)")
    p.add_argument("--real-subjects", type=int, default=0, help="mixed: how many real training subjects to add")
    p.add_argument("--real-test-share", type=float, default=26 / 87, help="share of --real subjects held out")
    p.add_argument("--test", type=Path, nargs="*", default=[], help="more held-out folders (every clip is tested)")
    p.add_argument("--views", default=None, help="comma-separated views of --data/--test to use (default all)")
    p.add_argument("--encoder", default="c3d",
                   help="c3d (a small 3D CNN on grey clips), vit (frozen ViTPain per frame), face (painface analyze's "
                        "AUs and head pose per frame), vit+face, or code (a face-code reader fine-tuned on the "
                        "synthetic training clips' exact codes)")
    p.add_argument("--head", default="stats",
                   help="temporal head of the per-frame encoders (vit, face, vit+face, code; c3d has its own): stats "
                        "(clip statistics of the readings into a logistic regression) or gru")
    p.add_argument("--framing", default="none",
                   help="none (clips are face crops, as synth videos makes them) or face (crop every clip of the run "
                        "to its face first, as painface.video.framing does; stored in the model, so classify-video "
                        "crops too: for real footage such as BioVid's)")
    p.add_argument("--calibrate", default="none",
                   help="none, or person: the head reads each frame's readings minus their median over all clips of "
                        "the same person and view (label-free; classify-video then needs at least 4 clips of each "
                        "person and view; per-frame encoders only)")
    p.add_argument("--reader-steps", type=int, default=3000,
                   help="code encoder: fine-tuning steps per face-code reader (batches of --batch frames)")
    p.add_argument("--reader-init", type=Path, default=None,
                   help="code encoder: the ViTPain checkpoint the readers start from (default: the shipped one)")
    p.add_argument("--reader-folds", type=int, default=2,
                   help="code encoder: folds of training subjects for cross-fitted readings (1: no cross-fitting)")
    p.add_argument("--task", default="binary", help="binary (BL1 vs PA4) or 5class (BL1, PA1..PA4)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--stride", type=int, default=8)
    p.add_argument("--size", type=int, default=48, help="c3d input side in pixels")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--epochs", type=int, default=None, help="default: c3d 30, gru 60, stats 200")
    p.add_argument("--lr", type=float, default=None, help="default: c3d 2e-3, gru 3e-3, stats 1e-2")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=None, help="folder for prepared inputs (reused by later runs)")
    p.add_argument("--out", type=Path, required=True, help="model file (.safetensors; a .json is written beside)")
    p.add_argument("--scores", type=Path, default=None, help="per-clip test scores (.csv)")
    p.add_argument("--readings", type=Path, default=None,
                   help="code encoder: save the face codes the head read (.npz: the training clips' cross-fitted "
                        "readings, every test clip's) for experiments with other heads")
    p.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from painface.video.train import train_from_args

    return train_from_args(args)
