"""Frame-to-frame jitter of a checkpoint, against the data.

Movement = total AU change per second: the sum over the 17 AUs of |x[t+1] - x[t]|, times the frame rate,
averaged over frames. Prints it for (1) a validation subject's face, (2) the denoiser's output for that face
plus Gaussian noise at several sigma (model units; data std 0.5): a good denoiser returns close to the data's
movement at every sigma, and (3) sequences generated on the demo stimulus.

    python3 benchmarks/check_jitter.py [--checkpoint PATH] [--data corpus]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from painface.data.corpus import open_corpus
from painface.data.windows import subject_emotion as emotion_vector
from painface.demo import demo_stimulus
from painface.evaluate.control import sequence_measures
from painface.express import PainDiffusion
from painface.face.code import FEATURE_NAMES, pspi
from painface.model.conditions import Conditions

FPS = 25.0


def movement(faces: np.ndarray) -> float:
    """Mean total AU movement in AU intensity units per second over ``faces [N, T, D]``."""
    every = np.ones(faces.shape[1], bool)
    return float(sequence_measures(faces, FEATURE_NAMES, FPS, every)["movement"].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default=None, help="default: the shipped one")
    ap.add_argument("--data", default="corpus", help="corpus folder with validation subjects")
    ap.add_argument("--samples", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = PainDiffusion.load(args.checkpoint)
    den = model.denoiser.eval()
    corpus = open_corpus(args.data)
    subject = corpus.subject(corpus.ids("val")[0])
    start, n, t = 9000, 8, 64
    faces = subject.face[start:start + n * t].reshape(n, t, -1)
    stim = subject.stimulus[start:start + n * t].reshape(n, t)
    emotion = np.repeat(emotion_vector(subject.info)[None], n, axis=0)
    cond = Conditions.build(stim, np.full(n, subject.info["expressiveness"], np.float32), emotion, batch=n)
    x0 = model.encode(faces)
    g = torch.Generator().manual_seed(0)
    print(f"validation subject {subject.info.get('id', '')}: movement {movement(faces):.1f} AU/s")
    print("| sigma | noisy input (AU/s) | denoiser output (AU/s) |\n|---:|---:|---:|")
    with torch.no_grad():
        for sigma in (0.02, 0.05, 0.2, 0.5, 1.0, 3.0):
            noisy = x0 + sigma * torch.randn(x0.shape, generator=g)
            out = model.decode(den(noisy, sigma, cond))
            print(f"| {sigma:g} | {movement(model.decode(noisy)):.1f} | {movement(out):.1f} |")
    stimulus = demo_stimulus(FPS, 40.0)
    gen = model.generate(stimulus, 1.0, "Neutral", samples=args.samples, seed=0).codes
    rest = stimulus < 0.05
    print(f"generated, demo stimulus, {args.samples} samples: movement {movement(gen):.1f} AU/s, "
          f"PSPI where the stimulus is < 0.05: {pspi(gen, FEATURE_NAMES)[..., rest].mean():.2f} "
          f"(validation subject at rest: {pspi(subject.face, FEATURE_NAMES)[subject.stimulus < 0.05].mean():.2f})")


if __name__ == "__main__":
    main()
