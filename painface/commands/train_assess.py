"""``painface train-assess``: train ViTPain (PSPI from a face) on a synth faces dataset; resumes."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from painface.assess.train import TrainConfig

    d = TrainConfig()
    parser.add_argument("--data", required=True, help="a painface synth faces folder")
    parser.add_argument("--out", required=True, help="run folder (rerun the same command to resume)")
    parser.add_argument("--variant", choices=("a", "b", "c", "teacher"), default="a",
                        help="a: RGB; b: + heatmap-teacher distillation (needs --teacher); c: + neutral image")
    parser.add_argument("--teacher", default="", help="best.safetensors of a --variant teacher run (for b)")
    parser.add_argument("--init", default="", help="start from the weights of this checkpoint (same network)")
    parser.add_argument("--extra-data", nargs="+", default=(), metavar="DIR",
                        help="more synth faces folders to train on (all their images; none of --data's val/test "
                             "identities may be in them); --data's val and test splits stay the yardstick")
    for name in ("size", "dim", "depth", "heads", "steps", "batch", "warmup", "eval_every", "val_images",
                 "save_every", "seed"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("lr", "weight_decay", "ema", "distill", "pspi_weight", "augment"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    import torch

    from painface.assess.train import TrainConfig, train
    from painface.errors import InputError

    if args.threads < 1:
        raise InputError(f"--threads: expected >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in vars(args).items() if k in names})
    res = train(cfg, args.out, progress=not args.quiet)
    print(json.dumps(res, indent=1))
    return 0
