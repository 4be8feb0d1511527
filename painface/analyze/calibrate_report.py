"""Report of ``painface analyze-calibrate``: the table, the figure, the real-photo check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from painface.analyze.aus import DETECTED_AUS, PSPI_AUS, Calibration, pspi_from_aus, uncalibrated_aus
from painface.analyze.models import BLENDSHAPE_OUTPUTS
from painface.face.code import AU_NAMES, FEATURE_NAMES, pspi

MAPS = ("offset", "regression", "uncalibrated")


def table(metrics: dict[str, Any]) -> str:
    """Markdown: per AU and PSPI, r and MAE of the three maps on held-out identities (+ the real check)."""
    lines = ["| | r offset | MAE offset | r regression | MAE regression | r uncalibrated (x5) | MAE uncalibrated |",
             "|---|---|---|---|---|---|---|"]
    for k in (*PSPI_AUS, *[a for a in DETECTED_AUS if a not in PSPI_AUS], "PSPI"):
        name = f"**{k}**" if k in PSPI_AUS or k == "PSPI" else k
        cells = " | ".join(f"{metrics[m][k]['r']:.2f} | {metrics[m][k]['mae']:.2f}" for m in MAPS)
        lines.append(f"| {name} | {cells} |")
    lines.append(f"\nDetection rate {metrics['detection_rate']:.1%} of {metrics['n_images']} images; "
                 f"fitted on {metrics['n_train']} faces ({metrics['n_neutral_train']} neutral), scored on "
                 f"{metrics['n_heldout']} faces of held-out identities. "
                 f"Head-pose MAE (deg): {metrics['pose_mae_deg']}.")
    real = metrics.get("real")
    if real:
        lines.append(f"\nReal photos ({real['images']} in {real['folder']}, detection rate "
                     f"{real['detection_rate']:.0%}):\n")
        lines.append("| map | neutral PSPI median | neutral PSPI mean | smile - neutral: AU12 | AU4 | AU6 | AU7 | "
                     "AU9 | AU10 | AU43 |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for m in MAPS:
            r = real[m]
            d = r["smile_minus_neutral"]
            lines.append(f"| {m} | {r['neutral_pspi_median']:.2f} | {r['neutral_pspi_mean']:.2f} | "
                         + " | ".join(f"{d[a]:+.2f}" for a in ("AU12", *PSPI_AUS)) + " |")
    return "\n".join(lines) + "\n"


def _predict(maps: dict[str, Calibration], blend: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    out = {name: m(blend) for name, m in maps.items()}
    out["uncalibrated"] = uncalibrated_aus(blend)
    return out


def figure(maps: dict[str, Calibration], data: dict[str, np.ndarray], metrics: dict[str, Any], path: Path) -> None:
    """Detected vs rendered intensity for the PSPI AUs and PSPI on held-out identities, three maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = data["found"] & np.isin(data["ident"], metrics["heldout_identities"])
    truth = data["code"][test]
    preds = _predict(maps, data["blend"][test])
    colors = {"uncalibrated": "tab:gray", "offset": "tab:blue", "regression": "tab:red"}
    fig, axes = plt.subplots(1, 7, figsize=(19, 3.2))
    for ax, k in zip(axes, (*PSPI_AUS, "PSPI"), strict=True):
        t = pspi(truth, FEATURE_NAMES) if k == "PSPI" else truth[:, AU_NAMES.index(k)]
        for m in ("uncalibrated", "offset", "regression"):
            v = pspi_from_aus(preds[m]) if k == "PSPI" else preds[m][k]
            ax.scatter(t, v, s=4, alpha=0.35, c=colors[m], label=f"{m} r={metrics[m][k]['r']:.2f}")
        hi = 16 if k == "PSPI" else 5
        ax.plot([0, hi], [0, hi], "k--", lw=0.8)
        ax.set(title=k, xlabel="rendered", xlim=(-0.2, hi + 0.2), ylim=(-0.2, hi + 0.2))
        ax.legend(fontsize=6, loc="upper left")
    axes[0].set_ylabel("detected")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def real_check(maps: dict[str, Calibration], folder: Path) -> dict[str, Any]:
    """Every map on real photos named ``*_neutral.*`` / ``*_smiling.*`` (no pain labels): detection rate,
    PSPI of the neutral photos, mean smiling - neutral change of AU12 and the PSPI AUs."""
    from painface.analyze.detector import Detector

    df = Detector(calibration=None).detect(folder, progress=False)
    kind = df["file"].str.extract(r"_(neutral|smiling)\.")[0].to_numpy()
    ok = df["face_detected"].to_numpy()
    blend = np.concatenate([np.zeros((len(df), 1)), df[list(BLENDSHAPE_OUTPUTS[1:])].to_numpy(float)], axis=1)[ok]
    kind = kind[ok]
    neu, smi = kind == "neutral", kind == "smiling"
    out: dict[str, Any] = {"folder": str(folder), "images": int(len(df)), "detection_rate": float(ok.mean())}
    for name, aus in _predict(maps, blend).items():
        p = pspi_from_aus(aus)
        out[name] = {"neutral_pspi_median": float(np.median(p[neu])), "neutral_pspi_mean": float(p[neu].mean()),
                     "smile_minus_neutral": {au: float(aus[au][smi].mean() - aus[au][neu].mean())
                                             for au in ("AU12", *PSPI_AUS)}}
    return out
