"""Reader for the UNBC-McMaster Shoulder Pain Expression Archive as distributed (licensed; not included).

**Never run on the real archive**: written from the published layout and tested on small fixtures in
that layout (``tests/test_assess_unbc.py``). Layout under ``ROOT``::

    Images/<subject>/<sequence>/<frame>.png
    Frame_Labels/PSPI/<subject>/<sequence>/<frame>_facs.txt    one float
    Frame_Labels/FACS/<subject>/<sequence>/<frame>_facs.txt    rows "AU intensity flag flag"; empty = no AU
    AAM_landmarks/<subject>/<sequence>/<frame>_aam.txt         66 rows "x y" (pixels)
    Sequence_Labels/{AFF,OPR,SEN,VAS}/<subject>/<sequence>.txt one float

:func:`read_unbc` gives one row per frame (subject, sequence, frame, paths, PSPI, FACS AUs 4, 6, 7, 9,
10, 43 (0 when not coded), the sequence labels); :func:`aam_points` the five alignment points from
the 66 AAM landmarks (iBUG-68 order without the inner mouth corners 60 and 64), so
:func:`painface.face.align.crop_matrix` frames UNBC frames like the synthetic ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from painface.errors import InputError

FACS_AUS = (4, 6, 7, 9, 10, 43)
SEQUENCE_LABELS = ("AFF", "OPR", "SEN", "VAS")
AAM_5 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47), (30,), (48,), (54,))
"""AAM-66 indices whose mean gives each of the five alignment points (right eye, left eye, nose tip,
right and left mouth corners), the order of :data:`painface.face.align.TEMPLATE`."""


def _float_file(path: Path) -> float:
    try:
        text = path.read_text().split()
        return float(text[0])
    except (OSError, ValueError, IndexError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: expected one number ({e.__class__.__name__})") from None


def read_facs(path: Path) -> dict[str, float]:
    """AU intensities ``{"AU4": ...}`` (0 when absent) from a FACS label file (missing file: all 0)."""
    out = {f"AU{a}": 0.0 for a in FACS_AUS}
    if not path.is_file():
        return out
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if not parts:
                continue
            au, inten = int(round(float(parts[0]))), float(parts[1]) if len(parts) > 1 else 0.0
            if au in FACS_AUS:
                out[f"AU{au}"] = inten
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable FACS rows ({e})") from None
    return out


def read_aam(path: Path) -> np.ndarray:
    """AAM landmarks ``[66, 2]`` (pixels)."""
    try:
        a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable AAM landmarks ({e})") from None
    if a.shape != (66, 2):
        raise InputError(f"{path}: expected 66 x 2 landmarks, got {a.shape[0]} x {a.shape[1]}")
    return a


def aam_points(aam: np.ndarray) -> np.ndarray:
    """Five alignment points ``[5, 2]`` (pixels) from AAM landmarks ``[66, 2]``."""
    aam = np.asarray(aam, np.float64)
    if aam.shape != (66, 2):
        raise InputError(f"AAM landmarks: expected [66, 2], got {list(aam.shape)}")
    return np.stack([aam[list(idx)].mean(0) for idx in AAM_5])


def read_unbc(root: str | Path) -> pd.DataFrame:
    """One row per frame: ``subject, sequence, frame, image, aam`` (paths), ``PSPI``, ``AU4..AU43``,
    ``AFF, OPR, SEN, VAS`` (NaN when absent). Errors name what is missing."""
    root = Path(root)
    images = root / "Images"
    pspi_dir = root / "Frame_Labels" / "PSPI"
    for d in (images, pspi_dir):
        if not d.is_dir():
            raise InputError(f"{root}: not the UNBC-McMaster layout (no {d.relative_to(root)}/)")
    rows = []
    for img in sorted(images.glob("*/*/*.png")):
        subj, seq, frame = img.parent.parent.name, img.parent.name, img.stem
        lab = pspi_dir / subj / seq / f"{frame}_facs.txt"
        if not lab.is_file():
            raise InputError(f"{root}: frame {subj}/{seq}/{frame} has no PSPI label ({lab.relative_to(root)})")
        row = {"subject": subj, "sequence": seq, "frame": frame, "image": str(img),
               "aam": str(root / "AAM_landmarks" / subj / seq / f"{frame}_aam.txt"), "PSPI": _float_file(lab)}
        row.update(read_facs(root / "Frame_Labels" / "FACS" / subj / seq / f"{frame}_facs.txt"))
        rows.append(row)
    if not rows:
        raise InputError(f"{root}: no frames under Images/<subject>/<sequence>/*.png")
    df = pd.DataFrame(rows)
    seq_keys = df[["subject", "sequence"]].drop_duplicates()
    for name in SEQUENCE_LABELS:
        vals = {}
        for s, q in seq_keys.itertuples(index=False):
            p = root / "Sequence_Labels" / name / s / f"{q}.txt"
            vals[(s, q)] = _float_file(p) if p.is_file() else np.nan
        df[name] = [vals[(s, q)] for s, q in zip(df.subject, df.sequence, strict=True)]
    return df


def crops(df: pd.DataFrame, size: int) -> np.ndarray:
    """Aligned crops uint8 ``[N, size, size, 3]`` of the frames of ``df`` (from their AAM landmarks)."""
    from PIL import Image

    from painface.face import align

    out = np.zeros((len(df), size, size, 3), np.uint8)
    for k, (img, aam) in enumerate(zip(df.image, df.aam, strict=True)):
        m = align.crop_matrix(aam_points(read_aam(Path(aam))), size)
        try:
            with Image.open(img) as im:
                out[k] = align.warp(im.convert("RGB"), m, size)
        except OSError as e:
            raise InputError(f"{img}: cannot read image ({e})") from None
    return out
