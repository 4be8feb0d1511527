"""Compare video classifiers' held-out scores (``train-video --scores``) per split, test set and view, with 95 %
intervals over subjects, beside two references that read the exact face code instead of the video.

Usage: ``python scripts/video_compare.py DATA [--runs binary] [--extra DIR ...]`` where DATA holds ``sim96/`` (and
the PainDiffusion clips of the held-out subjects: ``pd96/``, the val ones, ``pdtest96/``, the test ones) and
``runs/*_binary.csv``.
Choose the encoder on the **val** subjects' columns; the **test** subjects' columns are the report.
References, on the same clips and the same 16 frames the classifiers read:

* ``exact mean PSPI``: the clip's exact mean PSPI as the score (no training);
* ``exact code, stats head``: the stats head (painface.video.model.StatsHead, the classifier of the per-frame
  encoders) trained on the **exact** 20-number face code of the same training clips: what a perfect per-frame
  reader of every AU and head angle would reach with this classifier and these training clips; with ``--extra``
  (the ``train-video --extra-data`` folders), once more with every clip of those folders added to the training
  clips; and once on codes calibrated per person (``train-video --calibrate person``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from painface.assess.metrics import auroc, bootstrap
from painface.video.model import StatsHead, VideoConfig, calibrate_person, person_keys
from painface.video.train import DEFAULT_EPOCHS, DEFAULT_LR, exact_codes, fit, scores


def binary_clips(root: Path) -> pd.DataFrame:
    samples = pd.read_csv(root / "samples.csv", sep="\t")
    return samples[samples.class_name.isin(["BL1", "PA4"])]


def exact_reference(root: Path, table: pd.DataFrame, extra: tuple[Path, ...] = (), person: bool = False
                    ) -> pd.Series:
    """P(PA4) of the stats head trained on the exact codes of the training clips (and of every clip of the
    ``extra`` folders), for every held-out row; ``person``: the codes calibrated per person and view first, as
    ``train-video --calibrate person`` does."""
    cfg = VideoConfig(encoder="face", head="stats")
    tr = table[table.split == "train"]
    te = table[table.split != "train"]
    x_tr, x_te = exact_codes(root, tr, 16, 8), exact_codes(root, te, 16, 8)
    y_tr = (tr.class_name == "PA4").to_numpy().astype(int)
    if person:
        if extra:
            raise ValueError("exact_reference: person calibration with extra folders is not implemented")
        x_tr = calibrate_person(x_tr, person_keys(tr.subject_name, tr.view))
        x_te = calibrate_person(x_te, person_keys(te.subject_name, te.view))
    for more in extra:
        t = binary_clips(more)
        x_tr = np.concatenate([x_tr, exact_codes(more, t, 16, 8)])
        y_tr = np.concatenate([y_tr, (t.class_name == "PA4").to_numpy().astype(int)])
    head = StatsHead(cfg, columns=tuple(range(x_tr.shape[2])))  # every AU and head angle of the code
    model = fit(cfg, x_tr, y_tr, epochs=DEFAULT_EPOCHS["stats"],
                lr=DEFAULT_LR["stats"], batch=32, seed=0, progress=False, model=head)
    return pd.Series(scores(model, cfg, x_te), index=te.index)


def row(name: str, d: pd.DataFrame, col: str) -> str:
    cells = [name]
    for part in ("val", "test", "held out"):
        sub = d if part == "held out" else d[d.split == part]
        if not len(sub):
            cells.append("-")
            continue
        y = (sub.class_name == "PA4").to_numpy()
        s = sub[col].to_numpy()
        v, lo, hi = bootstrap(sub.subject_name.to_numpy(), lambda i, y=y, s=s: {"a": auroc(y[i], s[i])})["a"]
        cells.append(f"{v:.3f} [{lo:.2f}, {hi:.2f}]")
    for view in ("front", "side"):
        sub = d[d.view == view]
        cells.append(f"{auroc(sub.class_name == 'PA4', sub[col]):.3f}" if len(sub) else "-")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--runs", default="binary", help="suffix of the score tables in DATA/runs (<name>_<runs>.csv)")
    ap.add_argument("--extra", type=Path, nargs="*", default=[], help="train-video --extra-data folders")
    args = ap.parse_args()
    head = ("| score | val AUROC [95 % CI] | test AUROC | all held out | front | side |\n"
            "|---|---:|---:|---:|---:|---:|")
    for folder in ("sim96", "pd96", "pdtest96"):
        root = args.data / folder
        if not (root / "samples.csv").is_file():
            continue
        samples = binary_clips(root)
        held = samples[samples.split != "train"].copy()
        print(f"\n### {folder}: {held.subject_name.nunique()} held-out subjects "
              f"({held[held.split == 'val'].subject_name.nunique()} val, "
              f"{held[held.split == 'test'].subject_name.nunique()} test), {len(held)} clips\n")
        print(head)
        print(row("exact mean PSPI (reference)", held, "pspi_mean"))
        if folder == "sim96":
            held["exact"] = exact_reference(root, samples)
            print(row("exact code, stats head (reference)", held, "exact"))
            held["exact_person"] = exact_reference(root, samples, person=True)
            print(row("exact code, person-calibrated stats head (reference)", held, "exact_person"))
            if args.extra:
                from painface.video.train import _check_extra

                _check_extra(args.extra, [root], [held], views=None, codes=True)  # other people and faces only
                held["exact_extra"] = exact_reference(root, samples, tuple(args.extra))
                print(row("exact code, stats head, + extra people (reference)", held, "exact_extra"))
        for f in sorted((args.data / "runs").glob(f"*_{args.runs}.csv")):
            sc = pd.read_csv(f)
            name = "synthetic" if folder == "sim96" else next((t for t in sc.test.unique() if Path(t).name == folder),
                                                               None)
            sc = sc[sc.test == name]
            if not len(sc):
                continue
            d = sc.merge(samples[["sample_name", "view", "split"]], on=["sample_name", "view"])
            print(row(f.stem.removesuffix(f"_{args.runs}"), d, "score"))


if __name__ == "__main__":
    main()
