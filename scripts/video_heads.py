"""Other heads on the face codes a ``code`` model read (``train-video --readings R.npz``): what the head could do
with the same readings, chosen on the val subjects.

Usage: ``python scripts/video_heads.py DATA R.npz [R2.npz ...]`` where DATA holds ``sim96/`` (its ``samples.csv``
gives the held-out subjects' split). Heads, all the stats head of train-video (clip statistics into a logistic
regression, 200 epochs) on transformed readings:

* ``stats``: the readings as they are (reproduces the model's scores);
* ``smooth3``: each number averaged over 3 neighbouring frames first (frames are 8 apart: 0.64 s);
* ``person``: each number minus its median over all clips of the same person and view (a transductive,
  label-free calibration: it needs other clips of the same person, as a monitor watching one patient has; here
  each held-out person's clips are half BL1, half PA4 by construction, so the figure is optimistic for a patient
  whose share of painful moments differs);
* ``person+smooth3``: both.

Prints AUROC of BL1 vs PA4 with 95 % intervals over subjects (val, test, all held out) per test set. Binary
readings only; the stats head here uses train-video's defaults (200 epochs, lr 1e-2, batch 32, seed 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from painface.assess.metrics import auroc, bootstrap
from painface.video.model import StatsHead, VideoConfig, calibrate_person
from painface.video.train import DEFAULT_EPOCHS, DEFAULT_LR, fit, scores


def smooth(r: np.ndarray, k: int = 3) -> np.ndarray:
    """Moving average over ``k`` frames ``[N, T, F]`` (edges: the frames there are)."""
    pad = k // 2
    c = np.cumsum(np.pad(r, ((0, 0), (1, 0), (0, 0))), axis=1)
    t = r.shape[1]
    lo = np.clip(np.arange(t) - pad, 0, t)
    hi = np.clip(np.arange(t) + pad + 1, 0, t)
    return (c[:, hi] - c[:, lo]) / (hi - lo)[None, :, None]


TRANSFORMS = {
    "stats": lambda r, keys: r,
    "smooth3": lambda r, keys: smooth(r),
    "person": calibrate_person,
    "person+smooth3": lambda r, keys: calibrate_person(smooth(r), keys),
}


def cell(y: np.ndarray, s: np.ndarray, subjects: np.ndarray) -> str:
    if not len(y):
        return "-"
    v, lo, hi = bootstrap(subjects, lambda i: {"a": auroc(y[i], s[i])})["a"]
    return f"{v:.3f} [{lo:.2f}, {hi:.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("readings", type=Path, nargs="+")
    args = ap.parse_args()
    samples = pd.read_csv(args.data / "sim96" / "samples.csv", sep="\t")
    split = dict(zip(samples.subject_name, samples.split, strict=False))
    cfg = VideoConfig(encoder="code", head="stats")
    for path in args.readings:
        with np.load(path) as f:
            z = dict(f)
        if str(z.get("task", "binary")) != "binary" or int(z.get("reader_folds", 2)) < 2:  # older files: binary
            raise SystemExit(f"{path}: expected the readings of a binary train-video run with cross-fitted readers "
                             f"(task {z.get('task')}, reader_folds {z.get('reader_folds')})")
        keys_tr = np.char.add(np.char.add(z["train/subject"].astype(str), "|"), z["train/view"].astype(str))
        tests = sorted({k.split("/")[0] for k in z if k.startswith("test")})
        print(f"\n### {path.name}: {len(z['train/y'])} training clips\n")
        print("| head | test set | val | test | all held out |\n|---|---|---:|---:|---:|")
        for name, tf in TRANSFORMS.items():
            x_tr = tf(z["train/readings"], keys_tr).astype(np.float32)
            torch.manual_seed(0)  # as train-video builds its head
            model = fit(cfg, x_tr, z["train/y"], epochs=DEFAULT_EPOCHS["stats"], lr=DEFAULT_LR["stats"], batch=32,
                        seed=0, progress=False, model=StatsHead(cfg))
            for t in tests:
                subj = z[f"{t}/subject_name"].astype(str)
                keys = np.char.add(np.char.add(subj, "|"), z[f"{t}/view"].astype(str))
                s = scores(model, cfg, tf(z[f"{t}/readings"], keys).astype(np.float32))
                y = z[f"{t}/y"]
                sp = np.array([split.get(u, "other") for u in subj])
                cells = [cell(y[sp == part], s[sp == part], subj[sp == part]) for part in ("val", "test")]
                print(f"| {name} | {Path(str(z[f'{t}/name'])).name} | {' | '.join(cells)} | {cell(y, s, subj)} |")


if __name__ == "__main__":
    main()
