"""Does a checkpoint listen to its conditions? A quick diagnostic for a training run.

Prints (1) the mean PSPI the denoiser predicts from noisy windows at sigma 1 and 5 with the stimulus held
at 0 and at 1, and (2) generated PSPI in 5 s blocks of the demo stimulus for expressiveness 0.1 and 1.0.
A model that ignores the stimulus shows equal numbers in (1) and blocks that do not follow the stimulus.

    python3 benchmarks/check_conditioning.py runs/shipped/model.safetensors
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from painface.demo import demo_stimulus
from painface.express import PainDiffusion
from painface.face.code import pspi
from painface.model.conditions import Conditions


def main(path: str) -> None:
    torch.set_num_threads(1)
    model = PainDiffusion.load(path)
    den, d = model.denoiser, len(model.feature_names)
    print("checkpoint step", model.info.get("training", {}).get("step"))
    g = torch.Generator().manual_seed(1)
    x, n = torch.randn(8, 64, d, generator=g) * 0.5, torch.randn(8, 64, d, generator=g)
    with torch.no_grad():
        for sigma in (1.0, 5.0):
            out = [
                model.decode(
                    den(x + sigma * n, sigma, Conditions.build(np.full(64, s, np.float32), 1.0, "Neutral", batch=8))
                )
                for s in (0.0, 1.0)
            ]
            print(
                f"sigma {sigma:g}: denoised mean PSPI, stimulus 0: {pspi(out[0]).mean():.2f}, "
                f"stimulus 1: {pspi(out[1]).mean():.2f}"
            )
    stim = demo_stimulus(model.fps, 40.0)
    block = int(5 * model.fps)
    print("stimulus per 5 s block:", [round(float(stim[a : a + block].mean()), 2) for a in range(0, stim.size, block)])
    for expressiveness in (0.1, 1.0):
        ps = pspi(model.generate(stim, expressiveness, "Neutral", samples=2, seed=1))
        print(
            f"PSPI per block, expressiveness {expressiveness:g}:",
            [round(float(ps[:, a : a + block].mean()), 2) for a in range(0, stim.size, block)],
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/shipped/model.safetensors")
