"""``painface evaluate``: Table I on the validation subjects: metrics, baselines, table and figure."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, default=None, help="PainDiffusion checkpoint (default: the shipped one)")
    p.add_argument("--fsq", type=Path, default=None, help="FSQ-AR checkpoint (default: the shipped one)")
    p.add_argument("--data", type=Path, default=None, help="corpus folder (default: the virtual corpus, built in OUT)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--full", action="store_true", help="every stimulus onset of every subject of the split")
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="held-out subjects to evaluate on: test (report; default) or val (choose settings)")
    p.add_argument("--windows", type=int, default=12, help="windows of the default subset (default 12)")
    p.add_argument("--tries", type=int, default=5, help="generations per window (default 5)")
    p.add_argument("--batch", type=int, default=8, help="windows per generate call (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--pspi-from", choices=("exact", "rendered"), default="exact",
                   help="PSPI from the face codes (exact) or from rendering them and reading the images with "
                        "painface.analyze, as the paper did (default exact)")
    p.add_argument("--render-stride", type=int, default=16, help="with --pspi-from rendered: render every n-th "
                   "frame, interpolate between (default 16)")


def run(args: argparse.Namespace) -> int:
    from painface.evaluate.run import EvalConfig, evaluate

    cfg = EvalConfig(data=None if args.data is None else str(args.data),
                     checkpoint=None if args.checkpoint is None else str(args.checkpoint),
                     fsq=None if args.fsq is None else str(args.fsq), out=str(args.out), full=args.full,
                     tries=args.tries, seed=args.seed, windows=args.windows, batch=args.batch,
                     progress=not args.quiet, pspi_from=args.pspi_from, render_stride=args.render_stride,
                     split=args.split)
    results = evaluate(cfg)
    from painface.evaluate.report import table_text

    print(table_text(results))
    print(f"wrote {args.out}/metrics.json, table.md, fig6_seeded.png, fig6_cold.png, config.json, "
          "paired.json, generations.npz")
    return 0
