"""``painface train-fsq``: train the FSQ-VAE autoregressive baseline (tokenizer, then AR)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="corpus folder (painface simulate / convert-biovid)")
    p.add_argument("--out", type=Path, required=True, help="run folder; resumes when it holds a training state")
    p.add_argument("--steps", type=int, default=None, help="steps of each stage (default 4000 tokenizer, 3000 AR)")
    p.add_argument("--config", type=Path, default=None,
                   help="JSON of FsqTrainConfig keys (tokenizer/ar architectures as nested objects)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from typing import Any

    from painface.baselines.fsq_train import FsqTrainConfig, FsqTrainer
    from painface.io import read_json_config
    from painface.training import run_folder, set_threads

    d: dict[str, Any] = {}
    if args.config is not None:
        d = read_json_config(args.config)
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
