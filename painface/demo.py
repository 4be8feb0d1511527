"""``painface demo``: four virtual patients react to one minute of the BioVid heat protocol.

The shipped PainDiffusion checkpoint generates all four patients in one batched pass (cold start from a
neutral face, as a robot starts), the built-in face renders them, and the command writes ``demo.mp4`` (a
2x2 grid, each face beside its scrolling stimulus/PSPI plot), ``demo.png`` (a summary figure) and
``demo.npz`` (the generated face codes) into ``--out``.
"""

from __future__ import annotations

import argparse
import io
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from painface.errors import InputError
from painface.express import PainDiffusion
from painface.face.code import EMOTIONS, FEATURE_NAMES, emotion_index, pspi
from painface.face.identity import make_identity
from painface.face.video import face_frames, render_grid_video
from painface.io import atomic_write_bytes
from painface.subjects.protocols import HeatProtocol, biovid_heat

DEMO_ORDER = (2, 4, 1, 3)
"""Heat levels of the demo minute: moderate, strongest, threshold, strong."""


@dataclass(frozen=True)
class Patient:
    label: str
    expressiveness: float
    emotion: str
    identity_seed: int
    sex: str
    skin_tone: int


PATIENTS = (
    Patient("stoic, neutral", 0.1, "Neutral", 11, "male", 2),
    Patient("mild, sad", 0.4, "Sadness", 12, "female", 5),
    Patient("expressive, neutral", 0.8, "Neutral", 13, "female", 8),
    Patient("very expressive, angry", 1.0, "Anger", 14, "male", 4),
)


def demo_stimulus(fps: float, seconds: float) -> np.ndarray:
    """One minute of the BioVid protocol with a fixed order of levels (normalized units)."""
    proto = HeatProtocol(fps=fps, lead_in_s=4.0, rest_min_s=6.0, rest_max_s=8.0)
    stim = biovid_heat(43.0, 47.5, np.random.default_rng(0), proto, order=DEMO_ORDER).normalized
    n = int(round(seconds * fps))
    return np.pad(stim, (0, max(0, n - stim.size)))[:n]


def summary_figure(path: Path, stim: np.ndarray, faces: np.ndarray, fps: float, identities: list) -> None:
    """Stimulus and PSPI of the four patients over time, with each face at its PSPI peak."""
    t = np.arange(stim.size) / fps
    fig = plt.figure(figsize=(13, 7))
    grid = fig.add_gridspec(len(PATIENTS), 4)
    for k, (patient, face) in enumerate(zip(PATIENTS, faces, strict=True)):
        ps = pspi(face, FEATURE_NAMES)
        ax = fig.add_subplot(grid[k, :3])
        ax.fill_between(t, 0, stim * 4, color="tab:red", alpha=0.15, lw=0, label="stimulus (x4, normalized)")
        ax.plot(t, ps, color="k", lw=1.0, label="generated PSPI")
        ax.set_ylim(0, max(6.0, float(ps.max()) * 1.1))
        ax.set_ylabel("PSPI")
        ax.set_title(
            f"{patient.label}: expressiveness {patient.expressiveness:g}, {patient.emotion}", fontsize=9, loc="left"
        )
        if k == 0:
            ax.legend(loc="upper right", fontsize=8)
        if k == len(PATIENTS) - 1:
            ax.set_xlabel("time (s)")
        peak = int(np.argmax(ps))
        img = face_frames(face[peak : peak + 1], size=192, identity=identities[k])
        axf = fig.add_subplot(grid[k, 3])
        axf.imshow(next(iter(img)))
        axf.set_axis_off()
        axf.set_title(f"t = {peak / fps:.1f} s, PSPI {ps[peak]:.1f}", fontsize=8)
    fig.suptitle("painface demo: PainDiffusion, BioVid heat protocol, four virtual patients")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, lambda fh: fh.write(buf.getvalue()))


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default ./demo)")
    p.add_argument("--seconds", type=float, default=60.0, help="length (default 60)")
    p.add_argument("--size", type=int, default=256, help="face size in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, default=None, help="default: the shipped checkpoint")


def run(args: argparse.Namespace) -> int:
    if not (np.isfinite(args.seconds) and 0 < args.seconds <= 3600):
        raise InputError(f"--seconds {args.seconds}: expected a length in seconds, > 0 and <= 3600")
    if not 16 <= args.size <= 2048:
        raise InputError(f"--size {args.size}: expected 16..2048 pixels")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: exists and is not a folder; expected an output folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {args.out}: cannot create the folder: {e.strerror or e}") from None
    t0 = time.perf_counter()
    model = PainDiffusion.load(args.checkpoint)
    stim = demo_stimulus(model.fps, args.seconds)
    emotions = np.stack([np.eye(len(EMOTIONS), dtype=np.float32)[emotion_index(p.emotion)] for p in PATIENTS])
    faces = model.generate(
        np.repeat(stim[None], len(PATIENTS), 0), [p.expressiveness for p in PATIENTS], emotions, seed=args.seed
    ).codes
    t_gen = time.perf_counter() - t0
    identities = [make_identity(p.identity_seed, sex=p.sex, skin_tone=p.skin_tone) for p in PATIENTS]
    pspis = [pspi(f, FEATURE_NAMES) for f in faces]
    render_grid_video(
        list(faces),
        [stim] * len(PATIENTS),
        pspis,
        [p.label for p in PATIENTS],
        args.out / "demo.mp4",
        model.fps,
        size=args.size,
        identities=identities,
    )
    summary_figure(args.out / "demo.png", stim, faces, model.fps, identities)
    arrays = {
        "face": faces,
        "feature_names": np.asarray(FEATURE_NAMES),
        "stimulus": stim,
        "pspi": np.stack(pspis),
        "fps": np.asarray(model.fps),
        "labels": np.asarray([p.label for p in PATIENTS]),
    }
    atomic_write_bytes(args.out / "demo.npz", lambda fh: np.savez_compressed(fh, **arrays))
    total = time.perf_counter() - t0
    print(
        f"wrote {args.out}/demo.mp4, demo.png, demo.npz: {len(PATIENTS)} patients x {args.seconds:g} s "
        f"(generation {t_gen:.1f} s, total {total:.1f} s)"
    )
    return 0
