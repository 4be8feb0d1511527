"""Every generator obeys painface.baselines.Generator: the attributes, a generate() that accepts the
protocol's arguments, and its output contract (shape [P * samples, L, D], float32, reproducible)."""

import inspect

import numpy as np
import pytest
import torch

from painface.baselines import Generator


def _shipped(name):
    if name == "paindiffusion":
        from painface.express import PainDiffusion

        return PainDiffusion.load()
    from painface.baselines.fsq import FsqAR

    return FsqAR.load()


@pytest.mark.parametrize("name", ["paindiffusion", "fsq_ar"])
def test_shipped_generators_obey_the_protocol(name):
    torch.set_num_threads(1)
    model = _shipped(name)
    assert isinstance(model, Generator)
    params = inspect.signature(model.generate).parameters
    for arg in ("stimulus", "expressiveness", "emotion", "samples", "seed", "context"):
        assert arg in params, f"{name}.generate lacks {arg}"
    stim = np.stack([np.linspace(0, 1, 48), np.zeros(48)]).astype(np.float32)  # two patients, 48 frames
    kw = {"steps": 4} if name == "paindiffusion" else {}
    out = np.asarray(model.generate(stim, [0.5, 1.0], "Neutral", samples=2, seed=1, **kw))  # a Generation too
    assert out.shape == (4, 48, len(model.feature_names)) and out.dtype == np.float32
    again = np.asarray(model.generate(stim, [0.5, 1.0], "Neutral", samples=2, seed=1, **kw))
    np.testing.assert_array_equal(out, again)
    assert model.fps == 25.0


def test_an_object_without_generate_is_not_a_generator():
    class NoGenerate:
        fps = 25.0
        feature_names = ("AU4",)

    assert not isinstance(NoGenerate(), Generator)
