"""Compare five-class video models (BL1, PA1..PA4) on the held-out subjects of a ``synth videos`` folder, per split,
with 95 % intervals over subjects.

Usage: ``python scripts/video_compare_5class.py DATA_FOLDER RUN.csv ... [--model M.safetensors ...]`` where each
``RUN.csv`` is a ``train-video --task 5class --scores`` table of that folder's held-out clips, and each ``--model`` is
a five-class checkpoint that ``classify-video`` runs on the same held-out clips (e.g. the shipped one, trained
elsewhere). Prints macro one-vs-rest AUROC, macro F1, accuracy, and BL1 vs PA4 AUROC by the expected class, for the
val subjects (where a model is chosen), the test subjects (the report) and both.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from painface.assess.metrics import bootstrap
from painface.synth.videos import CLASSES
from painface.video.metrics import multiclass_metrics


def metrics(d: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    p = d[[f"p_{c}" for c in CLASSES]].to_numpy()
    y = np.array([CLASSES.index(c) for c in d.class_name])

    def fn(i: np.ndarray) -> dict[str, float]:
        m = multiclass_metrics(y[i], p[i])
        return {k: m[k] for k in ("AUROC", "F1_macro", "accuracy", "AUROC_BL1_PA4")}

    return bootstrap(d.subject_name.to_numpy(), fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("runs", type=Path, nargs="*")
    ap.add_argument("--model", type=Path, nargs="*", default=[])
    args = ap.parse_args()
    samples = pd.read_csv(args.data / "samples.csv", sep="\t")
    held = samples[samples.split != "train"]
    tables = {}
    for f in args.runs:
        sc = pd.read_csv(f)
        tables[f.stem] = sc[sc.test == "synthetic"].merge(held[["sample_name", "view", "split"]],
                                                          on=["sample_name", "view"])
    for m in args.model:
        from painface.video.classify import classify

        paths = [args.data / f for f in held.file]
        t, _ = classify(m, paths)
        tables[m.stem] = held.reset_index(drop=True).assign(**{c: t[c].to_numpy() for c in t if c.startswith("p_")})
    print("| model | subjects | macro AUROC | macro F1 | accuracy | BL1 vs PA4 (expected class) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, d in tables.items():
        for part in ("val", "test", "both"):
            sub = d if part == "both" else d[d.split == part]
            r = metrics(sub)
            cells = [f"{v:.3f} [{lo:.2f}, {hi:.2f}]" for v, lo, hi in r.values()]
            print(f"| {name} | {part} ({sub.subject_name.nunique()}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
