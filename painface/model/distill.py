"""Guidance distillation, the inference side: a distilled guided network and the settings it covers.

The shipped sampler guides every solver stage with four passes of the network (the full conditions, and
without each of emotion, expressiveness and stimulus; :func:`~painface.model.edm.guided_denoiser`), gated per
frame by the stimulus's news (:func:`~painface.model.sampling.guidance_gate`). For fixed strengths that
combination is a fixed function of (x, sigma, conditions), which a network of the same shape learns and runs in one
pass (:mod:`painface.distill` trains it; ``painface distill``). :class:`DistilledGuidance` holds it beside the
teacher; :func:`~painface.model.sampling.window_model` runs it for every sequence whose strengths and gate are the
ones it learned, and the four guided passes for the others (another ``--guidance``, a live patient with their own
strengths).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from painface.errors import InputError
from painface.model.conditions import Conditions
from painface.model.edm import Denoiser, guidance_rows
from painface.model.sampling import SamplerConfig, stimulus_news

GUIDED_SUFFIX = "_guided"
"""A checkpoint ``NAME.safetensors``'s distilled guided network is ``NAME_guided.safetensors`` beside it."""


@dataclass(frozen=True)
class DistilledGuidance:
    """A distilled guided network (``student``, a :class:`Denoiser` over the full conditions) and the sampler
    settings it learned: guidance strengths (emotion, expressiveness, stimulus) and gate (channel, terms)."""

    student: Denoiser
    guidance: tuple[float, float, float]
    gate: int
    gate_terms: str
    schedules: tuple[str, ...] = ("full",)

    def covered_rows(self, guidance: Any, config: SamplerConfig, batch: int, cond: Conditions | None = None) -> Tensor:
        """Which rows ``[batch]`` (bool) the student covers: ``config``'s gate and the row's strengths are the ones it
        learned (compared in float32, the precision the live engine keeps them in), its schedule is one it was trained
        on, and (given the window's conditions ``cond``) no frame of the row is in a long hold (:func:`held_frames`)."""
        none = torch.zeros(batch, dtype=torch.bool)
        if config.gate != self.gate or (self.gate and config.gate_terms != self.gate_terms):
            return none
        if config.schedule not in self.schedules:
            return none
        try:
            lam = guidance_rows(guidance, batch)
        except InputError:
            return none
        rows = (lam.float() == torch.tensor(self.guidance, dtype=torch.float32)).all(-1)
        if cond is not None and self.gate:
            rows = rows & ~held_frames(cond, self.gate).any(-1)
        return rows

    def covers(self, guidance: Any, config: SamplerConfig, batch: int, cond: Conditions | None = None) -> bool:
        """Whether the student covers every row (:meth:`covered_rows`)."""
        return bool(self.covered_rows(guidance, config, batch, cond).all())

    @classmethod
    def from_info(cls, student: Denoiser, info: dict[str, Any], source: str) -> DistilledGuidance:
        d = info.get("distilled")
        if not isinstance(d, dict):
            raise InputError(f"{source}: not a distilled guided network (no 'distilled' entry in its config)")
        try:
            return cls(student, tuple(float(g) for g in d["guidance"]), int(d["gate"]), str(d["gate_terms"]),
                       tuple(str(x) for x in d.get("schedules", ["full"])))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{source}: its 'distilled' entry is incomplete: {e}") from None


HOLD_GATE = 0.2
"""A frame is in a long hold when the stimulus is on, not falling, and its guidance gate has faded below this (the gate
of a held stimulus is exp(-t / 5 s) for the shipped memory channel: after about 8 s of holding; BioVid's 4 s plateaus
never get there)."""


HOLD_LEVEL = 0.2
"""Stimulus below this (normalized) is not a hold that matters: the first frames of a ramp out of rest, where the moving
average has not yet decayed from the trial before, have a small gate too."""


def held_frames(cond: Conditions, channel: int) -> Tensor:
    """Frames ``[B, T]`` (bool) in a long hold: stimulus s >= :data:`HOLD_LEVEL`, not lower than the frame before,
    at or above its moving average m (memory channel ``channel``), and the gate (s - m) / max(s, 0.1) below
    :data:`HOLD_GATE`. The distilled network has not learned how the gated guidance fades over long holds (measured:
    docs/model.md, "Distilled guidance"), so windows with such frames keep the four guided passes, which fade as
    designed."""
    mem = cond.memory
    if mem is None or mem.shape[-1] < channel:
        return torch.zeros(cond.batch, cond.frames, dtype=torch.bool)
    s, g = stimulus_news(cond, channel)  # g >= 0 exactly when s >= m
    falling = torch.cat([torch.zeros_like(s[:, :1], dtype=torch.bool), s[:, 1:] < s[:, :-1]], 1)
    return (s >= HOLD_LEVEL) & (g >= 0) & ~falling & (g < HOLD_GATE)


def weights_sha256(denoiser: Denoiser) -> str:
    """sha256 of a network's weights (names, dtypes, shapes and bytes, in name order): what a distilled network was
    learned from. Unlike the checkpoint file's hash it does not change when only the metadata is rewritten (e.g. the
    sampler defaults, docs/training.md)."""
    h = hashlib.sha256()
    for name, t in sorted(denoiser.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def guided_path(checkpoint: str | Path) -> Path:
    """Where the distilled guided network of ``checkpoint`` lives (:data:`GUIDED_SUFFIX`)."""
    p = Path(checkpoint)
    p = p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")
    return p.with_name(p.stem + GUIDED_SUFFIX + ".safetensors")
