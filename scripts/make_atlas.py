"""Render ``docs/atlas.png``: every AU of the face code at intensity 0 and 5, and a few views.

Each row starts with the neutral face (all AUs 0) followed by AUs at intensity 5, labelled with the
FACS name; the last row shows a pain face (PSPI 12) from several camera angles and head poses.
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
from painface.face.mesh import vertex_colors  # noqa: E402
from painface.face.render import Camera, render  # noqa: E402
from painface.face.rig import build_rig, deform  # noqa: E402

PER_ROW = 5


def code_with(**aus: float) -> np.ndarray:
    """A one-frame face code with the given AU intensities / pose values."""
    c = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for name, v in aus.items():
        c[0, FEATURE_NAMES.index(name)] = v
    return c


def atlas_tiles(size: int) -> list[tuple[np.ndarray, str]]:
    """(image uint8 [size, size, 3], label) for every tile, in reading order."""
    rig = build_rig()
    colors = vertex_colors(rig.mesh)
    codes, labels, cams = [], [], []
    for start in range(0, len(AU_NAMES), PER_ROW):
        codes.append(code_with())
        labels.append("neutral (all AUs 0)")
        cams.append(Camera())
        for au in AU_NAMES[start : start + PER_ROW]:
            codes.append(code_with(**{au: 5.0}))
            labels.append(f"{au} = 5: {AU_DESCRIPTIONS[au]}")
            cams.append(Camera())
        fill_views = iter(((35.0, 0.0), (-35.0, 0.0), (0.0, 25.0), (60.0, 0.0)))
        while len(codes) % (PER_ROW + 1):
            yaw, pitch = next(fill_views)
            codes.append(code_with())
            labels.append(f"neutral, camera yaw {yaw:+.0f}, pitch {pitch:+.0f}")
            cams.append(Camera(yaw=yaw, pitch=pitch))
    pain = dict(AU4=4.0, AU6=4.0, AU7=3.0, AU9=3.0, AU10=2.0, AU25=2.0)
    for lab, cam, pose in (("pain, camera yaw -35", Camera(yaw=-35.0), {}),
                           ("pain, front", Camera(), {}),
                           ("pain, camera yaw +35, pitch 15", Camera(yaw=35.0, pitch=15.0), {}),
                           ("pain, head pitch 15 (down)", Camera(), {"head_pitch": 15.0}),
                           ("pain, head yaw 25, roll 10", Camera(), {"head_yaw": 25.0, "head_roll": 10.0}),
                           ("pain + eyes closed (AU43 5)", Camera(), {"AU43": 5.0})):
        c = code_with(**{**pain, **pose})
        codes.append(c)
        score = float(pspi(c)[0])
        labels.append(f"{lab}  [PSPI {score:.0f}]")
        cams.append(cam)
    verts = deform(np.concatenate(codes), rig)
    imgs = render(verts, rig.mesh.triangles, colors, size=size, camera=cams, supersample=2)
    return list(zip(imgs, labels, strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "atlas.png")
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    tiles = atlas_tiles(args.size)
    cols = PER_ROW + 1
    rows = -(-len(tiles) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * 2.8), dpi=110)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (img, label) in zip(axes.ravel(), tiles, strict=False):
        ax.imshow(img)
        ax.set_title(label, fontsize=7.5)
    fig.suptitle("painface built-in face: each AU at intensity 0 (left column) and 5; views", fontsize=11)
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
