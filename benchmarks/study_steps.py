"""Fewer network calls without losing quality? Table I metrics, movement and controllability per sampler setting.

For each setting (solver steps, and guidance computed with its three "without" passes or with one shared
unconditional pass), generates the same validation windows as ``painface evaluate`` (seeded with the recorded
frames before each window, ``--tries`` generations) and reports Sim, Corr, Dist, Divrs, Var (Table I,
painface.evaluate.metrics), movement (AU units / s, painface.evaluate.control.sequence_measures) against the
ground truth's, network calls and rows per window, and the controllability sweeps of ``painface control``
(expressiveness -> PSPI Spearman rho over means, stimulus -> PSPI monotonic, emotions distinguishable at rest).
A setting *holds* when every Table I metric lies within ``--tolerance`` (default: the larger of 1.5 x the
reference's std over tries and 5 % of the reference's mean) of the reference setting (the first one), and the
controllability acceptance is unchanged. Rerun on a new checkpoint with ``--checkpoint``.

    python3 benchmarks/study_steps.py --data corpus --out /tmp/steps [--steps 20,12,8,4] [--shared 2.0]
        [--windows 12] [--tries 3] [--control-seeds 6] [--control-trials 2] [--control-for 0,2] [--threads 1]

``--distilled 20,12``: the same steps with the distilled guided network (painface distill), one row per sequence.

"Shared" guidance (``--shared W``): D = (1 + W) D(C) - W D(no condition), one unconditional pass instead of
one per condition: 2 network rows per sequence instead of 4.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from painface.data.corpus import open_corpus
from painface.evaluate import control as C
from painface.evaluate import metrics as M
from painface.evaluate.baselines import TrainingPool
from painface.evaluate.run import EvalConfig, generate_all, load_windows, score, select_windows
from painface.express import PainDiffusion
from painface.face.code import FEATURE_NAMES
from painface.io import atomic_write_json
from painface.model import sampling
from painface.model.conditions import CONDITION_NAMES, Conditions
from painface.model.edm import guided_denoiser

TABLE = ("sim", "corr", "dist", "divrs", "var")
HIGHER_IS_BETTER = {"sim": False, "corr": True, "dist": False, "divrs": None, "var": None}


def shared_guidance(weight: float):
    """A guided_denoiser replacement: D = (1 + w) D(C) - w D(no condition) (2 rows per sequence)."""

    def make(denoiser: Any, cond: Conditions, strengths: Any = None) -> Any:
        b = cond.batch
        drop = torch.zeros(2 * b, len(CONDITION_NAMES), dtype=torch.bool)
        drop[b:] = True
        cond2 = cond.repeat(2)

        def model(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            d = denoiser(x.repeat(2, 1, 1), sigma.expand(x.shape[:2]).repeat(2, 1), cond2, drop).reshape(2, *x.shape)
            return (1.0 + weight) * d[0] - weight * d[1]

        return model

    return make


@contextmanager
def guidance_mode(shared: float | None):
    if shared is None:
        yield
        return
    sampling.guided_denoiser = shared_guidance(shared)
    try:
        yield
    finally:
        sampling.guided_denoiser = guided_denoiser


class Setting:
    """PainDiffusion with sampler overrides, as a method for generate_all / run_control."""

    def __init__(self, model: PainDiffusion, steps: int, shared: float | None, distilled: bool = False,
                 **sampler: Any) -> None:
        self.model, self.steps, self.shared, self.overrides = model, steps, shared, sampler
        self.distilled = distilled
        self.fps, self.sampler = model.fps, model.sampler_config(**sampler)
        self.trained_expressiveness = model.trained_expressiveness

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names

    @property
    def label(self) -> str:
        return (f"{self.steps} steps" + ("" if self.shared is None else f", shared guidance w={self.shared:g}")
                + (", distilled guidance" if self.distilled else ""))

    def generate(self, *args: Any, **kwargs: Any) -> np.ndarray:
        kwargs.update(self.overrides, steps=self.steps)
        with guidance_mode(self.shared):
            return self.model.generate(*args, **kwargs)


def movement(face: np.ndarray, fps: float) -> float:
    every = np.ones(face.shape[-2], bool)
    return float(C.sequence_measures(face.reshape(-1, *face.shape[-2:]), FEATURE_NAMES, fps, every)["movement"].mean())


def table(report: dict[str, Any], budget: str) -> list[str]:
    """The markdown table of a report; sets each setting's ``holds``."""
    ref = report["settings"][0]
    lines = ["| setting | network rows x calls per window | " + " | ".join(TABLE) + " | movement (AU/s) | "
             "expr. rho | stim. monotonic | emotions at rest | holds |",
             "| --- | --- | " + " | ".join("---" for _ in TABLE) + " | --- | --- | --- | --- | --- |"]
    for res in report["settings"]:
        ok = all(abs(res["table"][m]["mean"] - ref["table"][m]["mean"])
                 <= max(1.5 * ref["table"][m]["std"], 0.05 * abs(ref["table"][m]["mean"])) for m in TABLE)
        ctl = res.get("control")
        if ctl is not None and ref.get("control") is not None:
            ok = ok and all(ctl[k] == ref["control"][k] for k in ("stimulus_pspi_monotonic",
                                                                  "emotions_distinguishable_at_rest"))
            rho_ref = ref["control"]["expressiveness_pspi_rho"] or 0.0
            ok = ok and (ctl["expressiveness_pspi_rho"] or 0.0) >= min(0.9, rho_ref)
        res["holds"] = bool(ok)
        cells = [f"{res['table'][m]['mean']:.3f} ± {res['table'][m]['std']:.3f}" for m in TABLE]
        c = ctl or {}
        rho = c.get("expressiveness_pspi_rho")
        lines.append(f"| {res['label']} | {res['rows_per_sequence']} x {res['calls_per_window']} | " + " | ".join(cells)
                     + f" | {res['movement']:.2f} | {'-' if rho is None else f'{rho:.2f}'}"
                     + f" | {c.get('stimulus_pspi_monotonic', '-')} | {c.get('emotions_distinguishable_at_rest', '-')}"
                     + f" | {'yes' if ok else 'no'} |")
    lines.append(f"\nground truth movement: {report['ground_truth_movement']:.2f} AU/s; {budget}")
    return lines


def figure(report: dict[str, Any], path: Path) -> None:
    """Table I metrics and movement against network calls per sequence-window (plain guidance: steps x 4 rows;
    shared guidance as separate points), ground truth movement as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TABLE) + 1, figsize=(3.0 * (len(TABLE) + 1), 3.0), constrained_layout=True)
    for ax, m in zip(axes, (*TABLE, "movement"), strict=True):
        for kind in ("plain", "shared", "distilled"):
            shared = kind == "shared"
            rows = [r for r in report["settings"] if kind == ("shared" if r["shared"] is not None else
                                                              "distilled" if r.get("distilled") else "plain")]
            if not rows:
                continue
            x = [r["rows_per_sequence"] * r["calls_per_window"] for r in rows]
            y = [r["movement"] if m == "movement" else r["table"][m]["mean"] for r in rows]
            e = [0.0 if m == "movement" else r["table"][m]["std"] for r in rows]
            ax.errorbar(x, y, yerr=e, marker={"plain": "o", "shared": "s", "distilled": "^"}[kind],
                        ls="none" if shared else "-",
                        label="shared guidance" if shared else ("distilled, steps " if kind == "distilled" else
                                                                "steps ") + ",".join(str(r["steps"]) for r in rows))
        if m == "movement":
            ax.axhline(report["ground_truth_movement"], color="k", lw=0.8, label="ground truth")
        ax.set_title(m + (" (AU/s)" if m == "movement" else ""))
        ax.set_xlabel("network rows per window")
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="corpus", help="corpus with validation subjects")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", default="20,12,8,4")
    ap.add_argument("--shared", default="", help="weights W of shared guidance to try at the default steps")
    ap.add_argument("--windows", type=int, default=12)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--length", type=int, default=640)
    ap.add_argument("--control-seeds", type=int, default=6, help="0: skip the controllability sweeps")
    ap.add_argument("--control-trials", type=int, default=2, help="stimulus plateaus per control sequence")
    ap.add_argument("--control-for", default="", help="setting numbers (0 = the first) to run the controllability "
                    "sweeps for (default: all); they run after every setting's Table I")
    ap.add_argument("--window", type=int, default=None, help="sampler window (default: the checkpoint's; live: 32)")
    ap.add_argument("--horizon", type=int, default=None, help="sampler horizon (default: the checkpoint's; live: 12)")
    ap.add_argument("--sigma-context", type=float, default=None, help="default: the checkpoint's; live: 0.02")
    ap.add_argument("--smooth", type=float, default=None, help="default: the checkpoint's; live: 2.5")
    ap.add_argument("--distilled", default="", help="steps to try with the distilled guided network (painface "
                    "distill; <checkpoint>_guided.safetensors): one network row per sequence")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--inference", default=None, help="backend (painface.model.inference; default auto)")
    ap.add_argument("--table-from", type=Path, default=None,
                    help="only print the table of an earlier steps.json and plot it to OUT with .png")
    args = ap.parse_args()
    if args.table_from is not None:
        rep = json.loads(args.table_from.read_text())
        ev = rep["config"]["eval"]
        print("\n".join(table(rep, f"{ev['windows']} windows x {ev['tries']} tries of {ev['length']} frames, seeded")))
        figure(rep, args.out.with_suffix(".png"))
        return
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model = PainDiffusion.load(args.checkpoint, inference=args.inference, distilled=False)
    steps = [int(s) for s in args.steps.split(",") if s]
    over = {k: v for k, v in (("window", args.window), ("horizon", args.horizon), ("sigma_context", args.sigma_context),
                              ("smooth", args.smooth)) if v is not None}
    settings = [Setting(model, s, None, **over) for s in steps]
    settings += [Setting(model, steps[0], float(w), **over) for w in args.shared.split(",") if w]
    if args.distilled:
        student = PainDiffusion.load(args.checkpoint, inference=args.inference, distilled=True)
        settings += [Setting(student, int(s), None, True, **over) for s in args.distilled.split(",") if s]

    corpus = open_corpus(args.data)
    cfg = EvalConfig(windows=args.windows, tries=args.tries, length=args.length, progress=False)
    ctx = settings[0].sampler.context
    data = load_windows(corpus, select_windows(corpus, cfg, ctx), cfg.length, ctx)
    pool = TrainingPool.from_corpus(corpus)
    scale = np.where(pool.std > 1e-6, pool.std, 1.0)

    def pspi_fn(face: np.ndarray) -> np.ndarray:
        return M.pspi_of(face, corpus.feature_names, None)

    gt_pspi = pspi_fn(data.face)
    report: dict[str, Any] = {"config": {**vars(args), "out": str(args.out), "eval": asdict(cfg)},
                              "ground_truth_movement": movement(data.face, model.fps), "settings": []}
    for st in settings:
        t = time.perf_counter()
        gen = generate_all(st, data, "seeded", cfg.tries, cfg.seed, cfg.batch)
        seconds = time.perf_counter() - t
        res: dict[str, Any] = {"label": st.label, "steps": st.steps, "shared": st.shared,
                               "distilled": st.distilled,
                               "rows_per_sequence": 1 if st.distilled else 2 if st.shared is not None else 4,
                               "calls_per_window": st.steps, "generate_s": round(seconds, 1),
                               "table": score(gen, pspi_fn(gen), data, gt_pspi, scale, cfg.dtw_window),
                               "movement": movement(gen, model.fps)}
        report["settings"].append(res)
        print(json.dumps(res), flush=True)
        atomic_write_json(args.out / "steps.json", report)
    chosen = [int(i) for i in args.control_for.split(",") if i] if args.control_for else range(len(settings))
    for i in chosen if args.control_seeds else []:
        st, res, t = settings[i], report["settings"][i], time.perf_counter()
        with guidance_mode(st.shared):
            ctl = C.run_control(st, C.ControlConfig(seeds=args.control_seeds, trials=args.control_trials,
                                                       steps=st.steps), progress=False)
        acc = ctl["acceptance"]
        res["control"] = {k: acc[k] for k in ("expressiveness_pspi_rho", "stimulus_pspi_monotonic",
                                              "stimulus_pspi_monotonic_biovid_levels",
                                              "emotions_distinguishable_at_rest")}
        res["control_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps({"label": res["label"], "control": res["control"], "control_s": res["control_s"]}),
              flush=True)
        atomic_write_json(args.out / "steps.json", report)
    lines = table(report, f"{len(data.windows)} windows x {cfg.tries} tries of {cfg.length} frames, seeded")
    atomic_write_json(args.out / "steps.json", report)
    (args.out / "steps.md").write_text("\n".join(lines) + "\n")
    figure(report, args.out / "steps.png")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
