"""The shipped PainDiffusion checkpoint (painface/assets/paindiffusion.safetensors): present, small, loadable
by default, made by the documented run, and listening to its conditions."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from painface.evaluate.control import sequence_measures
from painface.express import SHIPPED, ExtrapolationWarning, PainDiffusion
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
    # the 61 training subjects of the default corpus (`painface simulate`, seed 0)
    assert model.trained_expressiveness == (0.0649, 1.063) and info["corpus"]["expressiveness"]["subjects"] == 61


def test_shipped_checkpoint_responds_to_stimulus_and_expressiveness(model: PainDiffusion) -> None:
    stim = np.zeros(192, np.float32)
    stim[48:] = 1.0  # rest, then the tolerance level held for 5.8 s
    faces = model.generate(np.stack([stim, stim, np.zeros_like(stim)]), [1.0, 0.1, 1.0], "Neutral", samples=4,
                           seed=0, steps=10)
    p = pspi(faces, FEATURE_NAMES)[:, 96:].mean(1).reshape(3, 4).mean(1)  # from 1.9 s after the step on
    expressive, stoic, at_rest = p  # seeds 0, 1, 2 gave (8.0, 0.41, 0.20), (7.0, 0.38, 0.21), (8.2, 0.53, 0.21)
    # (at guidance 0: (1.08, 0.22, 0.15), (0.61, 0.18, 0.16), (1.08, 0.24, 0.19); docs/model.md on guidance)
    assert expressive > at_rest + 2.0  # the stimulus raises PSPI
    assert expressive > stoic + 2.0  # expressiveness raises it too
    assert at_rest < 0.35  # the resting face rests (validation subjects at rest: 0.13)


def test_shipped_checkpoint_does_not_max_out_on_a_long_hold(model: PainDiffusion) -> None:
    """Issue 20: guidance gated by the stimulus's news and context held at sigma 0.1 (docs/model.md) keep a held
    stimulus from being amplified into a maxed-out face; the same weights with the old ungated guidance (1, 2, 4) sit at
    PSPI 12-14."""
    cfg = model.sampler_config()
    assert (cfg.gate, cfg.gate_terms, cfg.guidance, cfg.sigma_context) == (1, "exs", (2.0, 4.0, 8.0), 0.1)
    stim = np.zeros(30 * 25, np.float32)
    stim[125:] = 1.0  # 25 s at the tolerance
    held = pspi(model.generate(stim, 1.0, "Neutral", samples=3, seed=0, steps=10), FEATURE_NAMES)[:, 500:].mean()
    old = pspi(model.generate(stim, 1.0, "Neutral", samples=3, seed=0, steps=10, guidance=(1, 2, 4), gate=0),
               FEATURE_NAMES)[:, 500:].mean()  # 15-25 s after onset; seeds 0, 1 gave 3.5, 2.3 against 12.1, 13.3
    assert held < 5.5 and old > 10.0 and held < 0.5 * old


def test_shipped_checkpoint_moves_like_the_data_not_like_noise(model: PainDiffusion) -> None:
    """Frame-to-frame AU movement of generated faces: the validation subjects move ~5.8 AU/s; the
    4-frames-per-token checkpoint this one replaced moved 50 AU/s (docs/model.md, "Frame stacking")."""
    stim = np.zeros(256, np.float32)
    stim[64:192] = 0.8
    faces = model.generate(stim, 1.0, "Neutral", samples=2, seed=0).codes
    every = np.ones(stim.size, bool)
    moving = sequence_measures(faces, FEATURE_NAMES, 25.0, every)["movement"]
    assert np.all(moving < 20.0), moving
    assert np.all(moving > 1.0), moving  # not frozen either


def test_expressiveness_above_the_trained_range_warns(model: PainDiffusion) -> None:
    stim = np.zeros(16, np.float32)
    with pytest.warns(ExtrapolationWarning, match=r"expressiveness 1.5 lies above .* \(1.063 PSPI"):
        model.generate(np.stack([stim, stim]), [1.0, 1.5], steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.generate(np.stack([stim, stim]), [0.0, 1.063], steps=1)  # inside: silent


def test_shipped_distilled_network_is_the_documented_run_and_follows_its_teacher(model: PainDiffusion) -> None:
    """docs/training.md, "The distilled guided network": distilled from this very checkpoint by `painface distill
    --config configs/distill.json`, loaded by default, and giving what the four guided passes give."""
    from painface.model.distill import guided_path, weights_sha256
    from painface.model.inference import file_sha256

    path = guided_path(SHIPPED)
    assert model.distilled_source == str(path) and path.stat().st_size <= 25 * 2**20
    info = json.loads(path.with_suffix(".json").read_text())["distilled"]
    assert info["teacher_weights_sha256"] == weights_sha256(model.denoiser)
    assert info["teacher_sha256"] == file_sha256(SHIPPED)  # made from the file as shipped
    documented = json.loads((SHIPPED.parents[2] / "configs" / "distill.json").read_text())
    assert {k: info["config"][k] for k in documented} == documented
    assert model.denoiser.distilled.covers(model.sampler.guidance, model.sampler_config(), 1)
    teacher = PainDiffusion.load(distilled=False)
    stim = np.zeros(192, np.float32)
    stim[48:] = 1.0
    batch = np.stack([stim, stim, np.zeros_like(stim)])
    a = pspi(model.generate(batch, [1.0, 0.1, 1.0], samples=4, seed=0, steps=10).codes, FEATURE_NAMES)
    b = pspi(teacher.generate(batch, [1.0, 0.1, 1.0], samples=4, seed=0, steps=10).codes, FEATURE_NAMES)
    a, b = a[:, 96:].mean(1).reshape(3, 4).mean(1), b[:, 96:].mean(1).reshape(3, 4).mean(1)
    # seed 0: (6.61, 0.42, 0.19) vs the teacher's (7.96, 0.41, 0.20); seeds 1-3 gave 4.43 / 6.98, 7.23 / 8.15 and
    # 7.13 / 8.97 on the plateau: the student answers a strong stimulus about 20 % less (docs/model.md)
    assert np.all(np.abs(a - b) < 0.3 * b + 0.3), (a, b)  # expressive, stoic, at rest
    assert a[0] > a[1] + 2.0 and a[0] > a[2] + 2.0
