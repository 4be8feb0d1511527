"""What :meth:`painface.express.PainDiffusion.generate` returns: face codes with everything that made
them, and the ways to look at them (a table, a figure, a video, an export, a file).

A :class:`Generation` keeps ``codes`` ``[B, frames, D]`` in face-code units (B = patients x samples,
patient-major: row ``p * samples + k`` is sample ``k`` of patient ``p``), the stimulus ``[patients,
frames]`` in normalized units (and in °C through ``calibration`` when one is known), the conditions
(expressiveness in PSPI units, emotion as 8 probabilities over :data:`~painface.face.code.EMOTIONS`),
fps, feature names, seed and sampler settings. ``np.asarray(result)`` and ``result.codes`` are the
codes. Nothing here imports torch: a saved generation loads back without the model.

The file (:meth:`save`, :meth:`load`) is the ``.npz`` ``painface generate`` writes, which ``painface
render`` and ``painface export`` read: ``face`` ``[frames, D]`` (one sequence) or ``[B, frames, D]``,
``feature_names``, ``fps``, ``stimulus`` ``[frames]`` (shared by every row) or ``[B, frames]``,
``pspi`` shaped like ``face`` minus D (FACS codes), ``temperature`` like ``stimulus`` (°C, when a heat
calibration is known), ``expressiveness`` and ``emotion`` (a name, or a blend's label) as scalars for
one patient else ``[patients]``, ``emotion_vector`` ``[patients, 8]``, ``samples``, ``seed`` (-1: not
recorded), and the JSON texts ``sampler``, ``calibration`` and ``checkpoint``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from painface.errors import InputError
from painface.face.code import EMOTIONS, check_face, feature_space
from painface.face.code import pspi as pspi_of
from painface.io import atomic_write_bytes, check_npz
from painface.subjects.protocols import HeatCalibration

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from painface.face.identity import Identity

TABLE_NAMES: dict[str, str] = {"head_pitch": "pitch", "head_yaw": "yaw", "head_roll": "roll"}
"""Face-code features whose column in tables is named as in ``painface analyze``'s table; AU and FLAME
names are the same in both."""


def emotion_label(vector: np.ndarray) -> str:
    """The class name of a one-hot emotion vector ``[8]``; for a blend, ``"Fear 0.5 + Sadness 0.5"``."""
    parts = [(EMOTIONS[i], float(w)) for i, w in enumerate(np.asarray(vector, np.float64)) if w > 1e-6]
    if len(parts) == 1:
        return parts[0][0]
    return " + ".join(f"{name} {w:.3g}" for name, w in parts)


@dataclass(eq=False)
class Generation(NDArrayOperatorsMixin):
    """Face codes ``[B, frames, D]`` from PainDiffusion and what made them (see the module docstring).
    It behaves as the array of its codes where an array is expected: ``np.asarray``, arithmetic and
    ufuncs (which return plain arrays), indexing, ``shape``, ``dtype`` and ``len``."""

    codes: np.ndarray
    feature_names: tuple[str, ...]
    fps: float
    stimulus: np.ndarray
    expressiveness: np.ndarray
    emotion: np.ndarray
    samples: int = 1
    seed: int | None = None
    sampler: dict[str, Any] = field(default_factory=dict)
    calibration: HeatCalibration | None = None
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        self.feature_names = tuple(str(n) for n in self.feature_names)
        feature_space(self.feature_names)
        self.codes = np.asarray(self.codes, np.float32)
        self.stimulus = np.atleast_2d(np.asarray(self.stimulus, np.float32))
        self.expressiveness = np.atleast_1d(np.asarray(self.expressiveness, np.float32))
        self.emotion = np.atleast_2d(np.asarray(self.emotion, np.float32))
        p = self.stimulus.shape[0]
        if self.codes.ndim != 3 or self.codes.shape[2] != len(self.feature_names):
            raise InputError(f"codes: expected [rows, frames, {len(self.feature_names)}], got {self.codes.shape}")
        if self.samples < 1 or self.codes.shape[0] != p * self.samples:
            raise InputError(f"codes: {self.codes.shape[0]} rows; expected patients ({p}) x samples ({self.samples})")
        if self.stimulus.shape != (p, self.codes.shape[1]):
            raise InputError(f"stimulus: expected [{p}, {self.codes.shape[1]}], got {self.stimulus.shape}")
        if self.expressiveness.shape != (p,) or self.emotion.shape != (p, len(EMOTIONS)):
            raise InputError(f"conditions: expected expressiveness [{p}] and emotion [{p}, {len(EMOTIONS)}], got "
                             f"{self.expressiveness.shape} and {self.emotion.shape}")
        if not np.isfinite(self.fps) or self.fps <= 0:
            raise InputError(f"fps: expected a positive frame rate, got {self.fps}")

    # --- the numbers -------------------------------------------------------------------------------

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = self.codes if dtype is None else self.codes.astype(dtype)
        return arr.copy() if copy and arr is self.codes else arr

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x.codes if isinstance(x, Generation) else x for x in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(x.codes if isinstance(x, Generation) else x for x in kwargs["out"])
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, index: Any) -> np.ndarray:
        return self.codes[index]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self.codes.dtype

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(B, frames, D)`` of :attr:`codes`."""
        return self.codes.shape  # type: ignore[return-value]

    @property
    def patients(self) -> int:
        return int(self.stimulus.shape[0])

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])

    @property
    def time(self) -> np.ndarray:
        """Seconds of each frame ``[frames]``."""
        return np.arange(self.frames) / self.fps

    @property
    def pspi(self) -> np.ndarray:
        """PSPI (0..16) per row and frame ``[B, frames]``; FACS codes only."""
        return pspi_of(self.codes, self.feature_names)

    @property
    def temperature(self) -> np.ndarray | None:
        """The stimulus in °C ``[patients, frames]`` through :attr:`calibration`, or None."""
        return None if self.calibration is None else self.calibration.to_celsius(self.stimulus)

    @property
    def emotion_labels(self) -> list[str]:
        return [emotion_label(v) for v in self.emotion]

    def row(self, patient: int = 0, sample: int = 0) -> int:
        """Index into :attr:`codes` of ``sample`` of ``patient``."""
        if not (0 <= patient < self.patients and 0 <= sample < self.samples):
            raise InputError(f"patient {patient}, sample {sample}: this generation holds patients "
                             f"0..{self.patients - 1} x samples 0..{self.samples - 1}")
        return patient * self.samples + sample

    def __repr__(self) -> str:
        return (f"Generation({self.patients} patient(s) x {self.samples} sample(s) x {self.frames} frames at "
                f"{self.fps:g} fps, {feature_space(self.feature_names).upper()} codes, seed {self.seed})")

    # --- tables and figures ------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """One row per (patient, sample, frame): ``patient, sample, frame, time`` (s), ``stimulus``
        (normalized), ``temperature`` (°C, with a calibration), ``expressiveness``, ``emotion``, every
        feature (AUs 0..5 and ``pitch, yaw, roll`` in degrees, named as in ``painface analyze``; or the
        FLAME coefficients), ``PSPI`` (FACS codes). ``attrs`` holds fps, seed, sampler, calibration."""
        import pandas as pd

        b, n, _ = self.codes.shape
        who = np.arange(b) // self.samples
        cols: dict[str, Any] = {
            "patient": np.repeat(who, n), "sample": np.repeat(np.arange(b) % self.samples, n),
            "frame": np.tile(np.arange(n), b), "time": np.tile(self.time, b), "stimulus": self.stimulus[who].ravel(),
        }
        if self.calibration is not None:
            cols["temperature"] = self.temperature[who].ravel()  # type: ignore[index]
        cols["expressiveness"] = np.repeat(self.expressiveness[who], n)
        cols["emotion"] = np.repeat(np.asarray(self.emotion_labels)[who], n)
        for j, name in enumerate(self.feature_names):
            cols[TABLE_NAMES.get(name, name)] = self.codes[:, :, j].ravel()
        if feature_space(self.feature_names) == "facs":
            cols["PSPI"] = self.pspi.ravel()
        df = pd.DataFrame(cols)
        df.attrs.update(fps=self.fps, seed=self.seed, sampler=self.sampler, checkpoint=self.checkpoint,
                        calibration=None if self.calibration is None else self.calibration.to_dict())
        return df

    def plot(self, path: str | os.PathLike | None = None) -> Figure:
        """The stimulus (normalized, with °C on the right given a calibration) and PSPI of every row over
        time (FLAME codes: the size of the expression coefficients); saved as PNG when ``path`` is given."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 5), layout="constrained")
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 2])
        t = self.time
        for p in range(self.patients):
            top.plot(t, self.stimulus[p], color=f"C{p}", lw=1.2, label=f"patient {p}: {self._caption(p)}")
        top.set(ylabel="stimulus\n(normalized)", ylim=(-0.05, max(1.05, float(self.stimulus.max()) + 0.05)))
        if self.calibration is not None:
            c0, span = self.calibration.baseline_c, self.calibration.tolerance_c - self.calibration.baseline_c
            axis = top.secondary_yaxis("right", functions=(lambda s: c0 + s * span, lambda c: (c - c0) / span))
            axis.set_ylabel("°C")
        top.legend(fontsize=8, loc="best")
        facs = feature_space(self.feature_names) == "facs"
        y = self.pspi if facs else np.linalg.norm(self.codes[..., :100], axis=-1)
        for b in range(y.shape[0]):
            bottom.plot(t, y[b], color=f"C{b // self.samples}", lw=1.0, alpha=1.0 if self.samples == 1 else 0.6)
        bottom.set(xlabel="time (s)", ylabel="PSPI" if facs else "|expression| (FLAME)",
                   ylim=(0, max(4.0, float(y.max()) + 0.5)) if facs else None)
        top.set_title(f"PainDiffusion: {self.patients} patient(s) x {self.samples} sample(s), seed {self.seed}",
                      fontsize=10)
        if path is not None:
            _check_suffix(path, (".png",))
            atomic_write_bytes(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=110))
        return fig

    def _caption(self, p: int) -> str:
        return f"expressiveness {self.expressiveness[p]:g}, {self.emotion_labels[p]}"

    # --- videos, exports, files --------------------------------------------------------------------

    def render(self, path: str | os.PathLike, *, patient: int = 0, sample: int = 0, size: int = 256,
               yaw: float = 0.0, layout: str = "plot", identity: int | Identity | None = None,
               face: str = "head", flame: str | os.PathLike | None = None) -> Path:
        """A video (.mp4/.gif) of one row, as ``painface render`` makes it: the whole head (``face="mask"``:
        the face mask) of ``identity`` (a seed or an Identity; None: an average adult) beside a scrolling
        stimulus/PSPI plot (``layout="face"``: the face alone). FLAME codes need the ``flame`` model file."""
        from painface.face.codes import render_codes
        from painface.io import check_output

        b = self.row(patient, sample)
        check_output(Path(path), "path", (".mp4", ".gif"))
        if isinstance(identity, int):
            from painface.face.identity import make_identity

            identity = make_identity(identity)
        facs = feature_space(self.feature_names) == "facs"
        return render_codes(self.codes[b], self.feature_names, self.fps, path, stimulus=self.stimulus[patient],
                            pspi=self.pspi[b] if facs else None, size=size, yaw=yaw, layout=layout,
                            identity=identity, face=face, flame=flame, label=f"patient {patient}")

    def export(self, path: str | os.PathLike, to: str | None = None, *, patient: int = 0, sample: int = 0,
               identity: int | Identity | None = None, face: str = "head") -> Path:
        """One row as ``painface export`` writes it: ``to`` = "arkit-csv", "arkit-json" or "glb" (default:
        from the suffix .csv, .json, .glb). FACS codes only."""
        from painface.face.export import FORMATS, export

        path = Path(path)
        to = to or {".csv": "arkit-csv", ".json": "arkit-json", ".glb": "glb"}.get(path.suffix.lower())
        if to not in FORMATS:
            raise InputError(f"export {path}: pass to= one of {FORMATS} (or a path ending in .csv, .json, .glb)")
        if feature_space(self.feature_names) != "facs":
            raise InputError("export: needs a FACS-space face code (AUs + head pose); got FLAME features")
        if isinstance(identity, int):
            from painface.face.identity import make_identity

            identity = make_identity(identity)
        return export(self.codes[self.row(patient, sample)], self.fps, to, path, identity, face)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ``.npz`` of the module docstring (what ``painface generate --out`` writes)."""
        path = Path(path)
        _check_suffix(path, (".npz",))
        one_p, one_b = self.patients == 1, self.codes.shape[0] == 1
        shared = bool(np.all(self.stimulus == self.stimulus[:1]))
        rows = np.arange(self.codes.shape[0]) // self.samples

        def per_row(a: np.ndarray) -> np.ndarray:  # [P, L] -> [L] shared, else [B, L]
            return a[0] if shared else a[rows]

        arrays: dict[str, np.ndarray] = {
            "face": self.codes[0] if one_b else self.codes,
            "feature_names": np.asarray(self.feature_names, dtype=str),
            "stimulus": per_row(self.stimulus),
            "fps": np.asarray(self.fps),
            "expressiveness": self.expressiveness[0] if one_p else self.expressiveness,
            "emotion": np.asarray(self.emotion_labels[0] if one_p else self.emotion_labels, dtype=str),
            "emotion_vector": self.emotion,
            "samples": np.asarray(self.samples),
            "seed": np.asarray(-1 if self.seed is None else self.seed),
            "sampler": np.asarray(json.dumps(self.sampler)),
            "checkpoint": np.asarray(json.dumps(self.checkpoint)),
            "calibration": np.asarray(json.dumps(None if self.calibration is None else self.calibration.to_dict())),
        }
        if feature_space(self.feature_names) == "facs":
            arrays["pspi"] = self.pspi[0] if one_b else self.pspi
        if self.calibration is not None:
            arrays["temperature"] = per_row(self.temperature)  # type: ignore[arg-type]
        try:
            atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays))
        except OSError as e:
            raise InputError(f"{path}: cannot write: {e.strerror or e}") from None
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Generation:
        """Read a ``.npz`` written by :meth:`save` or ``painface generate`` (older files without samples,
        seed or sampler load with samples = rows, seed None)."""
        path = Path(check_npz(Path(path), "generation"))
        try:
            with np.load(path, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: not a readable npz ({e})") from None
        missing = [k for k in ("face", "feature_names", "stimulus", "fps", "expressiveness", "emotion") if k not in a]
        if missing:
            raise InputError(f"{path}: missing {missing}; expected a file written by painface generate")
        names = tuple(str(n) for n in a["feature_names"])
        codes = a["face"] if a["face"].ndim == 3 else a["face"][None]
        check_face(codes.reshape(-1, codes.shape[-1]), names, source=f"{path}: face")
        expr = np.atleast_1d(a["expressiveness"]).astype(np.float32)
        p, rows = expr.shape[0], codes.shape[0]
        samples = int(a["samples"]) if "samples" in a else rows // max(p, 1)
        if "emotion_vector" in a:
            emotion = a["emotion_vector"]
        else:
            emotion = np.stack([_one_hot(str(e), path) for e in np.atleast_1d(a["emotion"])])
        stim = a["stimulus"]
        stim = np.broadcast_to(stim, (p, stim.shape[0])) if stim.ndim == 1 else stim[:: max(samples, 1)]
        cal = json.loads(str(a["calibration"])) if "calibration" in a else None
        seed = int(a["seed"]) if "seed" in a else -1
        return cls(codes, names, float(a["fps"]), stim, expr, emotion, samples=samples,
                   seed=None if seed < 0 else seed,
                   sampler=json.loads(str(a["sampler"])) if "sampler" in a else {},
                   calibration=None if cal is None else HeatCalibration(**cal),
                   checkpoint=json.loads(str(a["checkpoint"])) if "checkpoint" in a else None)


def _one_hot(name: str, path: Path) -> np.ndarray:
    lower = [e.lower() for e in EMOTIONS]
    if name.lower() not in lower:
        raise InputError(f"{path}: emotion {name!r} without emotion_vector; expected one of {list(EMOTIONS)}")
    return np.eye(len(EMOTIONS), dtype=np.float32)[lower.index(name.lower())]


def _check_suffix(path: str | os.PathLike, suffixes: tuple[str, ...]) -> None:
    if Path(path).suffix.lower() not in suffixes:
        raise InputError(f"{path}: expected a file name ending in {'/'.join(suffixes)}")
