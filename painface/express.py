"""Express pain: a trained PainDiffusion checkpoint as one object, and ``painface generate``.

:class:`PainDiffusion` loads a checkpoint (the shipped one by default), takes stimuli in normalized units
(or °C with a :class:`~painface.subjects.protocols.HeatCalibration`) and conditions in user units
(expressiveness in PSPI, emotion by name or blend), and returns a :class:`~painface.generation.Generation`:
face codes in face-code units (AU intensities 0-5 and head pose in degrees), batched over samples and
patients, with the conditions that made them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painface.data.windows import FeatureNormalizer
from painface.errors import InputError
from painface.face.code import EMOTIONS, FEATURE_NAMES, clip_aus, feature_space, neutral_face
from painface.generation import Generation
from painface.model.checkpoint import load_model
from painface.model.conditions import emotion_vector
from painface.model.distill import guided_path
from painface.model.inference import fast_denoiser
from painface.model.sampling import SamplerConfig, generate
from painface.subjects.protocols import (
    ElbowProtocol,
    HeatCalibration,
    HeatProtocol,
    Stimulus,
    biovid_heat,
    check_normalized,
    check_stimulus,
    csv_stimulus,
    elbow_exercise,
)

SHIPPED = Path(__file__).parent / "assets" / "paindiffusion.safetensors"
MAX_SECONDS = 7200.0
"""Longest ``painface generate --seconds`` (2 hours of face)."""
MAX_FRAMES_TOTAL = 2_000_000
"""Most frames of one ``painface generate`` over all samples (22 hours at 25 fps; ~160 MB of face codes)."""
MAX_STEPS = 1000


class ExtrapolationWarning(UserWarning):
    """A condition lies outside the range the checkpoint was trained on."""


class PainDiffusion:
    """A trained PainDiffusion model in face-code units. ``PainDiffusion.load()`` takes the shipped one."""

    def __init__(self, denoiser: Any, info: dict[str, Any], device: str | torch.device = "cpu",
                 source: str | None = None):
        self.denoiser, self.info, self.device = denoiser, info, torch.device(device)
        self.source = source  # the checkpoint file, recorded in every Generation
        self.distilled_source: str | None = None  # the distilled guided network in use (attach_distilled)
        self.normalizer = FeatureNormalizer.from_dict(info["normalizer"])
        self.scale = float(info.get("data_scale", denoiser.sigma_data))
        if not (np.isfinite(self.scale) and 1e-6 < self.scale < 1e6):
            raise InputError(f"checkpoint: data_scale {info.get('data_scale')!r}; expected a positive, finite scale "
                             "(the EDM sigma_data, e.g. 0.5)")
        self.sampler = SamplerConfig.from_dict(info["sampler"]) if "sampler" in info else SamplerConfig()
        corpus = info.get("corpus") or {}
        self.fps = float(corpus.get("fps") or 25.0)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
             inference: str | None = None, distilled: bool | None = None) -> PainDiffusion:
        """``inference``: the denoiser's inference backend (painface.model.inference; None: $PAINFACE_INFERENCE
        or "auto"). ``distilled``: run the distilled guided network ``<name>_guided.safetensors`` beside the
        checkpoint, one network pass per solver stage instead of four, whenever the sampler's guidance and gate are
        the ones it learned (painface.model.distill); None: when the file is there, unless $PAINFACE_DISTILLED is 0;
        True: it must be there; False: never."""
        path = Path(path) if path is not None else SHIPPED
        if path is SHIPPED and not SHIPPED.is_file():
            raise InputError(f"no shipped checkpoint at {SHIPPED}; train one (docs/training.md) and pass --checkpoint")
        denoiser, info = load_model(path, device)
        if "normalizer" not in info:
            raise InputError(f"{path}: the checkpoint has no feature normalizer (not made by painface train?)")
        model = cls(fast_denoiser(denoiser, inference, path), info, device, source=str(path))
        if distilled is None:
            distilled = None if os.environ.get("PAINFACE_DISTILLED", "1").strip() != "0" else False
        if distilled is not False:
            model.attach_distilled(guided_path(path), inference=inference, required=bool(distilled))
        return model

    def attach_distilled(self, path: str | os.PathLike, inference: str | None = None, required: bool = True) -> bool:
        """Run the distilled guided network at ``path`` (made by ``painface distill`` from this checkpoint)
        whenever it covers the sampler's settings. ``required`` False: a missing file, or one distilled from
        another checkpoint, or an unreadable one, is skipped (the latter two with a warning) and False returned."""
        from dataclasses import replace

        from painface.model.distill import DistilledGuidance, weights_sha256

        path = Path(path)
        if not path.is_file():
            if required:
                raise InputError(f"distilled guided network {path}: file not found (made by painface distill)")
            return False
        try:
            student, info = load_model(path, self.device)
            guided = DistilledGuidance.from_info(student, info, str(path))
        except InputError as e:  # optional: a broken file must not stop the model from loading
            if required:
                raise
            warnings.warn(f"{e}; not used (the four guided passes run instead)", RuntimeWarning, stacklevel=3)
            return False
        if info["distilled"].get("teacher_weights_sha256") != weights_sha256(self.denoiser):
            msg = f"{path}: distilled from another checkpoint than {self.source}"
            if required:
                raise InputError(msg)
            warnings.warn(f"{msg}; not used (the four guided passes run instead)", RuntimeWarning, stacklevel=3)
            return False
        if student.net.config.to_dict() != self.denoiser.net.config.to_dict():
            raise InputError(f"{path}: its network config differs from the checkpoint's")
        self.denoiser.distilled = replace(guided, student=fast_denoiser(student, inference, path))
        self.distilled_source = str(path)
        return True

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.normalizer.feature_names

    @property
    def trained_expressiveness(self) -> tuple[float, float] | None:
        """(min, max) expressiveness (PSPI) of the subjects the checkpoint was trained on, or None where the
        checkpoint does not record it. Beyond the max the model extrapolates, and its response stops growing
        (docs/controllability.md)."""
        rec = (self.info.get("corpus") or {}).get("expressiveness")
        return (float(rec["min"]), float(rec["max"])) if rec else None

    @property
    def stimulus_memory(self) -> tuple[float, ...]:
        """Time constants (frames) of the network's stimulus memory; empty for networks without one."""
        return tuple(self.denoiser.net.config.stimulus_memory)

    def check_expressiveness(self, values: Any) -> None:
        """Warn (:class:`ExtrapolationWarning`) when an expressiveness lies above the trained range."""
        rng = self.trained_expressiveness
        top = float(np.max(values)) if np.size(values) else 0.0
        if rng is not None and top > rng[1] + 1e-6:
            warnings.warn(f"expressiveness {top:g} lies above the most expressive training subject "
                          f"({rng[1]:g} PSPI; trained range {rng[0]:g}-{rng[1]:g}): the model extrapolates "
                          "and its response no longer grows reliably", ExtrapolationWarning, stacklevel=3)

    def encode(self, face: np.ndarray) -> torch.Tensor:
        """Face-code units ``[..., D]`` -> the model's space."""
        return torch.as_tensor(self.normalizer.normalize(np.asarray(face, np.float32)) * self.scale, device=self.device)

    def decode(self, x: torch.Tensor) -> np.ndarray:
        """The model's space ``[..., D]`` -> face-code units (AUs clipped to 0..5 in FACS space)."""
        face = self.normalizer.denormalize(x.detach().cpu().numpy() / self.scale).astype(np.float32)
        if feature_space(self.feature_names) == "facs":
            face = clip_aus(face, self.feature_names)
        return face

    def sampler_config(self, **overrides: Any) -> SamplerConfig:
        d = self.sampler.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return SamplerConfig.from_dict(d)

    def generate(
        self,
        stimulus: np.ndarray | Stimulus,
        expressiveness: float | Sequence[float] = 1.0,
        emotion: Any = "Neutral",
        *,
        samples: int = 1,
        seed: int = 0,
        context: np.ndarray | None = None,
        stimulus_before: np.ndarray | None = None,
        celsius: bool = False,
        calibration: HeatCalibration | None = None,
        **sampler: Any,
    ) -> Generation:
        """Face codes for a stimulus ``[frames]`` (or ``[patients, frames]``) at :attr:`fps`, as a
        :class:`~painface.generation.Generation` (``np.asarray(result)``: ``[B, frames, D]``).

        ``stimulus`` is in normalized units, 0..1.5 (0 = baseline, 1 = the patient's pain tolerance;
        docs/stimulus.md), or a :class:`~painface.subjects.protocols.Stimulus` at the model's fps;
        ``celsius=True``: in °C, converted with ``calibration`` (the patient's :class:`HeatCalibration`;
        default: baseline 32 °C, threshold 43 °C, tolerance 47.5 °C). A calibration also gives the result
        its °C. ``samples`` repeats every patient; B = patients x samples (patient-major). ``context``:
        face-code frames ``[B, window - horizon, D]`` to continue from; default: cold start from a neutral
        face. ``stimulus_before`` ``[frames]`` or ``[B, frames]`` (same units): the stimulus before the first
        frame, which the model's stimulus memory and the context read (default: the patient rested at baseline).
        ``sampler``: SamplerConfig overrides (steps, schedule, uncertainty, guidance, horizon, ...)."""
        stim, calibration = self._stimulus(stimulus, celsius, calibration)
        if samples < 1:
            raise InputError(f"samples: must be >= 1, got {samples}")
        if sampler.get("guidance") is not None:
            from painface.model.conditions import check_settings

            check_settings(guidance=sampler["guidance"])  # the live protocol's limits: 0..GUIDANCE_MAX each
        patients = stim.shape[0]
        expr = np.broadcast_to(np.asarray(expressiveness, dtype=np.float32), (patients,))
        self.check_expressiveness(expr)
        emo = emotion_vector(emotion) if isinstance(emotion, str | dict) else np.asarray(emotion, np.float32)
        emo = np.broadcast_to(emo, (patients, len(EMOTIONS)))
        rep = np.repeat(np.arange(patients), samples)
        cfg = self.sampler_config(**sampler)
        gen = torch.Generator().manual_seed(int(seed))
        kwargs: dict[str, Any] = {}
        if context is not None:
            kwargs["context"] = self.encode(context)
        else:
            kwargs["neutral"] = self.encode(
                neutral_face(1)[0]
                if len(self.feature_names) == len(FEATURE_NAMES)
                else np.asarray(self.normalizer.mean)
            )
        if stimulus_before is not None:
            before, _ = self._stimulus(stimulus_before, celsius, calibration)
            if before.shape[0] not in (1, patients):
                raise InputError(f"stimulus_before: {before.shape[0]} rows for {patients} patients")
            kwargs["stimulus_before"] = np.broadcast_to(before, (patients, before.shape[1]))[rep]
        x = generate(self.denoiser, stim[rep], expr[rep].copy(), emo[rep].copy(), config=cfg, generator=gen, **kwargs)
        return Generation(self.decode(x), self.feature_names, self.fps, stim, expr.copy(), emo.copy(), samples=samples,
                          seed=int(seed), sampler=self._sampler_record(cfg), calibration=calibration,
                          checkpoint=self.source)

    def _sampler_record(self, cfg: SamplerConfig) -> dict[str, Any]:
        """The sampler settings a Generation records, with ``distilled``: the distilled guided network that covered
        these settings (its file name; windows in long holds ran the four guided passes), or None when they all did."""
        guided = getattr(self.denoiser, "distilled", None)
        ran = guided is not None and guided.covers(cfg.guidance, cfg, 1)
        name = Path(self.distilled_source).name if ran and self.distilled_source else None
        return {**cfg.to_dict(), "distilled": name}

    def _stimulus(self, stimulus: Any, celsius: bool, calibration: HeatCalibration | None
                  ) -> tuple[np.ndarray, HeatCalibration | None]:
        """(normalized stimulus ``[patients, frames]``, calibration) of :meth:`generate`'s arguments."""
        if calibration is not None and not isinstance(calibration, HeatCalibration):
            raise InputError(f"calibration: expected a HeatCalibration, got {type(calibration).__name__}")
        if isinstance(stimulus, Stimulus):
            if abs(stimulus.fps - self.fps) > 1e-6:
                raise InputError(f"stimulus: sampled at {stimulus.fps:g} fps; this model runs at {self.fps:g} fps")
            stimulus = stimulus.normalized
        stim = np.asarray(stimulus)
        if stim.ndim not in (1, 2):
            raise InputError(f"stimulus: expected [frames] or [patients, frames], got shape {stim.shape}")
        for row in np.atleast_2d(stim):
            check_stimulus(row)  # numbers, finite
        stim = np.atleast_2d(stim)
        if celsius:
            calibration = calibration or HeatCalibration()
            return calibration.to_normalized(stim, source="stimulus (°C)"), calibration
        return check_normalized(stim, celsius_hint="pass celsius=True (and the patient's calibration="
                                "HeatCalibration(...)) to convert °C"), calibration


def make_stimulus(kind: str, seconds: float, fps: float, seed: int, calibration: HeatCalibration | None = None,
                  celsius: bool = False) -> np.ndarray:
    """The stimulus for ``painface generate``: "biovid" (from ``calibration``'s threshold and tolerance),
    "elbow" or a CSV path (normalized, or °C with ``celsius``); normalized, cut to ``seconds``."""
    if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise InputError(f"--seconds {seconds}: expected a length in seconds, > 0 and <= {MAX_SECONDS:g}")
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * fps))
    cal = calibration or HeatCalibration()
    if kind == "biovid":
        proto = HeatProtocol(fps=fps, baseline_c=cal.baseline_c)
        stim = biovid_heat(cal.threshold_c, cal.tolerance_c, rng, proto).normalized
    elif kind == "elbow":
        stim = elbow_exercise(rng, ElbowProtocol(fps=fps, cycles=max(1, int(seconds // 8) + 1)))[1].normalized
    else:
        try:
            values = csv_stimulus(kind, fps=fps, max_seconds=MAX_SECONDS * 10).normalized  # the values as written
        except InputError as e:
            raise InputError(f"--stimulus {e}") from None
        stim = (cal.to_normalized(values, source=f"--stimulus {kind} (°C)") if celsius else
                check_normalized(values, source=f"--stimulus {kind}",
                                 celsius_hint="pass --celsius (with the patient's --tolerance-c) to convert °C"))
    if stim.shape[0] < frames:
        stim = np.concatenate([stim, np.full(frames - stim.shape[0], stim[-1], np.float32)])
    return stim[:frames]
