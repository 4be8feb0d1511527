"""Movement like the data's (issue 20): mean AU speed (mean |dAU/dt| over the PSPI AUs, docs/evaluation.md) of

* ``painface generate`` at its defaults (the BioVid heat session stimulus, the checkpoint's sampler), and
* the live engine at its defaults (``StreamEngine``, LIVE_DEFAULTS: 32-frame window, 12-frame horizon, 8 steps),
  the same stimulus pushed ahead,

against the ground truth: the recorded faces of the split's subjects during the BioVid part of their sessions
(``block`` 1), the stimulus the generations get. Patients: the split's subjects' own expressiveness and emotion
(the first ``--patients``), one sample each, ``--seconds`` each.

    python3 benchmarks/check_movement.py [--checkpoint CKPT] [--data corpus_mixed] [--split test] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from painface.data.corpus import open_corpus
from painface.data.windows import subject_emotion
from painface.evaluate.metrics import au_speed
from painface.express import PainDiffusion, make_stimulus
from painface.stream import StreamEngine

BIOVID_BLOCK = 1


def ground_truth(data: str, split: str, patients: int) -> tuple[np.ndarray, list[dict]]:
    """(AU speed of each subject's BioVid part, their settings) for the first ``patients`` subjects of ``split``."""
    corpus = open_corpus(data)
    speeds, who = [], []
    for sid in corpus.ids(split)[:patients]:
        s = corpus.subject(sid)
        block = s.extras["block"] if s.extras and "block" in s.extras else np.full(s.frames, BIOVID_BLOCK)
        face = s.face[block == BIOVID_BLOCK]
        speeds.append(float(au_speed(face[None], corpus.feature_names, corpus.meta["fps"])[0]))
        who.append({"id": sid, "expressiveness": float(s.info["expressiveness"]), "emotion": subject_emotion(s.info)})
    return np.asarray(speeds), who


def live(model: PainDiffusion, stim: np.ndarray, expressiveness: float, emotion: np.ndarray, seed: int,
         **over) -> np.ndarray:
    eng = StreamEngine(model, **over)
    pid = eng.add_patient(expressiveness=expressiveness, emotion=emotion, seed=seed)
    eng.push(pid, stim)
    chunks, frames = [], 0
    while frames < stim.size:
        eng.step()
        c = eng.pull(pid)
        if c is not None:
            chunks.append(c.face)
            frames += len(c)
    return np.concatenate(chunks)[: stim.size]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--data", default="corpus")
    ap.add_argument("--split", default="test")
    ap.add_argument("--patients", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--sampler", default="{}", help="JSON of sampler overrides for both (default: none)")
    args = ap.parse_args()
    over = json.loads(args.sampler)
    torch.set_num_threads(1)
    model = PainDiffusion.load(args.checkpoint)
    gt, who = ground_truth(args.data, args.split, args.patients)
    gen_speed, live_speed = [], []
    t0 = time.time()
    for i, p in enumerate(who):
        stim = make_stimulus("biovid", args.seconds, model.fps, args.seed + i)
        g = np.asarray(model.generate(stim, p["expressiveness"], p["emotion"], seed=args.seed + i, **over))[0]
        gen_speed.append(float(au_speed(g[None], model.feature_names, model.fps)[0]))
        f = live(model, stim, p["expressiveness"], p["emotion"], args.seed + i, **over)
        live_speed.append(float(au_speed(f[None], model.feature_names, model.fps)[0]))
        print(f"{p['id']}: expressiveness {p['expressiveness']:.3f}  gt {gt[i]:.3f}  generate {gen_speed[-1]:.3f}  "
              f"live {live_speed[-1]:.3f} AU/s", flush=True)
    res = {"checkpoint": args.checkpoint or "shipped", "sampler": over, "split": args.split, "patients": len(who),
           "seconds": args.seconds, "gt": float(gt.mean()), "generate": float(np.mean(gen_speed)),
           "live": float(np.mean(live_speed)), "seconds_taken": round(time.time() - t0, 1)}
    res["generate_ratio"], res["live_ratio"] = res["generate"] / res["gt"], res["live"] / res["gt"]
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
