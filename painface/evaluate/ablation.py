"""``painface ablate``: sampling ablations like [PainDiffusion, Table II].

Three groups of settings are compared on the same validation windows, one sampler setting changed at a
time from the checkpoint's defaults:

* **context window**: ``window - horizon`` context frames at sampling (default 8, 16, 32; the window stays
  the checkpoint's, so the horizon changes). The network itself was trained with one context length;
* **uncertainty u** of the pyramid scheduling matrix (diffusion forcing; default 0, 1, 2, 4; u = 0 is the
  full-sequence schedule);
* **guidance strengths** (emotion, expressiveness, stimulus) around the paper's best (0.5, 1.0, 2.0) and the
  default (1.0, 2.0, 4.0),
  including all zero (no guidance).

Windows: ``windows`` stretches of ``seconds`` from the validation subjects (subject k mod n_val), each
starting ``lead_s`` before the onset of a trial whose level cycles 4, 3, 2, 1 (a trial picked by the seed),
seeded with the ground-truth frames before it as context (as the authors evaluated), ``tries``
generations each. Metrics come from :mod:`painface.evaluate.metrics` (Sim, Corr on PSPI; Dist, Divrs, Var
on face codes scaled by the checkpoint's per-feature training std); each reported as mean and std over the
windows x tries (Divrs: over windows). Every distinct sampler setting is generated once, in one batched call.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.baselines import Generator
from painface.data.corpus import Corpus
from painface.errors import CorpusError, InputError
from painface.evaluate import metrics
from painface.model.edm import DEFAULT_GUIDANCE

DEFAULT_GUIDANCES: tuple[tuple[float, float, float], ...] = (
    (0.5, 1.0, 2.0), (0.0, 0.0, 0.0), (0.25, 0.5, 1.0), (1.0, 2.0, 4.0), (0.0, 1.0, 2.0), (0.5, 0.0, 2.0),
    (0.5, 1.0, 0.0),
)  # fmt: skip
"""The paper's best, none, half, double, and the best with one condition's guidance off."""


@dataclass
class AblationConfig:
    """Ablation budget and settings (JSON-serializable). contexts: frames; uncertainties: pyramid u;
    guidances: (emotion, expressiveness, stimulus) strengths; seconds, lead_s: seconds; steps: sampler
    steps override (None: the checkpoint's)."""

    windows: int = 8
    seconds: float = 20.0
    lead_s: float = 2.0
    tries: int = 2
    seed: int = 0
    contexts: tuple[int, ...] = (8, 16, 32)
    uncertainties: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0)
    guidances: tuple[tuple[float, float, float], ...] = DEFAULT_GUIDANCES
    steps: int | None = None

    def validate(self) -> None:
        bad = []
        if self.windows < 1 or self.tries < 2:
            bad.append(f"windows={self.windows}, tries={self.tries}: expected windows >= 1, tries >= 2 (Divrs)")
        if not (0 < self.seconds <= 600 and 0 <= self.lead_s <= 600):  # also NaN and inf
            bad.append(f"seconds={self.seconds}, lead_s={self.lead_s}: expected 0 < seconds <= 600, 0 <= lead_s <= 600")
        if not self.contexts or any(int(c) < 1 for c in self.contexts):
            bad.append(f"contexts {list(self.contexts)}: expected context lengths >= 1 frame")
        if not self.uncertainties or any(not np.isfinite(u) or u < 0 for u in self.uncertainties):
            bad.append(f"uncertainties {list(self.uncertainties)}: expected finite values >= 0")
        if not self.guidances or any(len(g) != 3 or not all(np.isfinite(v) and v >= 0 for v in g)
                                     for g in self.guidances):
            bad.append(f"guidances {list(self.guidances)}: expected (emotion, expressiveness, stimulus) >= 0")
        if self.steps is not None and self.steps < 1:
            bad.append(f"steps={self.steps}: expected >= 1")
        if bad:
            raise InputError("ablation config: " + "; ".join(bad))


@dataclass
class Windows:
    """Validation windows: stimulus ``[W, L]``, ground-truth face ``[W, L, D]`` and PSPI ``[W, L]``, the
    frames before each window ``[W, C, D]`` (C = the longest context), expressiveness ``[W]`` (PSPI),
    emotion ``[W, 8]`` and where each came from."""

    stimulus: np.ndarray
    face: np.ndarray
    pspi: np.ndarray
    before: np.ndarray
    expressiveness: np.ndarray
    emotion: np.ndarray
    where: list[dict[str, Any]]


def pick_windows(corpus: Corpus, cfg: AblationConfig, regressor: metrics.PspiRegressor | None = None) -> Windows:
    """Cut the validation windows (see the module docstring) out of ``corpus``, with ``painface evaluate``'s
    onset windows (:func:`painface.evaluate.run.onset_windows`) and window loading: window k comes from
    validation subject k mod n, from a seeded choice among its onsets of level 4 - k mod 4 (any level when it
    has none). Ground-truth PSPI is computed from the face codes as for the generations (exact in FACS
    space, else by ``regressor``)."""
    from painface.evaluate.run import load_windows, onset_windows

    val = corpus.ids("val")
    if not val:
        raise CorpusError("ablation: the corpus has no validation subjects (split 'val')")
    fps, before = corpus.fps, max(int(c) for c in cfg.contexts)
    length, lead = int(round(cfg.seconds * fps)), int(round(cfg.lead_s * fps))
    chosen = []
    for k in range(cfg.windows):
        sid = val[k % len(val)]
        found = onset_windows(corpus, sid, length, lead, before, shift=False)
        if not found:
            raise CorpusError(f"ablation: subject {sid} has no heat onset with room for {before} context frames "
                              f"and a {length}-frame window")
        same = [w for w in found if w.level == 4 - k % 4] or found
        chosen.append(same[int(np.random.default_rng([cfg.seed, k]).integers(len(same)))])
    data = load_windows(corpus, chosen, length, before)
    pspi = np.stack([metrics.pspi_of(f, corpus.feature_names, regressor) for f in data.face]).astype(np.float32)
    where = [{"subject": w.subject, "start": w.start, "frames": length, "level": w.level} for w in chosen]
    return Windows(data.stimulus.astype(np.float32), data.face.astype(np.float32), pspi,
                   data.context.astype(np.float32), data.expressiveness, data.emotion.astype(np.float32), where)


def settings(cfg: AblationConfig, window: int, default_context: int) -> list[tuple[str, str, dict[str, Any]]]:
    """The rows of the table: (group, setting, sampler overrides), in order."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for c in cfg.contexts:
        if not 0 < int(c) < window:
            raise InputError(f"ablation: context {c} frames; expected 0 < context < the window ({window} frames)")
        rows.append(("context window", f"{int(c)} frames", {"horizon": window - int(c), "schedule": "full"}))
    for u in cfg.uncertainties:
        rows.append(("uncertainty u (pyramid)", f"u = {u:g}", {"horizon": window - default_context,
                                                              "schedule": "pyramid", "uncertainty": float(u)}))
    for g in cfg.guidances:
        rows.append(("guidance (emo, expr, stim)", "(" + ", ".join(f"{v:g}" for v in g) + ")",
                     {"horizon": window - default_context, "schedule": "full", "guidance": tuple(map(float, g))}))
    return rows


def _key(over: dict[str, Any], default_guidance: tuple[float, ...]) -> tuple:
    """Settings that sample identically share a key (pyramid with u = 0 is the full schedule)."""
    sched = over.get("schedule", "full")
    u = over.get("uncertainty", 0.0) if sched == "pyramid" else 0.0
    return (over["horizon"], "full" if u == 0 else "pyramid", u, tuple(over.get("guidance", default_guidance)))


def run_ablation(model: Generator, corpus: Corpus, cfg: AblationConfig | None = None,
                 progress: bool = True) -> dict[str, Any]:
    """Run every setting on the same windows; returns the JSON-ready report."""
    cfg = cfg or AblationConfig()
    cfg.validate()
    names = tuple(model.feature_names)
    if tuple(corpus.feature_names) != names:
        raise CorpusError(f"ablation: the corpus's features {list(corpus.feature_names)[:4]}... differ from the "
                          f"checkpoint's {list(names)[:4]}...")
    if corpus.stimulus_units != "normalized":
        raise CorpusError(f"ablation: the corpus's stimulus is in {corpus.stimulus_units}; the model takes "
                          "normalized units (0 = baseline, 1 = tolerance)")
    if abs(corpus.fps - float(model.fps)) > 1e-6:
        raise CorpusError(f"ablation: corpus at {corpus.fps} fps, checkpoint trained at {model.fps} fps")
    base = model.sampler_config() if hasattr(model, "sampler_config") else None
    window = base.window if base is not None else 64
    default_context = base.context if base is not None else 16
    default_guidance = tuple(base.guidance) if base is not None else DEFAULT_GUIDANCE
    regressor = metrics.fit_pspi_regressor(corpus, stride=25) if corpus.feature_space != "facs" else None
    win = pick_windows(corpus, cfg, regressor)
    scale = np.asarray(model.normalizer.std) if hasattr(model, "normalizer") else None
    rows = settings(cfg, window, default_context)
    k, w = cfg.tries, len(win.where)
    done: dict[tuple, dict[str, Any]] = {}
    t0 = time.perf_counter()
    bar = tqdm(rows, desc="ablate", unit="setting", disable=not progress)
    report_rows = []
    for group, label, over in bar:
        key = _key(over, default_guidance)
        if key not in done:
            t = time.perf_counter()
            c = window - over["horizon"]
            context = np.repeat(win.before[:, -c:], k, axis=0)
            extra = {} if cfg.steps is None else {"steps": cfg.steps}
            face = np.asarray(model.generate(win.stimulus, win.expressiveness, win.emotion, samples=k, seed=cfg.seed,
                                             context=context, window=window, **over, **extra))
            if face.shape != (w * k, *win.face.shape[1:]) or not np.all(np.isfinite(face)):
                raise InputError(f"generator: expected finite faces of shape {(w * k, *win.face.shape[1:])}, "
                                 f"got {face.shape}")
            gen_pspi = metrics.pspi_of(face, names, regressor)
            gt_rep = np.repeat(win.pspi, k, axis=0)
            per_seq = metrics.sequence_metrics(gen_pspi, gt_rep, face, np.repeat(win.face, k, axis=0), scale)
            vals = {m: metrics.summarize(per_seq[m]) for m in ("sim", "corr", "dist", "var")}
            vals["corr_max"] = {"mean": float(per_seq["corr"].max()), "std": 0.0}
            vals["divrs"] = metrics.summarize(metrics.divrs(face.reshape(w, k, *face.shape[1:]), scale))
            done[key] = {"metrics": vals, "seconds": round(time.perf_counter() - t, 1),
                         "mean_pspi": float(gen_pspi.mean())}
        report_rows.append({"group": group, "setting": label, "sampler": {**over, "window": window}, **done[key]})
    gt = {"mean_pspi": float(win.pspi.mean()),
          "var": metrics.summarize(metrics.var(win.face, scale))}
    return {"config": asdict(cfg), "window": window, "default_context": default_context,
            "scale": "checkpoint normalizer std per feature" if scale is not None else "none",
            "pspi": "exact (FACS)" if regressor is None else {"regressor": regressor.describe()},
            "windows": win.where, "ground_truth": gt, "rows": report_rows, "generations": len(done),
            "seconds": round(time.perf_counter() - t0, 1)}


def ablation_markdown(report: dict[str, Any]) -> str:
    """Table II layout: one row per setting, mean ± std over windows x tries."""
    cfg = report["config"]
    lines = [f"# Ablations ({report.get('checkpoint', '?')})", "",
             f"{len(report['windows'])} validation windows of {cfg['seconds']:g} s x {cfg['tries']} tries, seeded "
             f"with ground-truth context; window {report['window']} frames; face-code metrics scaled by "
             f"{report['scale']}. Ground truth: mean PSPI {report['ground_truth']['mean_pspi']:.3f}, Var "
             f"{report['ground_truth']['var']['mean']:.3f}. Total {report['seconds']} s.", "",
             "| ablation | setting | Sim ↓ | Corr ↑ | Dist ↓ | Divrs ↑ | Var | mean PSPI | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        m = r["metrics"]
        cells = " | ".join(f"{m[k]['mean']:.3f} ± {m[k]['std']:.3f}" for k in ("sim", "corr", "dist", "divrs", "var"))
        lines.append(f"| {r['group']} | {r['setting']} | {cells} | {r['mean_pspi']:.3f} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def ablation_figure(report: dict[str, Any], path: Path) -> Path:
    """ablation.png: Sim, Corr and Divrs per setting (mean ± std), one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    groups = list(dict.fromkeys(r["group"] for r in rows))
    colors = [f"C{groups.index(r['group'])}" for r in rows]
    y = np.arange(len(rows))[::-1]
    fig, axes = plt.subplots(1, 3, figsize=(12, 0.35 * len(rows) + 1.5), sharey=True, constrained_layout=True)
    for ax, (m, label) in zip(axes, (("sim", "Sim (PSPI) ↓"), ("corr", "Corr ↑"), ("divrs", "Divrs ↑")), strict=True):
        mean = [r["metrics"][m]["mean"] for r in rows]
        sd = [r["metrics"][m]["std"] for r in rows]
        ax.barh(y, mean, xerr=sd, color=colors, capsize=2)
        ax.set_xlabel(label)
    axes[0].set_yticks(y, [f"{r['group'].split()[0]}: {r['setting']}" for r in rows], fontsize=8)
    fig.suptitle(f"ablations: {report.get('checkpoint', '')}, {len(report['windows'])} windows x "
                 f"{report['config']['tries']} tries", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
