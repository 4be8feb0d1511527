"""The corpus on disk: ``DIR/meta.json`` + one ``DIR/subjects/<id>.npz`` per subject.

The format is readable with numpy and json alone (see docs/data-format.md). Every file is written
atomically (temporary file in the same folder, then rename), so a killed writer never leaves a file
that looks complete. Loading validates shapes, dtypes, values and versions and names the file at fault.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from painface.errors import CorpusError, InputError
from painface.face.code import EMOTIONS, check_face, feature_space
from painface.io import atomic_write_bytes, atomic_write_json  # noqa: F401 - re-exported

FORMAT_NAME = "painface-corpus"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
STIMULUS_UNITS = ("normalized", "celsius")
REQUIRED_SUBJECT_KEYS = ("id", "split", "expressiveness", "emotion", "pattern")
REQUIRED_ARRAYS = ("face", "feature_names", "stimulus", "pspi")


@dataclass
class SubjectData:
    """One subject's whole recording in memory.

    face: ``[frames, features]`` float32 face code; stimulus: ``[frames]`` float32 in the corpus's
    stimulus units; pspi: ``[frames]`` float32; info: the subject's entry of meta.json (id, split,
    expressiveness, emotion, pattern, ...); extras: further per-frame arrays (``temperature`` in °C,
    ``level`` 0-4 stimulus class, ``trial`` index or -1 at rest, ...).
    """

    info: dict[str, Any]
    face: np.ndarray
    stimulus: np.ndarray
    pspi: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.info["id"])

    @property
    def frames(self) -> int:
        return int(self.face.shape[0])


def check_subject(sub: SubjectData, feature_names: Sequence[str], *, source: str) -> None:
    """Validate one subject's arrays against the corpus's feature names; raise :class:`CorpusError`."""
    try:
        sub.face = check_face(sub.face, feature_names, source=f"{source}: face")
    except InputError as e:
        raise CorpusError(str(e)) from None
    n = sub.face.shape[0]
    for name in ("stimulus", "pspi"):
        arr = np.asarray(getattr(sub, name))
        if arr.shape != (n,):
            raise CorpusError(f"{source}: {name} has shape {arr.shape}, expected ({n},) to match face")
        if not np.issubdtype(arr.dtype, np.floating):
            raise CorpusError(f"{source}: {name} has dtype {arr.dtype}, expected float32")
        if not np.all(np.isfinite(arr)):
            raise CorpusError(f"{source}: {name} holds NaN or inf (first at frame {int(np.argmax(~np.isfinite(arr)))})")
        setattr(sub, name, arr.astype(np.float32, copy=False))
    for name, arr in sub.extras.items():
        if np.asarray(arr).shape[:1] != (n,):
            raise CorpusError(f"{source}: {name} has shape {np.asarray(arr).shape}, expected {n} frames first")


def check_subject_info(info: Any, *, source: str) -> dict[str, Any]:
    """Validate one entry of meta.json's ``subjects`` list."""
    if not isinstance(info, dict):
        raise CorpusError(f"{source}: a subjects entry must be an object, got {type(info).__name__}")
    missing = [k for k in REQUIRED_SUBJECT_KEYS if k not in info]
    if missing:
        raise CorpusError(f"{source}: subject entry {info.get('id', '?')!r} lacks {missing}")
    if info["split"] not in SPLITS:
        raise CorpusError(f"{source}: subject {info['id']!r} has split {info['split']!r}, expected one of {SPLITS}")
    if info["emotion"] not in EMOTIONS:
        raise CorpusError(
            f"{source}: subject {info['id']!r} has unknown emotion {info['emotion']!r}; "
            f"expected one of {', '.join(EMOTIONS)}"
        )
    sid = str(info["id"])
    if not sid or "/" in sid or "\\" in sid or sid.startswith("."):
        raise CorpusError(f"{source}: subject id {sid!r} is not a valid file name")
    return info


def write_subject(path: Path, sub: SubjectData, feature_names: Sequence[str], **scalars: Any) -> None:
    """Write one subject npz atomically (compressed). ``scalars`` are stored as 0-d arrays."""
    arrays: dict[str, np.ndarray] = {
        "face": np.asarray(sub.face, dtype=np.float32),
        "feature_names": np.asarray(list(feature_names), dtype=str),
        "stimulus": np.asarray(sub.stimulus, dtype=np.float32),
        "pspi": np.asarray(sub.pspi, dtype=np.float32),
    }
    for k, v in sub.extras.items():
        arrays[k] = np.asarray(v)
    for k, v in scalars.items():
        arrays[k] = np.asarray(v)
    atomic_write_bytes(path, lambda fh: np.savez_compressed(fh, **arrays))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read every array of an npz into memory, turning any failure into a :class:`CorpusError`."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise CorpusError(f"{path}: not a readable npz (truncated or corrupt?): {e}") from None


class Corpus:
    """A corpus: meta (fps, feature names, stimulus units, subjects) and the subjects' arrays.

    Subjects come either from memory (``subjects=``) or lazily from ``root/subjects/<id>.npz``.
    """

    def __init__(self, meta: dict[str, Any], subjects: dict[str, SubjectData] | None = None, root: Path | None = None):
        self.meta = meta
        self.root = Path(root) if root is not None else None
        self._mem = dict(subjects or {})
        self._validate_meta()

    # --- meta ---------------------------------------------------------------------------------
    def _validate_meta(self) -> None:
        src = str(self.root / "meta.json") if self.root else "meta"
        m = self.meta
        for key in ("format_version", "fps", "feature_names", "stimulus_units", "subjects"):
            if key not in m:
                raise CorpusError(f"{src}: missing key {key!r}")
        if m["format_version"] != FORMAT_VERSION:
            raise CorpusError(f"{src}: format_version {m['format_version']!r}, this painface reads {FORMAT_VERSION}")
        if not isinstance(m["fps"], int | float) or m["fps"] <= 0:
            raise CorpusError(f"{src}: fps must be a positive number, got {m['fps']!r}")
        try:
            feature_space(m["feature_names"])
        except InputError as e:
            raise CorpusError(f"{src}: {e}") from None
        if m["stimulus_units"] not in STIMULUS_UNITS:
            raise CorpusError(f"{src}: stimulus_units {m['stimulus_units']!r}, expected one of {STIMULUS_UNITS}")
        if not isinstance(m["subjects"], list):
            raise CorpusError(f"{src}: subjects must be a list")
        seen = set()
        for info in m["subjects"]:
            check_subject_info(info, source=src)
            if info["id"] in seen:
                raise CorpusError(f"{src}: subject id {info['id']!r} appears twice")
            seen.add(info["id"])

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.meta["feature_names"])

    @property
    def feature_space(self) -> str:
        return feature_space(self.feature_names)

    @property
    def stimulus_units(self) -> str:
        return str(self.meta["stimulus_units"])

    @property
    def subjects(self) -> list[dict[str, Any]]:
        return list(self.meta["subjects"])

    def ids(self, split: str | None = None) -> list[str]:
        """Subject ids, optionally only those of ``split`` ("train", "val" or "test")."""
        if split is not None and split not in SPLITS:
            raise InputError(f"split: {split!r}, expected one of {SPLITS}")
        return [str(s["id"]) for s in self.meta["subjects"] if split is None or s["split"] == split]

    def info(self, sid: str) -> dict[str, Any]:
        for s in self.meta["subjects"]:
            if str(s["id"]) == sid:
                return s
        raise InputError(f"subject {sid!r} is not in this corpus")

    # --- arrays -------------------------------------------------------------------------------
    def subject(self, sid: str) -> SubjectData:
        """Load (or return from memory) one subject, validated."""
        info = self.info(sid)
        if sid in self._mem:
            return self._mem[sid]
        if self.root is None:
            raise CorpusError(f"subject {sid!r}: no arrays in memory and no folder to read them from")
        path = self.root / "subjects" / f"{sid}.npz"
        arrays = read_npz(path)
        missing = [k for k in REQUIRED_ARRAYS if k not in arrays]
        if missing:
            raise CorpusError(f"{path}: missing array(s) {missing}")
        names = tuple(str(n) for n in arrays.pop("feature_names"))
        if names != self.feature_names:
            raise CorpusError(f"{path}: feature_names differ from meta.json's")
        face, stim, ps = arrays.pop("face"), arrays.pop("stimulus"), arrays.pop("pspi")
        extras = {k: v for k, v in arrays.items() if v.ndim >= 1}
        sub = SubjectData(info=info, face=face, stimulus=stim, pspi=ps, extras=extras)
        check_subject(sub, self.feature_names, source=str(path))
        return sub

    def __iter__(self) -> Iterator[SubjectData]:
        for sid in self.ids():
            yield self.subject(sid)

    def __len__(self) -> int:
        return len(self.meta["subjects"])

    def save(self, out_dir: Path) -> Path:
        """Write this corpus to ``out_dir`` (subjects first, meta.json last); returns ``out_dir``."""
        out_dir = Path(out_dir)
        for sid in self.ids():
            sub = self.subject(sid)
            write_subject(out_dir / "subjects" / f"{sid}.npz", sub, self.feature_names)
        meta = dict(self.meta)
        meta.setdefault("format", FORMAT_NAME)
        atomic_write_json(out_dir / "meta.json", meta)
        return out_dir


def make_meta(
    *, fps: float, feature_names: Sequence[str], stimulus_units: str, subjects: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """Build a meta.json dict of the current format version."""
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fps": float(fps),
        "feature_names": list(feature_names),
        "feature_space": feature_space(feature_names),
        "stimulus_units": stimulus_units,
        **extra,
        "subjects": subjects,
    }


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is beyond a float")
    return value


def open_corpus(path: str | os.PathLike) -> Corpus:
    """Open a corpus folder (reads and checks meta.json; subjects load lazily)."""
    root = Path(path)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder not found")
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise CorpusError(f"{meta_path}: missing (is {root} a painface corpus? run `painface simulate --out {root}`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"), parse_constant=_no_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorpusError(f"{meta_path}: not valid JSON: {e}") from None
    except ValueError as e:  # NaN, Infinity or a number beyond float
        raise CorpusError(f"{meta_path}: {e}; expected finite numbers (strict JSON)") from None
    if not isinstance(meta, dict):
        raise CorpusError(f"{meta_path}: expected a JSON object at the top level")
    return Corpus(meta, root=root)
