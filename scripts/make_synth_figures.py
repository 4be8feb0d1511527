"""Figures of ``painface synth faces`` for docs/synth.md.

* ``docs/figures/synth_contact_sheet.png``: images of a dataset folder (one row per identity: the
  neutral face and every expression of view 0, then view 1 and 2 of the strongest pain expression),
  labelled with kind and PSPI, above the matching heatmaps of one identity;
* ``docs/figures/synth_histograms.png``: the sampler's PSPI histogram (pain and hard negatives) and
  per-AU intensity histograms, from ``--samples`` draws of 10 expressions per identity (no rendering).

Usage: ``python scripts/make_synth_figures.py DATASET_DIR [--rows 8] [--samples 2500]``
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from painface.face.code import AU_NAMES  # noqa: E402
from painface.synth.expressions import identity_expressions  # noqa: E402


def _save_fig(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    print(f"wrote {path}")


def contact_sheet(root: Path, rows: int, out: Path) -> None:
    df = pd.read_csv(root / "metadata.csv")
    tiles_rows = []
    for ident in sorted(df.identity.unique())[:rows]:
        d = df[df.identity == ident]
        v0 = d[d.view == 0].sort_values("expression")
        strongest = v0.loc[v0.PSPI.idxmax(), "expression"]
        pick = list(v0.itertuples()) + list(d[(d.view > 0) & (d.expression == strongest)].itertuples())
        tiles = []
        for r in pick:
            img = Image.open(root / r.file).convert("RGB")
            ImageDraw.Draw(img).text((3, 3), f"{r.kind[:5]} {r.PSPI:.0f} v{r.view}", fill=(255, 255, 255))
            tiles.append(np.asarray(img))
        tiles_rows.append(np.concatenate(tiles, axis=1))
    width = max(t.shape[1] for t in tiles_rows)
    tiles_rows = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0))) for t in tiles_rows]
    d = df[(df.identity == df.identity.min()) & (df.view == 0)].sort_values("expression")
    heat = [np.repeat(np.asarray(Image.open(root / f))[..., None], 3, 2) for f in d.heatmap_file]
    heat_row = np.concatenate(heat, axis=1)
    heat_row = np.pad(heat_row, ((0, 0), (0, width - heat_row.shape[1]), (0, 0)))
    sheet = np.concatenate([*tiles_rows, heat_row], axis=0)
    tmp = out.with_name(f".{out.name}.tmp.png")
    Image.fromarray(sheet).save(tmp)
    os.replace(tmp, out)
    print(f"wrote {out}")


def histograms(samples: int, out: Path) -> None:
    rng = np.random.default_rng(0)
    ex = [e for _ in range(samples) for e in identity_expressions(rng, 10, 2)[1:]]
    pspi = np.array([e.pspi for e in ex])
    pain = np.array([e.pain for e in ex])
    codes = np.stack([e.code for e in ex])
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5))
    ax = axes[0, 0]
    bins = np.arange(18) - 0.5
    ax.hist([pspi[pain], pspi[~pain]], bins=bins, stacked=True, label=["pain", "hard negatives"])
    ax.set_xlabel("PSPI")
    ax.set_ylabel("expressions")
    ax.legend(fontsize=8)
    ax.set_title(f"PSPI of {len(ex):,} sampled expressions", fontsize=9)
    for ax, au in zip(axes.ravel()[1:], ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43", "AU12"), strict=True):
        v = codes[:, AU_NAMES.index(au)]
        ax.hist([v[pain & (v > 0)], v[~pain & (v > 0)]], bins=np.linspace(0, 5, 21), stacked=True)
        ax.set_title(f"{au}: active in {100 * (v[pain] > 0).mean():.0f}% of pain, "
                     f"{100 * (v[~pain] > 0).mean():.0f}% of negatives", fontsize=8)
        ax.set_xlabel("intensity (where > 0)")
    fig.tight_layout()
    _save_fig(fig, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--samples", type=int, default=2500)
    ap.add_argument("--out-dir", type=Path, default=Path("docs/figures"))
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    contact_sheet(args.root, args.rows, args.out_dir / "synth_contact_sheet.png")
    histograms(args.samples, args.out_dir / "synth_histograms.png")


if __name__ == "__main__":
    main()
