"""``painface ablate``: ablations like Table II: context window, uncertainty u, guidance."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--data", type=Path, default=None, help="corpus folder (default: the default virtual corpus, "
                   "simulated into OUT/corpus)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--windows", type=int, default=8, help="validation windows (default 8)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per window (default 20)")
    p.add_argument("--tries", type=int, default=2, help="generations per window (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="solver steps (default from the checkpoint)")


def run(args: argparse.Namespace) -> int:
    import torch

    from painface.data.corpus import open_corpus
    from painface.errors import InputError
    from painface.evaluate.ablation import AblationConfig, ablation_figure, ablation_markdown, run_ablation
    from painface.evaluate.run import default_corpus
    from painface.express import PainDiffusion
    from painface.io import atomic_write_bytes, atomic_write_json

    torch.set_num_threads(1)
    cfg = AblationConfig(windows=args.windows, seconds=args.seconds, tries=args.tries, seed=args.seed, steps=args.steps)
    cfg.validate()
    model = PainDiffusion.load(args.checkpoint)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {args.out}: cannot create the folder: {e}") from None
    corpus = open_corpus(args.data if args.data is not None else default_corpus(args.out))
    report = run_ablation(model, corpus, cfg)
    report["checkpoint"] = str(args.checkpoint) if args.checkpoint else "shipped"
    report["data"] = str(args.data) if args.data else "default virtual corpus (seed 0, 87 subjects)"
    atomic_write_json(args.out / "ablation.json", report)
    md = ablation_markdown(report).encode()
    atomic_write_bytes(args.out / "ablation.md", lambda fh: fh.write(md))
    ablation_figure(report, args.out / "ablation.png")
    print(ablation_markdown(report))
    print(f"wrote {args.out / 'ablation.json'}, ablation.md and ablation.png")
    return 0
