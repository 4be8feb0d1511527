"""Loading a synthetic face dataset (``painface synth faces``) for training.

:func:`read_metadata` checks the folder (``metadata.csv`` present, required columns, a known split,
the image and heatmap files it names) and :class:`SynthFaces` is a ``torch.utils.data.Dataset`` over
one split: each item is a dict of tensors ``image`` (float ``[3, H, W]`` in 0..1), ``aus`` (``[6]``: AU4,
AU6, AU7, AU9, AU10, AU43), ``pspi`` (scalar), ``pain`` (0/1) and, on request, ``neutral`` (the paired
neutral image) and ``heatmap`` (``[1, H, W]``, 1 = 10 mm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from painface.errors import InputError

PSPI_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")
REQUIRED = ("file", "identity", "split", "expression", "view_yaw", "view_pitch", "neutral_file", "heatmap_file",
            *PSPI_AUS, "PSPI", "pain", "age", "age_group", "sex", "skin_tone")


def read_metadata(root: str | Path, split: str | None = None, check_files: bool = True) -> pd.DataFrame:
    """The dataset's table (all splits, or one), after checking it; errors name the folder and the problem."""
    root = Path(root)
    path = root / "metadata.csv"
    if not path.is_file():
        raise InputError(f"{root}: no metadata.csv (not a finished painface synth faces folder)")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: unreadable ({e})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    if split is not None:
        if split not in ("train", "val", "test"):
            raise InputError(f"split: expected train, val or test, got {split!r}")
        df = df[df.split == split].reset_index(drop=True)
    if check_files:
        for col in ("file", "heatmap_file"):
            absent = [f for f in df[col] if not (root / f).is_file()]
            if absent:
                raise InputError(f"{root}: {len(absent)} file(s) named in metadata.csv are missing, e.g. {absent[0]}")
    return df


def _image(path: Path, mode: str = "RGB") -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode), np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read image ({e})") from None


class SynthFaces:
    """``torch.utils.data.Dataset`` over one split of a synthetic face dataset (see the module docstring).

    ``transform``: optional callable applied to the item dict (augmentation) before it is returned.
    """

    def __init__(self, root: str | Path, split: str = "train", *, neutral: bool = False, heatmap: bool = False,
                 transform=None) -> None:
        self.root = Path(root)
        self.table = read_metadata(self.root, split)
        if len(self.table) == 0:
            raise InputError(f"{self.root}: split {split!r} holds no images")
        self.neutral, self.heatmap, self.transform = neutral, heatmap, transform

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> dict:
        import torch

        r = self.table.iloc[int(i)]
        item = {"image": torch.from_numpy(_image(self.root / r.file)).permute(2, 0, 1),
                "aus": torch.tensor([float(r[a]) for a in PSPI_AUS], dtype=torch.float32),
                "pspi": torch.tensor(float(r.PSPI), dtype=torch.float32),
                "pain": torch.tensor(float(bool(r.pain)), dtype=torch.float32),
                "identity": int(r.identity)}
        if self.neutral:
            item["neutral"] = torch.from_numpy(_image(self.root / r.neutral_file)).permute(2, 0, 1)
        if self.heatmap:
            item["heatmap"] = torch.from_numpy(_image(self.root / r.heatmap_file, "L"))[None]
        return self.transform(item) if self.transform is not None else item
