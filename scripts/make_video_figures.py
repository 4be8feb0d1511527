"""Figures and tables of docs/videos.md from the video experiment (scripts/video_experiment.sh).

Usage: ``python scripts/make_video_figures.py DATA [--model runs/c3d_binary.safetensors] [--figures docs/figures]``
where DATA holds ``sim96/``, ``pd96/``, ``runs/`` and ``cache/``. Writes ``video_scores.png`` (per-class
distributions on held-out subjects: the exact PSPI of the clip, and the binary model's P(PA4) on
simulator and PainDiffusion clips) and ``video_strip.png`` (frames of one held-out PA4 clip, both views,
over its exact PSPI), and prints the results tables (markdown) with the label ceiling (the exact mean
PSPI of the clip as the score).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from painface.assess.metrics import auroc  # noqa: E402
from painface.synth.videos import CLASSES  # noqa: E402
from painface.video.biovid_a import read_clip  # noqa: E402
from painface.video.model import load, person_keys  # noqa: E402
from painface.video.train import model_scores, prepared  # noqa: E402


def held_out(root: Path, split: str) -> pd.DataFrame:
    df = pd.read_csv(root / "samples.csv", sep="\t")
    return df[df.split == split].reset_index(drop=True)


def present(df: pd.DataFrame) -> list[str]:
    """The classes the folder holds (all five, or e.g. BL1 and PA4 when filmed with --classes)."""
    return [c for c in CLASSES if c in set(df.class_name)]


def ceiling(df: pd.DataFrame) -> dict[str, float]:
    """AUROC of BL1 vs PA4 scored by the exact mean PSPI of the clip, all clips and per view."""
    out = {}
    for view, d in [("all", df), *df.groupby("view")]:
        d = d[d.class_name.isin(("BL1", "PA4"))]
        out[str(view)] = auroc(d.class_name == "PA4", d.pspi_mean)
    return out


def score_all(model_path: Path, root: Path, cache: Path, split: str) -> pd.DataFrame:
    """The binary model's P(PA4) for every clip of ``root`` of the held-out subjects of ``split``."""
    model, cfg, _ = load(model_path)
    x, df, _ = prepared(root, cfg, views=None, cache=cache, progress=False)
    val = (df.split == split).to_numpy()
    keys = person_keys(df.subject_name[val], df.view[val])  # a person-calibrated model reads each person's clips
    return df[val].assign(score=model_scores(model, cfg, x[val], keys)[0]).reset_index(drop=True)


def fig_scores(sim: pd.DataFrame, pd_: pd.DataFrame, s_sim: pd.DataFrame, s_pd: pd.DataFrame, enc: str, out: Path):
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [(sim.drop_duplicates("sample_name"), "pspi_mean", "exact mean PSPI of the clip (simulator)"),
              (s_sim, "score", f"{enc} binary model: P(PA4), simulator clips"),
              (s_pd, "score", f"{enc} binary model: P(PA4), PainDiffusion clips")]
    for ax, (d, col, title) in zip(axes, panels, strict=True):
        classes = present(d)
        data = [d[d.class_name == c][col].to_numpy() for c in classes]
        ax.boxplot(data, showfliers=False)
        for k, v in enumerate(data, start=1):
            ax.scatter(k + np.random.default_rng(k).uniform(-0.18, 0.18, len(v)), v, s=6, alpha=0.45, color="C3")
        ax.set_xticks(range(1, len(classes) + 1), classes)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("PSPI")
    axes[1].set_ylabel("score")
    fig.suptitle("Held-out virtual subjects: per-class distributions", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def fig_strip(root: Path, df: pd.DataFrame, out: Path) -> None:
    pa4 = df[(df.class_name == "PA4")].sort_values("pspi_mean", ascending=False)
    sample = pa4.sample_name.iloc[len(pa4) // 4]  # a clearly but not maximally expressive clip
    rows = df[df.sample_name == sample].sort_values("view", key=lambda v: v != "front")
    n, stride = 8, 17
    fig, axes = plt.subplots(len(rows) + 1, n, figsize=(1.5 * n, 1.6 * (len(rows) + 1) + 0.4),
                             gridspec_kw={"height_ratios": [1] * len(rows) + [0.9]})
    idx = None
    for r, row in enumerate(rows.itertuples()):
        clip = read_clip(root / row.file, frames=n, stride=stride)
        from painface.video.biovid_a import frame_indexes

        idx = frame_indexes(137, n, stride)
        for k in range(n):
            axes[r, k].imshow(clip[k])
            axes[r, k].axis("off")
            if r == 0:
                axes[r, k].set_title(f"{idx[k] / 25:.1f} s", fontsize=8)
        axes[r, 0].text(-4, 48, row.view, rotation=90, va="center", ha="right", fontsize=8)
    with np.load(root / rows.codes_file.iloc[0]) as z:
        ps = z["pspi"]
    gs = axes[-1, 0].get_gridspec()
    for a in axes[-1]:
        a.remove()
    ax = fig.add_subplot(gs[-1, :])
    t = np.arange(len(ps)) / 25
    ax.plot(t, ps, color="C3")
    ax.scatter(idx / 25, ps[idx], color="k", s=10, zorder=3)
    ax.set_xlabel("time in the clip (s)")
    ax.set_ylabel("exact PSPI")
    ax.set_title(f"{sample} ({df.split.iloc[0]} subject, held out; 1 s after the plateau of the hottest level)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def tables(runs: Path, ceilings: dict[str, dict[str, float]]) -> None:
    print("| encoder | task | test clips | view | n | AUROC | F1 | accuracy | macro precision | macro recall |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for f in sorted(runs.glob("*.json")):
        info = json.loads(f.read_text())
        enc, task = info["config"]["encoder"], info["config"]["task"]
        for test, per in info["tests"].items():
            name = "simulator" if test == "synthetic" else "PainDiffusion" if "pd" in Path(test).name else test
            for view, m in per.items():
                f1 = m.get("F1", m.get("F1_macro"))
                print(f"| {enc} | {task} | {name} | {view} | {m['n']} | {m['AUROC']:.3f} | {f1:.3f} | "
                      f"{m['accuracy']:.3f} | {m['precision_macro']:.3f} | {m['recall_macro']:.3f} |")
        print(f"<!-- {f.stem}: {info['params']} parameters, {info['train_clips']} training clips, "
              f"load {info['load_seconds']} s, train {info['train_seconds']} s -->")
    print()
    for k, v in ceilings.items():
        print(f"label ceiling (exact mean PSPI as the score), BL1 vs PA4, {k}: "
              + ", ".join(f"{view} {a:.3f}" for view, a in v.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="binary model for the score figure")
    ap.add_argument("--figures", type=Path, default=Path("docs/figures"))
    ap.add_argument("--name", default="video_scores", help="file name (no suffix) of the score figure")
    ap.add_argument("--split", default="val", help="held-out subjects shown: val (pd96/) or test (pdtest96/)")
    args = ap.parse_args()
    sim_root, pd_root = args.data / "sim96", args.data / ("pdtest96" if args.split == "test" else "pd96")
    sim, pdv = held_out(sim_root, args.split), held_out(pd_root, args.split)
    ceil = {"simulator": ceiling(sim), "PainDiffusion": ceiling(pdv)}
    tables(args.data / "runs", ceil)
    model = args.model or args.data / "runs" / "c3d_binary.safetensors"
    s_sim = score_all(model, sim_root, args.data / "cache", args.split)
    s_pd = score_all(model, pd_root, args.data / "cache", args.split)
    config = json.loads(model.with_suffix(".json").read_text())["config"]
    enc = config["encoder"] + (" (per person)" if config.get("calibrate", "none") != "none" else "")
    args.figures.mkdir(parents=True, exist_ok=True)
    fig_scores(sim, pdv, s_sim, s_pd, enc, args.figures / f"{args.name}.png")
    fig_strip(sim_root, sim, args.figures / "video_strip.png")
    for name, d in (("simulator", s_sim), ("PainDiffusion", s_pd)):
        med = d.groupby("class_name").score.median()
        print(f"median P(PA4) per class, {name}: " + ", ".join(f"{c} {med[c]:.2f}" for c in present(d)))


if __name__ == "__main__":
    main()
