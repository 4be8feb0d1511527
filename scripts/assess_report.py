"""The tables of docs/assess.md: ViTPain variants, the analyze detector and the mean baseline on the
synthetic test identities (95 % bootstrap CIs over identities), and real neutral/smiling photos.

    python scripts/assess_report.py --data data/synth112 --runs runs/assess --variants a b c \
        --real ../shared/realfaces/london-dev --out results/assess

Test predictions of a variant come from ``RUN/test_predictions.npz`` (written once by train-assess) when the run
was trained on ``--data``; a run trained on another rendering of the same people (e.g. before a renderer change)
reads ``--data``'s test split here, as train-assess would (mirror and gate as its checkpoint says). Its F1
thresholds come from its checkpoint (tuned on training images). The analyze detector (calibration
"regression") reads the test images and 600 training images (its F1 thresholds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from painface.assess import metrics as M

KEYS = ("MAE", "r", "ICC", "AUROC1", "AUROC2", "AUROC3", "F1_1", "F1_2", "F1_3")


def with_ci(y, p, ident, thr, n) -> dict[str, tuple[float, float, float]]:
    return M.bootstrap(ident, lambda i: M.summary(y[i], p[i], thr), n=n, seed=0)


def read_test(run: Path, data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true PSPI, predicted PSPI, identity) of ``data``'s test split read by ``run``'s best checkpoint."""
    from painface.assess import data as D
    from painface.assess.model import load
    from painface.assess.train import predict_split

    model, meta = load(run / "best")
    split = D.load_split(data, "test", model.config.size, heatmaps=model.config.variant == "teacher")
    p = predict_split(model, split, mirror=meta.get("mirror", True), gate=meta.get("gate"))  # as the Assessor reads
    return split.pspi.numpy(), p, split.identity.numpy()


def fmt(ci: dict, k: str) -> str:
    v, lo, hi = ci[k]
    return "n/a" if np.isnan(v) else f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def detector_pspi(files: list[str], calibration: str, cache: Path) -> np.ndarray:
    """The analyze detector's PSPI per file (NaN: no face), cached in ``cache`` (.npy)."""
    if cache.is_file():
        return np.load(cache)
    from painface.analyze import Detector

    df = Detector(calibration=calibration).detect(files, progress=False)
    df = df[df.face == 0].set_index("file").reindex(files)
    p = df.PSPI.to_numpy(np.float64)
    np.save(cache, p)
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--variants", nargs="*", default=["a", "b", "c"])
    ap.add_argument("--real", default=None)
    ap.add_argument("--out", default="results/assess")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--no-detector", action="store_true")
    ap.add_argument("--figure", default=None, help="attention figure of this checkpoint -> docs/figures/...")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.figure:
        attention_grid(Path(args.figure), Path(args.data), Path("docs/figures/assess_attention.png"))
    meta = pd.read_csv(Path(args.data) / "metadata.csv")
    test, train = meta[meta.split == "test"].reset_index(drop=True), meta[meta.split == "train"]
    y, ident = test.PSPI.to_numpy(), test.identity.to_numpy()
    table: dict[str, dict] = {}
    for v in args.variants:
        run = Path(args.runs) / v
        info = json.loads((run / "best.json").read_text())
        thr = {int(k): t for k, t in info["thresholds"].items()}
        if Path(info.get("data", args.data)).resolve() == Path(args.data).resolve():
            z = np.load(run / "test_predictions.npz")
            table[f"ViTPain ({v})"] = with_ci(z["pspi"], z["pred"], z["identity"], thr, args.boot)
        else:
            table[f"ViTPain ({v})"] = with_ci(*read_test(run, Path(args.data)), thr, args.boot)
    mean = float(train.PSPI.mean())
    thr_mean = {k: mean for k in M.LEVELS}  # a constant: every image is called positive iff mean >= k
    table["mean PSPI of training images"] = with_ci(y, np.full_like(y, mean), ident, thr_mean, args.boot)
    rows = {"test_images": len(test), "test_identities": int(test.identity.nunique()), "train_mean_pspi": mean}
    if not args.no_detector:
        files = [str(Path(args.data) / f) for f in test.file]
        p = detector_pspi(files, "regression", out / "detector_test.npy")
        found = np.isfinite(p)
        sub = train.sample(600, random_state=0)
        pt = detector_pspi([str(Path(args.data) / f) for f in sub.file], "regression", out / "detector_train600.npy")
        ok = np.isfinite(pt)
        thr = M.tune_thresholds(sub.PSPI.to_numpy()[ok], pt[ok])
        rows["detector_found"] = float(found.mean())
        table["analyze detector (regression), faces found"] = with_ci(y[found], p[found], ident[found], thr, args.boot)
    lines = ["| model | " + " | ".join(KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
    for name, ci in table.items():
        lines.append(f"| {name} | " + " | ".join(fmt(ci, k) for k in KEYS) + " |")
    text = "\n".join(lines)
    print(json.dumps(rows))
    print(text)
    (out / "synthetic_test.md").write_text(text + "\n")
    (out / "synthetic_test.json").write_text(json.dumps({"info": rows, "table": table}, indent=1))
    if args.real:
        real_table(Path(args.real), Path(args.runs), args.variants, out)


def real_table(real: Path, runs: Path, variants: list[str], out: Path) -> None:
    """Neutral vs smiling photos: PSPI >= 2 on neutral faces, mean PSPI and AU6 by expression."""
    from painface.analyze import Detector
    from painface.assess.predict import Assessor

    files = sorted(str(f) for f in real.glob("*.jpg"))
    expr = np.array(["neutral" if "neutral" in Path(f).name else "smiling" for f in files])
    res, ood = {}, {}
    for v in variants:
        ckpt = runs / v / "best.safetensors"
        # variant c: the person's own neutral photo is the reference
        if json.loads(ckpt.with_suffix(".json").read_text())["config"]["variant"] == "c":
            dfs = []
            for f in files:
                ref = str(Path(f).with_name(Path(f).name.split("_")[0] + "_neutral.jpg"))
                dfs.append(Assessor(ckpt, neutral=ref).assess([f]))
            df = pd.concat(dfs, ignore_index=True)
        else:
            a = Assessor(ckpt)
            df = a.assess(files)
            # what the model reads where there is no face at all: uniform noise, mid grey
            size = a.size
            noise = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), dtype=np.uint8)  # same for all
            grey = np.full((8, size, size, 3), 128, np.uint8)
            ood[f"ViTPain ({v})"] = (f"{a.predict_crops(noise)['pspi'].mean():.2f} / "
                                     f"{a.predict_crops(grey)['pspi'].mean():.2f}")
        res[f"ViTPain ({v})"] = df[df.face == 0].set_index("file").reindex(files)
    for cal in ("offset", "regression"):
        df = Detector(calibration=cal).detect(files, progress=False)
        res[f"analyze ({cal})"] = df[df.face == 0].set_index("file").reindex(files)
    lines = ["| model | faces found | neutral: PSPI >= 2 | neutral: mean PSPI | smiling: mean PSPI | "
             "neutral: mean AU6 | smiling: mean AU6 | smiling > neutral (pairs) | no face: noise / grey PSPI |",
             "|---" * 9 + "|"]
    for name, df in res.items():
        p, a6 = df.PSPI.to_numpy(), df.AU6.to_numpy()
        n, s = expr == "neutral", expr == "smiling"
        pairs = np.mean(p[s] > p[n])
        lines.append(f"| {name} | {np.isfinite(p).sum()}/{len(p)} | {int(np.nansum(p[n] >= 2))}/{n.sum()} | "
                     f"{np.nanmean(p[n]):.2f} | {np.nanmean(p[s]):.2f} | {np.nanmean(a6[n]):.2f} | "
                     f"{np.nanmean(a6[s]):.2f} | {pairs:.2f} | {ood.get(name, '-')} |")
    text = "\n".join(lines)
    print(text)
    (out / "real_photos.md").write_text(text + "\n")


def attention_grid(ckpt: Path, data: Path, out: Path, n: int = 6) -> None:
    """A figure of ``n`` synthetic test images (PSPI high to low) with the model's class-token attention."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from PIL import Image

    from painface.assess.model import load

    model, _ = load(ckpt)
    s = model.config.size
    meta = pd.read_csv(data / "metadata.csv")
    test = meta[(meta.split == "test") & (meta.view == 0)].sort_values("PSPI", ascending=False)
    pick = test.iloc[np.linspace(0, len(test) - 1, n).astype(int)]
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.5))
    for k, (_, r) in enumerate(pick.iterrows()):
        img = np.asarray(Image.open(data / r.file).convert("RGB").resize((s, s), Image.BILINEAR))
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            _, attn = model.encode(x, attention=True)
            pred = float(model(x, x if model.config.variant == "c" else None)["pspi"][0])
        g = s // 16
        a = attn[0].reshape(g, g).numpy()
        axes[0, k].imshow(img)
        axes[0, k].set_title(f"{r.kind}\nPSPI {r.PSPI:.1f} / pred {pred:.1f}", fontsize=7)
        axes[1, k].imshow(img)
        axes[1, k].imshow(np.kron(a / a.max(), np.ones((16, 16))), cmap="inferno", alpha=0.55)
        axes[0, k].axis("off")
        axes[1, k].axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
