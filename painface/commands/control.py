"""``painface control``: controllability sweeps (stimulus, expressiveness, emotion) like Fig. 8."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    from painface.evaluate.control import SWEEP_EXPRESSIVENESS, SWEEP_LEVELS

    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seeds", type=int, default=6, help="generations per knob value (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trials", type=int, default=2, help="stimulus plateaus per sequence (default 2)")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default from the checkpoint)")
    p.add_argument("--expressiveness", type=float, default=0.5, help="fixed expressiveness (PSPI, default 0.5)")
    p.add_argument("--sweep-expressiveness", type=_floats, default=SWEEP_EXPRESSIVENESS, metavar="V,V,...",
                   help="expressiveness values to sweep (PSPI, increasing; default 0,0.2,...,1.0: the default "
                        "corpus's training subjects span 0.07-1.07)")
    p.add_argument("--sweep-levels", type=_floats, default=SWEEP_LEVELS, metavar="V,V,...",
                   help="stimulus levels to sweep (normalized, increasing; default 0,0.2,0.4,0.6 and T1..T4)")
    p.add_argument("--level", type=float, default=1.0, help="fixed stimulus level (normalized, default 1.0)")
    p.add_argument("--emotion", default="Neutral", help="fixed emotion (default Neutral)")


def run(args: argparse.Namespace) -> int:
    import torch

    from painface.evaluate.control import ControlConfig, run_control, write_report
    from painface.express import PainDiffusion

    torch.set_num_threads(1)
    cfg = ControlConfig(seeds=args.seeds, seed=args.seed, trials=args.trials, steps=args.steps,
                        expressiveness=args.sweep_expressiveness, levels=args.sweep_levels,
                        fixed_expressiveness=args.expressiveness, fixed_level=args.level, fixed_emotion=args.emotion)
    cfg.validate()
    model = PainDiffusion.load(args.checkpoint)
    report = run_control(model, cfg)
    report["checkpoint"] = str(args.checkpoint) if args.checkpoint else "shipped"
    for path in write_report(report, args.out):
        print(f"wrote {path}")
    acc = report["acceptance"]
    print(f"expressiveness->PSPI rho {acc['expressiveness_pspi_rho']}, stimulus monotonic "
          f"{acc['stimulus_pspi_monotonic']} (strictly rising means {acc['stimulus_pspi_strictly_rising']}), "
          f"emotions distinguishable at rest "
          f"{acc['emotions_distinguishable_at_rest']}")
    return 0


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas, e.g. 0,0.5,1") from None
