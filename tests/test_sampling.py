"""Sampling: Karras schedule, DPM++ 2M per frame, scheduling matrices, exact-Gaussian checks, rolling."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from model_helpers import randomized

from painface.errors import InputError
from painface.model.conditions import Conditions
from painface.model.edm import Denoiser, guided_denoiser
from painface.model.sampling import (
    RollingSampler,
    SamplerConfig,
    dpmpp_2m_step,
    full_sequence_matrix,
    generate,
    hold_clean_frames,
    karras_sigmas,
    pyramid_matrix,
    sample_dpmpp_2m,
)
from painface.model.unet import TemporalUNet, UNetConfig

TINY = dict(feature_dim=4, channels=16, cond_dim=16, heads=2, noise_dim=8)
MU = torch.tensor([-1.0, 0.0, 0.5, 1.0])  # small: samplers start at mean 0, off by mu * sd / sigma_max
SD = torch.tensor([0.3, 0.5, 1.0, 2.0])




def gaussian_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The exact denoiser of data ~ N(MU, SD^2) per feature, independent over frames:
    E[x0 | x] = mu + sd^2 / (sd^2 + s^2) (x - mu)."""
    s2 = sigma[..., None] ** 2
    return MU + SD**2 / (SD**2 + s2) * (x - MU)


class GaussianDenoiser(Denoiser):
    """A Denoiser whose prediction is the exact Gaussian one, whatever the conditions (guidance is then a no-op)."""

    def __init__(self) -> None:
        super().__init__(TemporalUNet(UNetConfig(**TINY)))

    def forward(self, x, sigma, cond, drop=None):
        assert cond.stimulus.shape == x.shape[:2] and x.shape[1] == 16
        return gaussian_denoiser(x, sigma)


def check_gaussian(samples: torch.Tensor) -> None:
    flat = samples.reshape(-1, samples.shape[-1])
    n = flat.shape[0]
    assert ((flat.mean(0) - MU).abs() < 4 * SD / math.sqrt(n)).all(), flat.mean(0)
    np.testing.assert_allclose(flat.std(0).numpy(), SD.numpy(), rtol=0.04)


def test_karras_schedule() -> None:
    s = karras_sigmas(20)
    assert s.shape == (21,) and s[-1] == 0
    assert s[0].item() == pytest.approx(80.0) and s[-2].item() == pytest.approx(0.002)
    assert (s[1:] < s[:-1]).all()
    i = 7  # EDM eq. 5
    ref = (80 ** (1 / 7) + i / 19 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert s[i].item() == pytest.approx(ref, rel=1e-5)


def test_scheduling_matrices() -> None:
    full = full_sequence_matrix(5, 8)
    assert full.shape == (6, 8)
    assert (full == torch.arange(6)[:, None]).all()
    assert torch.equal(pyramid_matrix(5, 8, 0.0), full)
    m = pyramid_matrix(3, 6, 1.5, frames_per_token=2)  # tokens 0,0,1,1,2,2; delays 0,1,3
    expected = 3 - np.clip(3 + np.array([0, 0, 1, 1, 3, 3])[None, :] - np.arange(7)[:, None], 0, 3)
    np.testing.assert_array_equal(m.numpy(), expected)
    assert (m[0] == 0).all() and (m[-1] == 3).all() and (m[1:] >= m[:-1]).all()


def test_2m_uniform_step_equals_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    x, d1, d2 = (torch.randn(2, 8, 3, generator=g, dtype=torch.float64) for _ in range(3))
    s0, s1, s2 = 10.0, 4.0, 1.5
    ones = torch.ones(2, 8, dtype=torch.float64)
    state = (torch.zeros_like(x), torch.zeros_like(ones), torch.zeros_like(ones, dtype=torch.bool))
    x1, *state = dpmpp_2m_step(x, d1, s0 * ones, s1 * ones, *state)
    torch.testing.assert_close(x1, (s1 / s0) * x + (1 - s1 / s0) * d1)  # first step: first order
    x2, *state = dpmpp_2m_step(x1, d2, s1 * ones, s2 * ones, *state)
    h_prev, h = math.log(s0 / s1), math.log(s1 / s2)
    r = h_prev / h
    d_prime = (1 + 1 / (2 * r)) * d2 - 1 / (2 * r) * d1
    torch.testing.assert_close(x2, (s2 / s1) * x1 - math.expm1(-h) * d_prime)
    x3, *_ = dpmpp_2m_step(x2, d1, s2 * ones, 0 * ones, *state)  # to sigma 0: first order, x = D
    torch.testing.assert_close(x3, d1)


def reference_2m(x: np.ndarray, sigmas: np.ndarray, denoise) -> np.ndarray:
    """Scalar per-frame DPM++ 2M: each frame keeps its own history; frames not moving are skipped."""
    x = x.copy()
    old, h_old = {}, {}
    for i in range(sigmas.shape[0] - 1):
        if not (sigmas[i + 1] < sigmas[i]).any():
            continue
        d = denoise(x, sigmas[i])
        for t in range(x.shape[1]):
            s, sn = sigmas[i, t], sigmas[i + 1, t]
            if sn == s:
                continue
            if sn == 0:
                x[:, t] = d[:, t]
                continue
            h = math.log(s / sn)
            dd = d[:, t]
            if t in old:
                r = h_old[t] / h
                dd = (1 + 1 / (2 * r)) * d[:, t] - 1 / (2 * r) * old[t]
            x[:, t] = sn / s * x[:, t] - math.expm1(-h) * dd
            old[t], h_old[t] = d[:, t].copy(), h
    return x


def test_per_frame_schedule_matches_scalar_reference() -> None:
    sig = karras_sigmas(6).double()
    idx = pyramid_matrix(6, 8, 1.0, frames_per_token=2)
    sigmas = sig[idx]
    sigmas[:, :2] = 0.0  # two clean context frames that never move
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 8, 4, generator=g, dtype=torch.float64) * sigmas[0][None, :, None]
    ctx = x[:, :2].clone()

    def denoise(xx, s):
        xt = torch.as_tensor(xx)
        return (torch.tanh(xt) * 0.7 + 0.1 * xt.roll(1, dims=1)) / (1 + torch.as_tensor(s)[None, :, None])

    def model(xx, s):
        return denoise(xx, s[0])

    out = sample_dpmpp_2m(model, x, sigmas)
    ref = reference_2m(x.numpy(), sigmas.numpy(), lambda xx, s: denoise(xx, s).numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out[:, :2], ctx)  # untouched


# 50 steps: at 20, DPM++ 2M's discretization error alone inflates this Gaussian's std by 3-6 % (docs/model.md)
@pytest.mark.parametrize("uncertainty", [0.0, 2.0])
def test_exact_gaussian_denoiser_reproduces_the_distribution(uncertainty: float) -> None:
    g = torch.Generator().manual_seed(2)
    sigmas = karras_sigmas(50)[pyramid_matrix(50, 64, uncertainty, frames_per_token=4)]
    x = MU + 80.0 * torch.randn(64, 64, 4, generator=g)
    check_gaussian(sample_dpmpp_2m(gaussian_denoiser, x, sigmas))


@pytest.mark.parametrize("schedule", ["full", "pyramid"])
def test_rolling_sampler_with_exact_gaussian_denoiser(schedule: str) -> None:
    cfg = SamplerConfig(steps=50, window=16, horizon=12, schedule=schedule, uncertainty=1.0)
    out = generate(GaussianDenoiser(), torch.zeros(64, 70), 1.0, "Neutral", neutral=torch.zeros(4), config=cfg,
                   generator=torch.Generator().manual_seed(3))
    assert out.shape == (64, 70, 4)
    check_gaussian(out)


def test_hold_clean_frames_shows_them_at_the_context_level() -> None:
    seen = {}

    def spy(x, sigma):
        seen["x"], seen["sigma"] = x.clone(), sigma.clone()
        return torch.full_like(x, 7.0)

    x, noise = torch.ones(1, 4, 2), torch.full((1, 4, 2), 2.0)
    sigma = torch.tensor([[0.0, 0.0, 3.0, 5.0]])
    out = hold_clean_frames(spy, 0.02, noise)(x, sigma)
    torch.testing.assert_close(seen["sigma"], torch.tensor([[0.02, 0.02, 3.0, 5.0]]))
    torch.testing.assert_close(seen["x"][0, :, 0], torch.tensor([1.04, 1.04, 1.0, 1.0]))
    torch.testing.assert_close(out[0, :, 0], torch.tensor([1.0, 1.0, 7.0, 7.0]))


def randomized_denoiser(seed: int = 0) -> Denoiser:
    return Denoiser(randomized(UNetConfig(**TINY), seed)).eval()


def test_guided_sampling_of_a_batch_equals_each_alone() -> None:
    den = randomized_denoiser()
    g = torch.Generator().manual_seed(4)
    cond = Conditions.build(torch.rand(3, 16, generator=g), [0.5, 2.0, 4.0], np.eye(8)[[0, 3, 6]])
    x = 80.0 * torch.randn(3, 16, 4, generator=g)
    sigmas = karras_sigmas(8)[pyramid_matrix(8, 16, 1.0, 4)]
    with torch.no_grad():
        together = sample_dpmpp_2m(guided_denoiser(den, cond), x, sigmas)
        for i in range(3):
            one = Conditions(cond.stimulus[i:i + 1], cond.expressiveness[i:i + 1], cond.emotion[i:i + 1])
            alone = sample_dpmpp_2m(guided_denoiser(den, one), x[i:i + 1], sigmas)
            torch.testing.assert_close(together[i:i + 1], alone, atol=1e-4, rtol=1e-4)


def test_rolling_sampler_steps_carry_context_and_are_reproducible() -> None:
    den = randomized_denoiser()
    cfg = SamplerConfig(steps=4, window=16, horizon=8)
    ctx = torch.randn(2, 8, 4, generator=torch.Generator().manual_seed(5))

    def run() -> list[torch.Tensor]:
        sampler = RollingSampler(den, [1.0, 3.0], "Fear", context=ctx, config=cfg,
                                 generator=torch.Generator().manual_seed(6))
        first = sampler.step(torch.zeros(2, 8))
        assert torch.equal(sampler.context, first)  # horizon == context: the new frames become the context
        return [first, sampler.step(torch.ones(8))]

    a, b = run(), run()
    whole = RollingSampler(den, [1.0, 3.0], "Fear", context=ctx, config=cfg, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(whole.step(torch.zeros(2, 16)), a[0])  # the whole window's stimulus, same result
    assert a[0].shape == (2, 8, 4) and torch.isfinite(a[1]).all()
    torch.testing.assert_close(a, b)
    assert den.training is False
    cold = RollingSampler(den, 1.0, "Neutral", neutral=torch.zeros(4), config=cfg, batch=3)
    assert cold.context.shape == (3, 8, 4) and not cold.context.any()


def test_sampler_config_round_trips() -> None:
    cfg = SamplerConfig(schedule="pyramid", uncertainty=2.0, guidance=(0.0, 1.0, 3.0))
    assert SamplerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    sig = SamplerConfig(steps=5, window=16, horizon=12).window_sigmas(4)
    assert sig.shape == (6, 16) and (sig[:, :4] == 0).all() and (sig[0, 4:] == 80.0).all() and (sig[-1] == 0).all()


def test_bad_sampling_input_raises_input_error() -> None:
    den = randomized_denoiser()
    with pytest.raises(InputError, match="horizon"):
        SamplerConfig(window=16, horizon=16)
    with pytest.raises(InputError, match="schedule"):
        SamplerConfig(schedule="zigzag")
    with pytest.raises(InputError, match="window: 22 frames"):
        RollingSampler(den, 1.0, "Neutral", neutral=torch.zeros(4), config=SamplerConfig(window=22, horizon=12))
    sampler = RollingSampler(den, 1.0, "Neutral", neutral=torch.zeros(4), config=SamplerConfig(window=16, horizon=8))
    with pytest.raises(InputError, match=r"stimulus: expected shape \[1, 8\] \(the next horizon frames\) or \[1, 16\]"):
        sampler.step(torch.zeros(1, 7))
    with pytest.raises(InputError, match="stimulus: contains NaN"):
        generate(den, [0.0, float("nan")], 1.0, "Neutral", neutral=torch.zeros(4))
    with pytest.raises(InputError, match="neutral: expected shape"):
        RollingSampler(den, 1.0, "Neutral", neutral=torch.zeros(5))
    with pytest.raises(InputError, match="exactly one"):
        RollingSampler(den, 1.0, "Neutral")
    with pytest.raises(InputError, match="unknown emotion"):
        RollingSampler(den, 1.0, "Agony", neutral=torch.zeros(4))
    with pytest.raises(InputError, match="expressiveness"):
        RollingSampler(den, 20.0, "Neutral", neutral=torch.zeros(4))
    with pytest.raises(InputError, match="increases"):
        sample_dpmpp_2m(lambda x, s: x, torch.zeros(1, 4, 4), torch.tensor([1.0, 2.0, 0.0]))


def test_smoothing_is_a_causal_low_pass_from_the_last_context_frame() -> None:
    from scipy.signal import lfilter

    from painface.model.sampling import denoise_window, lowpass

    g = torch.Generator().manual_seed(0)
    x, start = torch.randn(2, 12, 3, generator=g), torch.randn(2, 3, generator=g)
    a = math.exp(-1 / 2.5)
    want, _ = lfilter([1 - a], [1, -a], x.numpy(), axis=1, zi=a * start.numpy()[:, None, :])
    np.testing.assert_allclose(lowpass(x, start, 2.5).numpy(), want, atol=1e-6)
    den = randomized_denoiser()
    ctx = torch.randn(2, 8, 4, generator=g)
    cond = Conditions(torch.rand(2, 16, generator=g), torch.ones(2), torch.full((2, 8), 1 / 8))
    eps = torch.randn(2, 2, 16, 4, generator=g)
    plain_cfg, smooth_cfg = SamplerConfig(steps=3, window=16, horizon=8), SamplerConfig(steps=3, window=16, horizon=8,
                                                                                      smooth=2.0)
    raw = denoise_window(den, ctx, cond, (1, 1, 1), eps, plain_cfg.window_sigmas(2), plain_cfg)
    smooth = denoise_window(den, ctx, cond, (1, 1, 1), eps, smooth_cfg.window_sigmas(2), smooth_cfg)
    torch.testing.assert_close(smooth[:, :8], raw[:, :8])
    torch.testing.assert_close(smooth[:, 8:], lowpass(raw[:, 8:], ctx[:, -1], 2.0))
    speed = lambda v: (v[:, 1:] - v[:, :-1]).abs().mean()  # noqa: E731
    assert speed(smooth[:, 8:]) < 0.7 * speed(raw[:, 8:])
    assert SamplerConfig.from_dict({"steps": 3}).smooth == 0.0  # older checkpoints: no smoothing
    with pytest.raises(InputError, match="smooth"):
        SamplerConfig(smooth=-1.0)
