"""Checks of ``painface train`` kept apart from the loop: the ``--device`` option, and the step a saved
model records (the run folder's model/state pair is repaired when it differs from the state's)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from painface.errors import InputError
from painface.model.checkpoint import read_tensors


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
