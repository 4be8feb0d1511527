"""``painface train-assess``: train ViTPain on a ``painface synth faces`` dataset, resumably, on a CPU.

Loop: AdamW, linear warm-up then cosine decay, batches drawn with a generator seeded by
``(seed, step)`` (so a resumed run draws the same batches and dropout as an uninterrupted one), an
EMA of the weights. Loss: ``pspi_weight MSE(pspi/16) + MSE(aus/5) + 0.1 BCE(PSPI >= 1,2,3)`` (+ ``distill`` x the
feature-distillation loss for variant ``b``: MSE between the student's final tokens, through a linear
projector, and the frozen heatmap teacher's final tokens on the same geometry; features rather than
attention maps or outputs because every patch token then carries the teacher's "where the skin moved").

Every ``eval_every`` steps the EMA model is scored on a fixed subset of the **val** split (PSPI MAE);
the best is ``RUN/best.safetensors``. ``RUN/state.safetensors`` (+ ``state.json``) holds everything to
resume: weights, EMA, optimizer moments, step, best score. Predictions (validation, training, test) are
read as at inference (:func:`painface.assess.model.read`: the image and its mirror image averaged). At the
end, the PSPI gate and then the F1 thresholds are tuned on predictions for training images (no augmentation),
stored in the checkpoint, and the **test** split is scored once: ``RUN/test.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from painface.assess import data as D
from painface.assess import metrics as M
from painface.assess.model import ViTConfig, ViTPain, count_parameters, gated, load, read, save, tune_gate
from painface.errors import InputError
from painface.io import atomic_write_json


@dataclass(frozen=True)
class TrainConfig:
    """What ``train-assess`` does (saved as ``RUN/config.json``)."""

    data: str = ""
    variant: str = "a"
    teacher: str = ""
    init: str = ""
    size: int = 96
    dim: int = 128
    depth: int = 4
    heads: int = 4
    steps: int = 6000
    batch: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup: int = 100
    ema: float = 0.995
    distill: float = 1.0
    pspi_weight: float = 1.0
    augment: float = 0.5
    eval_every: int = 250
    val_images: int = 300
    save_every: int = 50
    seed: int = 0
    extra_data: tuple[str, ...] = ()


def command_line(cfg: TrainConfig, out: Path | str) -> str:
    """The ``painface train-assess`` command of ``cfg``: every setting that differs from the default is spelled out."""
    default = TrainConfig()
    parts = [f"painface train-assess --data {cfg.data} --out {out} --variant {cfg.variant}"]
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in ("data", "variant") and value != getattr(default, f.name):
            value = " ".join(value) if isinstance(value, tuple) else value
            parts.append(f"--{f.name.replace('_', '-')} {value}")
    return " ".join(parts)


def model_config(cfg: TrainConfig) -> ViTConfig:
    return ViTConfig(variant=cfg.variant, size=cfg.size, dim=cfg.dim, depth=cfg.depth, heads=cfg.heads)


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to 0."""
    from painface.training import warmup_cosine

    return warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup)


def loss_fn(out: dict[str, torch.Tensor], b: dict[str, torch.Tensor], teacher_tokens: torch.Tensor | None,
            model: ViTPain, distill: float, pspi_weight: float = 1.0) -> torch.Tensor:
    y = b["pspi"]
    loss = pspi_weight * F.mse_loss(out["pspi"] / 16, y / 16) + F.mse_loss(out["aus"] / 5, b["aus"] / 5)
    targets = torch.stack([(y >= k).float() for k in M.LEVELS], 1)
    loss = loss + 0.1 * F.binary_cross_entropy_with_logits(out["logits"], targets)
    if teacher_tokens is not None and model.proj is not None:
        loss = loss + distill * F.mse_loss(model.proj(out["tokens"]), teacher_tokens)
    return loss


def inputs_of(model: ViTPain, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(main input, neutral or None) of a batch for this model's variant."""
    v = model.config.variant
    return (b["heatmap"] if v == "teacher" else b["image"]), (b.get("neutral") if v == "c" else None)


@torch.no_grad()
def predict_outputs(model: ViTPain, split: D.Split, idx: np.ndarray | None = None, bs: int = 128, *,
                    mirror: bool = False, gate: float | None = None) -> dict[str, np.ndarray]:
    """``pspi`` ``[n]`` and ``p1`` (P(PSPI >= 1)) ``[n]`` for rows ``idx`` of ``split`` (all by default), no
    augmentation, read as at inference (:func:`painface.assess.model.read`: with the mirror image for a model
    trained with flips, and ``gate`` if given)."""
    idx = np.arange(len(split)) if idx is None else np.asarray(idx)
    v = model.config.variant
    pspi, p1 = [], []
    for k in range(0, len(idx), bs):
        t = torch.as_tensor(idx[k:k + bs])
        b = D.batch(split, t, None, neutral=v == "c", heatmap=v == "teacher")
        x, ref = inputs_of(model, b)
        out = read(model, x, ref, flip=mirror, gate=gate)
        pspi.append(out["pspi"].numpy())
        p1.append(torch.sigmoid(out["logits"][:, 0]).numpy())
    if not pspi:
        return {"pspi": np.zeros(0), "p1": np.zeros(0)}
    return {"pspi": np.concatenate(pspi), "p1": np.concatenate(p1)}


def predict_split(model: ViTPain, split: D.Split, idx: np.ndarray | None = None, bs: int = 128, *,
                  mirror: bool = False, gate: float | None = None) -> np.ndarray:
    """Predicted PSPI ``[n]`` (see :func:`predict_outputs`)."""
    return predict_outputs(model, split, idx, bs, mirror=mirror, gate=gate)["pspi"]


def tune_reading(model: ViTPain, split: D.Split, idx: np.ndarray | None = None, *,
                 mirror: bool) -> tuple[float, dict[int, float]]:
    """The PSPI gate, then the F1 thresholds on the gated PSPI, from one pass over rows ``idx`` of ``split`` (use
    on training rows only)."""
    y = split.pspi.numpy() if idx is None else split.pspi.numpy()[np.asarray(idx)]
    o = predict_outputs(model, split, idx, mirror=mirror)
    gate = tune_gate(y, o["pspi"], o["p1"])
    return gate, M.tune_thresholds(y, gated(o["pspi"], o["p1"], gate))


def _state_tensors(model, ema, opt) -> dict[str, torch.Tensor]:
    t = {f"model.{k}": v for k, v in model.state_dict().items()}
    t.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, p in enumerate(model.parameters()):
        st = opt.state.get(p, {})
        for name in ("exp_avg", "exp_avg_sq", "step"):
            if name in st:
                t[f"opt.{i}.{name}"] = torch.as_tensor(st[name]).reshape(-1) if name == "step" else st[name]
    return t


def _restore(tensors: dict[str, torch.Tensor], model, ema, opt) -> None:
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    for i, p in enumerate(model.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.{i}.exp_avg"].clone(),
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"].clone(),
                            "step": tensors[f"opt.{i}.step"].reshape(()).clone()}


def _teacher(cfg: TrainConfig) -> ViTPain | None:
    if cfg.variant != "b":
        return None
    if not cfg.teacher:
        raise InputError("--variant b needs --teacher RUN/best.safetensors (a run of --variant teacher)")
    t, _ = load(cfg.teacher)
    if t.config.variant != "teacher":
        raise InputError(f"{cfg.teacher}: a variant {t.config.variant!r} model, not a heatmap teacher")
    if t.config.dim != cfg.dim or t.config.size != cfg.size:
        raise InputError(f"{cfg.teacher}: teacher dim/size {t.config.dim}/{t.config.size} differ from "
                         f"the student's {cfg.dim}/{cfg.size}")
    for p in t.parameters():
        p.requires_grad_(False)
    return t


def train(cfg: TrainConfig, out: str | Path, *, progress: bool = True, log=print) -> dict[str, Any]:
    """Train (or resume) the run in ``out``; returns the test metrics (also ``out/test.json``)."""
    from painface.model.checkpoint import read_tensors, save_tensors_atomic

    out = Path(out)
    mcfg = model_config(cfg)
    mcfg.check()
    if cfg.steps < 1 or cfg.batch < 1 or cfg.eval_every < 1 or cfg.save_every < 1:
        raise InputError("--steps, --batch, --eval-every, --save-every must be >= 1")
    if not cfg.pspi_weight > 0:
        raise InputError(f"--pspi-weight: expected > 0, got {cfg.pspi_weight}")
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        now = json.loads(json.dumps(dataclasses.asdict(cfg)))  # as stored (tuples become lists)
        old = {**json.loads(json.dumps(dataclasses.asdict(TrainConfig()))), **json.loads(cfg_path.read_text())}
        if old != now:  # older runs lack newer settings: their defaults
            diff = sorted(k for k in old if old.get(k) != now.get(k))
            raise InputError(f"{out}: holds a run with other settings ({', '.join(diff)}); use a new --out")
    teacher = _teacher(cfg)
    need_hm = cfg.variant in ("teacher", "b")
    t0 = time.time()
    train_s = D.load_training(cfg.data, cfg.extra_data, cfg.size, heatmaps=need_hm)
    val_s = D.load_split(cfg.data, "val", cfg.size, heatmaps=cfg.variant == "teacher")
    log(f"loaded train {len(train_s)} / val {len(val_s)} images at {cfg.size} px in {time.time() - t0:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg_path, dataclasses.asdict(cfg))

    torch.manual_seed(cfg.seed)
    model = ViTPain(mcfg)
    ema = ViTPain(mcfg)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best, elapsed = 0, float("inf"), 0.0
    history: list[dict[str, float]] = []
    if cfg.init:
        init, _ = load(cfg.init)
        if dataclasses.replace(init.config, variant=cfg.variant) != mcfg:
            raise InputError(f"--init {cfg.init}: its network {init.config} differs from this run's {mcfg}")
        own = model.state_dict()  # variant c's head reads 2 x dim: tensors of other shapes keep their init
        model.load_state_dict({k: v for k, v in init.state_dict().items() if k in own and v.shape == own[k].shape},
                              strict=False)
        ema.load_state_dict(model.state_dict())
    if (out / "state.safetensors").is_file():
        tensors, meta = read_tensors(out / "state.safetensors")
        _restore(tensors, model, ema, opt)
        info = json.loads(meta["painface"])
        step, best, elapsed, history = info["step"], info["best"], info["elapsed"], info["history"]
        log(f"resumed at step {step} (best val MAE {best:.3f})")
    val_idx = np.sort(np.random.default_rng(cfg.seed).permutation(len(val_s))[:cfg.val_images])
    mirror = cfg.augment > 0  # trained on mirrored faces too: read each face with its mirror image
    info = {"params": count_parameters(model), "data": str(cfg.data), "train_images": len(train_s), "mirror": mirror}
    if cfg.extra_data:
        info["extra_data"] = list(cfg.extra_data)

    def checkpoint() -> None:
        meta = {"step": step, "best": best, "elapsed": elapsed, "history": history}
        save_tensors_atomic(out / "state.safetensors", _state_tensors(model, ema, opt), {"painface": json.dumps(meta)})
        atomic_write_json(out / "state.json", meta)

    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=step, desc=f"train-assess {cfg.variant}", disable=not progress)
    tick = time.time()
    while step < cfg.steps:
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        torch.manual_seed(cfg.seed * 1_000_003 + step)
        idx = torch.randint(0, len(train_s), (cfg.batch,), generator=g)
        b = D.batch(train_s, idx, g, neutral=cfg.variant == "c", heatmap=need_hm, strength=cfg.augment)
        x, ref = inputs_of(model, b)
        tt = None
        if teacher is not None:
            with torch.no_grad():
                tt = teacher.encode(b["heatmap"])[0]
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step)
        loss = loss_fn(model(x, ref), b, tt, model, cfg.distill, cfg.pspi_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = min(cfg.ema, (1 + step) / (10 + step))
            for pe, pm in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
                if pe.is_floating_point():
                    pe.mul_(d).add_(pm, alpha=1 - d)
                else:
                    pe.copy_(pm)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            p = predict_split(ema, val_s, val_idx, mirror=mirror)
            score = M.mae(val_s.pspi.numpy()[val_idx], p)
            history.append({"step": step, "loss": float(loss.item()), "val_mae": score,
                            "val_r": M.pearson(val_s.pspi.numpy()[val_idx], p)})
            log(f"step {step}: loss {loss.item():.4f}, val PSPI MAE {score:.3f}, r {history[-1]['val_r']:.3f}")
            if score < best:
                best = score
                save(out / "best", ema, {**info, "step": step, "val_mae": score})
        if step % cfg.save_every == 0 or step == cfg.steps:
            elapsed += time.time() - tick
            tick = time.time()
            checkpoint()
    bar.close()
    return finish(cfg, out, train_s, elapsed, log)


def finish(cfg: TrainConfig, out: Path, train_s: D.Split, elapsed: float, log=print) -> dict[str, Any]:
    """Tune F1 thresholds on training images, store them in the best checkpoint, score the test split once."""
    if (out / "test.json").is_file():
        return json.loads((out / "test.json").read_text())
    best, meta = load(out / "best")
    idx = np.random.default_rng(cfg.seed + 1).permutation(len(train_s))[:2000]
    mirror = meta.get("mirror", cfg.augment > 0)
    gate, thr = tune_reading(best, train_s, idx, mirror=mirror)
    info = {k: v for k, v in meta.items() if k not in ("format", "version", "config")}
    info.update(thresholds={str(k): v for k, v in thr.items()}, gate=gate, train_seconds=elapsed,
                command=command_line(cfg, out))
    save(out / "best", best, info)
    test_s = D.load_split(cfg.data, "test", cfg.size, heatmaps=cfg.variant == "teacher")
    p = predict_split(best, test_s, mirror=mirror, gate=gate)
    res = {"variant": cfg.variant, "test_images": len(test_s), "train_seconds": elapsed, "step": meta.get("step"),
           **M.summary(test_s.pspi.numpy(), p, thr)}
    np.savez(out / "test_predictions.npz", pspi=test_s.pspi.numpy(), pred=p, identity=test_s.identity.numpy())
    atomic_write_json(out / "test.json", res)
    log("test: " + ", ".join(f"{k} {v:.3f}" for k, v in res.items() if isinstance(v, float)))
    return res
