"""Render ``docs/atlas.png``: the whole head's AU rig at a glance.

Rows 1-3: the neutral face and every AU of the face code at intensity 5, from the front. Rows 4-5: the
six PSPI AUs at intensity 3 (the acceptance level) from the front and from 45 degrees yaw, each beside a
neutral tile of the same view. Row 6: a pain face (PSPI 12) from several views and head poses.
Usage: ``python scripts/make_atlas.py [--out docs/atlas.png] [--size 256]``
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from painface.face.code import AU_DESCRIPTIONS, AU_NAMES, FEATURE_NAMES, pspi  # noqa: E402
from painface.face.video import face_frames  # noqa: E402

COLS = 6
PSPI_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")


def code_with(**aus: float) -> np.ndarray:
    """A one-frame face code with the given AU intensities / pose values."""
    c = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for name, v in aus.items():
        c[0, FEATURE_NAMES.index(name)] = v
    return c


def tile(c: np.ndarray, size: int, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    return next(face_frames(c, size=size, yaw=yaw, pitch=pitch, supersample=2))


def atlas_tiles(size: int) -> list[tuple[np.ndarray, str]]:
    """(image uint8 [size, size, 3], label) for every tile, in reading order."""
    tiles = [(tile(code_with(), size), "neutral (all AUs 0)")]
    tiles += [(tile(code_with(**{au: 5.0}), size), f"{au} = 5: {AU_DESCRIPTIONS[au]}") for au in AU_NAMES]
    for yaw in (0.0, 45.0):
        tiles.append((tile(code_with(), size, yaw), f"neutral, camera yaw {yaw:.0f}"))
        tiles += [(tile(code_with(**{au: 3.0}), size, yaw), f"{au} = 3, yaw {yaw:.0f}") for au in PSPI_AUS[:5]]
    pain = dict(AU4=4.0, AU6=4.0, AU7=3.0, AU9=3.0, AU10=2.0, AU25=2.0)
    for lab, yaw, pitch, pose in (("AU43 = 3 (eyes closed), front", 0.0, 0.0, {"AU43": 3.0, **{k: 0.0 for k in pain}}),
                                  ("AU43 = 3, yaw 45", 45.0, 0.0, {"AU43": 3.0, **{k: 0.0 for k in pain}}),
                                  ("pain, camera yaw -35", -35.0, 0.0, {}),
                                  ("pain, camera yaw +35, pitch 15", 35.0, 15.0, {}),
                                  ("pain, head pitch 15 (down)", 0.0, 0.0, {"head_pitch": 15.0}),
                                  ("pain, head yaw 25, roll 10", 0.0, 0.0, {"head_yaw": 25.0, "head_roll": 10.0})):
        c = code_with(**{**pain, **pose})
        score = float(pspi(c)[0])
        tiles.append((tile(c, size, yaw, pitch), f"{lab}  [PSPI {score:.0f}]"))
    return tiles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "atlas.png")
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    tiles = atlas_tiles(args.size)
    rows = -(-len(tiles) // COLS)
    fig, axes = plt.subplots(rows, COLS, figsize=(COLS * 2.4, rows * 2.6), dpi=110)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, label) in zip(axes.ravel(), tiles, strict=False):
        ax.imshow(img)
        ax.set_title(label, fontsize=7.0)
    fig.suptitle("painface whole head: every AU at 5 (rows 1-3); PSPI AUs at 3, front and 45 degrees (rows 4-5); "
                 "pain views (row 6)", fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({len(tiles)} tiles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
