"""Training data for ViTPain: a synthetic face split held in memory, and augmentation for synthetic-to-real.

:func:`load_split` reads one split of a ``painface synth faces`` folder (checked by
:func:`painface.synth.dataset.read_metadata`) into uint8 tensors resized to the model's side: decoding
13,000 small JPEGs once costs ~15 s, far less than a DataLoader re-decoding them every epoch on two
cores. :func:`augment` works on a float batch in torch: a random similarity transform (scale 0.9-1.1,
rotation +-10 deg, shift +-6 %; the aligner's crops of real photos differ from the template by about
that), horizontal flip, per-image brightness/contrast/saturation/colour-gain jitter, grey in 1 of 5,
blur in 1 of 4, sensor noise: what separates a clean render from a webcam photo. Heatmaps follow the
image's geometry, never its colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from painface.errors import InputError

PSPI_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")


@dataclass
class Split:
    """One split in memory. ``images`` uint8 ``[N, 3, S, S]``; ``heatmaps`` uint8 ``[N, 1, S, S]`` (255 =
    10 mm); ``neutral`` int64 ``[N]`` (row of the paired neutral image); ``aus`` float ``[N, 6]`` (0-5);
    ``pspi`` float ``[N]`` (0-16); ``identity`` int64 ``[N]``."""

    images: torch.Tensor
    heatmaps: torch.Tensor | None
    neutral: torch.Tensor
    aus: torch.Tensor
    pspi: torch.Tensor
    identity: torch.Tensor

    def __len__(self) -> int:
        return len(self.pspi)


def _read(path: Path, size: int, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, np.uint8)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: cannot read image ({e})") from None


def load_split(root: str | Path, split: str, size: int, heatmaps: bool = False) -> Split:
    """Read ``split`` of the dataset at ``root`` resized to ``size`` (see :class:`Split`)."""
    from painface.synth.dataset import read_metadata

    root = Path(root)
    df = read_metadata(root, split)
    if len(df) == 0:
        raise InputError(f"{root}: split {split!r} holds no images")
    index = {f: k for k, f in enumerate(df.file)}
    missing = [f for f in df.neutral_file if f not in index]
    if missing:
        raise InputError(f"{root}: neutral image {missing[0]} is not in split {split!r}")
    imgs = np.stack([_read(root / f, size, "RGB") for f in df.file]).transpose(0, 3, 1, 2)
    hm = None
    if heatmaps:
        hm = torch.from_numpy(np.stack([_read(root / f, size, "L") for f in df.heatmap_file])[:, None].copy())
    return Split(images=torch.from_numpy(np.ascontiguousarray(imgs)), heatmaps=hm,
                 neutral=torch.tensor([index[f] for f in df.neutral_file], dtype=torch.int64),
                 aus=torch.tensor(df[list(PSPI_AUS)].to_numpy(np.float32)),
                 pspi=torch.tensor(df.PSPI.to_numpy(np.float32)),
                 identity=torch.tensor(df.identity.to_numpy(np.int64)))


def join_splits(parts: list[Split]) -> Split:
    """One split of several: rows in order, each part's ``neutral`` rows and ``identity`` numbers offset so that
    they still point into their own part and stay distinct."""
    if len(parts) == 1:
        return parts[0]
    rows = np.cumsum([0] + [len(p) for p in parts])
    ids = np.cumsum([0] + [int(p.identity.max()) + 1 for p in parts])
    hm = [p.heatmaps for p in parts]
    if len({h is None for h in hm}) > 1:
        raise InputError("join_splits: either every part has heatmaps or none has")
    return Split(images=torch.cat([p.images for p in parts]),
                 heatmaps=None if hm[0] is None else torch.cat(hm),
                 neutral=torch.cat([p.neutral + int(r) for p, r in zip(parts, rows, strict=False)]),
                 aus=torch.cat([p.aus for p in parts]), pspi=torch.cat([p.pspi for p in parts]),
                 identity=torch.cat([p.identity + int(i) for p, i in zip(parts, ids, strict=False)]))


def load_training(root: str | Path, extra: tuple[str, ...] | list[str], size: int, heatmaps: bool = False) -> Split:
    """The ``train`` split of ``root`` plus every image (all splits) of each dataset in ``extra``: more synthetic
    people to learn from, while ``root``'s val and test identities stay the yardstick. Refused if an extra dataset
    holds one of ``root``'s val or test identities (same ``identity_seed``), or has no ``identity_seed`` column
    to tell."""
    from painface.synth.dataset import read_metadata

    parts = [load_split(root, "train", size, heatmaps)]
    if not extra:
        return parts[0]
    folders = [Path(root).resolve()] + [Path(e).resolve() for e in extra]
    if len(set(folders)) < len(folders):
        raise InputError(f"--extra-data: {list(extra)} names a folder twice, or --data {root} again")
    held = read_metadata(root, check_files=False)
    if "identity_seed" not in held.columns:
        raise InputError(f"{root}: metadata.csv has no identity_seed column; cannot check --extra-data against its "
                         "val and test identities")
    held = set(held.identity_seed[held.split != "train"].astype(np.int64))
    for other in extra:
        df = read_metadata(other, check_files=False)
        if "identity_seed" not in df.columns:
            raise InputError(f"{other}: metadata.csv has no identity_seed column; cannot check that it holds none "
                             f"of {root}'s val and test identities")
        shared = held & set(df.identity_seed.astype(np.int64))
        if shared:
            raise InputError(f"--extra-data {other}: holds {len(shared)} of {root}'s val/test identities "
                             f"(identity_seed {min(shared)}, ...); render it with another --seed")
        parts += [load_split(other, s, size, heatmaps) for s in ("train", "val", "test") if (df.split == s).any()]
    return join_splits(parts)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 -> float 0..1."""
    return x.float() / 255.0


def _affine(n: int, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Random similarity transforms ``[n, 2, 3]`` for ``F.affine_grid``: scale, turn and shift scaled towards the
    identity by ``strength``, then a horizontal flip for half of them whatever the strength (a mirrored face
    is as real as the face; scaling the flip itself towards the identity would squash the image instead)."""
    u = torch.rand(n, 5, generator=g)
    scale = 1 + strength * 0.2 * (u[:, 0] - 0.5)
    ang = strength * (u[:, 1] - 0.5) * 2 * math.radians(10)
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    c, s = torch.cos(ang) / scale, torch.sin(ang) / scale
    shift = strength * 0.24
    theta = torch.stack([torch.stack([c * flip, -s, (u[:, 2] - 0.5) * shift], 1),
                         torch.stack([s * flip, c, (u[:, 3] - 0.5) * shift], 1)], 1)
    return theta


def augment(image: torch.Tensor, g: torch.Generator, extra: torch.Tensor | None = None,
            strength: float = 1.0, geometry: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment a float batch ``[B, 3, S, S]`` (0..1); ``extra`` ``[B, C, S, S]`` (heatmaps) gets the same
    geometry. ``strength`` 0 returns the inputs unchanged; ``geometry=False`` keeps every pixel in place
    (colour, blur and noise only: for labels that a turn or a flip would change, such as head angles).
    Returns (image, extra)."""
    if strength <= 0:
        return image, extra
    b = len(image)
    if geometry:
        theta = _affine(b, g, strength)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        image = F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if extra is not None:
            extra = F.grid_sample(extra, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    u = torch.rand(b, 8, generator=g)
    grey = image.mean(1, keepdim=True)
    sat = (1 + strength * (u[:, 0] - 0.5) * 0.8).view(b, 1, 1, 1)
    image = grey + sat * (image - grey)
    gains = 1 + strength * (torch.rand(b, 3, 1, 1, generator=g) - 0.5) * 0.2
    image = image * gains
    bright = (strength * (u[:, 1] - 0.5) * 0.4).view(b, 1, 1, 1)
    contrast = (1 + strength * (u[:, 2] - 0.5) * 0.6).view(b, 1, 1, 1)
    mean = image.mean((1, 2, 3), keepdim=True)
    image = (image - mean) * contrast + mean + bright
    to_grey = (u[:, 3] < 0.2 * strength).view(b, 1, 1, 1)
    image = torch.where(to_grey, image.mean(1, keepdim=True).expand_as(image), image)
    blur = u[:, 4] < 0.25 * strength
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None]) / 16
        w = k.expand(3, 1, 3, 3).contiguous()
        image[blur] = F.conv2d(F.pad(image[blur], (1, 1, 1, 1), mode="replicate"), w, groups=3)
    noise = (strength * u[:, 5] * 0.03).view(b, 1, 1, 1)
    image = image + noise * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1), extra


def batch(split: Split, idx: torch.Tensor, g: torch.Generator | None, *, neutral: bool = False,
          heatmap: bool = False, strength: float = 1.0) -> dict[str, torch.Tensor]:
    """The batch of rows ``idx``: ``image``, ``aus``, ``pspi`` and on request ``neutral`` and ``heatmap``
    (float 0..1); augmented when ``g`` is given (the neutral image gets its own draw)."""
    img = to_float(split.images[idx])
    hm = to_float(split.heatmaps[idx]) if heatmap and split.heatmaps is not None else None
    if heatmap and hm is None:
        raise InputError("heatmaps were not loaded for this split")
    if g is not None:
        img, hm = augment(img, g, hm, strength)
    out = {"image": img, "aus": split.aus[idx], "pspi": split.pspi[idx]}
    if hm is not None:
        out["heatmap"] = hm
    if neutral:
        ref = to_float(split.images[split.neutral[idx]])
        out["neutral"] = augment(ref, g, None, strength)[0] if g is not None else ref
    return out
