"""``painface generate``: pain expression sequences from PainDiffusion -> npz (and CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from painface.subjects.protocols import HeatCalibration


def configure(p: argparse.ArgumentParser) -> None:
    from painface.face.code import EMOTIONS

    p.add_argument("--stimulus", default="biovid",
                   help="biovid, elbow, or a CSV of (time_s, value): normalized 0..1.5 (0 = baseline, 1 = the "
                        "patient's pain tolerance), or °C with --celsius")
    p.add_argument("--seconds", type=float, default=60.0, help="length to generate (default 60)")
    p.add_argument("--expressiveness", type=float, default=1.0,
                   help="the patient's mean PSPI (default 1.0; the shipped checkpoint's training subjects span "
                        "0.07-1.07)")
    p.add_argument("--emotion", default="Neutral", help=f"one of {', '.join(EMOTIONS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1, help="independent generations (batched)")
    p.add_argument("--guidance", default=None, help="strengths E,X,S for emotion, expressiveness, stimulus (default "
                   "from the checkpoint; the shipped one scales them by the stimulus's news, docs/model.md)")
    p.add_argument("--schedule", choices=["full", "pyramid"], default=None, help="scheduling matrix")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default from the checkpoint)")
    p.add_argument("--smooth", type=float, default=None,
                   help="low-pass time constant in frames, 0 = none (default from the checkpoint)")
    p.add_argument("--celsius", action="store_true",
                   help="the CSV stimulus is in °C: converted with --baseline-c and --tolerance-c")
    p.add_argument("--baseline-c", type=float, default=None, help="resting thermode temperature, °C (default 32)")
    p.add_argument("--threshold-c", type=float, default=None,
                   help="the patient's pain threshold T1, °C (default 43): the lowest biovid level")
    p.add_argument("--tolerance-c", type=float, default=None,
                   help="the patient's pain tolerance T4, °C (default 47.5): normalized stimulus 1")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--csv", action="store_true", help="also write OUT with .csv: the table of docs/python.md")


def check_args(args: argparse.Namespace) -> tuple[tuple[float, float, float] | None, HeatCalibration | None]:
    """Every option of ``painface generate`` checked before the model loads; returns the guidance and the
    heat calibration (None for the elbow and a normalized CSV)."""
    import numpy as np

    from painface.errors import InputError
    from painface.express import MAX_FRAMES_TOTAL, MAX_SECONDS, MAX_STEPS
    from painface.io import check_output
    from painface.model.conditions import GUIDANCE_MAX, check_settings

    if not (np.isfinite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        raise InputError(f"--seconds {args.seconds}: expected a length in seconds, > 0 and <= {MAX_SECONDS:g}")
    if not 1 <= args.samples <= MAX_FRAMES_TOTAL // max(1, int(args.seconds * 25)):
        raise InputError(f"--samples {args.samples}: expected 1..{MAX_FRAMES_TOTAL // max(1, int(args.seconds * 25))} "
                         f"for {args.seconds:g} s (at most {MAX_FRAMES_TOTAL:,} frames in all)")
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise InputError(f"--steps {args.steps}: expected 1..{MAX_STEPS}")
    if args.smooth is not None and not (np.isfinite(args.smooth) and 0 <= args.smooth <= 100):
        raise InputError(f"--smooth {args.smooth}: expected a time constant in frames, 0..100")
    try:
        check_settings(expressiveness=args.expressiveness, emotion=args.emotion)
    except InputError as e:
        raise InputError(f"--{e}") from None
    guidance = None
    if args.guidance is not None:
        try:
            guidance = tuple(float(v) for v in args.guidance.split(","))
        except ValueError:
            raise InputError(f"--guidance {args.guidance!r}: expected three numbers E,X,S") from None
        if len(guidance) != 3 or not all(np.isfinite(g) and 0 <= g <= GUIDANCE_MAX for g in guidance):
            raise InputError(f"--guidance {args.guidance!r}: expected three numbers E,X,S in [0, {GUIDANCE_MAX:g}]")
    if args.stimulus not in ("biovid", "elbow") and not Path(args.stimulus).is_file():
        raise InputError(f"--stimulus {args.stimulus}: expected biovid, elbow or an existing CSV file")
    calibration = heat_calibration(args)
    check_output(args.out, "--out", (".npz",))
    if args.csv:
        check_output(args.out.with_suffix(".csv"), "--csv (OUT with .csv)")
    return guidance, calibration


def heat_calibration(args: argparse.Namespace) -> HeatCalibration | None:
    """The patient's calibration from --baseline-c/--threshold-c/--tolerance-c (defaults for those not
    given), for the biovid protocol and a CSV in °C; the options are refused where no °C is involved."""
    from painface.errors import InputError
    from painface.subjects.protocols import HeatCalibration

    given = {k: v for k, v in (("baseline_c", args.baseline_c), ("threshold_c", args.threshold_c),
                               ("tolerance_c", args.tolerance_c)) if v is not None}
    options = " ".join(f"--{k.replace('_', '-')}" for k in given)
    if args.celsius and args.stimulus in ("biovid", "elbow"):
        raise InputError(f"--celsius: for a CSV stimulus in °C; --stimulus {args.stimulus} is generated in "
                         "normalized units (biovid from --threshold-c and --tolerance-c)")
    if args.stimulus == "elbow" and given or args.stimulus not in ("biovid", "elbow") and given and not args.celsius:
        raise InputError(f"{options}: °C options for --stimulus biovid or a CSV in °C (--celsius); "
                         f"--stimulus {args.stimulus} is in normalized units")
    if args.stimulus != "biovid" and not args.celsius:
        return None
    try:
        return HeatCalibration(**given)
    except InputError as e:
        raise InputError(f"{options or '--celsius'}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from painface.express import PainDiffusion, make_stimulus
    from painface.io import atomic_write_bytes

    guidance, calibration = check_args(args)
    model = PainDiffusion.load(args.checkpoint)
    stim = make_stimulus(args.stimulus, args.seconds, model.fps, args.seed, calibration, args.celsius)
    result = model.generate(stim, args.expressiveness, args.emotion, samples=args.samples, seed=args.seed,
                            calibration=calibration, guidance=guidance, schedule=args.schedule, steps=args.steps,
                            smooth=args.smooth)
    result.save(args.out)
    if args.csv:
        text = result.to_frame().to_csv(index=False, float_format="%.4f").encode()
        atomic_write_bytes(args.out.with_suffix(".csv"), lambda fh: fh.write(text))
    print(f"wrote {args.out}: {args.samples} x {result.frames} frames ({result.frames / model.fps:.1f} s)")
    return 0
