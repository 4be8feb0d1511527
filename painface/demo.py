"""``painface demo``: four virtual patients react to one minute of the BioVid heat protocol.

The shipped PainDiffusion checkpoint generates all four patients in one batched pass (cold start from a
neutral face, as a robot starts), the built-in face renders them, and the command writes ``demo.mp4`` (a
2x2 grid, each face beside its scrolling stimulus/PSPI plot), ``demo.png`` (a summary figure) and
``demo.npz`` (the generated face codes) into ``--out``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from painface.face.code import FEATURE_NAMES, pspi
from painface.face.video import face_frames
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
