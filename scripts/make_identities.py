"""Render the identity figures of the whole head.

* ``docs/figures/identities.png``: 30 identities from :func:`painface.face.identity.sample_identities`
  (balanced over age group x sex x Monk skin tone), neutral, labelled with sex, age, tone and hair style;
* ``docs/figures/skin_tones.png``: one face shape under the default light in all 10 Monk skin tones,
  neutral (top) and in pain (PSPI 11, bottom), to check that no tone becomes a silhouette.

Usage: ``python scripts/make_identities.py [--out-dir docs/figures] [--seed 3] [--n 30]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from painface.face.code import FEATURE_NAMES
from painface.face.identity import make_identity, sample_identities
from painface.face.video import face_frames


def _save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(img).save(tmp)
    os.replace(tmp, path)
    print(f"wrote {path}")


def _label(img: np.ndarray, text: str) -> np.ndarray:
    tile = Image.fromarray(img)
    ImageDraw.Draw(tile).text((4, 4), text, fill=(240, 240, 240))
    return np.asarray(tile)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", type=Path, default=Path("docs/figures"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--size", type=int, default=176)
    args = ap.parse_args()
    neutral = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    pain = neutral.copy()
    for k, v in dict(AU4=4.0, AU6=4.0, AU7=3.0, AU9=3.0, AU10=2.0, AU25=2.0).items():
        pain[0, FEATURE_NAMES.index(k)] = v
    tiles = []
    for ident in sample_identities(args.n, args.seed):
        img = next(face_frames(neutral, size=args.size, identity=ident, supersample=2))
        tiles.append(_label(img, f"{ident.sex[0].upper()} {ident.age}y MST{ident.skin_tone} {ident.hair_style}"))
    cols = 6
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    _save(np.concatenate(rows, axis=0), args.out_dir / "identities.png")
    tone_rows = []
    for code in (neutral, pain):
        ids = [make_identity(11, sex="female", age_group="middle", skin_tone=t) for t in range(1, 11)]
        row = [_label(next(face_frames(code, size=args.size, identity=i, supersample=2)), f"MST {i.skin_tone}")
               for i in ids]
        tone_rows.append(np.concatenate(row, axis=1))
    _save(np.concatenate(tone_rows, axis=0), args.out_dir / "skin_tones.png")


if __name__ == "__main__":
    main()
