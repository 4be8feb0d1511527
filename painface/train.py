"""Train PainDiffusion on a corpus: ``painface train --data DIR --out RUN_DIR``.

One script for one process or many (``torchrun --nproc_per_node=N -m painface.train ...``: DDP with gloo
on CPU, nccl on GPU). AdamW with linear warm-up (then cosine decay), gradient clipping, an EMA of the
weights, periodic validation loss on the validation subjects, and checkpoints as safetensors + JSON:

* ``RUN_DIR/state.safetensors``: everything needed to resume (weights, EMA, optimizer, step, RNG);
  a run restarted with the same RUN_DIR resumes from it, losing at most one checkpoint interval
  (``ckpt_every`` steps or ``ckpt_minutes`` minutes, whichever comes first);
* ``RUN_DIR/model.safetensors`` + ``model.json``: the EMA weights with their configs, normalizer and
  provenance, for ``painface generate --checkpoint``;

Crash safety: every file is written to a temporary and renamed. A checkpoint writes the model (weights,
then JSON) first and the state last: the state is the commit point. Resuming compares the model's
recorded step with the state's and rewrites the model from the state's EMA when they differ, so a run
killed at any point leaves, after its rerun, a model and state of the same step.
* ``RUN_DIR/train.json`` (the configuration) and ``RUN_DIR/log.jsonl`` (loss per interval).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from painface.data.corpus import open_corpus
from painface.data.windows import FeatureNormalizer, WindowDataset
from painface.errors import InputError
from painface.io import atomic_write_json, config_from_dict
from painface.model.checkpoint import load_model, save_model
from painface.model.conditions import Conditions
from painface.model.edm import Denoiser, EDMConfig, sample_training_sigmas, training_loss
from painface.model.sampling import SamplerConfig
from painface.model.unet import TemporalUNet, UNetConfig
from painface.training import (
    append_log,
    load_state,
    save_state,
    saved_step,
    torch_device,
    warmup_cosine,
)


@dataclass
class TrainConfig:
    """Training settings (saved as RUN_DIR/train.json). Paper: 300k steps, lr 4e-4, 5k warm-up, EMA 0.999,
    windows of 64 frames; the CPU-sized defaults here are documented in docs/training.md."""

    steps: int = 20_000
    batch_size: int = 64
    lr: float = 4e-4
    min_lr_ratio: float = 0.1
    warmup: int = 500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    window: int = 64
    random_share: float = 0.25
    ckpt_every: int = 500
    ckpt_minutes: float = 10.0
    val_every: int = 500
    val_windows: int = 128
    seed: int = 0
    init: str | None = None
    unet: dict = field(default_factory=dict)
    edm: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        cfg = config_from_dict(cls, d, "training config")
        if cfg.steps < 1 or cfg.batch_size < 1 or cfg.lr <= 0 or cfg.warmup < 0 or cfg.ckpt_every < 1:
            raise InputError("training config: need steps >= 1, batch_size >= 1, lr > 0, warmup >= 0, ckpt_every >= 1")
        checks = {"window": cfg.window >= 2, "val_every": cfg.val_every >= 1, "val_windows": cfg.val_windows >= 1,
                  "ckpt_minutes": cfg.ckpt_minutes > 0, "ema_decay": 0 <= cfg.ema_decay < 1,
                  "random_share": 0 <= cfg.random_share <= 1, "min_lr_ratio": 0 <= cfg.min_lr_ratio <= 1,
                  "weight_decay": cfg.weight_decay >= 0, "grad_clip": cfg.grad_clip >= 0, "lr": cfg.lr < 1e3}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise InputError(f"training config: {', '.join(f'{k} = {getattr(cfg, k)!r}' for k in bad)} out of range; "
                             "expected window >= 2, val_every >= 1, val_windows >= 1, ckpt_minutes > 0, "
                             "0 <= ema_decay < 1, random_share and min_lr_ratio in [0, 1], weight_decay and "
                             "grad_clip >= 0, lr < 1000")
        return cfg


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    return warmup_cosine(step, cfg.steps, cfg.lr, cfg.warmup, cfg.min_lr_ratio)


class LossModule(nn.Module):
    """Wraps :func:`painface.model.edm.training_loss` so DDP sees the loss computation as one forward."""

    def __init__(self, denoiser: Denoiser, config: EDMConfig):
        super().__init__()
        self.denoiser, self.config = denoiser, config

    def forward(self, x0: torch.Tensor, cond: Conditions, generator: torch.Generator) -> torch.Tensor:
        return training_loss(self.denoiser, x0, cond, self.config, generator)


def collate(
    items: list[dict[str, torch.Tensor]], scale: float, device: torch.device
) -> tuple[torch.Tensor, Conditions]:
    """Stack dataset items into (x0 ``[B, T, D]`` scaled to sigma_data, conditions); items with ``memory``
    give the stimulus ``[B, T, 1 + K]``."""
    x0 = torch.stack([it["face"] for it in items]).to(device) * scale
    stim = torch.stack([it["stimulus"] for it in items])
    if "memory" in items[0]:
        stim = torch.cat([stim[..., None], torch.stack([it["memory"] for it in items])], dim=-1)
    cond = Conditions(
        stim.to(device),
        torch.stack([it["expressiveness"] for it in items]).to(device),
        torch.stack([it["emotion"] for it in items]).to(device),
    )
    return x0, cond


class Trainer:
    def __init__(self, data: Path, out: Path, cfg: TrainConfig, device: str = "auto", progress: bool = True):
        self.ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.ddp and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        self.rank = dist.get_rank() if self.ddp else 0
        self.world = dist.get_world_size() if self.ddp else 1
        if device == "auto":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        self.device = torch_device(device)
        self.out, self.cfg, self.progress = Path(out), cfg, progress and self.rank == 0
        corpus = open_corpus(data)
        self.corpus_meta = {k: corpus.meta.get(k) for k in ("fps", "feature_names", "stimulus_units", "generator")}
        init = None
        if cfg.init is not None:  # warm start: the network, its normalizer and its EDM settings come from init
            init = load_model(cfg.init)
            if tuple(init[1]["normalizer"]["feature_names"]) != tuple(corpus.feature_names):
                raise InputError(f"init {cfg.init}: its features differ from the corpus's")
            cfg.unet, cfg.edm = {**init[1]["unet"], **cfg.unet}, {**init[1].get("edm", {}), **cfg.edm}
            self.normalizer = FeatureNormalizer.from_dict(init[1]["normalizer"])
        else:
            self.normalizer = FeatureNormalizer.fit(corpus, "train", progress=self.progress)
        self.edm = EDMConfig.from_dict(cfg.edm) if cfg.edm else EDMConfig()
        unet_d = {**UNetConfig().to_dict(), **cfg.unet, "feature_dim": len(corpus.feature_names)}
        self.unet_cfg = UNetConfig.from_dict(unet_d)
        cfg.unet, cfg.edm = self.unet_cfg.to_dict(), self.edm.to_dict()
        self.train_set = WindowDataset(
            corpus,
            "train",
            length=cfg.window,
            random_share=cfg.random_share,
            seed=cfg.seed,
            normalizer=self.normalizer,
            memory=self.unet_cfg.stimulus_memory,
            progress=self.progress,
        )
        expr = self.train_set.subject_expressiveness
        self.corpus_meta["expressiveness"] = {"min": round(float(expr.min()), 4), "max": round(float(expr.max()), 4),
                                              "subjects": int(expr.size)}
        self.corpus_meta["subjects"] = {sp: corpus.ids(sp) for sp in ("train", "val", "test") if corpus.ids(sp)}
        self.val_set = (
            WindowDataset(
                corpus, "val", length=cfg.window, random_share=0.0, seed=cfg.seed + 1, normalizer=self.normalizer,
                memory=self.unet_cfg.stimulus_memory,
            )
            if corpus.ids("val")
            else None
        )
        torch.manual_seed(cfg.seed)
        self.denoiser = Denoiser(TemporalUNet(self.unet_cfg), self.edm.sigma_data, self.edm.sigma_floor).to(self.device)
        if init is not None:
            if init[0].net.config.to_dict() != self.unet_cfg.to_dict():
                raise InputError(f"init {cfg.init}: its network config differs from this run's")
            self.denoiser.load_state_dict(init[0].state_dict())
        self.ema = AveragedModel(self.denoiser, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay))
        self.loss_module: nn.Module = LossModule(self.denoiser, self.edm)
        if self.ddp:
            self.loss_module = nn.parallel.DistributedDataParallel(self.loss_module)
        self.opt = torch.optim.AdamW(self.denoiser.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.step = 0
        self.resume()

    # --- state ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """Load ``state.safetensors`` when the run folder holds one; then repair the model pair (rewrite
        ``model.safetensors`` + ``model.json`` from the state's EMA) when its step differs from the state's."""
        path = self.out / "state.safetensors"
        if not path.is_file():
            return
        def check(info: dict[str, Any]) -> torch.optim.Optimizer:
            if info["unet"] != self.unet_cfg.to_dict():
                raise InputError(f"{path}: the run's network config differs from this one; use a new --out")
            return self.opt

        info = load_state(path, "painface_state", {"model": self.denoiser, "ema": self.ema}, check,
                          rng=(self.gen, (f"rng.{self.rank}", "rng.0")))
        self.step = int(info["step"])
        if self.rank == 0:
            print(f"resuming {self.out} at step {self.step}", file=sys.stderr)
            if saved_step(self.out / "model.safetensors") != self.step:
                save_model(self.out / "model.safetensors", self.ema.module, self.model_info())
                print(f"repaired {self.out / 'model.safetensors'}: now the EMA weights of step {self.step}",
                      file=sys.stderr)

    def save(self) -> None:
        states = [self.gen.get_state()]
        if self.ddp:
            gathered = [torch.empty_like(states[0]) for _ in range(self.world)]
            dist.all_gather_object(gathered, states[0])
            states = gathered
        if self.rank != 0:
            return
        # the model first, the state last: the state is the commit point that resume() repairs the model to
        save_model(self.out / "model.safetensors", self.ema.module, self.model_info())
        save_state(self.out / "state.safetensors", "painface_state", {"model": self.denoiser, "ema": self.ema},
                   self.opt, {"step": self.step, "unet": self.unet_cfg.to_dict()},
                   {f"rng.{r}": s for r, s in enumerate(states)})

    def model_info(self) -> dict[str, Any]:
        return {
            "edm": self.edm.to_dict(),
            "sampler": SamplerConfig(
                window=self.cfg.window, horizon=self.cfg.window * 3 // 4, sigma_context=self.edm.sigma_context
            ).to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "data_scale": self.edm.sigma_data,
            "corpus": self.corpus_meta,
            "training": {"step": self.step, **dataclasses.asdict(self.cfg)},
        }

    # --- loop ----------------------------------------------------------------------------------
    def batch(self, dataset: WindowDataset, idx: torch.Tensor) -> tuple[torch.Tensor, Conditions]:
        return collate([dataset[int(i)] for i in idx], self.edm.sigma_data, self.device)

    @torch.no_grad()
    def validate(self) -> float | None:
        if self.val_set is None:
            return None
        gen = torch.Generator().manual_seed(12345)
        n = min(self.cfg.val_windows, len(self.val_set))
        idx = torch.randperm(len(self.val_set), generator=gen)[:n]
        total, model = 0.0, self.ema.module.eval()
        for chunk in idx.split(self.cfg.batch_size):
            x0, cond = self.batch(self.val_set, chunk)
            b, t, _ = x0.shape
            sigma = sample_training_sigmas(b, t, self.edm, gen).to(self.device)
            noise = torch.randn(x0.shape, generator=gen).to(self.device)
            drop = torch.zeros(b, 3, dtype=torch.bool, device=self.device)
            total += float(model.loss(x0, cond, sigma, noise, drop).mean()) * b
        return total / n

    def _checkpoint_due(self, last_save: float) -> bool:
        """A checkpoint every ``ckpt_every`` steps, at the last step, and when ``ckpt_minutes`` have passed
        since the last one (rank 0's clock decides for every process)."""
        cfg = self.cfg
        due = self.step % cfg.ckpt_every == 0 or self.step == cfg.steps
        late = time.monotonic() - last_save >= cfg.ckpt_minutes * 60.0
        if self.ddp:
            flag = torch.tensor([int(late)])
            dist.broadcast(flag, 0)
            late = bool(flag.item())
        return due or late

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "train.json", dataclasses.asdict(cfg))
        per_epoch = max(1, len(self.train_set) // (cfg.batch_size * self.world))
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", disable=not self.progress)
        running, t0, frames = None, time.perf_counter(), 0
        last_save = time.monotonic()
        last_val = None
        self.denoiser.train()
        while self.step < cfg.steps:
            self.train_set.set_epoch(self.step // per_epoch)
            idx = torch.randint(len(self.train_set), (cfg.batch_size,), generator=self.gen)
            x0, cond = self.batch(self.train_set, idx)
            b, t, _ = x0.shape
            for g in self.opt.param_groups:
                g["lr"] = lr_at(self.step, cfg)
            loss = self.loss_module(x0, cond, self.gen)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.denoiser.parameters(), cfg.grad_clip)
            self.opt.step()
            self.ema.update_parameters(self.denoiser)
            self.step += 1
            frames += b * t * self.world
            value = float(loss.detach())
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update()
            bar.set_postfix(loss=f"{running:.4f}", val="-" if last_val is None else f"{last_val:.4f}")
            if self.step % cfg.val_every == 0 or self.step == cfg.steps:
                last_val = self.validate() if self.rank == 0 else None
            if self._checkpoint_due(last_save):
                last_save = time.monotonic()
                self.save()
                if self.rank == 0:
                    rec = {
                        "step": self.step,
                        "loss": running,
                        "val_loss": last_val,
                        "lr": lr_at(self.step - 1, cfg),
                        "frames_per_s": frames / (time.perf_counter() - t0),
                    }
                    append_log(self.out / "log.jsonl", rec)
                if self.ddp:
                    dist.barrier()
        bar.close()
        return {
            "step": self.step,
            "loss": running,
            "val_loss": last_val,
            "frames_per_s": frames / max(1e-9, time.perf_counter() - t0),
        }


if __name__ == "__main__":
    from painface.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
