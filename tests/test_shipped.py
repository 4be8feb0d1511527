"""The shipped PainDiffusion checkpoint (painface/assets/paindiffusion.safetensors): present, small, loadable
by default, made by the documented run, and listening to its conditions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from painface.express import SHIPPED, PainDiffusion
from painface.face.code import FEATURE_NAMES, pspi


@pytest.fixture(scope="module")
def model() -> PainDiffusion:
    return PainDiffusion.load()


def test_shipped_checkpoint_is_in_the_package_and_small() -> None:
    assert SHIPPED.is_file() and SHIPPED.with_suffix(".json").is_file()
    assert SHIPPED.stat().st_size <= 25 * 2**20


def test_shipped_checkpoint_is_the_documented_run(model: PainDiffusion) -> None:
    info = model.info
    assert info["training"]["step"] == info["training"]["steps"] == 12000
    assert info["training"]["batch_size"] == 32 and info["training"]["seed"] == 0
    assert info["corpus"]["fps"] == 25 and list(info["corpus"]["feature_names"]) == list(FEATURE_NAMES)
    assert json.loads(SHIPPED.with_suffix(".json").read_text())  # plain JSON next to the weights


def test_shipped_checkpoint_responds_to_stimulus_and_expressiveness(model: PainDiffusion) -> None:
    stim = np.zeros(192, np.float32)
    stim[48:] = 1.0  # rest, then the tolerance level held for 5.8 s
    faces = model.generate(np.stack([stim, stim, np.zeros_like(stim)]), [1.0, 0.1, 1.0], "Neutral", samples=4,
                           seed=0, steps=10)
    p = pspi(faces, FEATURE_NAMES)[:, 96:].mean(1).reshape(3, 4).mean(1)  # from 1.9 s after the step on
    expressive, stoic, at_rest = p  # seeds 0, 1, 2 gave (5.7, 0.74, 0.59), (2.7, 0.59, 0.54), (3.3, 0.66, 0.54)
    assert expressive > at_rest + 1.0  # the stimulus raises PSPI
    assert expressive > stoic + 1.0  # expressiveness raises it too
