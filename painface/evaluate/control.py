"""``painface control``: controllability sweeps like [PainDiffusion, Fig. 8].

One knob at a time is swept while the others stay fixed: the stimulus level (constant plateaus with rests,
normalized units 0..1), the expressiveness (PSPI units) and the emotion (each of the 8 classes). Every knob
value is generated ``seeds`` times (one batched ``generate`` call per sweep, cold start from a neutral face).
Per sequence two numbers are measured over the *response window* of every trial (from the ramp-up onset
to ``response_tail_s`` after the longest possible ramp-down, identical for every level):

* **PSPI**: the mean PSPI (0-16) of the generated faces;
* **movement**: total facial movement, the mean over frame pairs of the summed absolute frame-to-frame
  change of the 17 AU intensities, times fps: AU intensity units per second (head pose excluded).

The same numbers over the *rest* frames (stimulus 0, ``settle_s`` after the cold start, and the end of each
rest once the response window is over) give the resting face. Spearman's rho (scipy) relates each number to
the knob, once over the per-value means and once over all (value, seed) samples. For the emotions, each
resting face (mean AU vector over rest frames, one per seed) is compared with Neutral's: distance between
the two mean vectors relative to the seed-to-seed spread, and an exact permutation test of that distance
(labels shuffled between the two groups of seeds), Holm-corrected over the 7 comparisons.

Length: over ~400 lines because the sweeps, their measures, the statistics and the table and figure are
one experiment, kept in one file so each number of the figure can be followed to its computation.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from painface.baselines import Generator
from painface.errors import InputError
from painface.face.code import AU_NAMES, EMOTIONS, emotion_index, feature_space, pspi
from painface.io import atomic_write_json
from painface.subjects.protocols import BIOVID_BASELINE_C, HeatProtocol, celsius_to_normalized, heat_levels

DEMO_THRESHOLD_C, DEMO_TOLERANCE_C = 43.0, 47.5
"""The reference person (mean threshold and tolerance of the virtual population) for the BioVid levels."""
BIOVID_LEVELS = tuple(
    round(float(v), 3)
    for v in celsius_to_normalized(heat_levels(DEMO_THRESHOLD_C, DEMO_TOLERANCE_C), BIOVID_BASELINE_C, DEMO_TOLERANCE_C)
)
"""The four BioVid heat levels T1..T4 of the reference person in normalized units (0.71, 0.806, 0.903, 1.0)."""
RAMP_S = (DEMO_TOLERANCE_C - BIOVID_BASELINE_C) / HeatProtocol().ramp_c_per_s
"""Seconds a ramp from 0 to 1 (normalized) takes at the BioVid ramp rate for the reference person (3.1 s)."""
SWEEP_LEVELS = (0.0, 0.2, 0.4, 0.6) + BIOVID_LEVELS
"""Default stimulus sweep: baseline, three non-painful warm levels and T1..T4."""
SWEEP_EXPRESSIVENESS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""Default expressiveness sweep (PSPI): inside the default corpus's training subjects (0.07-1.07)."""

_FIXED_KEY = {"stimulus": "level", "expressiveness": "expressiveness", "emotion": "emotion"}


@dataclass
class ControlConfig:
    """Sweep settings (JSON-serializable). Durations in seconds, stimulus in normalized units (0..1),
    expressiveness in PSPI units; ``seeds``: generations per knob value; ``steps``: sampler steps override."""

    levels: tuple[float, ...] = SWEEP_LEVELS
    expressiveness: tuple[float, ...] = SWEEP_EXPRESSIVENESS
    emotions: tuple[str, ...] = EMOTIONS
    fixed_level: float = 1.0
    fixed_expressiveness: float = 0.5
    fixed_emotion: str = "Neutral"
    seeds: int = 6
    seed: int = 0
    trials: int = 2
    lead_in_s: float = 8.0
    plateau_s: float = 4.0
    rest_s: float = 10.0
    ramp_s: float = RAMP_S
    response_tail_s: float = 3.0
    settle_s: float = 2.0
    alpha: float = 0.05
    steps: int | None = None

    def validate(self) -> None:
        def fail(msg: str) -> None:
            raise InputError(f"control config: {msg}")

        for name in ("levels", "expressiveness"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.ndim != 1 or v.size < 2 or not np.all(np.isfinite(v)) or np.any(np.diff(v) <= 0):
                fail(f"{name} {list(v)}: expected at least 2 finite, strictly increasing values")
        if min(self.levels) < 0 or max(self.levels) > 1 or not 0 <= self.fixed_level <= 1:
            fail("stimulus levels must lie in 0..1 (normalized units)")
        if min(self.expressiveness) < 0 or max(self.expressiveness) > 16 or not 0 <= self.fixed_expressiveness <= 16:
            fail("expressiveness must lie in 0..16 (PSPI units)")
        emos = [EMOTIONS[emotion_index(e)] for e in (*self.emotions, self.fixed_emotion)]
        if "Neutral" not in emos[:-1] or len(set(emos[:-1])) != len(self.emotions) or len(self.emotions) < 2:
            fail(f"emotions {list(self.emotions)}: expected distinct names including Neutral")
        if self.seeds < 2 or self.trials < 1:
            fail(f"seeds={self.seeds}, trials={self.trials}: expected seeds >= 2 and trials >= 1")
        if min(self.plateau_s, self.ramp_s) <= 0 or min(self.lead_in_s, self.rest_s, self.response_tail_s) < 0:
            fail("plateau_s and ramp_s must be > 0; lead_in_s, rest_s and response_tail_s >= 0")
        if not 0 <= self.settle_s < self.lead_in_s or self.response_tail_s >= self.rest_s:
            fail("expected 0 <= settle_s < lead_in_s and response_tail_s < rest_s (rest frames must exist)")
        if not 0 < self.alpha < 1 or (self.steps is not None and self.steps < 1):
            fail("expected 0 < alpha < 1 and steps >= 1")


def plateau_stimulus(level: float, fps: float, cfg: ControlConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sweep sequence for a stimulus ``level``: a rest of ``lead_in_s``, then ``trials`` slots of
    (ramp up at 1/ramp_s per s, plateau_s at ``level``, ramp down, rest). Every slot lasts
    2 ramp_s + plateau_s + rest_s whatever the level, so every level has the same frames.

    Returns (stimulus ``[L]`` float32, response mask ``[L]`` bool, rest mask ``[L]`` bool)."""
    slot_s = 2 * cfg.ramp_s + cfg.plateau_s + cfg.rest_s
    n = int(round((cfg.lead_in_s + cfg.trials * slot_s) * fps))
    t = np.arange(n) / fps
    k = np.floor((t - cfg.lead_in_s) / slot_s)
    ts = t - cfg.lead_in_s - np.maximum(k, 0) * slot_s  # seconds into the current slot
    in_trials = t >= cfg.lead_in_s
    rise = level * cfg.ramp_s
    fall = (2 * rise + cfg.plateau_s - ts) / cfg.ramp_s
    stim = np.clip(np.minimum.reduce([np.full(n, level), ts / cfg.ramp_s, fall]), 0.0, None)
    stim = np.where(in_trials, stim, 0.0).astype(np.float32)
    resp_end = 2 * cfg.ramp_s + cfg.plateau_s + cfg.response_tail_s
    response = in_trials & (ts < resp_end)
    rest = (~in_trials & (t >= cfg.settle_s)) | (in_trials & (ts >= resp_end))
    return stim, response, rest


def sequence_measures(face: np.ndarray, names: tuple[str, ...], fps: float, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sequence numbers over the frames in ``mask`` ``[L]`` for faces ``[N, L, D]``: ``pspi`` [N] mean PSPI,
    ``movement`` [N] (AU units / s: mean over frame pairs inside the mask of sum_AU |x[t+1] - x[t]|, x fps)
    and ``face`` [N, 17] the mean AU vector."""
    if not mask.any() or not (mask[1:] & mask[:-1]).any():
        raise InputError("sequence_measures: the mask selects fewer than two consecutive frames")
    idx = [names.index(a) for a in AU_NAMES]
    aus = face[..., idx]
    pairs = mask[1:] & mask[:-1]
    step = np.abs(np.diff(aus, axis=1)).sum(-1)  # [N, L-1]
    return {
        "pspi": pspi(face, names)[:, mask].mean(1),
        "movement": step[:, pairs].mean(1) * fps,
        "face": aus[:, mask].mean(1),
    }


def spearman(values: np.ndarray, per_seed: np.ndarray) -> dict[str, float | None]:
    """Spearman rho of a measure against the knob: ``rho_means`` over the per-value means (``per_seed``
    ``[P, K]`` against ``values`` ``[P]``) and ``rho_samples`` / ``p_samples`` over all P x K samples."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        means = stats.spearmanr(values, per_seed.mean(1))
        allr = stats.spearmanr(np.repeat(values, per_seed.shape[1]), per_seed.ravel())
    return {"rho_means": _num(means.statistic), "rho_samples": _num(allr.statistic), "p_samples": _num(allr.pvalue)}


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as ``p``)."""
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p)
    adj = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def rest_difference(faces: np.ndarray, emotions: tuple[str, ...], alpha: float = 0.05,
                    reference: str = "Neutral") -> dict[str, dict[str, Any]]:
    """Each emotion's resting face against the reference's. ``faces``: ``[E, K, A]`` mean AU vectors per
    emotion and seed. distance = ||mean_e - mean_ref|| (AU units); spread = sqrt(pooled within-group
    variance), i.e. the RMS distance of a seed's face from its group mean (ddof 1 per group); ratio =
    distance / spread; p: exact permutation test of the distance (seeds' labels exchanged between the two
    groups; alternative: greater); p_holm: Holm-corrected over the comparisons; distinguishable: p_holm < alpha."""
    ref = emotions.index(reference)
    k = faces.shape[1]
    out: dict[str, dict[str, Any]] = {}
    for e, name in enumerate(emotions):
        if e == ref:
            continue
        pair = np.concatenate([faces[e], faces[ref]])

        def dist(i: np.ndarray, j: np.ndarray, pair: np.ndarray = pair) -> float:
            return float(np.linalg.norm(pair[i].mean(0) - pair[j].mean(0)))

        d = dist(np.arange(k), np.arange(k, 2 * k))
        ss = ((faces[e] - faces[e].mean(0)) ** 2).sum() + ((faces[ref] - faces[ref].mean(0)) ** 2).sum()
        spread = float(np.sqrt(ss / (2 * k - 2)))
        res = stats.permutation_test((np.arange(k), np.arange(k, 2 * k)), dist, permutation_type="independent",
                                     vectorized=False, n_resamples=20000, alternative="greater",
                                     random_state=np.random.default_rng(0))
        out[name] = {"distance": d, "spread": spread, "ratio": _num(d / spread if spread > 0 else np.inf),
                     "p": float(res.pvalue)}
    adj = holm(np.array([v["p"] for v in out.values()]))
    for v, pa in zip(out.values(), adj, strict=True):
        v["p_holm"] = float(pa)
        v["distinguishable"] = bool(pa < alpha)
    return out


def summarize_sweep(values: list[Any], measures: dict[str, np.ndarray], numeric: bool) -> dict[str, Any]:
    """Mean, sd (ddof 1) and per-seed values of every measure ``[P, K]``; Spearman rho when ``numeric``."""
    d: dict[str, Any] = {}
    for m, v in ((m, v) for m, v in measures.items() if not m.endswith("face")):
        d[m] = {"mean": v.mean(1).tolist(), "std": v.std(1, ddof=1).tolist(), "per_seed": v.tolist()}
        if numeric:
            d[m]["spearman"] = spearman(np.asarray(values, np.float64), v)
    return d


def run_sweep(model: Generator, stimulus: np.ndarray, expressiveness: np.ndarray, emotion: np.ndarray,
              masks: tuple[np.ndarray, np.ndarray], cfg: ControlConfig) -> dict[str, np.ndarray]:
    """Generate all P knob values x K seeds in one batched call; measures ``[P, K]`` over the response and
    rest masks (``rest_`` prefix; see the module docstring)."""
    p, k = stimulus.shape[0], cfg.seeds
    overrides = {} if cfg.steps is None else {"steps": cfg.steps}
    face = np.asarray(model.generate(stimulus, expressiveness, emotion, samples=k, seed=cfg.seed, **overrides))
    names = tuple(model.feature_names)
    if face.shape != (p * k, stimulus.shape[1], len(names)) or not np.all(np.isfinite(face)):
        raise InputError(f"generator: expected finite faces of shape {(p * k, stimulus.shape[1], len(names))}, "
                         f"got {face.shape}")
    return {tag + m: v.reshape(p, k, *v.shape[1:]) for tag, mask in zip(("", "rest_"), masks, strict=True)
            for m, v in sequence_measures(face, names, model.fps, mask).items()}


def run_control(model: Generator, cfg: ControlConfig | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the three sweeps; returns the JSON-ready report (see :func:`write_report` for the files)."""
    cfg = cfg or ControlConfig()
    cfg.validate()
    names = tuple(model.feature_names)
    if feature_space(names) != "facs":
        raise InputError("control: the checkpoint's face code is not in FACS space; PSPI and AU movement need AUs")
    fps = float(model.fps)
    onehot = np.eye(len(EMOTIONS), dtype=np.float32)
    emos = [EMOTIONS[emotion_index(e)] for e in cfg.emotions]
    fixed_emo = onehot[emotion_index(cfg.fixed_emotion)]
    stim_fixed, resp, rest = plateau_stimulus(cfg.fixed_level, fps, cfg)
    levels, exprs = list(map(float, cfg.levels)), list(map(float, cfg.expressiveness))
    fixed = {"level": cfg.fixed_level, "expressiveness": cfg.fixed_expressiveness, "emotion": cfg.fixed_emotion}
    plan = [
        ("stimulus", levels, np.stack([plateau_stimulus(v, fps, cfg)[0] for v in levels]),
         np.full(len(levels), cfg.fixed_expressiveness, np.float32), np.tile(fixed_emo, (len(levels), 1))),
        ("expressiveness", exprs, np.tile(stim_fixed, (len(exprs), 1)), np.asarray(exprs, np.float32),
         np.tile(fixed_emo, (len(exprs), 1))),
        ("emotion", emos, np.tile(stim_fixed, (len(emos), 1)), np.full(len(emos), cfg.fixed_expressiveness, np.float32),
         onehot[[emotion_index(e) for e in emos]]),
    ]
    t0, sweeps, report = time.perf_counter(), {}, {"sweeps": {}}
    for knob, values, stim, expr, emo in plan:
        t = time.perf_counter()
        sweeps[knob] = run_sweep(model, stim, expr, emo, (resp, rest), cfg)
        report["sweeps"][knob] = {"knob": knob, "values": values,
                                  "fixed": {k: v for k, v in fixed.items() if k != _FIXED_KEY[knob]},
                                  **summarize_sweep(values, sweeps[knob], numeric=knob != "emotion")}
        if progress:
            print(f"control: {knob} sweep, {len(values)} values x {cfg.seeds} seeds, {stim.shape[1]} frames: "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
    report.update({"config": asdict(cfg), "fps": fps, "frames": int(stim_fixed.size),
                   "movement_units": "AU intensity units per second (sum over 17 AUs)"})
    trained = getattr(model, "trained_expressiveness", None)
    report["trained_expressiveness"] = list(trained) if trained else None
    report["rest_vs_neutral"] = rest_difference(sweeps["emotion"]["rest_face"], tuple(emos), cfg.alpha)
    # the smallest Holm-adjusted p the exact test can give: (E - 1) x 2 / C(2K, K)
    report["min_attainable_p_holm"] = min(1.0, (len(emos) - 1) * 2 / math.comb(2 * cfg.seeds, cfg.seeds))
    report["acceptance"] = acceptance(report)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    return report


def rise_test(per_seed: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
    """Does a measure rise monotonically with a knob, given the seed-to-seed noise? ``per_seed`` ``[P, K]``:
    K samples at each of P knob values in increasing order.

    * ``drops``: every consecutive step i -> i+1 whose mean falls *significantly*: Welch's one-sided t-test
      (H1: mean_i > mean_i+1; scipy), Holm-corrected over the P - 1 steps, adjusted p < ``alpha``;
    * ``rise_rho`` / ``rise_p``: Spearman's rho over all P x K samples against the value's rank and its p;
    * ``monotonic``: no significant drop and a significant overall rise (rho > 0, p < ``alpha``);
    * ``strictly_rising``: every consecutive mean larger than the one before (no allowance for noise).

    Ties within noise (a knob range where the measure does not change) pass ``monotonic`` and fail
    ``strictly_rising``."""
    v = np.asarray(per_seed, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] < 2:
        raise InputError(f"rise_test: expected [values >= 2, samples >= 2], got shape {v.shape}")
    means = v.mean(1)
    p = np.ones(v.shape[0] - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for i in range(p.size):
            t = stats.ttest_ind(v[i], v[i + 1], equal_var=False, alternative="greater")
            # both groups constant: the test is undefined; a drop is then certain or absent
            p[i] = t.pvalue if np.isfinite(t.pvalue) else float(means[i] <= means[i + 1])
    adj = holm(p)
    sp = spearman(np.arange(v.shape[0], dtype=np.float64), v)
    rho, rho_p = sp["rho_samples"], sp["p_samples"]
    drops = [{"step": [i, i + 1], "drop": float(means[i] - means[i + 1]), "p_holm": float(adj[i])}
             for i in range(p.size) if adj[i] < alpha]
    rises = bool(rho is not None and rho > 0 and rho_p is not None and rho_p < alpha)
    return {"drops": drops, "rise_rho": rho, "rise_p": rho_p, "monotonic": not drops and rises,
            "strictly_rising": bool(np.all(np.diff(means) > 0))}


def acceptance(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's acceptance checks from a report: expressiveness -> PSPI rho (means) >= 0.9; stimulus ->
    PSPI rises monotonically (:func:`rise_test` over all levels: no significant drop and a significant
    rise; below the pain threshold faces rarely respond, so the low levels tie within noise), strictly
    over the BioVid levels T1..T4; every emotion distinguishable from Neutral at rest."""
    sw = report["sweeps"]["stimulus"]
    levels, stim_pspi = np.asarray(sw["values"]), np.asarray(sw["pspi"]["mean"])
    painful = stim_pspi[levels >= min(BIOVID_LEVELS) - 1e-9]
    rise = rise_test(np.asarray(sw["pspi"]["per_seed"]), float(report.get("config", {}).get("alpha", 0.05)))
    rho_x = report["sweeps"]["expressiveness"]["pspi"]["spearman"]["rho_means"]
    return {
        "expressiveness_pspi_rho": rho_x,
        "expressiveness_pspi_rho_ge_0.9": bool(rho_x is not None and rho_x >= 0.9),
        "stimulus_pspi_monotonic": rise["monotonic"],
        "stimulus_pspi_significant_drops": rise["drops"],
        "stimulus_pspi_rise_rho": rise["rise_rho"],
        "stimulus_pspi_strictly_rising": rise["strictly_rising"],
        "stimulus_pspi_monotonic_biovid_levels": bool(painful.size >= 2 and np.all(np.diff(painful) > 0)),
        "emotions_distinguishable_at_rest": all(v["distinguishable"] for v in report["rest_vs_neutral"].values()),
    }


def _num(x: float) -> float | None:
    """A finite float, or None (JSON has no NaN/inf)."""
    x = float(x)
    return x if np.isfinite(x) else None


def _fmt(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else f"{x:{fmt}}"


def _pm(m: dict[str, Any], i: int, fmt: str = ".2f") -> str:
    return f"{m['mean'][i]:{fmt}} ± {m['std'][i]:{fmt}}"


def control_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables (mean ± sd over seeds)."""
    lines = [f"# Controllability ({report.get('checkpoint', '?')})", "",
             f"Mean PSPI and movement (in {report['movement_units']}) over the response windows; rest: stimulus 0. "
             f"{report['config']['seeds']} seeds per value, {report['frames']} frames per sequence.", ""]
    if report.get("trained_expressiveness"):
        lo, hi = report["trained_expressiveness"]
        lines += [f"The checkpoint's training subjects span expressiveness {lo:g}-{hi:g} PSPI; above that the "
                  "model extrapolates.", ""]
    for knob, sw in report["sweeps"].items():
        fixed = ", ".join(f"{k} {v}" for k, v in sw["fixed"].items())
        lines += [f"## {knob} (fixed: {fixed})", "", f"| {knob} | PSPI | movement | rest PSPI | rest movement |",
                  "|---|---|---|---|---|"]
        lines += [f"| {v} | {_pm(sw['pspi'], i)} | {_pm(sw['movement'], i)} | {_pm(sw['rest_pspi'], i)} | "
                  f"{_pm(sw['rest_movement'], i)} |" for i, v in enumerate(sw["values"])]
        for m in ("pspi", "movement") if "spearman" in sw["pspi"] else ():
            r = sw[m]["spearman"]
            lines.append(f"\nSpearman rho ({m} vs {knob}): over means {_fmt(r['rho_means'])}, over samples "
                         f"{_fmt(r['rho_samples'])} (p {_fmt(r['p_samples'], '.2g')})")
        lines.append("")
    lines += ["## Resting face vs Neutral", "", "| emotion | distance (AU) | spread | ratio | p | p (Holm) | "
              "distinguishable |", "|---|---|---|---|---|---|---|"]
    for e, v in report["rest_vs_neutral"].items():
        ratio = "inf" if v["ratio"] is None else f"{v['ratio']:.2f}"
        lines.append(f"| {e} | {v['distance']:.3f} | {v['spread']:.3f} | {ratio} | {v['p']:.4f} | "
                     f"{v['p_holm']:.4f} | {v['distinguishable']} |")
    lines += ["", "## Acceptance", ""] + [f"- {k}: {v}" for k, v in report["acceptance"].items()]
    return "\n".join(lines) + "\n"


def control_figures(report: dict[str, Any], out: Path) -> list[Path]:
    """control.png (Fig. 8 style: PSPI and movement per knob value, ± sd over seeds) and control_rest.png
    (each emotion's resting-face distance to Neutral in units of the seed-to-seed spread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for col, (knob, sw) in enumerate(report["sweeps"].items()):
        x = np.arange(len(sw["values"])) if knob == "emotion" else np.asarray(sw["values"], float)
        for row, (m, label) in enumerate((("pspi", "mean PSPI"), ("movement", "movement (AU/s)"))):
            ax, mean, sd = axes[row, col], np.asarray(sw[m]["mean"]), np.asarray(sw[m]["std"])
            if knob == "emotion":
                ax.bar(x, mean, yerr=sd, color="tab:orange", capsize=3)
                ax.set_xticks(x, sw["values"], rotation=45, ha="right")
            else:
                ax.errorbar(x, mean, yerr=sd, marker="o", capsize=3, label="response")
                ax.plot(x, sw["rest_" + m]["mean"], ls="--", color="gray", label="rest")
                ax.set_title(f"Spearman rho (means) {_fmt(sw[m]['spearman']['rho_means'], '.2f')}", fontsize=9)
                trained = report.get("trained_expressiveness")
                if knob == "expressiveness" and trained and x.max() > trained[1]:
                    ax.axvspan(trained[1], x.max(), color="0.9", zorder=0, label="beyond training")
                ax.legend(fontsize=8)
            ax.set_xlabel(knob)
            ax.set_ylabel(label)
    fig.suptitle(f"controllability: {report.get('checkpoint', '')}, {report['config']['seeds']} seeds, mean ± sd",
                 fontsize=10)
    paths = [out / "control.png", out / "control_rest.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    rv = report["rest_vs_neutral"]
    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    ratio = [v["ratio"] if v["ratio"] is not None else 0.0 for v in rv.values()]
    ax.bar(list(rv), ratio, color=["tab:green" if v["distinguishable"] else "tab:gray" for v in rv.values()])
    ax.set_ylabel("distance / seed spread")
    ax.set_title("resting face vs Neutral (green: Holm p < alpha)", fontsize=9)
    ax.tick_params(axis="x", rotation=45)
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths


def write_report(report: dict[str, Any], out: Path) -> list[Path]:
    """Write control.json, control.md, control.png and control_rest.png into ``out``; returns the paths."""
    from painface.io import atomic_write_bytes

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create the folder: {e}") from None
    atomic_write_json(out / "control.json", report)
    md = control_markdown(report).encode()
    atomic_write_bytes(out / "control.md", lambda fh: fh.write(md))
    return [out / "control.json", out / "control.md", *control_figures(report, out)]
