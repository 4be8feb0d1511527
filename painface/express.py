"""Express pain: a trained PainDiffusion checkpoint as one object, and ``painface generate``.

:class:`PainDiffusion` loads a checkpoint (the shipped one by default), takes stimuli in normalized units
and conditions in user units (expressiveness in PSPI, emotion by name or blend), and returns face codes in
face-code units (AU intensities 0-5 and head pose in degrees), batched over samples and patients.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painface.data.windows import FeatureNormalizer
from painface.errors import InputError
from painface.face.code import EMOTIONS, FEATURE_NAMES, clip_aus, feature_space, neutral_face, pspi
from painface.io import atomic_write_bytes
from painface.model.checkpoint import load_model
from painface.model.conditions import emotion_vector
from painface.model.inference import fast_denoiser
from painface.model.sampling import SamplerConfig, generate
from painface.subjects.protocols import (
    ElbowProtocol,
    HeatProtocol,
    biovid_heat,
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

    def __init__(self, denoiser: Any, info: dict[str, Any], device: str | torch.device = "cpu"):
        self.denoiser, self.info, self.device = denoiser, info, torch.device(device)
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
             inference: str | None = None) -> PainDiffusion:
        """``inference``: the denoiser's inference backend (painface.model.inference; None: $PAINFACE_INFERENCE
        or "auto")."""
        path = Path(path) if path is not None else SHIPPED
        if path is SHIPPED and not SHIPPED.is_file():
            raise InputError(f"no shipped checkpoint at {SHIPPED}; train one (docs/training.md) and pass --checkpoint")
        denoiser, info = load_model(path, device)
        if "normalizer" not in info:
            raise InputError(f"{path}: the checkpoint has no feature normalizer (not made by painface train?)")
        return cls(fast_denoiser(denoiser, inference, path), info, device)

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
        stimulus: np.ndarray,
        expressiveness: float | Sequence[float] = 1.0,
        emotion: Any = "Neutral",
        *,
        samples: int = 1,
        seed: int = 0,
        context: np.ndarray | None = None,
        **sampler: Any,
    ) -> np.ndarray:
        """Face codes ``[B, L, D]`` for a stimulus ``[L]`` (or ``[P, L]`` for P patients) in normalized
        units. ``samples`` repeats every patient; B = P x samples (patient-major). ``context``: face-code
        frames ``[B, window - horizon, D]`` to continue from; default: cold start from a neutral face.
        ``sampler``: SamplerConfig overrides (steps, schedule, uncertainty, guidance, horizon, ...)."""
        stim = np.asarray(stimulus, dtype=np.float32)
        if stim.ndim == 1:
            stim = check_stimulus(stim)[None]
        elif stim.ndim == 2:
            for row in stim:
                check_stimulus(row)
        else:
            raise InputError(f"stimulus: expected [frames] or [patients, frames], got shape {stim.shape}")
        if samples < 1:
            raise InputError(f"samples: must be >= 1, got {samples}")
        if sampler.get("guidance") is not None:
            from painface.stream_checks import check_settings

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
        x = generate(self.denoiser, stim[rep], expr[rep].copy(), emo[rep].copy(), config=cfg, generator=gen, **kwargs)
        return self.decode(x)


def make_stimulus(kind: str, seconds: float, fps: float, seed: int) -> np.ndarray:
    """The stimulus for ``painface generate``: "biovid", "elbow" or a CSV path; normalized, cut to ``seconds``."""
    if not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise InputError(f"--seconds {seconds}: expected a length in seconds, > 0 and <= {MAX_SECONDS:g}")
    rng = np.random.default_rng(seed)
    frames = int(round(seconds * fps))
    if kind == "biovid":
        stim = biovid_heat(43.0, 47.5, rng, HeatProtocol(fps=fps)).normalized
    elif kind == "elbow":
        stim = elbow_exercise(rng, ElbowProtocol(fps=fps, cycles=max(1, int(seconds // 8) + 1)))[1].normalized
    else:
        from painface.stream_checks import STIMULUS_RANGE

        try:
            stim = csv_stimulus(kind, fps=fps, max_seconds=MAX_SECONDS * 10).normalized
        except InputError as e:
            raise InputError(f"--stimulus {e}") from None
        lo, hi = STIMULUS_RANGE
        if stim.min() < lo or stim.max() > hi:
            raise InputError(f"--stimulus {kind}: values {stim.min():.3g}..{stim.max():.3g}; expected normalized "
                             f"stimulus in [{lo:g}, {hi:g}] (0 = baseline, 1 = tolerance), as the live server")
    if stim.shape[0] < frames:
        stim = np.concatenate([stim, np.full(frames - stim.shape[0], stim[-1], np.float32)])
    return stim[:frames]


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    if path.suffix != ".npz":
        raise InputError(f"--out {path}: expected a .npz file name")
    try:
        atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays))
    except OSError as e:
        raise InputError(f"--out {path}: cannot write: {e}") from None


def write_csv(
    path: Path, face: np.ndarray, names: Sequence[str], stimulus: np.ndarray, ps: np.ndarray | None, fps: float
) -> None:
    """One row per (sample, frame): sample, frame, time_s, stimulus, pspi, features."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["sample", "frame", "time_s", "stimulus", "pspi", *names])
    for k in range(face.shape[0]):
        for t in range(face.shape[1]):
            w.writerow(
                [
                    k,
                    t,
                    f"{t / fps:.3f}",
                    f"{stimulus[t]:.4f}",
                    "" if ps is None else f"{ps[k, t]:.3f}",
                    *(f"{v:.4f}" for v in face[k, t]),
                ]
            )
    atomic_write_bytes(path, lambda fh: fh.write(buf.getvalue().encode()))


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stimulus", default="biovid", help="biovid, elbow, or a CSV of (time_s, normalized value)")
    p.add_argument("--seconds", type=float, default=60.0, help="length to generate (default 60)")
    p.add_argument("--expressiveness", type=float, default=1.0,
                   help="the patient's mean PSPI (default 1.0; the shipped checkpoint's training subjects span "
                        "0.07-1.07)")
    p.add_argument("--emotion", default="Neutral", help=f"one of {', '.join(EMOTIONS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1, help="independent generations (batched)")
    p.add_argument("--guidance", default=None, help="strengths E,X,S for emotion, expressiveness, stimulus")
    p.add_argument("--schedule", choices=["full", "pyramid"], default=None, help="scheduling matrix")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default from the checkpoint)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.add_argument("--csv", action="store_true", help="also write OUT with .csv")


def check_args(args: argparse.Namespace) -> tuple[float, float, float] | None:
    """Every option of ``painface generate`` checked before the model loads; returns the guidance."""
    from painface.io import check_output
    from painface.stream_checks import GUIDANCE_MAX, check_settings

    if not (np.isfinite(args.seconds) and 0 < args.seconds <= MAX_SECONDS):
        raise InputError(f"--seconds {args.seconds}: expected a length in seconds, > 0 and <= {MAX_SECONDS:g}")
    if not 1 <= args.samples <= MAX_FRAMES_TOTAL // max(1, int(args.seconds * 25)):
        raise InputError(f"--samples {args.samples}: expected 1..{MAX_FRAMES_TOTAL // max(1, int(args.seconds * 25))} "
                         f"for {args.seconds:g} s (at most {MAX_FRAMES_TOTAL:,} frames in all)")
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise InputError(f"--steps {args.steps}: expected 1..{MAX_STEPS}")
    try:
        check_settings(expressiveness=args.expressiveness, emotion=args.emotion)
    except InputError as e:
        raise InputError(f"--{e}") from None
    guidance = None
    if args.guidance is not None:
        try:
            guidance = tuple(float(v) for v in args.guidance.split(","))
        except ValueError:
            raise InputError(f"--guidance {args.guidance!r}: expected three numbers E,X,S") from None
        if len(guidance) != 3 or not all(np.isfinite(g) and 0 <= g <= GUIDANCE_MAX for g in guidance):
            raise InputError(f"--guidance {args.guidance!r}: expected three numbers E,X,S in [0, {GUIDANCE_MAX:g}]")
    if args.stimulus not in ("biovid", "elbow") and not Path(args.stimulus).is_file():
        raise InputError(f"--stimulus {args.stimulus}: expected biovid, elbow or an existing CSV file")
    check_output(args.out, "--out", (".npz",))
    if args.csv:
        check_output(args.out.with_suffix(".csv"), "--csv (OUT with .csv)")
    return guidance


def run(args: argparse.Namespace) -> int:
    guidance = check_args(args)
    model = PainDiffusion.load(args.checkpoint)
    stim = make_stimulus(args.stimulus, args.seconds, model.fps, args.seed)
    face = model.generate(
        stim,
        args.expressiveness,
        args.emotion,
        samples=args.samples,
        seed=args.seed,
        guidance=guidance,
        schedule=args.schedule,
        steps=args.steps,
    )
    names = model.feature_names
    ps = pspi(face, names) if feature_space(names) == "facs" else None
    arrays = {
        "face": face[0] if args.samples == 1 else face,
        "feature_names": np.asarray(names, dtype=str),
        "stimulus": stim,
        "fps": np.asarray(model.fps),
        "expressiveness": np.asarray(args.expressiveness),
        "emotion": np.asarray(args.emotion),
    }
    if ps is not None:
        arrays["pspi"] = ps[0] if args.samples == 1 else ps
    write_npz(args.out, arrays)
    if args.csv:
        write_csv(args.out.with_suffix(".csv"), face, names, stim, ps, model.fps)
    print(f"wrote {args.out}: {args.samples} x {face.shape[1]} frames ({face.shape[1] / model.fps:.1f} s)")
    return 0
