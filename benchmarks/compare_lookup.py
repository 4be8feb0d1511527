"""PainDiffusion variants against the stimulus lookup on held-out windows (cold start), with the metrics of
``painface evaluate`` (Sim, Corr, PSPI W1, Peak W1, AU speed): a quick way to try sampler settings on the
val subjects before a full evaluation.

    python3 benchmarks/compare_lookup.py --data corpus [--checkpoint CKPT] [--split val] [--tries 3] \\
        [--variants '{"default": {}, "g0.5,1,2": {"guidance": [0.5, 1, 2]}}']
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from painface.data.corpus import open_corpus
from painface.evaluate import metrics as M
from painface.evaluate.baselines import StimulusLookup, TrainingPool
from painface.evaluate.run import EvalConfig, load_windows, select_windows
from painface.express import PainDiffusion
from painface.face.code import pspi


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="corpus")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--windows", type=int, default=12)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--variants", default='{"default": {}}', help="JSON: name -> sampler overrides")
    args = ap.parse_args()
    torch.set_num_threads(1)
    corpus = open_corpus(args.data)
    names = corpus.feature_names
    cfg = EvalConfig(windows=args.windows, split=args.split)
    data = load_windows(corpus, select_windows(corpus, cfg, 16), cfg.length, 16)
    gt = pspi(data.face, names)
    gt_speed = M.au_speed(data.face, names, corpus.fps).mean()

    def report(name: str, gen: np.ndarray) -> None:  # gen [P, K, L, D]
        ps = [pspi(gen[:, k], names) for k in range(gen.shape[1])]
        print(f"| {name} | {np.mean([M.sim(p, gt).mean() for p in ps]):.3f} | "
              f"{np.mean([M.pearson(p, gt).mean() for p in ps]):.3f} | {np.mean([M.pspi_w1(p, gt) for p in ps]):.3f} | "
              f"{np.mean([M.peak_w1(p, gt, cfg.lead, 250) for p in ps]):.3f} | "
              f"{M.au_speed(gen.reshape(-1, *gen.shape[2:]), names, corpus.fps).mean():.3f} |", flush=True)

    print(f"{len(data.windows)} {args.split} windows, {args.tries} tries, cold; ground-truth AU speed {gt_speed:.3f}")
    print("| method | Sim | Corr | PSPI W1 | Peak W1 | AU speed |\n|---|---:|---:|---:|---:|---:|")
    lookup = StimulusLookup(TrainingPool.from_corpus(corpus))
    report(f"stimulus lookup {lookup.describe()}", lookup.generate(data.stimulus, data.expressiveness)[:, None])
    model = PainDiffusion.load(args.checkpoint)
    for name, over in json.loads(args.variants).items():
        t = time.time()
        if model.stimulus_memory:  # the stimulus before each window, as painface evaluate gives it
            over = {"stimulus_before": data.before, **over}
        g = np.asarray(model.generate(data.stimulus, data.expressiveness, data.emotion, samples=args.tries, seed=0,
                                      **over))
        report(f"{name} ({time.time() - t:.0f} s)", g.reshape(len(data.windows), args.tries, *g.shape[1:]))


if __name__ == "__main__":
    main()
