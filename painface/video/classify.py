"""``painface classify-video``: pain scores of mp4 clips (or a BioVid-Part-A-style folder) with a
``train-video`` model. Prints a table (and writes it with ``--out``); on a folder, also the metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from painface.errors import InputError

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "video_binary.safetensors"
SHIPPED_NAMES = {"binary": SHIPPED, "person": SHIPPED.with_name("video_binary_person.safetensors"),
                 "5class": SHIPPED.with_name("video_5class.safetensors")}


def classify(model_path: Path, inputs: list[Path]) -> tuple[pd.DataFrame, dict]:
    """Table of ``path``, ``class_name`` (the label, when known), scores and the predicted class.

    A person-calibrated model (``train-video --calibrate person``) reads each clip against the other clips of the
    same person and view among the inputs (label-free: every clip given counts): in a folder, the table's
    ``subject_name`` and ``view``; a single mp4 belongs to the person of its folder (the folder's full path, e.g.
    ``.../video/<subject>/`` or ``.../video-<view>/<subject>/``). The table's ``person`` column says which clips
    were read together; a clip given twice is refused."""
    from painface.video.biovid_a import read_samples
    from painface.video.model import encode_clips, load, person_keys
    from painface.video.train import model_scores

    if str(model_path) in SHIPPED_NAMES and not Path(model_path).exists():
        model_path = SHIPPED_NAMES[str(model_path)]
    elif not Path(model_path).exists():
        raise InputError(f"--model {model_path}: no such file (expected a train-video checkpoint or one of the shipped "
                         f"models {', '.join(SHIPPED_NAMES)})")
    model, cfg, meta = load(model_path)
    parts = []
    for p in inputs:
        if p.is_dir():
            part = read_samples(p)
            parts.append(part.assign(_group=[f"view {v} in {p.resolve()}" for v in part.view]))  # one folder's people
        elif p.suffix.lower() == ".mp4" and p.is_file():
            parts.append(pd.DataFrame({"path": [str(p)], "class_name": [None], "view": ["?"],
                                       "subject_name": [p.resolve().parent.name],
                                       "_group": [f"in {p.resolve().parent.parent}"]}))
        else:
            raise InputError(f"{p}: expected an .mp4 file or a BioVid-Part-A-style folder")
    df = pd.concat(parts, ignore_index=True)
    twice = pd.Series([str(Path(q).resolve()) for q in df.path]).duplicated()
    if twice.any():
        raise InputError(f"{df.path[twice.to_numpy()].iloc[0]}: given twice (as a clip and in a folder, or twice)")
    df["person"] = person_keys(df.subject_name, df._group)
    if cfg.calibrate == "person":  # before decoding: every person needs enough clips
        from painface.video.model import check_person_clips

        check_person_clips(df.person)
        other = sorted(set(df.class_name.dropna()) - set(cfg.classes))
        if other:
            print(f"note: the clips of {', '.join(other)} count in each person's calibration; the model was "
                  f"calibrated on {', '.join(cfg.classes)} clips only (give only those to reproduce train-video)")
    x, df, skipped = encode_clips(df, cfg)
    if not len(df):
        raise InputError("no readable clip among the inputs: " + "; ".join(skipped[:5]))
    s, _ = model_scores(model, cfg, x, df.person.to_numpy())
    out = df[["path", "class_name", "view", "person"]].copy()
    if cfg.outputs == 1:
        out["score"] = s
        out["predicted"] = np.where(s >= meta["threshold"], cfg.classes[1], cfg.classes[0])
    else:
        for k, c in enumerate(cfg.classes):
            out[f"p_{c}"] = s[:, k]
        out["predicted"] = [cfg.classes[i] for i in s.argmax(1)]
    return out, {"skipped": skipped, "config": cfg, "meta": meta, "scores": s}


def classify_from_args(args: argparse.Namespace) -> int:
    """``painface classify-video`` with its parsed options (painface/commands/classify_video.py)."""
    import torch

    from painface.video.metrics import binary_metrics, multiclass_metrics

    if not 1 <= args.threads <= 256:
        raise InputError(f"--threads: expected 1..256, got {args.threads}")
    torch.set_num_threads(args.threads)
    table, extra = classify(args.model, args.inputs)
    cfg, s = extra["config"], extra["scores"]
    with pd.option_context("display.max_rows", 40, "display.width", 160):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for line in extra["skipped"]:
        print(f"skipped: {line}")
    known = table.class_name.isin(cfg.classes).to_numpy()
    if known.any():
        y = np.array([cfg.classes.index(c) for c in table.class_name[known]])
        m = (binary_metrics(y, s[known], extra["meta"]["threshold"]) if cfg.outputs == 1
             else multiclass_metrics(y, s[known]))
        print("metrics on the labelled clips: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
    if args.out is not None:
        from painface.io import atomic_write_bytes

        csv = table.to_csv(index=False).encode()
        atomic_write_bytes(args.out, lambda fh: fh.write(csv))
    return 0
