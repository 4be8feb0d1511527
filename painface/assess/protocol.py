"""The UNBC-McMaster protocols: 5-fold subject-wise and leave-one-subject-out, with synthetic pretraining.

For every fold the test subjects are set aside first. Of the remaining subjects, ``val_subjects``
(chosen by the seed) select the checkpoint (PSPI MAE, every ``eval_every`` steps) and the rest
fine-tune the pretrained ViTPain (or a fresh one: ``pretrained=None``, the "vanilla" baseline) with a
sampler that draws frames with PSPI >= 1 half of the time (UNBC is mostly PSPI 0). F1 thresholds are
tuned on the fine-tuning subjects' predictions. The test fold is predicted once, by the selected
checkpoint; nothing about it is used before. Metrics per fold and pooled over all test predictions
(:func:`painface.assess.metrics.summary`). Hammal & Cohn (2012) found 5-fold and LOSO numbers far apart:
always report which protocol.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from painface.assess import data as D
from painface.assess import metrics as M
from painface.assess.model import ViTConfig, ViTPain, load
from painface.assess.train import inputs_of, loss_fn, predict_split, tune_reading
from painface.errors import InputError


def subject_folds(subjects, k: int = 5, seed: int = 0) -> list[list[str]]:
    """``k`` disjoint folds of the unique subjects (shuffled by ``seed``, dealt round-robin)."""
    uniq = sorted({str(s) for s in subjects})
    if not 2 <= k <= len(uniq):
        raise InputError(f"folds: need 2 <= k <= {len(uniq)} subjects, got k={k}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    return [sorted(uniq[i] for i in order[f::k]) for f in range(k)]


def loso_folds(subjects) -> list[list[str]]:
    """Leave-one-subject-out: one fold per subject."""
    return [[s] for s in sorted({str(s) for s in subjects})]


def fold_subjects(all_subjects, test: list[str], val_subjects: int, seed: int) -> tuple[list[str], list[str]]:
    """(fine-tuning subjects, validation subjects) of a fold: both disjoint from ``test``."""
    rest = sorted({str(s) for s in all_subjects} - set(test))
    if len(rest) < val_subjects + 1:
        raise InputError(f"fold {test}: {len(rest)} other subjects, need {val_subjects} for validation + 1")
    pick = set(np.random.default_rng(seed).permutation(rest)[:val_subjects].tolist())
    return [s for s in rest if s not in pick], sorted(pick)


def make_split(df: pd.DataFrame, crops: np.ndarray) -> D.Split:
    """A :class:`painface.assess.data.Split` of UNBC frames (crops uint8 ``[N, S, S, 3]``); a frame's
    neutral reference is its subject's first PSPI-0 frame (else its first frame)."""
    df = df.reset_index(drop=True)
    ref = {}
    for s, g in df.groupby("subject", sort=False):
        z = g.index[g.PSPI == 0]
        ref[s] = int(z[0] if len(z) else g.index[0])
    subj_id = {s: k for k, s in enumerate(sorted(df.subject.unique()))}
    return D.Split(images=torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))), heatmaps=None,
                   neutral=torch.tensor([ref[s] for s in df.subject], dtype=torch.int64),
                   aus=torch.tensor(df[list(D.PSPI_AUS)].to_numpy(np.float32)),
                   pspi=torch.tensor(df.PSPI.to_numpy(np.float32)),
                   identity=torch.tensor([subj_id[s] for s in df.subject], dtype=torch.int64))


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning settings (per fold)."""

    steps: int = 500
    batch: int = 32
    lr: float = 3e-4
    eval_every: int = 100
    val_subjects: int = 2
    augment: float = 0.3
    seed: int = 0


def finetune(model: ViTPain, train_s: D.Split, val_s: D.Split, cfg: FinetuneConfig) -> tuple[ViTPain, float]:
    """Fine-tune a copy of ``model``; returns (the copy at its best validation PSPI MAE, that MAE)."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.05)
    pos = (train_s.pspi >= 1).double()
    w = torch.where(pos > 0, 0.5 / max(1.0, float(pos.sum())), 0.5 / max(1.0, float((1 - pos).sum())))
    best, best_state = float("inf"), copy.deepcopy(model.state_dict())
    v = model.config.variant
    mirror = cfg.augment > 0
    for step in range(cfg.steps):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.multinomial(w, cfg.batch, replacement=True, generator=g)
        b = D.batch(train_s, idx, g, neutral=v == "c", strength=cfg.augment)
        x, ref = inputs_of(model, b)
        loss = loss_fn(model(x, ref), b, None, model, 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            score = M.mae(val_s.pspi.numpy(), predict_split(model, val_s, mirror=mirror))
            if score < best:
                best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), best


def run_protocol(root: str | Path, protocol: str = "5fold", pretrained: str | Path | None = None,
                 cfg: FinetuneConfig = FinetuneConfig(), size: int | None = None, log=print) -> dict:
    """Run ``protocol`` ("5fold" or "loso") on the archive at ``root``. Returns ``{"folds": DataFrame of
    per-fold metrics, "pooled": metrics over all test predictions, "predictions": DataFrame}``."""
    from painface.assess.unbc import crops, read_unbc

    if protocol not in ("5fold", "loso"):
        raise InputError(f"protocol: expected '5fold' or 'loso', got {protocol!r}")
    if pretrained is not None:
        base, _ = load(pretrained)
        if base.config.variant == "teacher":
            raise InputError(f"{pretrained}: a heatmap teacher cannot read UNBC photos")
    else:
        torch.manual_seed(cfg.seed)
        base = ViTPain(ViTConfig(size=size or 96))
    df = read_unbc(root)
    all_crops = crops(df, base.config.size)
    folds = subject_folds(df.subject, 5, cfg.seed) if protocol == "5fold" else loso_folds(df.subject)
    rows, preds = [], []
    for f, test in enumerate(folds):
        tune, val = fold_subjects(df.subject, test, cfg.val_subjects, cfg.seed + f)
        part = {name: df.subject.isin(s).to_numpy() for name, s in (("tune", tune), ("val", val), ("test", test))}
        splits = {name: make_split(df[m], all_crops[m]) for name, m in part.items()}
        model, val_mae = finetune(base, splits["tune"], splits["val"], cfg)
        mirror = cfg.augment > 0  # as finetune() read its validation subjects
        gate, thr = tune_reading(model, splits["tune"], mirror=mirror)
        p = predict_split(model, splits["test"], mirror=mirror, gate=gate)
        y = splits["test"].pspi.numpy()
        res = {"fold": f, "test_subjects": ",".join(test), "val_subjects": ",".join(val), "val_MAE": val_mae,
               "gate": gate, **M.summary(y, p, thr)}
        rows.append(res)
        preds.append(pd.DataFrame({"fold": f, "subject": df.subject[part["test"]].to_numpy(), "PSPI": y, "pred": p,
                                   **{f"thr{k}": thr[k] for k in M.LEVELS}}))
        log(f"fold {f} ({','.join(test)}): MAE {res['MAE']:.3f}, r {res['r']:.3f}")
    pred = pd.concat(preds, ignore_index=True)
    pooled = M.summary(pred.PSPI, pred.pred)
    for k in M.LEVELS:  # each fold's own training-tuned threshold
        pooled[f"F1_{k}"] = M.f1(pred.PSPI >= k, pred.pred - pred[f"thr{k}"], 0.0)
    return {"folds": pd.DataFrame(rows), "pooled": pooled, "predictions": pred}
