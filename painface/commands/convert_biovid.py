"""``painface convert-biovid``: BioVid/EMOCA per-frame JSON features -> a corpus."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from painface.data.biovid import BASELINE_C

    parser.add_argument("features_root", metavar="FEATURES_ROOT", help="folder of <subject>/<frame>.json EMOCA codes")
    parser.add_argument(
        "--labels",
        required=True,
        metavar="LABELS_ROOT",
        help="folder of <subject>/<frame>.json labels (temperature, label, pspi_no_au43, emotion)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="corpus folder to write")
    parser.add_argument(
        "--val-ids",
        metavar="FILE",
        default=None,
        help="validation subject ids (one per line, or a JSON list); default: a seeded 26/87 split",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the default split (default 0)")
    parser.add_argument("--baseline-c", type=float, default=BASELINE_C, help="baseline temperature °C (default 32)")
    parser.add_argument("--workers", type=int, default=1, help="processes reading subjects in parallel (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")


def run(args: argparse.Namespace) -> int:
    import json

    from painface.data.biovid import FPS, convert_biovid, read_id_list

    val = read_id_list(args.val_ids) if args.val_ids else None
    kw = {"seed": args.seed, "baseline_c": args.baseline_c, "workers": args.workers, "overwrite": args.overwrite}
    out = convert_biovid(args.features_root, args.labels, args.out, val_ids=val, **kw)
    subjects = json.loads((out / "meta.json").read_text(encoding="utf-8"))["subjects"]
    n_val = sum(1 for s in subjects if s["split"] == "val")
    print(
        f"wrote {out}: {len(subjects)} subjects ({len(subjects) - n_val} train, {n_val} val), FLAME space, {FPS:g} fps"
    )
    return 0
