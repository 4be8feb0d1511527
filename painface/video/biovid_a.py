"""A reader for BioVid Heat Pain Part A as distributed, and for ``painface synth videos`` folders.

BioVid Part A (licensed; never seen by this code: it is written from the published layout and tested
on fixtures written in that layout): ``video/<subject>/<subject>-<BL1|PA1..PA4>-<NNN>.mp4`` with subject
ids like ``071309_w_21`` (date, sex, age), and a tab-separated ``samples.csv`` with at least
``subject_name``, ``class_id``, ``sample_name`` (the distributed file also has ``subject_id`` and
``class_name``). ``painface synth videos`` writes the same layout, adding ``view`` and ``file`` columns
(views other than the first live in ``video-<view>/``).

:func:`read_samples` gives one row per clip (without ``samples.csv`` it scans ``video/``);
:func:`read_clip` decodes ``frames`` frames at a ``stride`` from the middle of a clip; :func:`load_clips`
reads many and skips (and reports) the unreadable ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from painface.errors import InputError

CLASSES = ("BL1", "PA1", "PA2", "PA3", "PA4")
FILE_RE = re.compile(r"^(?P<subject>.+)-(?P<cls>BL1|PA[1-4])-(?P<n>\d{3})\.mp4$")


def read_samples(root: str | Path, *, views: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Clips of a BioVid-Part-A-style folder: columns ``subject_name``, ``class_id`` (0 = BL1 .. 4 = PA4),
    ``class_name``, ``sample_name``, ``view`` (``"real"`` where the table has none), ``path`` (absolute),
    plus whatever else ``samples.csv`` holds. ``views``: keep only these views. Clips listed but missing
    on disk are dropped with a warning line in ``df.attrs["skipped"]``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (expected a BioVid Part A or synth videos folder)")
    table = root / "samples.csv"
    if table.is_file():
        try:
            df = pd.read_csv(table, sep="\t", dtype={"subject_name": str, "sample_name": str})
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as e:
            raise InputError(f"{table}: not a readable tab-separated table ({e})") from None
        need = {"subject_name", "class_id", "sample_name"}
        if not need <= set(df.columns):
            raise InputError(f"{table}: expected the columns {sorted(need)} (tab-separated), got {list(df.columns)}")
        if "file" not in df.columns:
            df["file"] = [f"video/{s}/{n}.mp4" for s, n in zip(df.subject_name, df.sample_name, strict=True)]
    else:
        rows = []
        for p in sorted((root / "video").glob("*/*.mp4")):
            m = FILE_RE.match(p.name)
            if m and m["subject"] == p.parent.name:
                rows.append({"subject_name": m["subject"], "class_id": CLASSES.index(m["cls"]),
                             "sample_name": p.stem, "file": str(p.relative_to(root))})
        if not rows:
            raise InputError(f"{root}: no samples.csv and no video/<subject>/<subject>-<class>-<NNN>.mp4 files")
        df = pd.DataFrame(rows)
    ids = pd.to_numeric(df.class_id, errors="coerce")
    if ids.isna().any() or not ids.isin(range(len(CLASSES))).all():
        raise InputError(f"{root}: class_id must be 0..4 (BL1, PA1..PA4), got {sorted(set(df.class_id))[:6]}")
    df["class_id"] = ids.astype(int)
    df["class_name"] = [CLASSES[i] for i in df.class_id]
    if "view" not in df.columns:
        df["view"] = "real"
    if views is not None:
        unknown = sorted(set(views) - set(df.view))
        if unknown:
            raise InputError(f"views: {unknown} not in {root} (it has {sorted(set(df.view))})")
        df = df[df.view.isin(views)]
    df["path"] = [str(root / f) for f in df.file]
    exists = np.array([Path(p).is_file() for p in df.path], bool)
    skipped = [f"{p}: missing" for p in df.path[~exists]]
    df = df[exists].reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df


def frame_indexes(n: int, frames: int, stride: int) -> np.ndarray:
    """``frames`` indexes ``stride`` apart, centred in a clip of ``n`` frames (spread evenly if it is too short)."""
    need = (frames - 1) * stride + 1
    if n >= need:
        return (n - need) // 2 + stride * np.arange(frames)
    return np.round(np.linspace(0, n - 1, frames)).astype(int)


def read_clip(path: str | Path, frames: int = 16, stride: int = 8, size: int | None = None) -> np.ndarray:
    """uint8 ``[frames, size, size, 3]`` from an mp4 (frames resized to ``size`` when given); a clip that
    cannot be decoded raises InputError naming it."""
    import av
    from PIL import Image

    try:
        with av.open(str(path)) as c:
            imgs = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable video ({e})") from None
    if not imgs:
        raise InputError(f"{path}: no video frames")
    out = [imgs[i] for i in frame_indexes(len(imgs), frames, stride)]
    if size is not None and out[0].shape[:2] != (size, size):
        out = [np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in out]
    return np.stack(out)


def load_clips(df: pd.DataFrame, prepare: Callable[..., np.ndarray], *, frames: int = 16, stride: int = 8,
               size: int | None = None, progress: bool = False) -> tuple[list[np.ndarray], pd.DataFrame, list[str]]:
    """``prepare(read_clip(path), name=path)`` for every row of ``df``; returns (the prepared arrays, the rows read,
    ``"path: reason"`` for each clip skipped because it could not be read or prepared, e.g. no face in it)."""
    from tqdm import tqdm

    out, keep, skipped = [], [], list(df.attrs.get("skipped", []))
    for i, p in enumerate(tqdm(df.path, desc="clips", unit="clip", disable=not progress)):
        try:
            out.append(prepare(read_clip(p, frames, stride, size), name=str(p)))
        except InputError as e:
            skipped.append(str(e))
            continue
        keep.append(i)
    return out, df.iloc[keep].reset_index(drop=True), skipped


def subject_split(subjects, test_share: float, seed: int) -> set[str]:
    """The test subjects: a seeded share of the distinct ``subjects`` (at least one when there are two or more)."""
    names = sorted(set(subjects))
    if len(names) < 2:
        raise InputError(f"need at least 2 subjects to hold some out, got {len(names)}")
    k = min(len(names) - 1, max(1, int(round(test_share * len(names)))))
    order = np.random.default_rng([seed, 0xB10]).permutation(len(names))
    return {names[i] for i in order[:k]}
