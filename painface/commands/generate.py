"""``painface generate``: pain expression sequences from PainDiffusion -> npz (and CSV)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(p: argparse.ArgumentParser) -> None:
    from painface.face.code import EMOTIONS

    p.add_argument("--stimulus", default="biovid", help="biovid, elbow, or a CSV of (time_s, normalized value)")
    p.add_argument("--seconds", type=float, default=60.0, help="length to generate (default 60)")
    p.add_argument("--expressiveness", type=float, default=1.0,
                   help="the patient's mean PSPI (default 1.0; the shipped checkpoint's training subjects span "
                        "0.07-1.07)")
    p.add_argument("--emotion", default="Neutral", help=f"one of {', '.join(EMOTIONS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1, help="independent generations (batched)")
    p.add_argument("--guidance", default=None, help="strengths E,X,S for emotion, expressiveness, stimulus")
    p.add_argument("--schedule", choices=["full", "pyramid"], default=None, help="scheduling matrix")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default from the checkpoint)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--csv", action="store_true", help="also write OUT with .csv")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from painface.express import PainDiffusion, make_stimulus, write_csv, write_npz
    from painface.face.code import feature_space, pspi

    guidance = check_args(args)
    model = PainDiffusion.load(args.checkpoint)
    stim = make_stimulus(args.stimulus, args.seconds, model.fps, args.seed)
    face = model.generate(
        stim,
        args.expressiveness,
        args.emotion,
        samples=args.samples,
        seed=args.seed,
        guidance=guidance,
        schedule=args.schedule,
        steps=args.steps,
    )
    names = model.feature_names
    ps = pspi(face, names) if feature_space(names) == "facs" else None
    arrays = {
        "face": face[0] if args.samples == 1 else face,
        "feature_names": np.asarray(names, dtype=str),
        "stimulus": stim,
        "fps": np.asarray(model.fps),
        "expressiveness": np.asarray(args.expressiveness),
        "emotion": np.asarray(args.emotion),
    }
    if ps is not None:
        arrays["pspi"] = ps[0] if args.samples == 1 else ps
    write_npz(args.out, arrays)
    if args.csv:
        write_csv(args.out.with_suffix(".csv"), face, names, stim, ps, model.fps)
    print(f"wrote {args.out}: {args.samples} x {face.shape[1]} frames ({face.shape[1] / model.fps:.1f} s)")
    return 0


def check_args(args: argparse.Namespace) -> tuple[float, float, float] | None:
    """Every option of ``painface generate`` checked before the model loads; returns the guidance."""
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
    check_output(args.out, "--out", (".npz",))
    if args.csv:
        check_output(args.out.with_suffix(".csv"), "--csv (OUT with .csv)")
    return guidance
