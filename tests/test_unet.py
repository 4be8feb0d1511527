"""The temporal U-Net: config, shapes, conditions, null embeddings, batch independence, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_helpers import TINY, inputs, randomized

from painface.errors import InputError
from painface.face.code import EMOTIONS
from painface.model.conditions import CONDITION_NAMES, Conditions, emotion_vector, null_mask
from painface.model.unet import TemporalUNet, UNetConfig


def test_config_round_trips_through_json() -> None:
    cfg = UNetConfig(channels=32, channel_mults=(1, 2, 2), depth=2, dropout=0.1)
    again = UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.channel_mults == (1, 2, 2)
    assert cfg.frame_multiple == 8  # 2 frames per token x 2^2


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="unknown key"):
        UNetConfig.from_dict({"channels": 32, "width": 3})
    with pytest.raises(InputError, match="divisible"):
        UNetConfig(channels=30)
    with pytest.raises(InputError, match="positive integer"):
        UNetConfig(frames_per_token=0)


def test_default_parameter_count_and_shape() -> None:
    net = TemporalUNet()
    # documented in docs/model.md: 2.2 M parameters for the 20-feature FACS code (paper: 5.4 M)
    assert 2.0e6 < net.parameter_count() < 2.4e6
    x, c_noise, cond = inputs(2, 64, 20)
    with torch.no_grad():
        out = net(x, c_noise, cond)
    assert out.shape == (2, 64, 20)
    assert torch.count_nonzero(out) == 0  # zero-initialized output layer: F = 0 at init


def test_output_depends_on_each_condition_unless_it_is_nulled() -> None:
    net = randomized(UNetConfig(**TINY))
    x, c_noise, cond = inputs()
    other = {
        "emotion": Conditions(cond.stimulus, cond.expressiveness, cond.emotion.flip(-1)),
        "expressiveness": Conditions(cond.stimulus, cond.expressiveness + 3.0, cond.emotion),
        "stimulus": Conditions(1.0 - cond.stimulus, cond.expressiveness, cond.emotion),
    }
    with torch.no_grad():
        for name, changed in other.items():
            keep = null_mask(3)
            assert not torch.allclose(net(x, c_noise, cond, keep), net(x, c_noise, changed, keep), atol=1e-4), name
            drop = null_mask(3, [name])
            torch.testing.assert_close(net(x, c_noise, cond, drop), net(x, c_noise, changed, drop))


def test_null_mask_acts_per_sample() -> None:
    net = randomized(UNetConfig(**TINY))
    x, c_noise, cond = inputs()
    drop = torch.zeros(3, 3, dtype=torch.bool)
    drop[1, CONDITION_NAMES.index("stimulus")] = True
    with torch.no_grad():
        mixed = net(x, c_noise, cond, drop)
        plain = net(x, c_noise, cond)
        nulled = net(x, c_noise, cond, null_mask(3, ["stimulus"]))
    torch.testing.assert_close(mixed[[0, 2]], plain[[0, 2]])
    torch.testing.assert_close(mixed[1], nulled[1])


def test_batch_rows_are_independent() -> None:
    net = randomized(UNetConfig(**TINY))
    x, c_noise, cond = inputs(4)
    with torch.no_grad():
        together = net(x, c_noise, cond)
        for i in range(4):
            alone = net(x[i:i + 1], c_noise[i:i + 1], Conditions(cond.stimulus[i:i + 1], cond.expressiveness[i:i + 1],
                                                                  cond.emotion[i:i + 1]))
            torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-4)


def test_each_frame_sees_its_own_noise_level() -> None:
    """Swapping the noise levels of two frames of the same token keeps every per-token summary (mean,
    sum, set of levels) but changes which frame is how noisy: a network that averaged the levels of a
    token would give the same output, one that embeds each frame's level does not."""
    net = randomized(UNetConfig(**TINY))
    x, c_noise, cond = inputs(1)
    c_noise[0, 0], c_noise[0, 1] = -1.0, 1.0  # two frames of the first token, clearly different levels
    swapped = c_noise.clone()
    swapped[0, 0], swapped[0, 1] = c_noise[0, 1], c_noise[0, 0]
    assert torch.equal(swapped[0, :4].sort().values, c_noise[0, :4].sort().values)
    with torch.no_grad():
        a, b = net(x, c_noise, cond), net(x, swapped, cond)
    assert not torch.allclose(a[0, :2], b[0, :2], atol=1e-4)


def test_emotion_blend_and_names() -> None:
    blend = emotion_vector({"Fear": 1.0, "sadness": 3.0})
    assert blend[EMOTIONS.index("Fear")] == pytest.approx(0.25)
    assert blend[EMOTIONS.index("Sadness")] == pytest.approx(0.75)
    assert emotion_vector("neutral").argmax() == EMOTIONS.index("Neutral")
    with pytest.raises(InputError, match="unknown emotion 'Pain'"):
        emotion_vector("Pain")
    cond = Conditions.build(np.zeros(8), [1.0, 2.0], "Anger")
    assert cond.batch == 2 and cond.emotion[1, 0] == 1.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda x, c, s: (x[:, :14], c[:, :14], s.frames_slice(0, 14)), "multiple of 4"),
        (lambda x, c, s: (x[..., :5], c, s), r"\[batch, frames, 6\]"),
        (lambda x, c, s: (x, c, s.frames_slice(0, 8)), "stimulus: expected shape"),
        (lambda x, c, s: (x, c[:, :8], s), "c_noise"),
    ],
)
def test_bad_shapes_raise_input_error(change, message) -> None:
    net = TemporalUNet(UNetConfig(**TINY))
    x, c, s = change(*inputs())
    with pytest.raises(InputError, match=message):
        net(x, c, s)


def test_bad_condition_values_raise_input_error() -> None:
    _, _, cond = inputs()
    stim = cond.stimulus.clone()
    stim[0, 3] = float("nan")
    with pytest.raises(InputError, match="stimulus: contains NaN"):
        Conditions(stim, cond.expressiveness, cond.emotion)
    with pytest.raises(InputError, match="expressiveness.*out of range"):
        Conditions(cond.stimulus, cond.expressiveness - 10, cond.emotion)
    with pytest.raises(InputError, match="emotion: expected width 8"):
        Conditions(cond.stimulus, cond.expressiveness, cond.emotion[:, :7])
    with pytest.raises(InputError, match="sum to 1"):
        Conditions(cond.stimulus, cond.expressiveness, 2 * cond.emotion)
    with pytest.raises(InputError, match="null mask"):
        TemporalUNet(UNetConfig(**TINY))(*inputs(), torch.zeros(3, 2, dtype=torch.bool))
