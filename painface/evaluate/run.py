"""``painface evaluate``: Table I of [PainDiffusion] on held-out subjects (docs/evaluation.md).

Windows of 640 frames (10x the training horizon) start ``lead`` frames before a stimulus onset (a rise of
the heat stimulus) of a held-out subject: the ``test`` split by default (report), ``--split val`` to choose
settings (guidance, steps) without touching the test subjects. Every method generates ``tries`` sequences
per window, in two modes: ``seeded`` (the recorded frames just before the window are the context, as the
authors did) and ``cold`` (a neutral resting face, as a robot starts). Metrics (painface.evaluate.metrics) are averaged
over windows per try, then reported as mean and std over tries. The default budget is a fixed subset of
windows (``--windows``, spread over subjects and the 4 stimulus levels); ``--full`` takes every onset.

Beside the paper's metrics, three a conditional-mean predictor cannot game (docs/evaluation.md): the
distance between the distributions of generated and recorded PSPI (``pspi_w1``), between the per-trial
response peaks (``peak_w1``), and the mean AU speed (``speed``, to compare with the ground truth's).

Writes into ``--out``: ``metrics.json`` ({mode: {method: {metric: {"mean", "std"}}}}), ``paired.json``
(PainDiffusion minus each other method on Sim and Corr, per window, with bootstrap 95 % intervals),
``table.md``, ``fig6_seeded.png`` / ``fig6_cold.png``, ``config.json`` (settings, windows, timings, PSPI
source) and ``generations.npz`` (every scored array: generated and ground-truth face codes and PSPI,
stimulus, window ids) so anyone can recompute the metrics.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.data.corpus import Corpus, atomic_write_json, open_corpus
from painface.data.trials import stimulus_changes
from painface.data.windows import subject_emotion
from painface.errors import InputError
from painface.evaluate import metrics as M
from painface.evaluate.baselines import TrainingPool, simple_baselines

MODES = ("seeded", "cold")
METHODS = ("ground_truth", "random", "nearest_neighbor", "mean_face", "stimulus_lookup", "fsq_ar", "paindiffusion")
METRICS = ("sim", "corr", "corr_max", "dist", "divrs", "var", "pspi_w1", "peak_w1", "speed")
PEAK_SPAN_S = 10.0  # the response to a window's stimulus: its peak within this long after the onset
LEVELS = (1, 2, 3, 4)


@dataclass
class EvalConfig:
    """Settings of one evaluation (saved as config.json). length: frames per window; lead: frames from the
    window start to the stimulus onset; windows: size of the default subset (ignored with full); batch:
    windows per generate call; nn_stride / nn_step: nearest-neighbour index (window starts / stimulus
    subsampling, frames); dtw_window: Sakoe-Chiba half-width of Sim (None: unconstrained)."""

    data: str | None = None
    checkpoint: str | None = None
    fsq: str | None = None
    out: str = "eval"
    full: bool = False
    tries: int = 5
    seed: int = 0
    windows: int = 12
    length: int = 640
    lead: int = 160
    batch: int = 8
    nn_stride: int = 16
    nn_step: int = 8
    dtw_window: int | None = None
    pspi_alpha: float = 1.0
    progress: bool = True
    pspi_from: str = "exact"
    render_stride: int = 16
    split: str = "test"


@dataclass
class Window:
    subject: str
    start: int
    onset: int
    level: int


@dataclass
class WindowData:
    """The arrays of the evaluated windows: stimulus ``[P, L]``, face ``[P, L, D]``, context ``[P, C, D]``
    (recorded frames before each window), expressiveness ``[P]``, emotion ``[P, 8]``; ``before``
    ``[P, BEFORE_FRAMES]``: the stimulus before each window (0 = baseline before the recording), which a
    model with a stimulus memory is given in both modes (the stimulus is an input; only the face is seeded)."""

    windows: list[Window]
    stimulus: np.ndarray
    face: np.ndarray
    context: np.ndarray
    expressiveness: np.ndarray
    emotion: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)
    before: np.ndarray | None = None


BEFORE_FRAMES = 7500
"""Stimulus frames before each window kept for models with a stimulus memory (300 s at 25 fps: 5 x its
longest time constant)."""


# --- corpus and windows ---------------------------------------------------------------------------
def default_corpus(out: Path, progress: bool = True) -> Path:
    """The default virtual corpus (87 subjects, seed 0) in ``out/corpus``, built once and reused."""
    from painface.subjects.population import simulate_corpus

    root = out / "corpus"
    if not (root / "meta.json").is_file():
        simulate_corpus(root, n_subjects=87, seed=0, progress=progress)
    return root


def onset_levels(sub: Any, onsets: np.ndarray, fps: float = 25.0) -> np.ndarray:
    """Stimulus level (1-4) of each onset: the corpus's ``level`` extra during the following 5 s, or, without
    it, the quartile of the onset's peak stimulus (over the following 10 s) among the subject's onsets."""
    if "level" in sub.extras:
        lv, span = np.asarray(sub.extras["level"]), max(1, int(round(5 * fps)))
        return np.array([int(lv[o:o + span].max()) for o in onsets], dtype=np.int64)
    span = max(1, int(round(10 * fps)))
    peaks = np.array([float(sub.stimulus[o:o + span].max()) for o in onsets])
    ranks = np.argsort(np.argsort(peaks))
    return 1 + (4 * ranks) // max(len(onsets), 1)


def onset_windows(corpus: Corpus, sid: str, length: int, lead: int, min_start: int, *,
                  shift: bool = True) -> list[Window]:
    """The windows of ``length`` frames starting ``lead`` frames before each heat onset (a rise of the
    stimulus whose level is 1-4) of subject ``sid``, leaving ``min_start`` frames before them (context).
    ``shift``: a window that would cross the recording's end is moved inside it (else it is left out)."""
    sub = corpus.subject(sid)
    onsets = stimulus_changes(sub.stimulus, kinds="rise")
    found = []
    for o, lv in zip(onsets.tolist(), onset_levels(sub, onsets, corpus.fps).tolist(), strict=True):
        start = o - lead
        if shift:
            start = min(max(start, min_start), sub.frames - length)
        if min_start <= start <= sub.frames - length and lv in LEVELS:
            found.append(Window(sid, int(start), int(o), int(lv)))
    return found


def select_windows(corpus: Corpus, cfg: EvalConfig, min_start: int) -> list[Window]:
    """Every BioVid onset window (level 1-4) of the ``cfg.split`` subjects (``full``), else a subset of
    ``cfg.windows``: subjects evenly spaced over the split's list, from each the first onset of each level 1-4
    in turn."""
    ids = corpus.ids(cfg.split)
    if not ids:
        raise InputError(f"corpus: no {cfg.split!r} subjects; evaluate runs on held-out subjects")
    per_subject = [onset_windows(corpus, sid, cfg.length, cfg.lead, min_start) for sid in ids]
    if cfg.full:
        out = [w for ws in per_subject for w in ws]
    else:
        n_sub = min(len(ids), math.ceil(cfg.windows / len(LEVELS)))
        picks = np.unique(np.linspace(0, len(ids) - 1, n_sub).round().astype(int))
        out = []
        for lv in LEVELS:
            for i in picks:
                first = next((w for w in per_subject[i] if w.level == lv), None)
                if first is not None:
                    out.append(first)
        out = sorted(out[: cfg.windows], key=lambda w: (ids.index(w.subject), w.onset))
    if not out:
        raise InputError(f"corpus: no stimulus onset in the validation subjects leaves room for a {cfg.length}-"
                         f"frame window with {min_start} context frames before it")
    return out


def load_windows(corpus: Corpus, windows: list[Window], length: int, context: int) -> WindowData:
    subs = {w.subject: corpus.subject(w.subject) for w in windows}
    stim, face, ctx, expr, emo, before = [], [], [], [], [], []
    for w in windows:
        s = subs[w.subject]
        stim.append(s.stimulus[w.start:w.start + length])
        prior = np.asarray(s.stimulus[max(0, w.start - BEFORE_FRAMES):w.start], np.float32)
        before.append(np.concatenate([np.zeros(BEFORE_FRAMES - prior.size, np.float32), prior]))
        face.append(s.face[w.start:w.start + length])
        ctx.append(s.face[w.start - context:w.start])
        expr.append(float(s.info["expressiveness"]))
        emo.append(subject_emotion(s.info))
    return WindowData(windows, np.stack(stim), np.stack(face), np.stack(ctx), np.asarray(expr, np.float32),
                      np.stack(emo), before=np.stack(before))


# --- methods --------------------------------------------------------------------------------------
def context_frames(model: Any) -> int:
    """Recorded frames a method takes as seeded context (0 for the baselines, which ignore it)."""
    if hasattr(model, "sampler"):
        return int(model.sampler.context)
    if hasattr(model, "context_chunks") and hasattr(model, "chunk"):
        return int(model.context_chunks) * int(model.chunk)
    return 0


def load_models(cfg: EvalConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """(models, missing): PainDiffusion is required (a clear error); a missing FSQ-AR checkpoint is recorded."""
    from painface.express import PainDiffusion

    models: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if cfg.checkpoint is not None and not Path(cfg.checkpoint).with_suffix(".safetensors").is_file():
        raise InputError(f"--checkpoint {cfg.checkpoint}: file not found")
    models["paindiffusion"] = PainDiffusion.load(cfg.checkpoint)
    try:
        from painface.baselines.fsq import FsqAR

        if cfg.fsq is not None and not Path(cfg.fsq).is_file():
            raise InputError(f"--fsq {cfg.fsq}: file not found")
        models["fsq_ar"] = FsqAR.load(cfg.fsq)
    except (InputError, ImportError) as e:
        if cfg.fsq is not None and isinstance(e, InputError) and Path(cfg.fsq).is_file():
            raise  # a checkpoint the user named that is there must load (corrupt: an error, not "missing")
        missing["fsq_ar"] = f"not evaluated: {e}"
    return models, missing


def generate_all(model: Any, data: WindowData, mode: str, tries: int, seed: int, batch: int,
                 bar: tqdm | None = None) -> np.ndarray:
    """``[P, K, L, D]`` generations of one method for all windows, ``batch`` windows per call."""
    c = context_frames(model)
    out = []
    for i in range(0, len(data.windows), batch):
        sl = slice(i, i + batch)
        ctx = None
        if mode == "seeded" and c > 0:
            ctx = np.repeat(data.context[sl, data.context.shape[1] - c:], tries, axis=0)
        method = model.select(sl) if hasattr(model, "select") else model  # per-window state: ground truth
        kw = {"context": ctx}
        if getattr(model, "stimulus_memory", ()) and data.before is not None:
            kw["stimulus_before"] = data.before[sl]
        gen = method.generate(data.stimulus[sl], data.expressiveness[sl], data.emotion[sl], samples=tries,
                             seed=seed + i, **kw)
        out.append(np.asarray(gen, np.float32).reshape(-1, tries, *gen.shape[1:]))
        if bar is not None:
            bar.update(1)
    return np.concatenate(out)


def score(gen: np.ndarray, gen_pspi: np.ndarray, data: WindowData, gt_pspi: np.ndarray, scale: np.ndarray,
          dtw_window: int | None, *, names: tuple[str, ...] = (), fps: float = 25.0, onset: int = 0,
          per_window: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, float]]:
    """Metrics of ``gen`` ``[P, K, L, D]`` with its PSPI ``gen_pspi`` ``[P, K, L]``: per try, the mean over
    windows (corr_max: the maximum), then mean and std over tries; divrs: mean and std over windows.
    pspi_w1, peak_w1 (response peaks within :data:`PEAK_SPAN_S` of ``onset``) and speed (mean AU speed,
    AU/s; needs ``names``) per try too.
    ``per_window`` (a dict) receives sim and corr per window, averaged over tries."""
    per_try: dict[str, list[float]] = {m: [] for m in ("sim", "corr", "corr_max", "dist", "var", "pspi_w1",
                                                        "peak_w1", "speed")}
    windows: dict[str, list[np.ndarray]] = {"sim": [], "corr": []}
    span = max(1, int(round(PEAK_SPAN_S * fps)))
    for k in range(gen.shape[1]):
        g_pspi = gen_pspi[:, k]
        seq = M.sequence_metrics(g_pspi, gt_pspi, gen[:, k], data.face, scale, dtw_window)
        for m in ("sim", "corr", "dist", "var"):
            per_try[m].append(float(seq[m].mean()))
        windows["sim"].append(seq["sim"])
        windows["corr"].append(seq["corr"])
        per_try["corr_max"].append(float(seq["corr"].max()))
        per_try["pspi_w1"].append(M.pspi_w1(g_pspi, gt_pspi))
        per_try["peak_w1"].append(M.peak_w1(g_pspi, gt_pspi, min(onset, gt_pspi.shape[1] - 1), span))
        per_try["speed"].append(float(M.au_speed(gen[:, k], names, fps).mean()) if names else float("nan"))
    if not names:
        per_try.pop("speed")
    res = {m: M.summarize(v) for m, v in per_try.items()}
    res["divrs"] = M.summarize(M.divrs(gen, scale)) if gen.shape[1] > 1 else {"mean": 0.0, "std": 0.0}
    if per_window is not None:
        per_window.update({m: np.mean(v, axis=0) for m, v in windows.items()})
    return {m: res[m] for m in METRICS if m in res}


# --- the command ----------------------------------------------------------------------------------
def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the evaluation and write its files into ``cfg.out``; returns the metrics dict."""
    from painface.evaluate.report import write_figure, write_table

    if cfg.tries < 1 or cfg.windows < 1 or cfg.batch < 1 or cfg.length < 2 or not 0 <= cfg.lead < cfg.length:
        raise InputError(f"evaluate: need tries, windows, batch >= 1, length >= 2 and 0 <= lead < length; got "
                         f"tries={cfg.tries}, windows={cfg.windows}, batch={cfg.batch}, length={cfg.length}, "
                         f"lead={cfg.lead}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    models, missing = load_models(cfg)
    corpus = open_corpus(cfg.data if cfg.data is not None else default_corpus(out, cfg.progress))
    for name, model in models.items():
        if tuple(model.feature_names) != corpus.feature_names:
            raise InputError(f"{name}: the checkpoint's features ({len(model.feature_names)}) differ from the "
                             f"corpus's ({len(corpus.feature_names)}); evaluate on the corpus it was trained for")
    if cfg.split not in ("val", "test"):
        raise InputError(f"--split: {cfg.split!r}; expected 'val' (choose settings) or 'test' (report)")
    if not corpus.ids(cfg.split):
        raise InputError(f"corpus: no {cfg.split!r} subjects; evaluate runs on held-out subjects (a corpus made "
                         "before the test split existed has only 'val': use --split val)")
    pool = TrainingPool.from_corpus(corpus)
    regressor = None if corpus.feature_space == "facs" else M.fit_pspi_regressor(corpus, cfg.pspi_alpha, stride=5)

    def pspi_fn(face: np.ndarray) -> np.ndarray:
        return M.pspi_of(face, corpus.feature_names, regressor)

    rendered = None
    if cfg.pspi_from == "rendered":  # the paper's check: render the faces, read PSPI with a detector
        from painface.analyze.rendered import RenderedPspi

        rendered = RenderedPspi(corpus.feature_names, stride=cfg.render_stride, seed=cfg.seed)
        pspi_fn = rendered
    elif cfg.pspi_from != "exact":
        raise InputError(f"--pspi-from: expected 'exact' or 'rendered', got {cfg.pspi_from!r}")

    ctx = max([context_frames(m) for m in models.values()] + [1])
    data = load_windows(corpus, select_windows(corpus, cfg, ctx), cfg.length, ctx)
    if rendered is not None:
        rendered.tag = "ground_truth"
    gt_pspi = pspi_fn(data.face)
    scale = np.where(pool.std > 1e-6, pool.std, 1.0)
    methods = simple_baselines(pool, data.face)
    methods["nearest_neighbor"].stride, methods["nearest_neighbor"].step = cfg.nn_stride, cfg.nn_step
    methods.update(models)
    calls = math.ceil(len(data.windows) / cfg.batch)
    bar = tqdm(total=len(MODES) * len(methods) * calls, desc="evaluate", unit="batch", disable=not cfg.progress)
    results: dict[str, dict[str, Any]] = {}
    gens: dict[str, dict[str, np.ndarray]] = {}
    faces: dict[str, np.ndarray] = {}
    per_window: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    timing: dict[str, dict[str, float]] = {}
    for mode in MODES:
        results[mode], gens[mode], timing[mode], per_window[mode] = {}, {}, {}, {}
        for name in METHODS:
            if name not in methods:
                results[mode][name] = {"missing": missing.get(name, "not evaluated")}
                continue
            bar.set_postfix_str(f"{mode} {name}")
            if rendered is not None:
                rendered.tag = f"{mode}/{name}"
            t = time.perf_counter()
            gen = generate_all(methods[name], data, mode, cfg.tries, cfg.seed, cfg.batch, bar)
            timing[mode][name] = round(time.perf_counter() - t, 2)
            per_window[mode][name] = {}
            gens[mode][name] = pspi_fn(gen)  # once per method: rendering and detecting is the costly part
            results[mode][name] = score(gen, gens[mode][name], data, gt_pspi, scale, cfg.dtw_window,
                                        names=corpus.feature_names if corpus.feature_space == "facs" else (),
                                        fps=corpus.fps, onset=cfg.lead, per_window=per_window[mode][name])
            faces[f"{mode}/{name}"] = gen
    bar.close()
    atomic_write_json(out / "metrics.json", results)
    atomic_write_json(out / "paired.json", paired_differences(per_window))
    write_generations(out / "generations.npz", data, gt_pspi, gens, faces)
    info = {
        "config": asdict(cfg),
        "corpus": {"path": str(cfg.data or out / "corpus"), "feature_space": corpus.feature_space,
                   "split": cfg.split, "val_subjects": len(corpus.ids("val")),
                   "test_subjects": len(corpus.ids("test")), "train_subjects": len(corpus.ids("train"))},
        "stimulus_lookup": methods["stimulus_lookup"].describe() if "stimulus_lookup" in methods else None,
        "windows": [asdict(w) for w in data.windows],
        "context_frames": ctx,
        "pspi": {"kind": "exact (FACS)"} if regressor is None else regressor.describe(),
        "pspi_from": cfg.pspi_from,
        "ground_truth_constant_share": M.constant_share(gt_pspi, gt_pspi),
        "missing": missing,
        "seconds": {"total": round(time.perf_counter() - t0, 2), "generate": timing},
        "metric_scale": "dist, divrs, var in units of the training subjects' per-feature variance",
    }
    if rendered is not None:
        info["pspi"] = {"kind": f"rendered and detected every {cfg.render_stride} frames (painface.analyze, "
                                "map fitted on painface renders), interpolated between",
                        "exact_vs_detected": {tag: rendered.agreement(tag)
                                              for tag in dict.fromkeys(t for t, _, _ in rendered.samples)}}
    atomic_write_json(out / "config.json", info)
    write_table(out / "table.md", results, info)
    for mode in MODES:
        write_figure(out / f"fig6_{mode}.png", data, gt_pspi, gens[mode], corpus.fps, mode)
    return results


def paired_differences(per_window: dict[str, dict[str, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """PainDiffusion minus every other method (ground truth excepted) on Sim and Corr, paired over windows
    (each method's value per window averaged over its tries), with bootstrap 95 % intervals over windows."""
    out: dict[str, Any] = {}
    for mode, methods in per_window.items():
        if "paindiffusion" not in methods or len(methods["paindiffusion"]["sim"]) < 2:
            continue
        pd = methods["paindiffusion"]
        out[mode] = {name: {m: M.paired_ci(pd[m], w[m]) for m in ("sim", "corr")}
                     for name, w in methods.items() if name not in ("paindiffusion", "ground_truth")}
    return out


def write_generations(path: Path, data: WindowData, gt_pspi: np.ndarray, gens: dict[str, dict[str, np.ndarray]],
                      faces: dict[str, np.ndarray]) -> None:
    """generations.npz: ``stimulus`` [P, L], ``ground_truth`` [P, L, D], ``ground_truth_pspi`` [P, L],
    ``window_subject`` / ``window_start`` / ``window_onset`` / ``window_level`` [P], and for every
    ``MODE/METHOD``: ``MODE/METHOD/face`` [P, K, L, D] and ``MODE/METHOD/pspi`` [P, K, L] (float32)."""
    from painface.io import atomic_write_bytes

    arrays: dict[str, np.ndarray] = {
        "stimulus": data.stimulus.astype(np.float32), "ground_truth": data.face.astype(np.float32),
        "ground_truth_pspi": np.asarray(gt_pspi, np.float32),
        "window_subject": np.array([w.subject for w in data.windows]),
        "window_start": np.array([w.start for w in data.windows], np.int64),
        "window_onset": np.array([w.onset for w in data.windows], np.int64),
        "window_level": np.array([w.level for w in data.windows], np.int64),
    }
    for key, gen in faces.items():
        mode, name = key.split("/")
        arrays[f"{key}/face"] = np.asarray(gen, np.float32)
        arrays[f"{key}/pspi"] = np.asarray(gens[mode][name], np.float32)
    atomic_write_bytes(Path(path), lambda fh: np.savez_compressed(fh, **arrays))
