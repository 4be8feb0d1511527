"""``painface train-fsq``: train the FSQ-VAE autoregressive baseline (tokenizer, then AR)."""

from __future__ import annotations

import argparse

from painface.commands import add_training_options, read_config


def configure(p: argparse.ArgumentParser) -> None:
    add_training_options(p, steps_help="steps of each stage (default 4000 tokenizer, 3000 AR)",
                         config_help="JSON of FsqTrainConfig keys (tokenizer/ar architectures as nested objects)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from painface.baselines.fsq_train import FsqTrainConfig, FsqTrainer
    from painface.training import run_folder, set_threads

    d = read_config(args)
    run_folder(args.out)
    if args.steps is not None:
        d["tokenizer_steps"] = d["ar_steps"] = args.steps
    set_threads(args.threads)
    trainer = FsqTrainer(args.data, args.out, FsqTrainConfig.from_dict(d), progress=not args.quiet)
    parts = (("tokenizer", trainer.tokenizer), ("ar", trainer.ar))
    sizes = {k: sum(p.numel() for p in m.parameters()) for k, m in parts}
    print(f"training FSQ tokenizer ({sizes['tokenizer'] / 1e6:.2f} M) + transformer ({sizes['ar'] / 1e6:.2f} M)",
          file=sys.stderr)
    metrics = trainer.run()
    print(json.dumps({k: v for k, v in metrics.items() if k != "recon_mse_per_feature"}))
    return 0
