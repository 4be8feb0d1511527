"""Checkpoints: safetensors weights + a JSON config, never pickle.

A model checkpoint is ``NAME.safetensors`` (the EMA weights; the config is also copied into the
safetensors header metadata under ``"painface"``) with ``NAME.json`` beside it (human-readable copy).
Loading checks the format version, rebuilds the network from the config and insists that every tensor
is there with its shape, so a checkpoint whose config does not match, or a truncated or corrupt file,
gives a clear :class:`~painface.errors.InputError`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from painface.errors import InputError
from painface.io import atomic_path, atomic_write_json
from painface.model.edm import Denoiser, EDMConfig
from painface.model.unet import TemporalUNet, UNetConfig

CHECKPOINT_FORMAT = "painface-checkpoint"
CHECKPOINT_VERSION = 1


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file atomically (temporary file + rename)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file's tensors and header metadata, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise InputError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None
    return tensors, metadata


def save_model(path: str | os.PathLike, denoiser: Denoiser, info: dict[str, Any]) -> Path:
    """Save a model checkpoint (weights of ``denoiser`` + ``info``: configs, normalizer, provenance)."""
    path = Path(path).with_suffix(".safetensors")
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "unet": denoiser.net.config.to_dict(),
        "sigma_data": denoiser.sigma_data,
        **info,
    }
    text = json.dumps(meta)
    save_tensors_atomic(path, dict(denoiser.state_dict()), {"painface": text})
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Denoiser, dict[str, Any]]:
    """Load a model checkpoint; returns (denoiser in eval mode, its info dict)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    tensors, header = read_tensors(path)
    if "painface" not in header:
        raise InputError(f"{path}: no painface config in the safetensors header (not a painface checkpoint)")
    try:
        meta = json.loads(header["painface"])
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: the config in the header is not valid JSON: {e}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path}: checkpoint version {meta.get('version')!r}, expected {CHECKPOINT_VERSION}")
    try:
        net = TemporalUNet(UNetConfig.from_dict(meta["unet"]))
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: the network config is incomplete or wrong: {e}") from None
    edm = EDMConfig.from_dict(meta.get("edm", {})) if "edm" in meta else EDMConfig()
    denoiser = Denoiser(net, sigma_data=float(meta.get("sigma_data", edm.sigma_data)), sigma_floor=edm.sigma_floor)
    expected = denoiser.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise InputError(f"{path}: weights do not match the config: missing {missing[:4]}, unexpected {unexpected[:4]}")
    wrong = [
        f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(tensors[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise InputError(f"{path}: weight shapes do not match the config: {wrong[:3]}")
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise InputError(f"{path}: weights hold NaN or inf: {bad[:3]}")
    denoiser.load_state_dict(tensors)
    return denoiser.to(device).eval(), meta
