"""Choose between ViTPain runs on the **validation** identities (all of them, not train-assess's 300-image subset),
read three ways: plain, with the mirror image, with the mirror image and the PSPI gate. The gate is the one stored in
the checkpoint (what ``painface assess`` uses; ``train-assess`` tunes it on 2,000 of the images the run trained on,
extra datasets included); for a checkpoint without one it is tuned here on 2,000 of ``--data``'s training images as
``train-assess`` would (:func:`painface.assess.model.tune_gate`). The test split is not read.

    python scripts/assess_val.py --data data/synth112 --runs runs/assess --variants b b2lo b3 b4 b5
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from painface.assess import data as D
from painface.assess import metrics as M
from painface.assess.model import gated, load
from painface.assess.train import predict_outputs, tune_reading


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--variants", nargs="+", required=True, help="run folders under --runs")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    splits: dict[tuple[str, int], D.Split] = {}

    def split(name: str, size: int) -> D.Split:  # each split read once, and the training split only if needed
        if (name, size) not in splits:
            splits[name, size] = D.load_split(args.data, name, size)
        return splits[name, size]

    print("| run | step | read | gate | val MAE | r | AUROC1 | AUROC2 | AUROC3 |\n" + "|---" * 9 + "|")
    for v in args.variants:
        model, meta = load(args.runs / v / "best")
        val_s = split("val", model.config.size)
        y = val_s.pspi.numpy()
        for mirror in (False, True):
            gate = meta.get("gate")
            if mirror and gate is None:
                train_s = split("train", model.config.size)
                idx = np.random.default_rng(1).permutation(len(train_s))[:2000]  # finish()'s seed + 1 with seed 0
                gate = tune_reading(model, train_s, idx, mirror=True)[0]
            val = predict_outputs(model, val_s, mirror=mirror)
            for g in ((None, gate) if mirror else (None,)):
                s = M.summary(y, gated(val["pspi"], val["p1"], g or 0))
                read = "mirror" if mirror else "plain"
                print(f"| {v} | {meta.get('step')} | {read} | {g if g is not None else '-'} | {s['MAE']:.3f} | "
                      f"{s['r']:.3f} | {s['AUROC1']:.3f} | {s['AUROC2']:.3f} | {s['AUROC3']:.3f} |", flush=True)
        cfg = json.loads((args.runs / v / "config.json").read_text())
        print(f"<!-- {v}: augment {cfg.get('augment')}, pspi_weight {cfg.get('pspi_weight', 1.0)}, "
              f"init {cfg.get('init') or '-'} -->")


if __name__ == "__main__":
    main()
