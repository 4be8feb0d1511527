"""How well can any video classifier separate BL1 from PA4 on ``painface synth videos`` clips? It can see no more
than the face code the clip was rendered from (the render is a fixed function of the code, the identity, the
light and the view). This scores classifiers that read the exact code of every window of every virtual
subject (20 per class, as BioVid Part A), trained on the population's training subjects and tested on the
held-out ones, beside the clip's exact mean PSPI as the score:

* ``pspi_mean`` / ``pspi_max``: the exact PSPI of the clip, no training;
* ``features``: logistic regression on per-feature mean, max, standard deviation and mean absolute
  frame-to-frame change of the 20-number face code over the window (80 numbers);
* ``sequence``: a 1-D CNN over the code sequence (137 frames x 20 features), trained with AdamW.

A video classifier that matches the best of these has read everything the face shows; a target above them is
out of reach for clips of this simulator, whatever the network.

    python3 benchmarks/check_video_ceiling.py [--populations 4] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from painface.assess.metrics import auroc, bootstrap
from painface.face.code import FEATURE_NAMES, pspi
from painface.subjects.population import make_subject, split_plan
from painface.subjects.protocols import HeatProtocol
from painface.subjects.traits import SimConfig
from painface.synth.videos import CLIP_FRAMES, POPULATION, clip_windows


def windows_of_population(seed: int) -> list[dict]:
    """Every BL1 and PA4 window (exact code, PSPI) of every subject of population ``seed``."""
    cfg, proto = SimConfig(), HeatProtocol()
    plan = split_plan(POPULATION, seed)
    out = []
    for i in range(POPULATION):
        sub = make_subject(seed, i, plan[i], cfg, proto)
        w = clip_windows(sub.extras["temperature"], sub.extras["level"], sub.extras["trial"])
        for cls, y in (("BL1", 0), ("PA4", 1)):
            for _, s in w[cls]:
                code = sub.face[s: s + CLIP_FRAMES].astype(np.float32)
                out.append({"subject": f"{seed}:{i}", "split": sub.info["split"], "y": y, "code": code,
                            "pspi": pspi(code, FEATURE_NAMES)})
    return out


def features(code: np.ndarray) -> np.ndarray:
    return np.concatenate([code.mean(0), code.max(0), code.std(0), np.abs(np.diff(code, axis=0)).mean(0)])


def fit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, wd: float) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=g).split(256):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


def score(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        return model(x).squeeze(-1).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--populations", type=int, default=4, help="populations of 87 subjects (seeds seed..seed+N-1)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = [r for p in range(args.seed, args.seed + args.populations) for r in windows_of_population(p)]
    train = [r for r in rows if r["split"] == "train"]
    test = [r for r in rows if r["split"] != "train"]
    y_tr = np.array([r["y"] for r in train], np.float32)
    y_te = np.array([r["y"] for r in test])
    subj = np.array([r["subject"] for r in test])
    print(f"{len({r['subject'] for r in train})} training subjects ({len(train)} windows), "
          f"{len(set(subj))} held out ({len(test)} windows)")
    scores = {"pspi_mean": np.array([r["pspi"].mean() for r in test]),
              "pspi_max": np.array([r["pspi"].max() for r in test])}
    f_tr = np.stack([features(r["code"]) for r in train])
    mu, sd = f_tr.mean(0), f_tr.std(0) + 1e-6
    xf_tr = torch.from_numpy((f_tr - mu) / sd).float()
    xf_te = torch.from_numpy((np.stack([features(r["code"]) for r in test]) - mu) / sd).float()
    lin = torch.nn.Linear(xf_tr.shape[1], 1)
    fit(lin, xf_tr, torch.from_numpy(y_tr), epochs=200, lr=1e-2, wd=1e-2)
    scores["features"] = score(lin, xf_te)
    xs_tr = torch.from_numpy(np.stack([r["code"].T for r in train]))
    xs_te = torch.from_numpy(np.stack([r["code"].T for r in test]))
    k = xs_tr.shape[1]
    cnn = torch.nn.Sequential(
        torch.nn.Conv1d(k, 32, 5, padding=2), torch.nn.GELU(), torch.nn.MaxPool1d(2),
        torch.nn.Conv1d(32, 32, 5, padding=2), torch.nn.GELU(), torch.nn.AdaptiveMaxPool1d(1),
        torch.nn.Flatten(), torch.nn.Linear(32, 1))
    fit(cnn, xs_tr, torch.from_numpy(y_tr), epochs=40, lr=3e-3, wd=1e-2)
    scores["sequence"] = score(cnn, xs_te)
    print("\n| score | BL1 vs PA4 AUROC, held-out subjects | 95 % CI (subjects) |\n|---|---:|---|")
    for name, s in scores.items():
        value, lo, hi = bootstrap(subj, lambda i, s=s: {"auroc": auroc(y_te[i], s[i])})["auroc"]
        print(f"| {name} | {value:.3f} | [{lo:.3f}, {hi:.3f}] |")
    still = np.array([r["pspi"].max() for r in test if r["y"] == 1])
    print(f"\nPA4 windows whose face never reaches PSPI 1: {np.mean(still < 1):.1%}; "
          f"BL1 windows reaching PSPI 1: {np.mean([r['pspi'].max() >= 1 for r in test if r['y'] == 0]):.1%}")


if __name__ == "__main__":
    main()
