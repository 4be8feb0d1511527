"""``painface simulate``: write a corpus of virtual subjects under the BioVid heat protocol followed by
sustained and movement-driven stimuli (long plateaus, staircases, elbow exercises, random walks)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("corpus"), help="output folder (default: ./corpus)")
    p.add_argument("--subjects", type=int, default=87, help="number of subjects (default 87, as BioVid)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--stoic-share", type=float, default=None, help="share of facially stoic subjects (default 0.2)")
    p.add_argument("--ramp", type=float, default=None, help="heat ramp rate in °C/s (default 5)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON file of simulation parameters (keys of SimConfig; see docs/assumptions.md)",
    )
    p.add_argument("--biovid-only", action="store_true",
                   help="only the BioVid heat session (no long plateaus, staircases, elbow or random-walk blocks)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from painface.io import read_json_config
    from painface.subjects.population import simulate_corpus
    from painface.subjects.protocols import HeatProtocol
    from painface.subjects.traits import SimConfig

    cfg_d = {}
    if args.config is not None:
        cfg_d = read_json_config(args.config)
    if args.stoic_share is not None:
        cfg_d["stoic_share"] = args.stoic_share
    cfg = SimConfig.from_dict(cfg_d)
    protocol = HeatProtocol() if args.ramp is None else HeatProtocol(ramp_c_per_s=args.ramp)
    t0 = time.perf_counter()
    out = simulate_corpus(
        args.out,
        n_subjects=args.subjects,
        seed=args.seed,
        cfg=cfg,
        protocol=protocol,
        mixed=None if args.biovid_only else "default",
        workers=args.workers,
        progress=not args.quiet,
    )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {args.subjects} subjects to {out} in {time.perf_counter() - t0:.1f} s ({size / 2**20:.1f} MiB)")
    return 0
