"""Render ``docs/figures/identities.png``: a grid of sampled identities (neutral and in pain).

Usage: ``python scripts/make_identities.py [--out docs/figures/identities.png] [--seed 3] [--n 12]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from painface.face.code import FEATURE_NAMES
from painface.face.identity import identity_colors, identity_rig, sample_identities
from painface.face.render import render
from painface.face.rig import deform


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/figures/identities.png"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--size", type=int, default=192)
    args = ap.parse_args()
    pain = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for k, v in dict(AU4=4.0, AU6=4.0, AU7=3.0, AU9=3.0, AU10=2.0, AU25=2.0).items():
        pain[0, FEATURE_NAMES.index(k)] = v
    tiles = []
    for ident in sample_identities(args.n, args.seed):
        rig = identity_rig(ident)
        verts = deform(np.concatenate([np.zeros_like(pain), pain]), rig)
        img = render(verts, rig.mesh.triangles, identity_colors(ident, rig.mesh), size=args.size, supersample=2)
        tile = Image.fromarray(np.concatenate(list(img), axis=1))
        ImageDraw.Draw(tile).text((4, 4), f"{ident.sex} {ident.age}y MST {ident.skin_tone} {ident.iris}",
                                  fill=(240, 240, 240))
        tiles.append(np.asarray(tile))
    cols = 3
    rows = [np.concatenate(tiles[r : r + cols], axis=1) for r in range(0, len(tiles), cols)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
