"""``painface analyze-calibrate``: refit the blendshape -> AU map on painface-rendered faces."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from painface.analyze.calibrate import ASSETS, CalibrationConfig

    d = CalibrationConfig()
    parser.add_argument("--out", default="runs/analyze-calibrate", help="folder for the report (default %(default)s)")
    parser.add_argument("--save-maps", default=str(ASSETS), help="folder for au_map_offset.json and "
                        "au_map_regression.json (default: the package's assets); 'none' to keep them out")
    parser.add_argument("--figure", default=None, help="also save the figure here (e.g. docs/figures/...)")
    parser.add_argument("--real", default=None, help="a folder of real *_neutral / *_smiling photos to check "
                        "the maps on (e.g. ../shared/realfaces/london-dev)")
    for name in ("identities", "per_identity", "seed", "size", "threads"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    for name in ("holdout", "ridge", "p_active"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(d, name))


def run(args: argparse.Namespace) -> int:
    import time
    from dataclasses import asdict

    import numpy as np

    from painface.analyze.aus import SHIPPED_MAPS
    from painface.analyze.calibrate import CalibrationConfig, calibrate, collect
    from painface.analyze.calibrate_report import figure, real_check, table
    from painface.errors import InputError
    from painface.io import atomic_write_bytes, atomic_write_json

    cfg = CalibrationConfig(identities=args.identities, per_identity=args.per_identity, seed=args.seed,
                            size=args.size, threads=args.threads, holdout=args.holdout, ridge=args.ridge,
                            p_active=args.p_active)
    if cfg.identities < 4 or cfg.per_identity < 1 or not 0 < cfg.holdout < 1 or cfg.ridge < 0:
        raise InputError("--identities >= 4, --per-identity >= 1, 0 < --holdout < 1 and --ridge >= 0 expected")
    if not 64 <= cfg.size <= 1024:
        raise InputError(f"--size: expected 64..1024 pixels, got {cfg.size}")
    if args.real and not Path(args.real).is_dir():
        raise InputError(f"--real: {args.real} is not a folder")
    out = Path(args.out)
    t0 = time.time()
    data = collect(cfg)
    maps, metrics = calibrate(cfg, data)
    if args.real:
        metrics["real"] = real_check(maps, Path(args.real))
    metrics["seconds"] = round(time.time() - t0, 1)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "metrics.json", metrics)
    atomic_write_json(out / "config.json", asdict(cfg))
    atomic_write_bytes(out / "table.md", lambda fh: fh.write(table(metrics).encode()))
    atomic_write_bytes(out / "samples.npz", lambda fh: np.savez_compressed(fh, **data))
    figure(maps, data, metrics, out / "calibration.png")
    if args.figure:
        figure(maps, data, metrics, Path(args.figure))
    if str(args.save_maps).lower() != "none":
        for name, m in maps.items():
            if "real" in metrics:
                m.meta["real"] = {k: metrics["real"][k] for k in ("folder", "images", "detection_rate", name)}
            m.save(Path(args.save_maps) / SHIPPED_MAPS[name])
        print(f"wrote {', '.join(SHIPPED_MAPS.values())} to {args.save_maps}")
    print(table(metrics))
    print(f"report in {out} ({metrics['seconds']} s)")
    return 0
