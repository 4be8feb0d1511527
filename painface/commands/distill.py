"""``painface distill``: learn a checkpoint's guided sampler (four network passes) in one network."""

from __future__ import annotations

import argparse
from pathlib import Path

from painface.commands import add_training_options, read_config


def configure(p: argparse.ArgumentParser) -> None:
    add_training_options(p, steps_help="training steps (default 3000)",
                         config_help="JSON of DistillConfig keys (sequences, live_share, keep, batch, lr, ...)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="the teacher checkpoint (default: the shipped one); its sampler's guidance and gate are "
                        "what is learned")
    p.add_argument("--install", action="store_true",
                   help="at the end, copy the student beside the checkpoint as <name>_guided.safetensors (+ .json), "
                        "where PainDiffusion.load finds it")


def run(args: argparse.Namespace) -> int:
    import shutil

    from painface.data.corpus import open_corpus
    from painface.distill import DistillConfig, distill
    from painface.express import SHIPPED
    from painface.io import atomic_path, clean_stale
    from painface.model.distill import guided_path
    from painface.training import check_state, run_folder, set_threads

    d = read_config(args)
    if args.steps is not None:
        d["steps"] = args.steps
    cfg = DistillConfig.from_dict(d)
    set_threads(args.threads)
    open_corpus(args.data)  # checked before the run folder is made
    out = run_folder(args.out)
    for name in ("state.safetensors", "states.safetensors", "model.safetensors", "model.json", "distill.json"):
        clean_stale(out / name)
    check_state(out / "state.safetensors")
    checkpoint = args.checkpoint or SHIPPED
    distill(checkpoint, args.data, out, cfg, progress=not args.quiet)
    if args.install:
        import json

        from painface.errors import InputError

        info = json.loads((out / "model.json").read_text(encoding="utf-8"))["distilled"]
        if info["step"] == 0 or not info["val_loss"] < info["val_loss_start"]:
            raise InputError(f"--install: the student in {out} never beat the teacher's unguided output on the "
                             f"validation states (loss {info['val_loss']:.4g} vs {info['val_loss_start']:.4g}); "
                             "not installed")
        dest = guided_path(checkpoint)
        for src, dst in ((out / "model.safetensors", dest), (out / "model.json", dest.with_suffix(".json"))):
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
        print(f"installed {dest}")
    return 0
