"""Per-frame EDM: preconditioning, loss weight, training noise, null-mask path, guidance, overfitting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_helpers import TINY, inputs, randomized
from torch import nn

from painface.errors import InputError
from painface.model.conditions import CONDITION_NAMES, Conditions, drop_mask, null_mask
from painface.model.edm import (
    Denoiser,
    EDMConfig,
    guided_denoiser,
    loss_weight,
    precondition,
    sample_training_sigmas,
    training_loss,
)
from painface.model.unet import TemporalUNet, UNetConfig


class Recorder(nn.Module):
    """A stand-in network: returns a fixed F and remembers what it was given."""

    def __init__(self, f: torch.Tensor) -> None:
        super().__init__()
        self.f = f
        self.config = UNetConfig(**TINY)

    def forward(self, x, c_noise, cond, drop=None):
        self.seen = (x, c_noise, drop)
        return self.f


def test_preconditioning_matches_edm_formulas_per_frame() -> None:
    sigma = torch.tensor([[0.002, 0.1, 0.5, 3.0], [80.0, 1.0, 0.02, 7.0]], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = precondition(sigma, 0.5)
    s = sigma.numpy()
    np.testing.assert_allclose(c_skip.numpy(), 0.25 / (s**2 + 0.25))
    np.testing.assert_allclose(c_out.numpy(), s * 0.5 / np.sqrt(s**2 + 0.25))
    np.testing.assert_allclose(c_in.numpy(), 1 / np.sqrt(s**2 + 0.25))
    np.testing.assert_allclose(c_noise.numpy(), np.log(s) / 4)
    # sigma = 0 (a finished frame): D = x exactly, c_noise finite at the floor
    c_skip0, c_out0, _, c_noise0 = precondition(torch.zeros(1), 0.5, sigma_floor=0.002)
    assert c_skip0.item() == 1.0 and c_out0.item() == 0.0 and c_noise0.item() == pytest.approx(np.log(0.002) / 4)


def test_denoiser_applies_preconditioning_frame_by_frame() -> None:
    g = torch.Generator().manual_seed(0)
    x, f = torch.randn(2, 16, 6, generator=g), torch.randn(2, 16, 6, generator=g)
    sigma = torch.exp(torch.randn(2, 16, generator=g))
    rec = Recorder(f)
    out = Denoiser(rec, sigma_data=0.5)(x, sigma, inputs(2)[2])
    c_skip, c_out, c_in, c_noise = precondition(sigma, 0.5)
    torch.testing.assert_close(out, c_skip[..., None] * x + c_out[..., None] * f)
    torch.testing.assert_close(rec.seen[0], c_in[..., None] * x)
    torch.testing.assert_close(rec.seen[1], c_noise)


def test_loss_weight_is_applied_per_frame() -> None:
    g = torch.Generator().manual_seed(1)
    x0, noise, f = (torch.randn(2, 16, 6, generator=g) for _ in range(3))
    sigma = torch.exp(2 * torch.randn(2, 16, generator=g))
    den = Denoiser(Recorder(f))
    loss = den.loss(x0, inputs(2)[2], sigma, noise)
    assert loss.shape == (2, 16)
    d = den(x0 + sigma[..., None] * noise, sigma, inputs(2)[2])
    expected = (sigma**2 + 0.25) / (sigma * 0.5) ** 2 * (d - x0).square().mean(-1)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(loss_weight(sigma), (sigma**2 + 0.25) / (0.25 * sigma**2))
    # the authors' batch-mean weight gives a different objective
    batch_mean = loss_weight(sigma.mean()) * (d - x0).square().mean(-1)
    assert not torch.allclose(loss.mean(), batch_mean.mean(), rtol=1e-2)


def test_velocity_term_charges_frame_to_frame_error_at_the_noisier_frames_weight() -> None:
    g = torch.Generator().manual_seed(4)
    x0, noise, f = (torch.randn(2, 16, 6, generator=g) for _ in range(3))
    sigma = torch.exp(torch.randn(2, 16, generator=g))
    den = Denoiser(Recorder(f))
    plain, with_vel = den.loss(x0, inputs(2)[2], sigma, noise), den.loss(x0, inputs(2)[2], sigma, noise, velocity=0.5)
    err = den(x0 + sigma[..., None] * noise, sigma, inputs(2)[2]) - x0
    w = loss_weight(sigma)
    vel = torch.minimum(w[:, 1:], w[:, :-1]) * (err[:, 1:] - err[:, :-1]).square().mean(-1)
    torch.testing.assert_close(with_vel[:, :-1], plain[:, :-1] + 0.5 * vel)
    torch.testing.assert_close(with_vel[:, -1], plain[:, -1])
    # an error constant over time costs nothing extra; one that flips sign every frame costs 4x its square
    sigma1, x1 = torch.ones(1, 8), torch.zeros(1, 8, 3)
    c_skip, c_out, c_in, _ = precondition(sigma1, 0.5)
    for pattern, extra in ((torch.ones(8), 0.0), (torch.tensor([1.0, -1.0] * 4), 4.0)):
        target = 0.1 * pattern[None, :, None].expand(1, 8, 3)  # wanted error D - x0 with zero noise
        d = Denoiser(Recorder((target - c_skip[..., None] * x1) / c_out[..., None]))
        base = d.loss(x1, inputs(1)[2], sigma1, torch.zeros_like(x1))
        out = d.loss(x1, inputs(1)[2], sigma1, torch.zeros_like(x1), velocity=1.0)
        torch.testing.assert_close(out[:, :-1], base[:, :-1] * (1 + extra))


def test_training_sigmas_are_lognormal_per_frame_with_context() -> None:
    g = torch.Generator().manual_seed(2)
    cfg = EDMConfig(p_context=0.0, p_uniform=0.0)
    log_s = sample_training_sigmas(400, 64, cfg, g).log()
    assert log_s.mean().item() == pytest.approx(cfg.p_mean, abs=0.02)
    assert log_s.std().item() == pytest.approx(cfg.p_std, abs=0.02)
    assert (log_s.std(dim=1) > 0.5).all()  # independent levels within each window
    cfg = EDMConfig(p_context=0.3, context_frames=16, sigma_context=0.02)
    s = sample_training_sigmas(2000, 64, cfg, g)
    held = (s[:, :16] == 0.02).all(dim=1)
    assert held.float().mean().item() == pytest.approx(0.3, abs=0.04)
    assert not (s[:, 16:] == 0.02).any()
    cfg = EDMConfig(p_context=0.0, p_uniform=0.4)
    s = sample_training_sigmas(2000, 64, cfg, g)
    shared = (s == s[:, :1]).all(dim=1)
    assert shared.float().mean().item() == pytest.approx(0.4, abs=0.04)
    assert s[shared, 0].log().mean().item() == pytest.approx(cfg.p_mean, abs=0.1)  # still log-normal


def test_training_drop_and_sampling_null_use_the_same_path() -> None:
    net = randomized(UNetConfig(**TINY))
    den = Denoiser(net).eval()
    x, _, cond = inputs(6, seed=3)
    sigma = torch.full((6, 16), 0.7)
    mask = drop_mask(6, p=0.5, generator=torch.Generator().manual_seed(4))
    assert mask.any() and not mask.all()
    # the same mask through the training loss and through a direct (sampling) call
    noise = torch.zeros_like(x)
    with torch.no_grad():
        train = den.loss(x, cond, sigma, noise, mask)
        direct = den(x, sigma, cond, mask)
    torch.testing.assert_close(train, loss_weight(sigma) * (direct - x).square().mean(-1))
    # guidance's "without stimulus" pass is a call with null_mask(["stimulus"]): one strength 1 gives 2 D(C) - D(C\s)
    with torch.no_grad():
        guided = guided_denoiser(den, cond, (0.0, 0.0, 1.0))(x, sigma)
        manual = 2 * den(x, sigma, cond) - den(x, sigma, cond, null_mask(6, ["stimulus"]))
    torch.testing.assert_close(guided, manual, atol=1e-5, rtol=1e-4)


def test_guidance_zero_is_conditional_and_formula_holds() -> None:
    den = Denoiser(randomized(UNetConfig(**TINY))).eval()
    x, _, cond = inputs(3, seed=5)
    sigma = torch.exp(torch.randn(3, 16, generator=torch.Generator().manual_seed(6)))
    strengths = (0.5, 1.0, 2.0)
    with torch.no_grad():
        torch.testing.assert_close(guided_denoiser(den, cond, (0, 0, 0))(x, sigma), den(x, sigma, cond))
        got = guided_denoiser(den, cond, strengths)(x, sigma)
        want = (1 + sum(strengths)) * den(x, sigma, cond)
        for name, strength in zip(CONDITION_NAMES, strengths, strict=True):
            want = want - strength * den(x, sigma, cond, null_mask(3, [name]))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_guided_batch_gives_each_sample_its_own_result() -> None:
    den = Denoiser(randomized(UNetConfig(**TINY))).eval()
    x, _, cond = inputs(3, seed=7)
    sigma = torch.exp(torch.randn(3, 16, generator=torch.Generator().manual_seed(8)))
    with torch.no_grad():
        together = guided_denoiser(den, cond, (0.5, 1.0, 2.0))(x, sigma)
        for i in range(3):
            one = Conditions(cond.stimulus[i:i + 1], cond.expressiveness[i:i + 1], cond.emotion[i:i + 1])
            alone = guided_denoiser(den, one, (0.5, 1.0, 2.0))(x[i:i + 1], sigma[i:i + 1])
            torch.testing.assert_close(together[i:i + 1], alone, atol=1e-5, rtol=1e-4)


def test_per_row_guidance_strengths() -> None:
    """One row of strengths per sequence (the live engine's patients): identical rows give exactly the result of
    the three numbers; each row of a mixed batch gets its own strengths' result, and a row with strength 0 for a
    condition gets nothing from the pass another row needs."""
    den = Denoiser(randomized(UNetConfig(**TINY))).eval()
    x, _, cond = inputs(3, seed=9)
    sigma = torch.exp(torch.randn(3, 16, generator=torch.Generator().manual_seed(10)))
    rows = torch.tensor([[0.5, 1.0, 2.0], [0.0, 0.0, 0.0], [0.0, 3.0, 0.25]])
    with torch.no_grad():
        uniform = guided_denoiser(den, cond, (0.5, 1.0, 2.0))(x, sigma)
        assert torch.equal(guided_denoiser(den, cond, rows[0].expand(3, 3))(x, sigma), uniform)
        mixed = guided_denoiser(den, cond, rows)(x, sigma)
        for i in range(3):
            one = Conditions(cond.stimulus[i:i + 1], cond.expressiveness[i:i + 1], cond.emotion[i:i + 1])
            alone = guided_denoiser(den, one, rows[i].tolist())(x[i:i + 1], sigma[i:i + 1])
            torch.testing.assert_close(mixed[i:i + 1], alone, atol=1e-5, rtol=1e-4)
    with pytest.raises(InputError, match=r"\[3, 3\]"):
        guided_denoiser(den, cond, torch.ones(2, 3))
    with pytest.raises(InputError, match="finite"):
        guided_denoiser(den, cond, (0.0, float("nan"), 1.0))


def test_tiny_model_overfits_one_window() -> None:
    """Memorizing one window: the denoising loss on fixed noise draws falls more than 10x in 60 Adam steps.

    The noise levels are drawn around sigma = 4.5 (P_mean 1.5, P_std 0.5): there the optimum D = x0 is reached
    quickly; at small sigma the optimum asks the net to pass the input's noise through exactly, which takes far
    longer than a test should run."""
    torch.manual_seed(0)
    den = Denoiser(TemporalUNet(UNetConfig(feature_dim=6, channels=32, cond_dim=32, heads=2)))
    t = torch.arange(16, dtype=torch.float32)[:, None]
    x0 = (0.5 * torch.sin(t / 3 + torch.arange(6)[None, :])).expand(8, -1, -1)
    cond = Conditions.build(torch.linspace(0, 1, 16), 2.0, "Fear", batch=8)
    cfg = EDMConfig(p_mean=1.5, p_std=0.5, p_drop=0.0, context_frames=0)
    g_eval = torch.Generator().manual_seed(2)
    sigma, noise = sample_training_sigmas(8, 16, cfg, g_eval), torch.randn(8, 16, 6, generator=g_eval)

    def evaluate() -> float:
        with torch.no_grad():
            return den.loss(x0, cond, sigma, noise).mean().item()

    before = evaluate()
    opt = torch.optim.Adam(den.parameters(), 2e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(60):
        if step == 40:
            opt.param_groups[0]["lr"] = 5e-4
        loss = training_loss(den, x0, cond, cfg, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert before / evaluate() > 10.0


def test_configs_round_trip_and_reject_bad_values() -> None:
    cfg = EDMConfig(sigma_context=0.05, p_context=0.25)
    assert EDMConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(InputError, match="p_drop"):
        EDMConfig(p_drop=1.5)
    with pytest.raises(InputError, match="unknown key"):
        EDMConfig.from_dict({"sigma_dat": 0.5})
    den = Denoiser(Recorder(torch.zeros(2, 16, 6)))
    with pytest.raises(InputError, match="sigma"):
        den(torch.zeros(2, 16, 6), torch.ones(2, 15), inputs(2)[2])
    with pytest.raises(InputError, match="guidance strengths"):
        guided_denoiser(den, inputs(2)[2], (1.0, 2.0))
