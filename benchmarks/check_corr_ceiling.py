"""How well can a perfect generator score on Corr? Two independent draws of the same virtual person's face under
the same stimulus (the simulator that made the corpus, same traits, other noise), scored against each other on
the evaluation's onset windows (640 frames from 160 before a BioVid onset) with the metric functions of
``painface evaluate``, beside the stimulus lookup's score against the same draws.

A sampler that reproduces the data's process exactly scores the first number, whatever its quality: Corr above it
needs less trial-to-trial variation than the data has, which is what a conditional-mean predictor (the lookup) has.

    python3 benchmarks/check_corr_ceiling.py [--subjects 40] [--data corpus_mixed]
"""

from __future__ import annotations

import argparse

import numpy as np

from painface.data.corpus import open_corpus
from painface.data.trials import stimulus_changes
from painface.evaluate import metrics as M
from painface.evaluate.baselines import StimulusLookup, TrainingPool
from painface.face.code import pspi
from painface.subjects.population import session
from painface.subjects.protocols import HeatProtocol
from painface.subjects.simulate import simulate_face
from painface.subjects.sustained import BLOCK_KINDS
from painface.subjects.traits import SimConfig, sample_traits

LENGTH, LEAD = 640, 160


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--subjects", type=int, default=40)
    ap.add_argument("--data", default="corpus_mixed", help="corpus whose training subjects fit the lookup")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    lookup = StimulusLookup(TrainingPool.from_corpus(open_corpus(args.data)))
    cfg, proto = SimConfig(), HeatProtocol()
    a_all, b_all, look_all = [], [], []
    for i in range(args.subjects):
        rng = np.random.default_rng([args.seed, i])
        traits = sample_traits(rng, cfg)
        stim, block = session(traits, rng, proto)
        _, pa = simulate_face(traits, stim, cfg, np.random.default_rng([args.seed, i, 1]))
        _, pb = simulate_face(traits, stim, cfg, np.random.default_rng([args.seed, i, 2]))
        expr = float(pa[block == BLOCK_KINDS.index("biovid")].mean())
        s = stim.normalized
        rises = stimulus_changes(s, kinds="rise")  # the evaluation's own definition of an onset
        onsets = rises[block[rises] == BLOCK_KINDS.index("biovid")]
        for on in onsets[2:6]:  # a few trials per person, away from the session's start
            lo = on - LEAD
            if lo < 0 or lo + LENGTH > s.size:
                continue
            a_all.append(pa[lo:lo + LENGTH])
            b_all.append(pb[lo:lo + LENGTH])
            face = lookup.generate(s[None, lo:lo + LENGTH].astype(np.float32), np.array([expr], np.float32))[0]
            look_all.append(pspi(face, lookup.names))
    a, b, look = np.stack(a_all), np.stack(b_all), np.stack(look_all)
    print(f"{a.shape[0]} windows of {args.subjects} virtual people")
    print("| scored against draw A | Sim | Corr |\n|---|---:|---:|")
    print(f"| draw B (same person, same stimulus, other noise: a perfect generator) | {M.sim(b, a).mean():.3f} | "
          f"{np.nanmean(M.pearson(b, a)):.3f} |")
    print(f"| stimulus lookup | {M.sim(look, a).mean():.3f} | {np.nanmean(M.pearson(look, a)):.3f} |")


if __name__ == "__main__":
    main()
