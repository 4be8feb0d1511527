"""Read BioVid Heat Pain (Part C) features as the PainDiffusion authors' preprocessing writes them.

Layout (one folder per subject under each root, one JSON per video frame, ``<frame>.json`` with an
integer stem; frames sorted numerically and consecutive)::

    FEATURES_ROOT/<subject>/<frame>.json   {"expcode": [100 floats], "jawpose": [3 floats], ...}
    LABELS_ROOT/<subject>/<frame>.json     {"temperature": °C, "label": 0-4, "pspi_no_au43": float,
                                            "emotion": "Neutral", ["emotion_score": [8 floats]], ...}

The result is a corpus in FLAME space (``painface.face.code.FLAME_NAMES``): face = expcode (100) +
jawpose x 100 (3), at 25 fps; stimulus normalized per subject, ``(T - baseline) / (tolerance -
baseline)`` with baseline 32 °C and tolerance the 99.5th percentile of the subject's temperature (its
highest plateau, robust to overshoot). Any missing or malformed frame is a :class:`CorpusError` naming
the file: nothing is skipped silently.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.data.corpus import Corpus, SubjectData, atomic_write_json, make_meta, write_subject
from painface.data.trials import trial_index_from_level
from painface.errors import CorpusError, InputError
from painface.face.code import EMOTIONS, FLAME_NAMES

FPS = 25.0
JAW_SCALE = 100.0
"""Jaw pose (axis-angle, radians) is multiplied by this so its variance is near the expression dims'."""
EXP_DIMS = 100
JAW_DIMS = 3
BASELINE_C = 32.0
TOLERANCE_PERCENTILE = 99.5
VAL_SHARE = 26 / 87
"""PainDiffusion's split: 26 validation subjects out of 87 (61 training)."""
_SEX = {"m": "male", "w": "female", "f": "female"}
_ID_RE = re.compile(r"^\d{6}_(?P<sex>[mwf])_(?P<age>\d{1,3})$")


# --- one frame ---------------------------------------------------------------------------------
def _load_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: not a readable JSON file: {e}") from None
    if not isinstance(obj, dict):
        raise CorpusError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _vector(obj: dict[str, Any], key: str, n: int, path: Path) -> np.ndarray:
    if key not in obj:
        raise CorpusError(f"{path}: missing key {key!r}")
    try:
        v = np.asarray(obj[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise CorpusError(f"{path}: {key!r} must be a list of {n} numbers") from None
    v = v.reshape(-1) if v.ndim == 2 and 1 in v.shape else v  # tolerate [[...]] (a batch of one)
    if v.shape != (n,):
        raise CorpusError(f"{path}: {key!r} has {v.size} values (shape {v.shape}), expected {n}")
    if not np.all(np.isfinite(v)):
        raise CorpusError(f"{path}: {key!r} holds NaN or inf")
    return v


def _number(obj: dict[str, Any], key: str, path: Path) -> float:
    if key not in obj:
        raise CorpusError(f"{path}: missing key {key!r}")
    val = obj[key]
    if isinstance(val, list) and len(val) == 1:
        val = val[0]
    if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val):
        raise CorpusError(f"{path}: {key!r} must be a finite number, got {val!r}")
    return float(val)


def _emotion(obj: dict[str, Any], path: Path) -> int:
    if "emotion" not in obj:
        raise CorpusError(f"{path}: missing key 'emotion'")
    name = str(obj["emotion"]).strip().lower()
    for i, e in enumerate(EMOTIONS):
        if e.lower() == name:
            return i
    raise CorpusError(f"{path}: unknown emotion {obj['emotion']!r}; expected one of {', '.join(EMOTIONS)}")


# --- one subject -------------------------------------------------------------------------------
def frame_files(folder: Path) -> dict[int, Path]:
    """``{frame: path}`` of the ``*.json`` files of one subject folder; a non-integer stem is an error."""
    if not folder.is_dir():
        raise CorpusError(f"{folder}: subject folder not found")
    out: dict[int, Path] = {}
    for p in folder.iterdir():
        if p.suffix != ".json" or p.name.startswith("."):
            continue
        try:
            out[int(p.stem)] = p
        except ValueError:
            raise CorpusError(f"{p}: frame file names must be integers (<frame>.json)") from None
    if not out:
        raise CorpusError(f"{folder}: no <frame>.json files")
    return out


def _frame_list(feat_dir: Path, lab_dir: Path) -> tuple[list[int], dict[int, Path], dict[int, Path]]:
    feats, labs = frame_files(feat_dir), frame_files(lab_dir)
    only_f, only_l = sorted(set(feats) - set(labs)), sorted(set(labs) - set(feats))
    if only_f:
        raise CorpusError(
            f"{lab_dir / f'{only_f[0]}.json'}: missing (frame {only_f[0]} has features but no "
            f"labels; {len(only_f)} such frame(s))"
        )
    if only_l:
        raise CorpusError(
            f"{feat_dir / f'{only_l[0]}.json'}: missing (frame {only_l[0]} has labels but no "
            f"features; {len(only_l)} such frame(s))"
        )
    frames = sorted(feats)
    gaps = np.flatnonzero(np.diff(frames) != 1)
    if gaps.size:
        first = frames[gaps[0]] + 1
        raise CorpusError(
            f"{feat_dir / f'{first}.json'}: missing in both roots (frames must be consecutive; "
            f"{feat_dir.name} jumps from {frames[gaps[0]]} to {frames[gaps[0] + 1]})"
        )
    return frames, feats, labs


def subject_traits(sid: str) -> dict[str, Any]:
    """Sex and age from a BioVid id such as ``"071309_w_21"`` (date_sex_age); empty when not that form."""
    m = _ID_RE.match(sid)
    if not m:
        return {}
    return {"sex": _SEX[m["sex"]], "age": int(m["age"])}


def read_biovid_subject(
    features_dir: str | Path,
    labels_dir: str | Path,
    *,
    baseline_c: float = BASELINE_C,
    tolerance_percentile: float = TOLERANCE_PERCENTILE,
    split: str = "train",
) -> SubjectData:
    """Read one subject's frames into a FLAME-space :class:`SubjectData`.

    face ``[frames, 103]`` float32 (expcode, jawpose x 100); stimulus ``[frames]`` normalized;
    pspi = pspi_no_au43; extras: ``temperature`` (°C, float32), ``level`` (label, int8),
    ``trial`` (int16, from level onsets), ``emotion_class`` (int8 index into EMOTIONS).
    info: id, split, expressiveness (mean PSPI), emotion (most frequent), pattern "unknown",
    baseline_c, tolerance_c, threshold_c, levels_c, first_frame, sex/age when the id encodes them,
    emotion_score (mean of the per-frame scores, when every frame has them).
    """
    feat_dir, lab_dir = Path(features_dir), Path(labels_dir)
    sid = feat_dir.name
    frames, feats, labs = _frame_list(feat_dir, lab_dir)
    n = len(frames)
    face = np.empty((n, EXP_DIMS + JAW_DIMS), dtype=np.float64)
    temp = np.empty(n, dtype=np.float64)
    level = np.empty(n, dtype=np.int64)
    pspi = np.empty(n, dtype=np.float64)
    emo = np.empty(n, dtype=np.int64)
    scores: list[np.ndarray] = []
    for i, fr in enumerate(frames):
        fp, lp = feats[fr], labs[fr]
        f = _load_json(fp)
        face[i, :EXP_DIMS] = _vector(f, "expcode", EXP_DIMS, fp)
        face[i, EXP_DIMS:] = _vector(f, "jawpose", JAW_DIMS, fp) * JAW_SCALE
        lab = _load_json(lp)
        temp[i] = _number(lab, "temperature", lp)
        lv = _number(lab, "label", lp)
        if lv not in (0, 1, 2, 3, 4):
            raise CorpusError(f"{lp}: 'label' must be a stimulus class 0-4, got {lab['label']!r}")
        level[i] = int(lv)
        pspi[i] = _number(lab, "pspi_no_au43", lp)
        emo[i] = _emotion(lab, lp)
        if "emotion_score" in lab:
            if len(scores) != i:
                raise CorpusError(f"{lp}: has 'emotion_score' but earlier frames of {sid} do not")
            scores.append(_vector(lab, "emotion_score", len(EMOTIONS), lp))
        elif scores:
            raise CorpusError(f"{lp}: missing key 'emotion_score' (earlier frames of {sid} have it)")
    tol = float(np.percentile(temp, tolerance_percentile))
    if tol <= baseline_c + 1e-6:
        raise CorpusError(
            f"{lab_dir}: temperature never rises above the baseline {baseline_c} °C "
            f"(its {tolerance_percentile}th percentile is {tol:.2f} °C); cannot normalize"
        )
    stim = (temp - baseline_c) / (tol - baseline_c)
    levels_c: list[float | None] = []
    for k in (1, 2, 3, 4):
        sel = temp[level == k]
        levels_c.append(round(float(np.percentile(sel, tolerance_percentile)), 3) if sel.size else None)
    counts = np.bincount(emo, minlength=len(EMOTIONS))
    info: dict[str, Any] = {
        "id": sid,
        "split": split,
        "expressiveness": float(pspi.mean()),
        "emotion": EMOTIONS[int(np.argmax(counts))],
        "pattern": "unknown",
        **subject_traits(sid),
        "baseline_c": float(baseline_c),
        "threshold_c": levels_c[0],
        "tolerance_c": tol,
        "levels_c": levels_c,
        "first_frame": int(frames[0]),
        "frames": n,
    }
    if scores:
        info["emotion_score"] = [float(x) for x in np.mean(scores, axis=0)]
    extras = {
        "temperature": temp.astype(np.float32),
        "level": level.astype(np.int8),
        "trial": trial_index_from_level(level),
        "emotion_class": emo.astype(np.int8),
    }
    return SubjectData(
        info=info,
        face=face.astype(np.float32),
        stimulus=stim.astype(np.float32),
        pspi=pspi.astype(np.float32),
        extras=extras,
    )


# --- subjects and split ------------------------------------------------------------------------
def list_subjects(features_root: str | Path, labels_root: str | Path) -> list[str]:
    """Subject folder names present in both roots (sorted); a subject in only one root is an error."""
    fr, lr = Path(features_root), Path(labels_root)
    for root, what in ((fr, "features root"), (lr, "labels root")):
        if not root.is_dir():
            raise CorpusError(f"{root}: {what} folder not found")
    f = {p.name for p in fr.iterdir() if p.is_dir() and not p.name.startswith(".")}
    labs = {p.name for p in lr.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if f - labs:
        raise CorpusError(f"{lr}: no label folder for subject(s) {sorted(f - labs)[:5]} found in {fr}")
    if labs - f:
        raise CorpusError(f"{fr}: no feature folder for subject(s) {sorted(labs - f)[:5]} found in {lr}")
    if not f:
        raise CorpusError(f"{fr}: no subject folders")
    return sorted(f)


def read_id_list(path: str | Path) -> list[str]:
    """Subject ids from a file: a JSON list, or one id per line (blank lines and ``#`` comments skipped)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: validation id file not found")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not a valid JSON list: {e}") from None
        if not all(isinstance(i, str) for i in ids):
            raise InputError(f"{p}: expected a JSON list of id strings")
        return [i.strip() for i in ids]
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def split_subjects(
    ids: Sequence[str], val_ids: Sequence[str] | None = None, *, seed: int = 0, val_share: float = VAL_SHARE
) -> dict[str, str]:
    """``{id: "train" | "val"}``. With ``val_ids`` those are the validation subjects (each must exist);
    otherwise ``round(len(ids) * val_share)`` subjects (26 of 87 by default) drawn with ``seed``."""
    ids = sorted(ids)
    if val_ids is not None:
        unknown = sorted(set(val_ids) - set(ids))
        if unknown:
            raise InputError(f"val ids: {unknown[:5]} are not among the {len(ids)} subjects found")
        val = set(val_ids)
    else:
        if not 0.0 <= val_share < 1.0:
            raise InputError(f"val_share: must lie in [0, 1), got {val_share!r}")
        n_val = min(int(round(len(ids) * val_share)), max(len(ids) - 1, 0))
        rng = np.random.default_rng(seed)
        val = {ids[i] for i in rng.permutation(len(ids))[:n_val]}
    return {sid: ("val" if sid in val else "train") for sid in ids}


def _meta(infos: list[dict[str, Any]], baseline_c: float, pct: float, seed: int | None) -> dict[str, Any]:
    extra = {"source": "biovid", "jaw_scale": JAW_SCALE, "baseline_c": baseline_c, "tolerance_percentile": pct}
    return make_meta(
        fps=FPS, feature_names=FLAME_NAMES, stimulus_units="normalized", subjects=infos, split_seed=seed, **extra
    )


def read_biovid(
    features_root: str | Path,
    labels_root: str | Path,
    *,
    val_ids: Sequence[str] | None = None,
    seed: int = 0,
    baseline_c: float = BASELINE_C,
    tolerance_percentile: float = TOLERANCE_PERCENTILE,
    progress: bool = True,
) -> Corpus:
    """Read every subject into an in-memory FLAME-space :class:`Corpus` (see the module docstring)."""
    ids = list_subjects(features_root, labels_root)
    split = split_subjects(ids, val_ids, seed=seed)
    read = partial(read_biovid_subject, baseline_c=baseline_c, tolerance_percentile=tolerance_percentile)
    subs: dict[str, SubjectData] = {}
    for sid in tqdm(ids, desc="biovid subjects", unit="subject", disable=not progress):
        subs[sid] = read(Path(features_root) / sid, Path(labels_root) / sid, split=split[sid])
    meta = _meta([subs[s].info for s in ids], baseline_c, tolerance_percentile, None if val_ids is not None else seed)
    return Corpus(meta, subjects=subs)


def _convert_one(job: tuple[Path, Path, Path, str], baseline_c: float, pct: float) -> dict[str, Any]:
    feat_dir, lab_dir, out_path, split = job
    sub = read_biovid_subject(feat_dir, lab_dir, baseline_c=baseline_c, tolerance_percentile=pct, split=split)
    write_subject(out_path, sub, FLAME_NAMES)
    return sub.info


def convert_biovid(
    features_root: str | Path,
    labels_root: str | Path,
    out_dir: str | Path,
    *,
    val_ids: Sequence[str] | None = None,
    seed: int = 0,
    baseline_c: float = BASELINE_C,
    tolerance_percentile: float = TOLERANCE_PERCENTILE,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Convert to the corpus format on disk, one subject at a time (memory: one subject), using
    ``workers`` processes; subjects first, ``meta.json`` last (each written atomically)."""
    out = Path(out_dir)
    if (out / "meta.json").exists() and not overwrite:
        raise InputError(f"{out}: already holds a corpus (meta.json); choose another --out or pass --overwrite")
    if workers < 1:
        raise InputError(f"workers: must be >= 1, got {workers}")
    ids = list_subjects(features_root, labels_root)
    split = split_subjects(ids, val_ids, seed=seed)
    fr, lr = Path(features_root), Path(labels_root)
    jobs = [(fr / s, lr / s, out / "subjects" / f"{s}.npz", split[s]) for s in ids]
    one = partial(_convert_one, baseline_c=float(baseline_c), pct=float(tolerance_percentile))
    infos: list[dict[str, Any]] = []
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(jobs), desc="biovid subjects", unit="subject", disable=not progress))
        pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers)) if workers > 1 else None
        for info in pool.map(one, jobs) if pool is not None else map(one, jobs):
            infos.append(info)
            bar.update()
    meta = _meta(infos, baseline_c, tolerance_percentile, None if val_ids is not None else seed)
    Corpus(meta)  # validates the meta before it is written
    atomic_write_json(out / "meta.json", meta)
    return out


# --- command -----------------------------------------------------------------------------------
