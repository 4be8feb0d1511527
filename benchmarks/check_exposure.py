"""Exposure bias on long holds: the recorded face vs PainDiffusion rolled out freely from the recorded context at the
onset vs the same model restarted every 2 s from the recorded context (teacher-forced windows), as mean PSPI by time
since the onset of the corpus's long plateaus (>= 25 s at >= 0.8) of held-out subjects. If the restarted windows follow
the recording and the free rollout drifts from it, the error is compounding along the rollout, not the network's
one-window prediction (docs/model.md, "Guidance that follows the stimulus's news").

    python3 benchmarks/check_exposure.py [--data corpus] [--onsets 12] [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from painface.data.corpus import open_corpus
from painface.express import PainDiffusion
from painface.face.code import pspi
from painface.subjects.sustained import BLOCK_KINDS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="corpus")
    ap.add_argument("--onsets", type=int, default=12)
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    m = PainDiffusion.load(args.checkpoint)
    c = open_corpus(args.data)
    P = BLOCK_KINDS.index("plateau")
    cfg = m.sampler_config()
    fps, H, C = int(round(m.fps)), cfg.horizon, cfg.context
    bins = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25)]
    variants = {"guidance 0, context 0.02": {"guidance": [0, 0, 0], "gate": 0, "sigma_context": 0.02},
                "shipped but context 0.02": {"sigma_context": 0.02}, "shipped": {}}
    rows: dict[str, list] = {"recorded": []}
    n = 0
    for sid in c.ids('val') + c.ids('test'):
        s = c.subject(sid)
        blk, st = s.extras['block'], s.stimulus
        on = np.flatnonzero((st[1:] >= 0.8) & (st[:-1] < 0.8) & (blk[1:] == P)) + 1
        for o in on:
            L = int(np.sum(st[o:o + 40 * fps] >= 0.8 * st[o + 25]))
            if L < 25 * fps or st[o:o + 25 * fps].min() < 0.7:
                continue
            n += 1
            t0 = o - 2 * fps  # start 2 s before onset
            T = 27 * fps
            x, emo = float(s.info['expressiveness']), s.info['emotion']
            ctx, before = s.face[None, t0 - C:t0], st[:t0]
            gt = s.pspi[t0:t0 + T]
            rows["recorded"].append(gt)
            for name, over in variants.items():
                g = m.generate(st[t0:t0 + T], x, emo, context=ctx, stimulus_before=before, seed=n, **over)
                rows.setdefault("rollout, " + name, []).append(pspi(np.asarray(g)[0], m.feature_names))
                tf = np.full(T, np.nan)
                for a in range(0, T - H, 2 * fps):
                    g = m.generate(st[t0 + a:t0 + a + H], x, emo, context=s.face[None, t0 + a - C:t0 + a],
                                   stimulus_before=st[:t0 + a], seed=n + a, **over)
                    tf[a:a + H] = pspi(np.asarray(g)[0], m.feature_names)
                rows.setdefault("restarted every 2 s, " + name, []).append(tf)
            if n >= args.onsets:
                break
        if n >= args.onsets:
            break
    print(f"{n} plateau onsets (>= 25 s at >= 0.8), val+test subjects; mean PSPI by seconds after onset")
    print("| | " + " | ".join(f"{a}-{b} s" for a, b in bins) + " |")
    for k, v in rows.items():
        v = np.array(v)
        print(f"| {k} | " + " | ".join(f"{np.nanmean(v[:, (2 + a) * fps:(2 + b) * fps]):.2f}" for a, b in bins) + " |")


if __name__ == "__main__":
    main()
