"""``painface train``: train PainDiffusion on a corpus (resumes; torchrun-ready)."""

from __future__ import annotations

import argparse
from pathlib import Path

from painface.commands import add_training_options, read_config


def configure(p: argparse.ArgumentParser) -> None:
    add_training_options(p, steps_help="training steps (default 20000)",
                         config_help="JSON of TrainConfig keys (unet/edm as nested objects)")
    p.add_argument("--batch-size", type=int, default=None, help="windows per step per process (default 64)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--init", type=Path, default=None,
                   help="warm start from this model checkpoint (its network, normalizer and EDM settings)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    import torch.distributed as dist

    from painface.data.corpus import open_corpus
    from painface.io import clean_stale
    from painface.train import TrainConfig, Trainer
    from painface.training import check_state, run_folder, set_threads

    d = read_config(args)
    if args.steps is not None:
        d["steps"] = args.steps
    if args.batch_size is not None:
        d["batch_size"] = args.batch_size
    if args.init is not None:
        from painface.errors import InputError

        if not Path(args.init).with_suffix(".safetensors").is_file():
            raise InputError(f"--init {args.init}: checkpoint not found")
        d["init"] = str(args.init)
    set_threads(args.threads)
    cfg = TrainConfig.from_dict(d)
    open_corpus(args.data)  # checked before the run folder is made
    out = run_folder(args.out)
    for name in ("state.safetensors", "model.safetensors", "model.json", "train.json"):
        clean_stale(out / name)  # hidden temporaries left by a killed run
    check_state(out / "state.safetensors")
    trainer = Trainer(args.data, args.out, cfg, device=args.device, progress=not args.quiet)
    if trainer.rank == 0:
        n = sum(p.numel() for p in trainer.denoiser.parameters())
        print(f"training {n / 1e6:.2f} M parameters on {trainer.device} x {trainer.world}", file=sys.stderr)
    result = trainer.run()
    if trainer.rank == 0:
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in result.items()}))
    if trainer.ddp:
        dist.destroy_process_group()
    return 0
