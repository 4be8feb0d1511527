"""``painface inspect``: what a corpus holds, as a table, as JSON, and as a figure of one subject.

The summary counts subjects per split, frames per subject, response patterns (stoic share), and per
heat level the share of trials with a visible face response (PSPI peak >= 1 above the second before
the trial, see :mod:`painface.data.trials`), plus the PSPI histogram over all frames (integer bins
0..16, as shares). The figure shows the stimulus with the heat levels shaded, PSPI and the main pain
AUs over the whole session, and a zoom on three trials around the strongest response.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.data.corpus import SPLITS, Corpus, SubjectData, atomic_write_bytes
from painface.data.trials import (
    PSPI_BINS,
    TrialResponse,
    pspi_histogram_counts,
    response_share_by_level,
    trial_responses,
)

PAIN_AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43", "AU25", "AU26")
"""AUs drawn in the figure (FACS corpora): the PSPI AUs and the open mouth of pattern 2."""
LEVEL_COLORS = ("#fde0c5", "#f9b27c", "#f27f3d", "#c9510c")


def subject_trials(
    sub: SubjectData, fps: float, *, baseline_s: float = 1.0, threshold: float = 1.0
) -> list[TrialResponse]:
    """Per-trial responses of one subject (empty when it has neither a ``trial`` nor a ``level`` array)."""
    trial, level = sub.extras.get("trial"), sub.extras.get("level")
    if trial is None and level is None:
        return []
    return trial_responses(sub.pspi, fps=fps, trial=trial, level=level, baseline_s=baseline_s, threshold=threshold)


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"min": float(a.min()), "median": float(np.median(a)), "max": float(a.max())}


def summarize(
    corpus: Corpus,
    *,
    subject: str | None = None,
    baseline_s: float = 1.0,
    threshold: float = 1.0,
    progress: bool = True,
) -> dict[str, Any]:
    """The corpus summary as a JSON-able dict (see the module docstring; ``subject`` adds its own entry)."""
    if subject is not None:
        corpus.info(subject)  # raises on an unknown id
    infos = corpus.subjects
    frames: list[float] = []
    hist = np.zeros(PSPI_BINS, dtype=np.int64)
    trials: list[TrialResponse] = []
    per_subject: dict[str, Any] = {}
    for sid in tqdm(corpus.ids(), desc="inspect", unit="subject", disable=not progress):
        sub = corpus.subject(sid)
        frames.append(sub.frames)
        hist += pspi_histogram_counts(sub.pspi)
        tr = subject_trials(sub, corpus.fps, baseline_s=baseline_s, threshold=threshold)
        trials.extend(tr)
        if sid == subject:
            per_subject = {
                **sub.info,
                "frames": sub.frames,
                "trials": len(tr),
                "response_share_by_level": response_share_by_level(tr),
                "pspi_mean": float(np.mean(sub.pspi)) if sub.frames else None,
            }
    patterns = Counter(str(s["pattern"]) for s in infos)
    known = sum(n for p, n in patterns.items() if p != "unknown")
    total = int(hist.sum())
    out: dict[str, Any] = {
        "path": str(corpus.root) if corpus.root is not None else None,
        "source": corpus.meta.get("source", "simulated" if corpus.feature_space == "facs" else None),
        "fps": corpus.fps,
        "feature_space": corpus.feature_space,
        "features": len(corpus.feature_names),
        "stimulus_units": corpus.stimulus_units,
        "subjects": {"total": len(infos), **{sp: sum(1 for s in infos if s["split"] == sp) for sp in SPLITS}},
        "frames_per_subject": _stats(frames),
        "minutes_per_subject": _stats([f / corpus.fps / 60.0 for f in frames]),
        "expressiveness": _stats([float(s["expressiveness"]) for s in infos]),
        "stoic_share": patterns.get("stoic", 0) / known if known else None,
        "pattern_counts": dict(sorted(patterns.items())),
        "emotion_counts": dict(sorted(Counter(str(s["emotion"]) for s in infos).items())),
        "sex_counts": dict(sorted(Counter(str(s.get("sex", "unknown")) for s in infos).items())),
        "trials": len(trials),
        "trials_by_level": {str(k): sum(1 for t in trials if t.level == k) for k in (1, 2, 3, 4)},
        "response_share_by_level": response_share_by_level(trials),
        "response_rule": {"baseline_s": baseline_s, "threshold_pspi": threshold},
        "pspi_histogram": [float(c) / total if total else 0.0 for c in hist],
    }
    if subject is not None:
        out["subject"] = per_subject
    return out


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def format_table(s: dict[str, Any]) -> str:
    """The summary as a plain-text table for the terminal."""
    fr, mins, ex = s["frames_per_subject"], s["minutes_per_subject"], s["expressiveness"]
    rows = [
        ("corpus", f"{s['path'] or '(in memory)'}"),
        (
            "source",
            f"{s['source'] or '-'}; {s['feature_space']} space ({s['features']} features); "
            f"{s['fps']:g} fps; stimulus {s['stimulus_units']}",
        ),
        ("subjects", f"{s['subjects']['total']} ({s['subjects']['train']} train, {s['subjects']['val']} val)"),
    ]
    if fr:
        rows.append(
            (
                "frames/subject",
                f"min {fr['min']:.0f}  median {fr['median']:.0f}  max {fr['max']:.0f}  "
                f"({mins['min']:.1f}-{mins['max']:.1f} min)",
            )
        )
    if ex:
        rows.append(("expressiveness", f"min {ex['min']:.2f}  median {ex['median']:.2f}  max {ex['max']:.2f}"))
    rows += [
        ("stoic share", _fmt(s["stoic_share"])),
        ("patterns", "  ".join(f"{k} {v}" for k, v in s["pattern_counts"].items()) or "-"),
        ("emotions", "  ".join(f"{k} {v}" for k, v in s["emotion_counts"].items()) or "-"),
        ("sex", "  ".join(f"{k} {v}" for k, v in s["sex_counts"].items()) or "-"),
        ("trials", f"{s['trials']} (" + "  ".join(f"L{k} {v}" for k, v in s["trials_by_level"].items()) + ")"),
        (
            "visible response",
            "  ".join(f"L{k} {_fmt(v)}" for k, v in s["response_share_by_level"].items())
            + f"   (PSPI peak >= {s['response_rule']['threshold_pspi']:g} above the mean of the "
            f"{s['response_rule']['baseline_s']:g} s before onset)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    hist = s["pspi_histogram"]
    top = max(hist) if any(hist) else 1.0
    lines.append("PSPI histogram (share of frames)")
    for k, h in enumerate(hist):
        lines.append(f"  {k:>2}  {h:7.4f}  {'#' * int(np.ceil(40 * h / top))}")
    if "subject" in s:
        sub = s["subject"]
        lines.append(
            f"subject {sub['id']}: split {sub['split']}, pattern {sub['pattern']}, emotion {sub['emotion']}, "
            f"sex {sub.get('sex', '-')}, expressiveness {sub['expressiveness']:.2f}, {sub['frames']} frames, "
            f"{sub['trials']} trials, visible "
            + "  ".join(f"L{k} {_fmt(v)}" for k, v in sub["response_share_by_level"].items())
        )
    return "\n".join(lines)


# --- figure ------------------------------------------------------------------------------------
def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _shade(ax: Any, t: np.ndarray, level: np.ndarray | None, lo: int = 0, hi: int | None = None) -> None:
    if level is None:
        return
    hi = len(level) if hi is None else hi
    for k in (1, 2, 3, 4):
        for a, b in _spans(level[lo:hi] == k):
            ax.axvspan(t[lo + a], t[min(lo + b, len(t) - 1)], color=LEVEL_COLORS[k - 1], alpha=0.5, lw=0, label=None)


def plot_subject(corpus: Corpus, sid: str, path: str | Path, *, fps: float | None = None) -> Path:
    """Write the PNG figure of one subject (atomically) and return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    sub = corpus.subject(sid)
    fps = fps or corpus.fps
    n = sub.frames
    t = np.arange(n) / fps
    level = sub.extras.get("level")
    level = None if level is None else np.asarray(level).astype(np.int64)
    if "temperature" in sub.extras:
        stim, stim_label = np.asarray(sub.extras["temperature"], dtype=np.float64), "temperature (°C)"
    else:
        stim, stim_label = sub.stimulus.astype(np.float64), f"stimulus ({corpus.stimulus_units})"
    facs = corpus.feature_space == "facs"
    names = list(corpus.feature_names)
    aus = [a for a in PAIN_AUS if a in names] if facs else []
    tr = subject_trials(sub, fps)
    if tr:
        best = max(range(len(tr)), key=lambda i: tr[i].peak - tr[i].baseline)
        first, last = max(0, best - 1), min(len(tr) - 1, best + 1)
        lo, hi = max(0, tr[first].onset - int(fps)), tr[last].end
    else:
        lo, hi = 0, min(n, int(30 * fps))

    fig = Figure(figsize=(13, 10 if aus else 7.5), layout="constrained")
    FigureCanvasAgg(fig)
    rows = 3 if aus else 2
    gs = fig.add_gridspec(rows + 1, 1, height_ratios=[1] * rows + [1.6])
    axes = [fig.add_subplot(gs[i, 0]) for i in range(rows)]
    for ax in axes[1:]:
        ax.sharex(axes[0])
    tm = t / 60.0
    _shade(axes[0], tm, level)
    axes[0].plot(tm, stim, color="#b33", lw=0.8)
    axes[0].set_ylabel(stim_label)
    if level is not None:
        axes[0].legend(
            handles=[Patch(color=c, alpha=0.5, label=f"level {k}") for k, c in enumerate(LEVEL_COLORS, 1)],
            loc="upper right",
            ncol=4,
            fontsize=8,
        )
    _shade(axes[1], tm, level)
    axes[1].plot(tm, sub.pspi, color="k", lw=0.6)
    axes[1].set_ylabel("PSPI")
    if aus:
        for a in aus:
            axes[2].plot(tm, sub.face[:, names.index(a)], lw=0.6, label=a)
        axes[2].set_ylabel("AU intensity (0-5)")
        axes[2].legend(loc="upper right", ncol=len(aus), fontsize=8)
    axes[-1].set_xlabel("time (min)")
    for ax in axes:  # the zoomed stretch
        for x in (tm[lo], tm[max(lo, hi - 1)]):
            ax.axvline(x, color="#39c", ls=":", lw=1.0)

    zoom = fig.add_subplot(gs[rows, 0])
    tz = t[lo:hi]
    _shade(zoom, t, level, lo, hi)
    zoom.plot(tz, sub.pspi[lo:hi], color="k", lw=1.2, label="PSPI")
    for a in aus:
        zoom.plot(tz, sub.face[lo:hi, names.index(a)], lw=0.9, label=a)
    zoom.set_xlabel("time (s)")
    zoom.set_ylabel("PSPI / AU" if aus else "PSPI")
    zs = zoom.twinx()
    zs.plot(tz, stim[lo:hi], color="#b33", lw=1.0, ls="--", label=stim_label)
    zs.set_ylabel(stim_label)
    zoom.legend(loc="upper left", fontsize=8, ncol=3)
    what = "three trials around the strongest response" if tr else "the first 30 s"
    zoom.set_title(f"zoom: {what}", fontsize=9)
    info = sub.info
    fig.suptitle(
        f"{sid}  |  pattern {info.get('pattern', '-')}  |  emotion {info.get('emotion', '-')}  |  "
        f"sex {info.get('sex', '-')}  |  expressiveness {float(info.get('expressiveness', 0.0)):.2f}"
        f"  |  {corpus.feature_space} space" + ("" if aus else " (no AUs to plot)")
    )
    out = Path(path)
    atomic_write_bytes(out, lambda fh: fig.savefig(fh, format="png", dpi=100))
    return out


# --- command -----------------------------------------------------------------------------------
