"""Reports of ``painface evaluate``: Table I as markdown, and a figure like the paper's Fig. 6."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from painface.io import atomic_write_bytes

ROWS = (
    ("Ground truth", "ground_truth"),
    ("*Naive methods*", None),
    ("Random training sample", "random"),
    ("Nearest neighbor", "nearest_neighbor"),
    ("Mean face", "mean_face"),
    ("Stimulus lookup", "stimulus_lookup"),
    ("*Model-based methods*", None),
    ("FSQ-VAE autoregressive", "fsq_ar"),
    ("PainDiffusion", "paindiffusion"),
)
COLUMNS = (  # (header, metric, multiplier)
    ("Sim ↓ (PSPI)", "sim", 1.0),
    ("Corr ↑ (×10⁻³)", "corr", 1e3),
    ("Corr max ↑ (×10⁻³)", "corr_max", 1e3),
    ("Dist ↓", "dist", 1.0),
    ("Divrs ↑", "divrs", 1.0),
    ("Var ↑", "var", 1.0),
    ("PSPI W1 ↓", "pspi_w1", 1.0),
    ("Peak W1 ↓", "peak_w1", 1.0),
    ("AU speed (AU/s)", "speed", 1.0),
)
MODALITY = ("PSPI", "PSPI", "PSPI", "face code", "face code", "face code", "PSPI", "PSPI", "PSPI AUs")


def _cell(entry: dict[str, float], mult: float) -> str:
    m, s = entry["mean"] * mult, entry["std"] * mult
    if mult != 1.0:
        return f"{m:.1f} ± {s:.1f}"
    return f"{m:.3f} ± {s:.3f}"


def table_text(results: dict[str, dict[str, Any]]) -> str:
    """Markdown tables in the layout of [PainDiffusion, Table I], one per mode (mean ± std over tries)."""
    lines = []
    for mode, methods in results.items():
        lines += [f"### {mode} ({'recorded context frames' if mode == 'seeded' else 'cold start, neutral face'})",
                  "", "| Method | " + " | ".join(c[0] for c in COLUMNS) + " |",
                  "|---|" + "---:|" * len(COLUMNS)]
        lines.append("| *Modality* | " + " | ".join(f"*{m}*" for m in MODALITY) + " |")
        for label, key in ROWS:
            if key is None:
                lines.append(f"| {label} |" + " |" * len(COLUMNS))
            elif key in methods and "missing" in methods[key]:
                lines.append(f"| {label} | {methods[key]['missing']} |" + " |" * (len(COLUMNS) - 1))
            elif key in methods:
                lines.append(f"| {label} | " + " | ".join(_cell(methods[key][m], x) if m in methods[key] else "-"
                                                         for _, m, x in COLUMNS) + " |")
        lines.append("")
    return "\n".join(lines)


def write_table(path: Path, results: dict[str, dict[str, Any]], info: dict[str, Any]) -> None:
    """table.md: both modes, with the protocol in a few lines above."""
    cfg = info["config"]
    split = info["corpus"].get("split", "val")
    head = [
        "# Baselines comparison (layout of [PainDiffusion, Table I])", "",
        f"{len(info['windows'])} windows of {cfg['length']} frames on the "
        f"{info['corpus'].get(split + '_subjects', '?')} {split} "
        f"subjects ({'full protocol' if cfg['full'] else 'default subset'}), {cfg['tries']} tries each, seed "
        f"{cfg['seed']}. Mean ± std over tries (Divrs: over windows). PSPI: {info['pspi'].get('kind')}"
        + (f", R² on validation {info['pspi']['r2_val']:.3f}" if "r2_val" in info["pspi"] else "") + ".",
        "Sim: DTW-aligned RMS PSPI difference; Corr: mean Pearson r over windows; Corr max: the maximum over "
        "windows (what the authors' code reported); Dist, Divrs, Var: in units of the training subjects' "
        "per-feature variance. PSPI W1: distance between the distributions of generated and recorded PSPI; "
        "Peak W1: between the per-trial response peaks; AU speed: mean |dAU/dt| over the PSPI AUs (compare "
        "with the ground truth's). See docs/evaluation.md.", "",
    ]
    text = "\n".join(head) + table_text(results) + "\n"
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


def write_figure(path: Path, data: Any, gt_pspi: np.ndarray, gen_pspi: dict[str, np.ndarray], fps: float,
                 mode: str) -> None:
    """Like Fig. 6: for one window per stimulus level (1-4), the ground-truth PSPI, the range (min-max over
    tries) of PainDiffusion (green) and FSQ-AR (gray), and the time the stimulus is on (orange)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [w.level for w in data.windows]
    picks = [next((i for i, lv in enumerate(levels) if lv == want), None) for want in (1, 2, 3, 4)]
    picks = [p for p in picks if p is not None] or [0]
    fig, axes = plt.subplots(len(picks), 1, figsize=(9, 2.2 * len(picks)), sharex=True, squeeze=False)
    t = np.arange(gt_pspi.shape[1]) / fps
    for ax, i in zip(axes[:, 0], picks, strict=True):
        w = data.windows[i]
        on = data.stimulus[i] > 0.05
        ax.fill_between(t, 0, 1, where=on, color="orange", alpha=0.15 + 0.1 * w.level, lw=0,
                        transform=ax.get_xaxis_transform(), label="stimulus on")
        for name, color, label in (("fsq_ar", "0.5", "FSQ-AR"), ("paindiffusion", "tab:green", "PainDiffusion")):
            if name in gen_pspi:
                g = gen_pspi[name][i]
                ax.fill_between(t, g.min(0), g.max(0), color=color, alpha=0.4, lw=0, label=f"{label} (range)")
        ax.plot(t, gt_pspi[i], color="k", lw=1.2, label="ground truth")
        ax.set_ylabel("PSPI")
        ax.set_title(f"level {w.level}: subject {w.subject}, frames {w.start}-{w.start + len(t)}", fontsize=9)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(f"PSPI of {gen_pspi and len(next(iter(gen_pspi.values()))[0])} tries against the ground truth "
                 f"({mode})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    atomic_write_bytes(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
