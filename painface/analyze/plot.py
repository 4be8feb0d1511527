"""Figures of an analysis table: a per-frame AU/PSPI plot for a video, and an image with its
landmarks, face box and AU/PSPI readout. PNG via matplotlib (Agg); files are written atomically."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from painface.analyze.aus import PSPI_AUS
from painface.io import atomic_write_bytes


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    atomic_write_bytes(Path(path), lambda fh: fh.write(buf.getvalue()))
    return Path(path)


def plot_video(df: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Per-frame AU4/6/7/9/10/43 (0..5) and PSPI (0..16) of one video's rows (face 0) against time (s);
    frames without a face are gaps."""
    plt = _plt()
    d = df[df["face"] == 0].sort_values("frame")
    t = d["time"].to_numpy(float) if d["time"].notna().all() else d["frame"].to_numpy(float)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True)
    for au in PSPI_AUS:
        a1.plot(t, d[au], lw=1.2, label=au)
    a1.set(ylabel="AU intensity", ylim=(-0.1, 5.1))
    a1.legend(ncol=6, fontsize=8, loc="upper right")
    a2.plot(t, d["PSPI"], c="k", lw=1.4)
    a2.set(ylabel="PSPI", xlabel="time (s)", ylim=(-0.2, max(4.0, float(np.nanmax(d["PSPI"], initial=0)) + 0.5)))
    a1.set_title(title or Path(str(d["file"].iloc[0])).name, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def readout(row: pd.Series) -> str:
    """A few lines: PSPI, the PSPI AUs, head pose."""
    if not bool(row.get("face_detected", False)):
        return "no face" + (f"\n{row['error']}" if row.get("error") else "")
    aus = "  ".join(f"{au} {row[au]:.1f}" for au in (*PSPI_AUS, "AU12") if au in row.index)
    return (f"PSPI {row['PSPI']:.1f}\n{aus}\n"
            f"pitch {row['pitch']:.0f}  yaw {row['yaw']:.0f}  roll {row['roll']:.0f} deg")


def plot_face(image: Any, row: pd.Series, path: str | Path, *, landmarks: np.ndarray | None = None,
              zoom: float | None = 2.2) -> Path:
    """The image with the face box, landmarks (``[478, >=2]`` pixels, or taken from the row's x_i/y_i
    columns when present) and the readout. ``zoom``: show a square of this many face-box sides around
    the face (None: the whole image)."""
    plt = _plt()
    from painface.analyze.inputs import array_to_image

    img = np.asarray(array_to_image(image, "image"))
    if landmarks is None and "x_0" in row.index:
        landmarks = np.stack([row[[f"x_{i}" for i in range(478)]].to_numpy(float),
                              row[[f"y_{i}" for i in range(478)]].to_numpy(float)], 1)
    h, w = img.shape[:2]
    fig, ax = plt.subplots(figsize=(4.2, 4.2 * (1.0 if zoom else h / max(w, 1)) + 0.8))
    ax.imshow(img)
    if bool(row.get("face_detected", False)):
        ax.add_patch(plt.Rectangle((row["face_x"], row["face_y"]), row["face_width"], row["face_height"],
                                   fill=False, ec="yellow", lw=1))
        if landmarks is not None:
            ax.scatter(landmarks[:, 0], landmarks[:, 1], s=0.6, c="cyan")
    if zoom and bool(row.get("face_detected", False)):
        cx, cy = row["face_x"] + row["face_width"] / 2, row["face_y"] + row["face_height"] / 2
        half = zoom * max(row["face_width"], row["face_height"]) / 2
        ax.set_xlim(max(cx - half, 0), min(cx + half, w))
        ax.set_ylim(min(cy + half, h), max(cy - half, 0))
    ax.set_axis_off()
    ax.set_title(readout(row), fontsize=8, loc="left", family="monospace")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_inputs(df: pd.DataFrame, folder: Path) -> list[Path]:
    """One figure per file of the table into ``folder``: videos get :func:`plot_video`, readable images
    :func:`plot_face`. Returns the paths written."""
    out = []
    for k, (name, d) in enumerate(df.groupby("file", sort=False)):
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name)).stem) or f"input{k}"
        if d["frame"].nunique() > 1:
            out.append(plot_video(d, folder / f"{k:03d}_{stem}_aus.png"))
        elif Path(str(name)).is_file() and not d["error"].iloc[0]:
            from painface.analyze.inputs import read_image

            try:
                img = read_image(Path(str(name)))
            except Exception:  # noqa: BLE001 - a figure is optional
                continue
            out.append(plot_face(img, d.iloc[0], folder / f"{k:03d}_{stem}_face.png"))
    return out
