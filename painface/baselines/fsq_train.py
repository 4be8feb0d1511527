"""Train the FSQ-VAE autoregressive baseline: ``painface train-fsq --data DIR --out RUN_DIR``.

Two stages behind one command (see :mod:`painface.baselines.fsq`): (1) the FSQ tokenizer learns to
reconstruct windows of normalized face code (MSE); (2) with the tokenizer frozen, every subject's whole
recording is tokenized once and the transformer learns next-token prediction (cross-entropy) on windows
of ``max_tokens`` tokens drawn around stimulus changes (:class:`~painface.data.windows.WindowDataset`).
Same conventions as :mod:`painface.train`: AdamW, linear warm-up then cosine decay, gradient clipping,
a progress bar, and resumption from RUN_DIR:

* ``RUN_DIR/state.safetensors``: stage, step, weights, optimizer, RNG (a rerun with the same RUN_DIR
  resumes, losing at most one checkpoint interval);
* ``RUN_DIR/fsq_ar.safetensors`` + ``.json``: the model for :meth:`FsqAR.load`, with its metrics;
* ``RUN_DIR/train.json`` (the configuration) and ``RUN_DIR/log.jsonl`` (losses per interval).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from painface.baselines.fsq import FORMAT, VERSION
from painface.baselines.fsq_nets import ARConfig, FsqTokenizer, TokenizerConfig, TokenTransformer
from painface.data.corpus import Corpus, open_corpus
from painface.data.windows import FeatureNormalizer, WindowDataset, subject_emotion
from painface.errors import InputError
from painface.io import atomic_write_json, config_from_dict
from painface.model.checkpoint import save_tensors_atomic
from painface.training import append_log, load_state, save_state, warmup_cosine

STAGES = ("tokenizer", "ar", "done")


@dataclass
class FsqTrainConfig:
    """Settings of both stages (saved as RUN_DIR/train.json); defaults train the shipped checkpoint."""

    tokenizer_steps: int = 4000
    ar_steps: int = 3000
    tok_batch_size: int = 64
    batch_size: int = 32
    tok_window: int = 64
    tok_lr: float = 2e-3
    ar_lr: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    random_share: float = 0.25
    ckpt_every: int = 500
    val_every: int = 500
    val_windows: int = 256
    seed: int = 0
    temperature: float = 1.0
    top_k: int = 0
    context_chunks: int = 4
    tokenizer: dict = field(default_factory=dict)
    ar: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FsqTrainConfig:
        cfg = config_from_dict(cls, d, "FSQ training config")
        counts = (cfg.tokenizer_steps, cfg.ar_steps, cfg.tok_batch_size, cfg.batch_size, cfg.ckpt_every,
                  cfg.val_every, cfg.val_windows)
        if min(counts) < 1:
            raise InputError("FSQ training config: need tokenizer_steps, ar_steps, (tok_)batch_size, ckpt_every, "
                             "val_every, val_windows >= 1")
        if cfg.tok_lr <= 0 or cfg.ar_lr <= 0 or cfg.warmup < 0 or cfg.context_chunks < 1:
            raise InputError("FSQ training config: need learning rates > 0, warmup >= 0, context_chunks >= 1")
        return cfg


def lr_at(step: int, steps: int, lr: float, cfg: FsqTrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``cfg.warmup`` steps, then cosine decay to ``lr * min_lr_ratio``."""
    return warmup_cosine(step, steps, lr, cfg.warmup, cfg.min_lr_ratio)


@dataclass
class TokenStream:
    """One subject tokenized: ``ids [N]`` int64, ``stim [N, chunk]`` float32, ``expr`` PSPI, ``emo [8]``."""

    ids: Tensor
    stim: Tensor
    expr: float
    emo: Tensor


def token_usage(ids: Tensor, vocab: int) -> dict[str, float]:
    """Codebook use of token ids: ``used`` (distinct ids), ``usage`` (used / vocab), ``perplexity``
    (exp of the entropy of the id histogram, in tokens; vocab at most)."""
    counts = torch.bincount(ids.flatten(), minlength=vocab).double()
    p = counts[counts > 0] / counts.sum()
    return {"used": int((counts > 0).sum()), "usage": float((counts > 0).sum() / vocab),
            "perplexity": float(torch.exp(-(p * p.log()).sum()))}


def save_fsq(path: str | Path, tokenizer: FsqTokenizer, ar: TokenTransformer, info: dict[str, Any]) -> Path:
    """Write ``PATH.safetensors`` (weights, config in the header) and ``PATH.json``, atomically."""
    path = Path(path).with_suffix(".safetensors")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": dataclasses.asdict(tokenizer.config),
        "ar": dataclasses.asdict(ar.config),
        **info,
    }
    tensors = {**{f"tokenizer.{k}": v for k, v in tokenizer.state_dict().items()},
               **{f"ar.{k}": v for k, v in ar.state_dict().items()}}
    save_tensors_atomic(path, tensors, {"painface": json.dumps(meta)})
    atomic_write_json(path.with_suffix(".json"), meta)
    return path



class FsqTrainer:
    """Both training stages on one corpus, resumable from ``out``."""

    def __init__(self, data: Path, out: Path, cfg: FsqTrainConfig, progress: bool = True):
        self.out, self.cfg, self.progress = Path(out), cfg, progress
        self.corpus: Corpus = open_corpus(data)
        self.corpus_meta = {k: self.corpus.meta.get(k) for k in ("fps", "feature_names", "stimulus_units",
                                                                  "generator")}
        self.normalizer = FeatureNormalizer.fit(self.corpus, "train")
        tok_d = {**dataclasses.asdict(TokenizerConfig()), **cfg.tokenizer,
                 "features": len(self.corpus.feature_names)}
        self.tok_cfg = TokenizerConfig.from_dict(tok_d)
        torch.manual_seed(cfg.seed)
        self.tokenizer = FsqTokenizer(self.tok_cfg)
        ar_d = {**dataclasses.asdict(ARConfig()), **cfg.ar, "vocab": self.tokenizer.fsq.codebook_size,
                "chunk": self.tok_cfg.chunk}
        self.ar_cfg = ARConfig.from_dict(ar_d)
        self.ar = TokenTransformer(self.ar_cfg)
        cfg.tokenizer, cfg.ar = dataclasses.asdict(self.tok_cfg), dataclasses.asdict(self.ar_cfg)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.stage, self.step, self.metrics = "tokenizer", 0, {}
        self.opt = self._optimizer()
        self.resume()

    # --- state ---------------------------------------------------------------------------------
    def _module(self) -> nn.Module:
        return self.tokenizer if self.stage == "tokenizer" else self.ar

    def _optimizer(self) -> torch.optim.Optimizer:
        lr = self.cfg.tok_lr if self.stage == "tokenizer" else self.cfg.ar_lr
        return torch.optim.AdamW(self._module().parameters(), lr=lr, weight_decay=self.cfg.weight_decay)

    def resume(self) -> None:
        path = self.out / "state.safetensors"
        if not path.is_file():
            return
        def check(info: dict[str, Any]) -> torch.optim.Optimizer:
            if info["tokenizer"] != dataclasses.asdict(self.tok_cfg) or info["ar"] != dataclasses.asdict(self.ar_cfg):
                raise InputError(f"{path}: the run's network configs differ from this one; use a new --out")
            self.stage = info["stage"]
            self.opt = self._optimizer()
            return self.opt

        info = load_state(path, "painface_fsq_state", {"tokenizer": self.tokenizer, "ar": self.ar}, check,
                          rng=(self.gen, ("rng",)))
        self.step, self.metrics = int(info["step"]), info["metrics"]
        if self.stage == "done" and self.step < self.cfg.ar_steps:
            self.stage = "ar"  # asked for more AR steps than the finished run had
        print(f"resuming {self.out}: {self.stage} stage, step {self.step}", file=sys.stderr)

    def save(self) -> None:
        info = {"stage": self.stage, "step": self.step, "metrics": self.metrics,
                "tokenizer": dataclasses.asdict(self.tok_cfg), "ar": dataclasses.asdict(self.ar_cfg)}
        save_state(self.out / "state.safetensors", "painface_fsq_state", {"tokenizer": self.tokenizer, "ar": self.ar},
                   self.opt, info, {"rng": self.gen.get_state()})

    def save_model(self) -> Path:
        info = {
            "normalizer": self.normalizer.to_dict(),
            "sampling": {"temperature": self.cfg.temperature, "top_k": self.cfg.top_k,
                         "context_chunks": self.cfg.context_chunks},
            "corpus": self.corpus_meta,
            "metrics": self.metrics,
            "training": {"stage": self.stage, "step": self.step, **dataclasses.asdict(self.cfg)},
        }
        return save_fsq(self.out / "fsq_ar.safetensors", self.tokenizer, self.ar, info)

    def log(self, rec: dict[str, Any]) -> None:
        append_log(self.out / "log.jsonl", {"stage": self.stage, **rec})

    # --- the generic loop ----------------------------------------------------------------------
    def _loop(self, steps: int, lr: float, loss_fn: Any, validate: Any) -> None:
        cfg, module = self.cfg, self._module()
        bar = tqdm(total=steps, initial=self.step, desc=self.stage, unit="step", disable=not self.progress)
        running, last_val, t0 = None, None, time.perf_counter()
        module.train()
        while self.step < steps:
            # dropout draws from torch's global generator: seed it per step so a resumed run is exact
            torch.manual_seed(int(np.random.SeedSequence([cfg.seed, STAGES.index(self.stage), self.step])
                                  .generate_state(1)[0]))
            for g in self.opt.param_groups:
                g["lr"] = lr_at(self.step, steps, lr, cfg)
            loss = loss_fn()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip)
            self.opt.step()
            self.step += 1
            value = float(loss.detach())
            running = value if running is None else 0.98 * running + 0.02 * value
            bar.update()
            bar.set_postfix(loss=f"{running:.4f}", val="-" if last_val is None else f"{last_val:.4f}")
            if self.step % cfg.val_every == 0 or self.step == steps:
                last_val = validate()
                module.train()
            if self.step % cfg.ckpt_every == 0 or self.step == steps:
                self.save()
                self.log({"step": self.step, "loss": running, "val": last_val,
                          "lr": lr_at(self.step - 1, steps, lr, cfg), "s": time.perf_counter() - t0})
        bar.close()
        module.eval()

    def _val_idx(self, dataset: WindowDataset | None) -> Tensor | None:
        if dataset is None:
            return None
        gen = torch.Generator().manual_seed(12345)
        return torch.randperm(len(dataset), generator=gen)[: self.cfg.val_windows]

    # --- stage 1: tokenizer --------------------------------------------------------------------
    def _faces(self, dataset: WindowDataset, idx: Tensor) -> Tensor:
        return torch.stack([dataset[int(i)]["face"] for i in idx])

    def train_tokenizer(self) -> None:
        cfg, c = self.cfg, self.tok_cfg.chunk
        window = max(c, cfg.tok_window // c * c)
        kw = {"length": window, "normalizer": self.normalizer}
        train = WindowDataset(self.corpus, "train", random_share=cfg.random_share, seed=cfg.seed, **kw)
        val = (WindowDataset(self.corpus, "val", random_share=0.0, seed=cfg.seed + 1, **kw)
               if self.corpus.ids("val") else None)
        val_idx = self._val_idx(val)
        per_epoch = max(1, len(train) // cfg.batch_size)

        def loss_fn() -> Tensor:
            train.set_epoch(self.step // per_epoch)
            x = self._faces(train, torch.randint(len(train), (cfg.tok_batch_size,), generator=self.gen))
            return F.mse_loss(self.tokenizer(x)[0], x)

        @torch.no_grad()
        def validate() -> float | None:
            if val is None or val_idx is None:
                return None
            self.tokenizer.eval()
            x = self._faces(val, val_idx)
            recon = self.tokenizer(x)[0]
            std = torch.as_tensor(self.normalizer.std)
            self.metrics["recon_mse"] = float(F.mse_loss(recon, x))
            self.metrics["recon_mse_units"] = float(((recon - x) * std).square().mean())
            self.metrics["recon_mse_per_feature"] = [float(v) for v in ((recon - x) * std).square().mean((0, 1))]
            return self.metrics["recon_mse"]

        self._loop(cfg.tokenizer_steps, cfg.tok_lr, loss_fn, validate)

    # --- stage 2: autoregressive model ---------------------------------------------------------
    @torch.no_grad()
    def tokenize_split(self, split: str) -> dict[int, TokenStream]:
        """Tokenize every subject of ``split`` (whole recordings, chunks aligned at frame 0)."""
        c, out = self.tok_cfg.chunk, {}
        self.tokenizer.eval()
        for i, sid in enumerate(tqdm(self.corpus.ids(split), desc=f"tokenize {split}", unit="subject",
                                     disable=not self.progress)):
            sub = self.corpus.subject(sid)
            n = sub.frames // c
            face = torch.as_tensor(self.normalizer.normalize(sub.face[: n * c]).astype(np.float32))
            ids = torch.cat([self.tokenizer.tokenize(part[None])[0] for part in face.split(4096 * c)])
            stim = torch.as_tensor(sub.stimulus[: n * c], dtype=torch.float32).reshape(n, c)
            emo = torch.as_tensor(subject_emotion(sub.info))
            out[i] = TokenStream(ids, stim, float(sub.info["expressiveness"]), emo)
        return out

    def _ar_batch(self, dataset: WindowDataset, streams: dict[int, TokenStream], idx: Tensor) -> tuple[Tensor, ...]:
        n, c = self.ar_cfg.max_tokens, self.tok_cfg.chunk
        rows = [(int(dataset.windows[int(i), 0]), int(dataset.windows[int(i), 1]) // c) for i in idx]
        ids = torch.stack([streams[s].ids[k:k + n] for s, k in rows])
        stim = torch.stack([streams[s].stim[k:k + n] for s, k in rows])
        expr = torch.tensor([streams[s].expr for s, _ in rows], dtype=torch.float32)
        emo = torch.stack([streams[s].emo for s, _ in rows])
        prev = torch.cat([torch.full((len(rows), 1), self.ar.bos, dtype=torch.int64), ids[:, :-1]], 1)
        return prev, stim, expr, emo, ids

    def train_ar(self) -> None:
        cfg, c, n = self.cfg, self.tok_cfg.chunk, self.ar_cfg.max_tokens
        self.tokenizer.eval().requires_grad_(False)
        train_tokens = self.tokenize_split("train")
        self.metrics["train_tokens"] = token_usage(torch.cat([s.ids for s in train_tokens.values()]),
                                                   self.ar_cfg.vocab)
        val_tokens = self.tokenize_split("val") if self.corpus.ids("val") else {}
        if val_tokens:
            self.metrics["val_tokens"] = token_usage(torch.cat([s.ids for s in val_tokens.values()]), self.ar_cfg.vocab)
        kw = {"length": n * c}
        train = WindowDataset(self.corpus, "train", random_share=cfg.random_share, seed=cfg.seed, **kw)
        val = WindowDataset(self.corpus, "val", random_share=0.0, seed=cfg.seed + 1, **kw) if val_tokens else None
        val_idx = self._val_idx(val)
        per_epoch = max(1, len(train) // cfg.batch_size)

        def loss_fn() -> Tensor:
            train.set_epoch(self.step // per_epoch)
            idx = torch.randint(len(train), (cfg.batch_size,), generator=self.gen)
            *inputs, target = self._ar_batch(train, train_tokens, idx)
            return F.cross_entropy(self.ar(*inputs).flatten(0, 1), target.flatten())

        @torch.no_grad()
        def validate() -> float | None:
            if val is None or val_idx is None:
                return None
            self.ar.eval()
            total, correct, count = 0.0, 0, 0
            for chunk in val_idx.split(cfg.batch_size):
                *inputs, target = self._ar_batch(val, val_tokens, chunk)
                logits = self.ar(*inputs)
                total += float(F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="sum"))
                correct += int((logits.argmax(-1) == target).sum())
                count += target.numel()
            self.metrics["ar_val_loss"] = total / count
            self.metrics["ar_val_accuracy"] = correct / count
            return self.metrics["ar_val_loss"]

        self._loop(cfg.ar_steps, cfg.ar_lr, loss_fn, validate)

    def run(self) -> dict[str, Any]:
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "train.json", dataclasses.asdict(self.cfg))
        if self.stage == "tokenizer":
            self.train_tokenizer()
            self.stage, self.step = "ar", 0
            self.opt = self._optimizer()
            self.save()
        if self.stage == "ar":
            self.train_ar()
            self.stage = "done"
            self.save()
        self.save_model()
        return dict(self.metrics)
