"""Guidance distillation, the training side (``painface distill``): one network pass in place of four.

The shipped sampler guides every solver stage with four passes of the network (the full conditions, and
without each of emotion, expressiveness and stimulus; :func:`~painface.model.edm.guided_denoiser`), gated per
frame by the stimulus's news (:func:`~painface.model.sampling.guidance_gate`). Their combination is a fixed
function of (x, sigma, conditions) for fixed strengths, so a network of the same shape can learn it and run
it in one pass (stage one of Meng et al., "On distillation of guided diffusion models", CVPR 2023, with the
strengths fixed instead of an input). The solver, its steps and the context handling are unchanged.

What it learns from: the teacher's own sampler, run on training subjects' stimuli at both the offline
(``painface generate``) and the live settings; every guided call it makes is a state (x, sigma, conditions)
with its guided output as the target, so the student is trained where sampling goes, not only on noised data.
Loss: EDM's lambda(sigma)-weighted squared error between the two outputs (the error of the network's own
output F), over the frames being generated (the context frames' estimates are discarded by the sampler).
The student starts from the teacher's weights; EMA; the kept model is the one with the lowest loss on states
collected from the validation subjects, never the test subjects.

:class:`painface.model.distill.DistilledGuidance` holds the student beside the teacher at inference.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from painface.errors import InputError
from painface.io import atomic_write_json, config_from_dict
from painface.model.conditions import EMOTIONS, Conditions
from painface.model.distill import weights_sha256
from painface.model.edm import Denoiser, loss_weight
from painface.model.sampling import RollingSampler

BEFORE_FRAMES = 1500
"""Stimulus frames before a collected sequence that prime the stimulus memory (its longest time constant)."""


COLLECTION_KEYS = ("sequences", "val_sequences", "seconds", "live_share", "keep", "random_conditions", "cold_share",
                   "collect_batch", "seed")
"""The :class:`DistillConfig` keys that decide the collected states: a run folder keeps them (the training keys may
change when a run is resumed, e.g. more ``steps``)."""


@dataclass
class DistillConfig:
    """``painface distill`` settings (JSON keys of ``--config``).

    sequences / val_sequences: sequences of ``seconds`` the teacher generates from training / validation
    subjects' stimuli; live_share: share of them sampled at the live engine's settings (the rest at the
    checkpoint's offline settings); keep: share of solver calls kept as states; random_conditions: share of
    sequences given a random expressiveness (over the trained range) and a random emotion (one of 8, or a blend of
    two) instead of the subject's; cold_share: share started from a resting face instead of the recorded context.
    steps, batch, lr, warmup, ema_decay, weight_decay: the student's optimisation; val_every: steps between
    validations (and saves).
    """

    sequences: int = 256
    val_sequences: int = 32
    seconds: float = 20.0
    live_share: float = 0.4
    keep: float = 0.3
    random_conditions: float = 0.3
    cold_share: float = 0.5
    collect_batch: int = 8
    steps: int = 3000
    batch: int = 32
    lr: float = 2e-4
    warmup: int = 100
    ema_decay: float = 0.998
    weight_decay: float = 0.0
    val_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {"sequences": self.sequences >= 1, "val_sequences": self.val_sequences >= 1,
                  "seconds": 1.0 <= self.seconds <= 600, "live_share": 0 <= self.live_share <= 1,
                  "keep": 0 < self.keep <= 1, "random_conditions": 0 <= self.random_conditions <= 1,
                  "cold_share": 0 <= self.cold_share <= 1, "collect_batch": self.collect_batch >= 1,
                  "steps": self.steps >= 1, "batch": self.batch >= 1, "lr": 0 < self.lr < 1,
                  "warmup": self.warmup >= 0, "ema_decay": 0 <= self.ema_decay < 1,
                  "weight_decay": self.weight_decay >= 0, "val_every": self.val_every >= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"DistillConfig: out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    @classmethod
    def from_dict(cls, d: dict) -> DistillConfig:
        return config_from_dict(cls, d, "DistillConfig")


# --- states -------------------------------------------------------------------------------------------
class StateRecorder:
    """An :data:`~painface.model.sampling.Observer` keeping a random share of the guided calls' rows: the input
    x, sigma, conditions and the guided output, and how many leading frames are context (grouped by window
    length)."""

    def __init__(self, keep: float, context: int, rng: np.random.Generator) -> None:
        self.keep, self.context, self.rng = keep, context, rng
        self.rows: dict[int, list[dict[str, Tensor]]] = {}

    def __call__(self, x: Tensor, sigma: Tensor, cond: Conditions, out: Tensor) -> None:
        pick = np.flatnonzero(self.rng.random(x.shape[0]) < self.keep)
        if pick.size == 0:
            return
        idx = torch.as_tensor(pick)
        stim = cond.stimulus if cond.stimulus.ndim == 3 else cond.stimulus[..., None]
        self.rows.setdefault(x.shape[1], []).append({
            "x": x[idx].float().cpu(), "sigma": sigma[idx].float().cpu(), "stimulus": stim[idx].float().cpu(),
            "expressiveness": cond.expressiveness[idx].float().cpu(), "emotion": cond.emotion[idx].float().cpu(),
            "target": out[idx].float().cpu(), "context": torch.full((idx.numel(),), self.context, dtype=torch.int32)})

    def tensors(self) -> dict[str, Tensor]:
        """``<frames>.<name>`` -> stacked tensor, per window length."""
        out: dict[str, Tensor] = {}
        for frames, rows in self.rows.items():
            for k in rows[0]:
                out[f"{frames}.{k}"] = torch.cat([r[k] for r in rows])
        return out


def _emotions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random emotions ``[n, 8]``: one-hot, or a blend of two (a third of them)."""
    e = np.zeros((n, len(EMOTIONS)), np.float32)
    for i in range(n):
        a, b = rng.choice(len(EMOTIONS), 2, replace=False)
        w = rng.uniform(0.3, 0.7) if rng.random() < 1 / 3 else 1.0
        e[i, a] += w
        e[i, b] += 1 - w
    return e


def collect_states(model: Any, corpus: Any, split: str, sequences: int, cfg: DistillConfig, seed: int,
                   progress: bool = True) -> dict[str, Tensor]:
    """Run ``model``'s own guided sampler (a :class:`~painface.express.PainDiffusion` without a distilled
    network) on ``sequences`` stretches of ``split`` subjects' recorded stimuli and record its calls
    (:class:`StateRecorder`): a share ``cfg.live_share`` at the live engine's settings, the rest at the checkpoint's
    offline settings."""
    from painface.data.windows import subject_emotion
    from painface.face.code import FEATURE_NAMES, neutral_face
    from painface.stream import LIVE_DEFAULTS

    if getattr(model.denoiser, "distilled", None) is not None:
        raise InputError("collect_states: the teacher must run its guided passes (load it with distilled=False)")
    ids = corpus.ids(split)
    if not ids:
        raise InputError(f"--data: no {split!r} subjects to collect distillation states from")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    frames = int(round(cfg.seconds * model.fps))
    lo, hi = model.trained_expressiveness or (0.0, 1.0)
    rest = model.encode(neutral_face(1)[0] if len(model.feature_names) == len(FEATURE_NAMES)
                        else np.asarray(model.normalizer.mean))
    settings = {"offline": model.sampler_config(), "live": model.sampler_config(**LIVE_DEFAULTS)}
    n_live = int(round(sequences * cfg.live_share))
    plan = ["live"] * n_live + ["offline"] * (sequences - n_live)
    recorder_rows: dict[str, Tensor] = {}
    recorders = []
    bar = tqdm(total=sequences, desc=f"collect {split}", unit="seq", disable=not progress)
    for start in range(0, sequences, cfg.collect_batch):
        kinds = plan[start:start + cfg.collect_batch]
        for kind in ("offline", "live"):
            b = kinds.count(kind)
            if b == 0:
                continue
            sc = settings[kind]
            c = sc.context
            stim, before, ctx_stim, ctx, expr, emo = [], [], [], [], [], []
            for _ in range(b):
                sub = corpus.subject(ids[int(rng.integers(len(ids)))])
                if sub.frames <= c:
                    raise InputError(f"--data: subject {sub.id} has {sub.frames} frames; distillation needs more than "
                                     f"the sampler's {c} context frames")
                s0 = int(rng.integers(c, max(c, sub.frames - frames) + 1))
                seg = np.asarray(sub.stimulus[s0:s0 + frames], np.float32)
                seg = np.concatenate([seg, np.full(frames - seg.size, seg[-1] if seg.size else 0, np.float32)])
                cold = rng.random() < cfg.cold_share
                stim.append(seg)
                prior = np.asarray(sub.stimulus[max(0, s0 - c - BEFORE_FRAMES):s0 - c], np.float32)
                before.append(np.concatenate([np.zeros(BEFORE_FRAMES - prior.size, np.float32), prior]))
                ctx_stim.append(np.asarray(sub.stimulus[s0 - c:s0], np.float32))
                ctx.append(rest.expand(c, -1) if cold else model.encode(sub.face[s0 - c:s0]))
                if rng.random() < cfg.random_conditions:
                    expr.append(float(rng.uniform(lo, hi)))
                    emo.append(_emotions(1, rng)[0])
                else:
                    expr.append(float(sub.info["expressiveness"]))
                    emo.append(subject_emotion(sub.info))
            rec = StateRecorder(cfg.keep, c, rng)
            sampler = RollingSampler(model.denoiser, np.asarray(expr, np.float32), np.stack(emo),
                                     context=torch.stack(ctx), context_stimulus=np.stack(ctx_stim), config=sc,
                                     generator=gen, stimulus_before=np.stack(before), observe=rec)
            st = np.stack(stim)
            for i in range(math.ceil(frames / sc.horizon)):
                chunk = st[:, i * sc.horizon:(i + 1) * sc.horizon]
                if chunk.shape[1] < sc.horizon:
                    chunk = np.concatenate([chunk, np.repeat(chunk[:, -1:], sc.horizon - chunk.shape[1], 1)], 1)
                sampler.step(chunk)
            recorders.append(rec)
            bar.update(b)
    bar.close()
    for rec in recorders:
        for k, v in rec.tensors().items():
            recorder_rows.setdefault(k, []).append(v)  # type: ignore[arg-type]
    return {k: torch.cat(v) for k, v in recorder_rows.items()}  # type: ignore[arg-type]


class States:
    """Collected states grouped by window length, for batches of one length at a time."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        self.groups: dict[int, dict[str, Tensor]] = {}
        for key, v in tensors.items():
            frames, name = key.split(".", 1)
            self.groups.setdefault(int(frames), {})[name] = v
        if not self.groups:
            raise InputError("distillation states: none collected (raise --config keep or sequences)")
        self.lengths = sorted(self.groups)
        self.sizes = np.asarray([self.groups[f]["x"].shape[0] for f in self.lengths])

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def batch(self, frames: int, idx: Tensor) -> tuple[Tensor, Tensor, Conditions, Tensor, Tensor]:
        g = self.groups[frames]
        stim = g["stimulus"][idx]
        cond = Conditions(stim if stim.shape[-1] > 1 else stim[..., 0], g["expressiveness"][idx], g["emotion"][idx])
        mask = (torch.arange(frames)[None, :] >= g["context"][idx][:, None]).float()
        return g["x"][idx], g["sigma"][idx], cond, g["target"][idx], mask


def distill_loss(student: Denoiser, x: Tensor, sigma: Tensor, cond: Conditions, target: Tensor,
                 mask: Tensor) -> Tensor:
    """lambda(sigma)-weighted squared difference of the student's and the guided output, over masked frames."""
    err = (student(x, sigma, cond) - target).square().mean(-1)
    w = loss_weight(sigma, student.sigma_data) * mask
    return (w * err).sum() / mask.sum().clamp(min=1)


@torch.no_grad()
def evaluate_states(student: Denoiser, states: States, batch: int = 256) -> float:
    """Mean distillation loss over all ``states`` (frame-weighted like :func:`distill_loss`)."""
    total, count = 0.0, 0.0
    was = student.training
    student.eval()
    for frames in states.lengths:
        n = states.groups[frames]["x"].shape[0]
        for i in range(0, n, batch):
            x, sigma, cond, target, mask = states.batch(frames, torch.arange(i, min(n, i + batch)))
            err = (student(x, sigma, cond) - target).square().mean(-1)
            total += float((loss_weight(sigma, student.sigma_data) * mask * err).sum())
            count += float(mask.sum())
    student.train(was)
    return total / max(count, 1.0)


# --- the run ------------------------------------------------------------------------------------------
def distill(checkpoint: str | Path, data: str | Path, out: str | Path, cfg: DistillConfig,
            progress: bool = True) -> dict[str, Any]:
    """Distill ``checkpoint``'s guided sampler into one network (see the module docstring); resumable.

    ``out`` (a run folder): ``states.safetensors`` (collected once), ``state.safetensors`` (training state),
    ``log.jsonl``, and ``model.safetensors`` + ``model.json``, the student with the lowest validation loss so
    far, ready to be copied beside the checkpoint as ``<name>_guided.safetensors`` (+ ``.json``)."""
    from painface.data.corpus import open_corpus
    from painface.express import PainDiffusion
    from painface.model.checkpoint import read_tensors, save_model, save_tensors_atomic
    from painface.model.inference import file_sha256
    from painface.training import append_log, load_state, run_folder, save_state, warmup_cosine

    out = run_folder(Path(out))
    checkpoint = Path(checkpoint).with_suffix(".safetensors")
    if not checkpoint.is_file():
        raise InputError(f"--checkpoint {checkpoint}: file not found")
    teacher = PainDiffusion.load(checkpoint, distilled=False)
    corpus = open_corpus(data)
    sha = file_sha256(checkpoint)
    collection = {k: v for k, v in asdict(cfg).items() if k in COLLECTION_KEYS}
    subjects = {sp: corpus.ids(sp) for sp in ("train", "val")}
    settings = {"checkpoint_sha256": sha, "collection": collection, "corpus_subjects": subjects}
    run_json = out / "distill.json"
    if run_json.is_file():
        try:
            before = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"--out {out}: distill.json is unreadable ({e}); use a new folder") from None
        if (before.get("checkpoint_sha256") != sha or before.get("collection") != collection
                or before.get("corpus_subjects", subjects) != subjects):
            raise InputError(f"--out {out}: holds a distillation of another checkpoint, corpus or other collection "
                             f"settings ({', '.join(COLLECTION_KEYS)}); use a new folder")
    else:
        atomic_write_json(run_json, settings)
    states_path = out / "states.safetensors"
    if states_path.is_file():
        tensors, _ = read_tensors(states_path)
    else:
        t0 = time.perf_counter()
        train = collect_states(teacher, corpus, "train", cfg.sequences, cfg, cfg.seed, progress)
        val = collect_states(teacher, corpus, "val", cfg.val_sequences, cfg, cfg.seed + 1, progress)
        tensors = {**{f"train.{k}": v for k, v in train.items()}, **{f"val.{k}": v for k, v in val.items()}}
        save_tensors_atomic(states_path, tensors, {"painface_states": json.dumps(settings)})
        append_log(out / "log.jsonl", {"event": "collected", "seconds": round(time.perf_counter() - t0, 1),
                                       "train_states": len(States(train)), "val_states": len(States(val))})
    train_states = States({k[6:]: v for k, v in tensors.items() if k.startswith("train.")})
    val_states = States({k[4:]: v for k, v in tensors.items() if k.startswith("val.")})

    base = teacher.denoiser
    student = Denoiser(copy.deepcopy(base.net), base.sigma_data, base.sigma_floor)
    student.train()
    ema = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, math.inf
    state_path = out / "state.safetensors"
    if state_path.is_file():
        info = load_state(state_path, "painface_state", {"student": student, "ema": ema}, lambda _i: opt,
                          (gen, ("rng",)))
        step, best, start_loss = int(info["step"]), float(info["best"]), float(info["start"])
    else:
        start_loss = best = evaluate_states(student, val_states)  # the teacher's own conditional output, unguided
        append_log(out / "log.jsonl", {"event": "start", "val_loss": best})
        _save_student(save_model, out, student, teacher, sha, cfg, 0, best, len(train_states), start=best)
    probs = train_states.sizes / train_states.sizes.sum()
    bar = tqdm(total=cfg.steps, initial=step, desc="distill", unit="step", disable=not progress)
    losses: list[float] = []
    while step < cfg.steps:
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup)
        frames = train_states.lengths[int(torch.multinomial(torch.as_tensor(probs), 1, generator=gen))]
        n = train_states.groups[frames]["x"].shape[0]
        idx = torch.randint(n, (cfg.batch,), generator=gen)
        loss = distill_loss(student, *train_states.batch(frames, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        ema.update_parameters(student)
        losses.append(float(loss.detach()))
        step += 1
        bar.update(1)
        if step % cfg.val_every == 0 or step == cfg.steps:
            val = evaluate_states(ema.module, val_states)
            record = {"step": step, "loss": float(np.mean(losses)), "val_loss": val, "lr": opt.param_groups[0]["lr"]}
            append_log(out / "log.jsonl", record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{val:.4f}")
            losses = []
            if val < best:
                best = val
                _save_student(save_model, out, ema.module, teacher, sha, cfg, step, val, len(train_states),
                              start=start_loss)
            save_state(state_path, "painface_state", {"student": student, "ema": ema}, opt,
                       {"step": step, "best": best, "start": start_loss}, {"rng": gen.get_state()})
    bar.close()
    result = {"steps": step, "val_loss": best, "val_loss_start": start_loss, "train_states": len(train_states),
              "val_states": len(val_states)}
    print(json.dumps(result), file=sys.stderr if not progress else sys.stdout)
    return result


def _save_student(save_model: Any, out: Path, student: Denoiser, teacher: Any, sha: str, cfg: DistillConfig,
                  step: int, val: float, states: int, start: float) -> None:
    sc = teacher.sampler
    info = {k: v for k, v in teacher.info.items() if k not in ("format", "version", "unet", "sigma_data", "training")}
    info["distilled"] = {"teacher_sha256": sha, "teacher_weights_sha256": weights_sha256(teacher.denoiser),
                         "guidance": list(sc.guidance), "gate": sc.gate, "schedules": ["full"],
                         "gate_terms": sc.gate_terms, "step": step, "val_loss": val, "val_loss_start": start,
                         "train_states": states, "config": asdict(cfg)}
    save_model(out / "model.safetensors", student, info)
