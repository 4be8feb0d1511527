"""``painface render``: a face-code file -> a video (mp4/gif), the face alone or beside its plot.

Reads the npz written by ``painface generate`` (``face`` ``[frames, D]`` or ``[samples, frames, D]``,
``feature_names``, optional ``stimulus`` ``[frames]``, ``pspi``, ``fps``) or a corpus subject npz
(``subjects/<id>.npz``; its fps is taken from the corpus's meta.json beside it, else ``--fps``).
FACS codes are validated like the rig does: AU intensities outside 0..5, NaN, unknown feature names
and wrong shapes are refused with an error (not clipped). FLAME codes need ``--flame MODEL``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from painface.errors import InputError
from painface.face.code import check_face, feature_space

if TYPE_CHECKING:
    from painface.face.identity import Identity


@dataclass
class Codes:
    """One face-code sequence read from a file: face ``[frames, D]``, names, fps, stimulus/pspi ``[frames]``."""

    face: np.ndarray
    names: tuple[str, ...]
    fps: float
    stimulus: np.ndarray | None
    pspi: np.ndarray | None


def load_codes(path: str | Path, sample: int = 0, fps: float | None = None) -> Codes:
    """Read and validate a face-code npz; ``sample`` picks one of ``[samples, frames, D]``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable npz file ({e})") from None
    for key in ("face", "feature_names"):
        if key not in arrays:
            raise InputError(f"{path}: missing array {key!r} (expected face, feature_names[, stimulus, pspi, fps])")
    names = tuple(str(n) for n in arrays["feature_names"])
    feature_space(names)
    face = arrays["face"]
    if face.ndim == 3:
        if not 0 <= sample < face.shape[0]:
            raise InputError(f"--sample: {path} holds {face.shape[0]} samples, got {sample}")
        face = face[sample]
    elif sample != 0:
        raise InputError(f"--sample: {path} holds one sequence, got --sample {sample}")
    face = check_face(face, names, source=f"{path}: face")
    n = face.shape[0]
    if n == 0:
        raise InputError(f"{path}: face has no frames")
    extra = {}
    for key in ("stimulus", "pspi"):
        a = arrays.get(key)
        if a is not None:
            a = np.asarray(a, np.float64)
            if a.ndim == 2 and a.shape[0] > sample:
                a = a[sample]
            if a.shape != (n,) or not np.all(np.isfinite(a)):
                raise InputError(f"{path}: {key} must be finite with shape [{n}], got {a.shape}")
        extra[key] = a
    rate = fps
    if rate is None and "fps" in arrays:
        rate = float(arrays["fps"])
    if rate is None:
        meta = path.parent.parent / "meta.json"
        if meta.is_file():
            rate = float(json.loads(meta.read_text()).get("fps", 0)) or None
    if rate is None:
        raise InputError(f"{path}: no fps stored; pass --fps")
    if not np.isfinite(rate) or not 0.1 <= rate <= 240:
        raise InputError(f"fps: expected 0.1..240, got {rate}")
    return Codes(face=face, names=names, fps=float(rate), stimulus=extra["stimulus"], pspi=extra["pspi"])


def render_codes(code: np.ndarray, names: tuple[str, ...], fps: float, out: str | Path, *,
                 stimulus: np.ndarray | None = None, pspi: np.ndarray | None = None, size: int = 256,
                 yaw: float = 0.0, layout: str = "plot", identity: Identity | None = None, face: str = "head",
                 flame: str | Path | None = None, label: str = "", source: str = "codes") -> Path:
    """Render one face-code sequence ``code`` ``[frames, D]`` (FACS; FLAME with a ``flame`` model file) at
    ``fps`` to ``out`` (.mp4/.gif): what ``painface render`` and ``Generation.render`` do. ``stimulus`` and
    ``pspi`` ``[frames]`` feed the plot of ``layout="plot"``; ``face``: "head" or "mask"."""
    from painface.face.video import render_video

    if not isinstance(size, int) or not 16 <= size <= 2048:
        raise InputError(f"--size: expected 16..2048 pixels, got {size}")
    if feature_space(names) == "flame":
        from painface.face.flame import load_flame, render_flame_video

        if flame is None:
            raise InputError(f"{source}: FLAME-space codes need a FLAME model file: pass --flame MODEL")
        return render_flame_video(load_flame(flame), code, out, fps, size=size, yaw=yaw,
                                  stimulus=stimulus if layout == "plot" else None, pspi=pspi)
    return render_video(code, out, fps, stimulus=stimulus, pspi=pspi, size=size, yaw=yaw, layout=layout,
                        identity=identity, model=face, label=label)
