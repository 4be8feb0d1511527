"""What every painface training loop shares (PainDiffusion's :mod:`painface.train`, the FSQ-VAE
baseline's :mod:`painface.baselines.fsq_train`, ViTPain's :mod:`painface.assess.train`): the learning-rate
schedule, the resumable training state (weights, optimizer, RNG in one safetensors file written
atomically), the loss log, and the checks run before any work (``--device``, the state file, the step a
saved model records)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from painface.errors import InputError
from painface.model.checkpoint import read_tensors, save_tensors_atomic


def warmup_cosine(step: int, steps: int, lr: float, warmup: int, min_lr_ratio: float = 0.0) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state as flat tensors ``opt.<param>.<key>`` (for safetensors) + the JSON-able rest."""
    sd = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
    return tensors, {
        "param_groups": sd["param_groups"],
        "state_keys": {str(i): list(st) for i, st in sd["state"].items()},
    }


def unflatten_optimizer(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_optimizer`: a state dict for ``Optimizer.load_state_dict``."""
    state = {int(i): {k: tensors[f"opt.{i}.{k}"] for k in keys} for i, keys in info["state_keys"].items()}
    return {"state": state, "param_groups": info["param_groups"]}


def save_state(path: Path, key: str, modules: Mapping[str, nn.Module], opt: torch.optim.Optimizer,
               info: dict[str, Any], extra: Mapping[str, torch.Tensor] | None = None) -> None:
    """Write a training state atomically: every module's weights under ``<name>.``, the optimizer, the
    ``extra`` tensors (RNG states) and ``info`` (JSON, with the optimizer's layout added) in the header
    under ``key``."""
    opt_t, opt_info = flatten_optimizer(opt)
    tensors = {**{f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()},
               **opt_t, **(extra or {})}
    save_tensors_atomic(path, tensors, {key: json.dumps({**info, "optimizer": opt_info})})


def load_state(path: Path, key: str, modules: Mapping[str, nn.Module], opt_for: Any,
               rng: tuple[torch.Generator, tuple[str, ...]] | None = None) -> dict[str, Any]:
    """Read a state written by :func:`save_state`: the header's ``info`` is parsed and checked first with
    ``opt_for(info) -> optimizer`` (which may raise InputError, and builds the optimizer to restore), then
    the modules' weights and the optimizer state are loaded, and ``rng = (generator, keys)`` gets the
    state stored under the first of ``keys`` present. Returns info. Anything that is not such a state
    is an InputError naming the file."""
    tensors, header = read_tensors(path)
    try:
        info = json.loads(header[key])
        opt = opt_for(info)
        for name, m in modules.items():
            m.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(f"{name}.")})
        opt.load_state_dict(unflatten_optimizer(tensors, info["optimizer"]))
        if rng is not None:
            rng[0].set_state(tensors[next((k for k in rng[1] if k in tensors), rng[1][-1])])
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # json.JSONDecodeError is a ValueError
        raise InputError(f"{path}: not a painface training state (a model checkpoint copied here?): "
                         f"{type(e).__name__}: {str(e)[:120]}; remove it to start afresh") from None
    return info


def append_log(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to a run's ``log.jsonl``."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def set_threads(threads: int | None) -> None:
    """``--threads``: CPU threads for torch (None: torch's choice)."""
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads {threads}: expected >= 1")
        torch.set_num_threads(threads)


def run_folder(out: Path) -> Path:
    """``--out``: a run folder, new or to resume; created, and checked writable, before any work."""
    import os

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder; expected a run folder (new or to resume)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create the run folder: {e.strerror}") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out {out}: the run folder is not writable")
    return out


def torch_device(name: str) -> torch.device:
    """``--device`` -> a torch device, refusing what this install cannot use."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N ({e})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name!r}: this torch install has no CUDA device; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")
    return device


def saved_step(path: Path) -> int | None:
    """The training step recorded in a model checkpoint and its JSON twin (None when missing, unreadable,
    or the two disagree)."""
    try:
        tensors_meta = read_tensors(path)[1]
        a = json.loads(tensors_meta["painface"])["training"]["step"]
        b = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["training"]["step"]
    except (InputError, OSError, KeyError, TypeError, ValueError):
        return None
    return int(a) if a == b else None


def check_state(path: Path) -> None:
    """When a run folder holds ``state.safetensors``, check (header only, before any work) that it is a
    painface training state: a model checkpoint copied in its place, or a truncated file, is an error."""
    if not path.exists():
        return
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        info = json.loads(meta["painface_state"])
        int(info["step"])
    except Exception as e:  # safetensors raises its own errors; json, KeyError, ValueError ...
        raise InputError(f"{path}: not a painface training state (a model checkpoint copied here, or a truncated "
                         f"file?): {type(e).__name__}; remove it to start afresh") from None
