"""EDM (Karras et al. 2022, "Elucidating the Design Space...") with one noise level per frame.

Three small pieces that mirror the paper's equations, each usable alone:

* :func:`precondition`: c_skip, c_out, c_in, c_noise (EDM Table 1, "Ours" column; eq. 7);
* :func:`loss_weight` and :meth:`Denoiser.loss`: lambda(sigma) = (s^2 + sd^2) / (s * sd)^2 (EDM eq. 8 and
  Table 1) applied per frame, with per-frame noise (diffusion forcing, Chen et al. 2024);
* :func:`sample_training_sigmas`: ln(sigma) ~ N(P_mean, P_std^2) per frame (EDM Table 1), optionally
  with the first frames of a window at the small context level the sampler holds context frames at.

:func:`guided_denoiser` combines several null-masked passes in one batch (classifier-free guidance over
three conditions, [PainDiffusion, §III-D]). Every sigma here is ``[B, T]``: one level per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from painface.errors import InputError
from painface.io import config_from_dict
from painface.model.conditions import CONDITION_NAMES, Conditions, drop_mask
from painface.model.unet import TemporalUNet

ModelFn = Callable[[Tensor, Tensor], Tensor]
"""A denoiser as samplers see it: ``(x [B, T, D], sigma [B, T]) -> D(x; sigma) [B, T, D]``."""

DEFAULT_GUIDANCE: tuple[float, float, float] = (1.0, 2.0, 4.0)
"""Guidance strengths (emotion, expressiveness, stimulus): twice the paper's best (0.5, 1, 2; [PainDiffusion]
Table II), chosen by this project's ablation: on the 26 validation subjects it raises Corr from 0.19 to
0.25 and Var from 34 % to 76 % of the ground truth's, at a Sim of 0.45 instead of 0.39 (docs/results.md)."""


@dataclass
class EDMConfig:
    """Diffusion hyper-parameters (JSON-serializable).

    sigma_data: data std (EDM: 0.5; the data layer scales features to it); p_mean, p_std: training
    log-normal noise (EDM Table 1); sigma_context: the level context frames are held at when sampling
    and trained at (0.02: ln 0.02 = -3.9 is 2.3 P_std below P_mean, so plain log-normal training
    would almost never show it; small enough that c_skip = 0.998); context_frames: how many leading
    frames get it (w - h = 16 by default); p_context: probability per training window that they do;
    p_uniform: probability per window that all its frames share one noise level (the full-sequence
    schedule's pattern: with independent levels only, low-noise neighbours give the answer away and the
    network learned to ignore the stimulus);
    p_drop: probability that each condition is dropped, independently per sample ([PainDiffusion]: 0.1);
    velocity: weight of the frame-to-frame (velocity) term of the loss (0 = the plain EDM loss; see
    :meth:`Denoiser.loss`; a departure from [PainDiffusion], docs/model.md);
    sigma_floor: c_noise is computed from max(sigma, sigma_floor), so frames at sigma 0 are defined.
    """

    sigma_data: float = 0.5
    p_mean: float = -0.5
    p_std: float = 1.5
    sigma_context: float = 0.02
    context_frames: int = 16
    p_context: float = 0.5
    p_uniform: float = 0.5
    p_drop: float = 0.1
    velocity: float = 0.0
    sigma_floor: float = 0.002

    def __post_init__(self) -> None:
        for name in ("sigma_data", "p_std", "sigma_floor"):
            if not getattr(self, name) > 0:
                raise InputError(f"EDMConfig.{name}: {getattr(self, name)}; expected a positive number")
        if self.sigma_context < 0 or self.context_frames < 0 or self.velocity < 0:
            raise InputError("EDMConfig.sigma_context, context_frames and velocity must be >= 0")
        for name in ("p_context", "p_drop", "p_uniform"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"EDMConfig.{name}: {getattr(self, name)}; expected a probability in [0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EDMConfig:
        return config_from_dict(cls, d, "EDMConfig")


def precondition(sigma: Tensor, sigma_data: float = 0.5,
                 sigma_floor: float = 0.002) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM preconditioning per element of ``sigma`` (any shape, here ``[B, T]``), EDM Table 1:

    c_skip = sd^2 / (s^2 + sd^2); c_out = s * sd / sqrt(s^2 + sd^2); c_in = 1 / sqrt(s^2 + sd^2);
    c_noise = ln(s) / 4 (with s clamped at ``sigma_floor`` so that s = 0 gives a finite value).
    """
    s2, sd2 = sigma * sigma, sigma_data * sigma_data
    c_skip = sd2 / (s2 + sd2)
    c_out = sigma * sigma_data / (s2 + sd2).sqrt()
    c_in = 1.0 / (s2 + sd2).sqrt()
    c_noise = sigma.clamp(min=sigma_floor).log() / 4.0
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: Tensor, sigma_data: float = 0.5) -> Tensor:
    """lambda(sigma) = (s^2 + sd^2) / (s * sd)^2 per element (EDM eq. 8, Table 1); makes the effective
    target of F_theta unit-variance at every noise level."""
    return (sigma * sigma + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_training_sigmas(batch: int, frames: int, config: EDMConfig | None = None,
                           generator: torch.Generator | None = None) -> Tensor:
    """Training noise levels ``[batch, frames]``: ln(sigma) ~ N(P_mean, P_std^2) independently per frame
    (diffusion forcing), or with probability ``p_uniform`` one level for the whole window; with probability
    ``p_context`` per window, the first ``context_frames`` frames are set to ``sigma_context`` (the level the
    rolling sampler holds its context at)."""
    cfg = config or EDMConfig()
    sigma = (cfg.p_mean + cfg.p_std * torch.randn(batch, frames, generator=generator)).exp()
    if cfg.p_uniform > 0:
        uniform = torch.rand(batch, generator=generator) < cfg.p_uniform
        sigma[uniform] = sigma[uniform, :1].expand(-1, frames)
    if cfg.context_frames and cfg.p_context > 0:
        with_context = torch.rand(batch, generator=generator) < cfg.p_context
        k = min(cfg.context_frames, frames)
        sigma[with_context, :k] = cfg.sigma_context
    return sigma


class Denoiser(nn.Module):
    """D_theta(x; sigma, C) = c_skip x + c_out F_theta(c_in x; c_noise, C) per frame (EDM eq. 7).

    ``forward(x [B, T, D], sigma, cond, drop=None) -> [B, T, D]``; sigma is a number, ``[B]`` or
    ``[B, T]`` (one level per frame); ``drop`` is the null mask ``[B, 3]`` (see conditions.py).
    """

    def __init__(self, net: TemporalUNet, sigma_data: float = 0.5, sigma_floor: float = 0.002) -> None:
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sigma_floor = float(sigma_floor)

    def forward(self, x: Tensor, sigma: Tensor | float, cond: Conditions, drop: Tensor | None = None) -> Tensor:
        if x.ndim != 3:
            raise InputError(f"x: expected shape [batch, frames, features], got {tuple(x.shape)}")
        sigma = _per_frame(sigma, x)
        c_skip, c_out, c_in, c_noise = precondition(sigma, self.sigma_data, self.sigma_floor)
        f = self.net(c_in[..., None] * x, c_noise, cond, drop)
        return c_skip[..., None] * x + c_out[..., None] * f

    def loss(self, x0: Tensor, cond: Conditions, sigma: Tensor, noise: Tensor, drop: Tensor | None = None,
             velocity: float = 0.0) -> Tensor:
        """Per-frame weighted denoising loss ``[B, T]`` (EDM eq. 2 with lambda of eq. 8, per frame):
        lambda(sigma_bt) * mean_d (D(x0 + sigma n; sigma) - x0)^2, for clean windows x0 ``[B, T, D]``.

        ``velocity`` > 0 adds, to frame t < T - 1, velocity * min(lambda_t, lambda_t+1) *
        mean_d (e_t+1 - e_t)^2 with e = D - x0: the error of the frame-to-frame change, weighted like the
        noisier frame of the pair. White (frame-to-frame independent) residual noise costs about twice its
        plain loss here, a smooth error almost nothing, so the network learns to remove the noise's high
        frequencies that c_skip x lets through at low and middle sigma (the plain loss left generated faces
        jittering ~10x more than the data; docs/model.md)."""
        if noise.shape != x0.shape:
            raise InputError(f"noise: expected shape {tuple(x0.shape)} like x0, got {tuple(noise.shape)}")
        sigma = _per_frame(sigma, x0)
        err = self(x0 + sigma[..., None] * noise, sigma, cond, drop) - x0
        weight = loss_weight(sigma, self.sigma_data)
        loss = weight * err.square().mean(-1)
        if velocity > 0 and x0.shape[1] > 1:
            pair = torch.minimum(weight[:, 1:], weight[:, :-1])
            vel = pair * (err[:, 1:] - err[:, :-1]).square().mean(-1)
            loss = loss + velocity * F.pad(vel, (0, 1))
        return loss


def training_loss(denoiser: Denoiser, x0: Tensor, cond: Conditions, config: EDMConfig | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
    """One training objective (scalar): draws per-frame sigmas, noise and the condition null mask from
    ``generator`` (CPU), then averages :meth:`Denoiser.loss` over batch and frames."""
    cfg = config or EDMConfig()
    b, t, _ = x0.shape
    sigma = sample_training_sigmas(b, t, cfg, generator).to(x0.device, x0.dtype)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    drop = drop_mask(b, cfg.p_drop, generator, x0.device)
    return denoiser.loss(x0, cond, sigma, noise, drop, cfg.velocity).mean()


def guided_denoiser(denoiser: Denoiser, cond: Conditions,
                    strengths: Sequence[float] | Tensor = DEFAULT_GUIDANCE,
                    gate: Tensor | None = None) -> ModelFn:
    """Classifier-free guidance over the three conditions as a :data:`ModelFn`:

    D = (1 + sum_c l_c) D(C) - sum_c l_c D(C without c), strengths ``l`` in (emotion, expressiveness,
    stimulus) order: three numbers for every sequence, or one row per sequence ``[B, 3]`` (the live
    engine's patients each have their own). All passes run as one batch ``[V * B]``, variant-major (rows
    ``v*B .. v*B+B-1`` are variant v of every sequence), so sequences never mix. A condition runs its
    "without" pass when any row's strength for it is non-zero; a row with strength 0 gets exactly 0 from
    that pass, so a row never depends on the others. All-zero columns add no pass.

    ``gate`` ``[B, T, 3]`` (values 0..1): per-frame factors on the strengths (guidance that follows the stimulus's
    news, :func:`painface.model.sampling.guidance_gate`); a condition whose gated strengths are 0 in every frame
    and row runs no pass.
    """
    lam = guidance_rows(strengths, cond.batch)
    b, n = cond.batch, len(CONDITION_NAMES)
    if gate is not None:
        if gate.shape != (b, cond.frames, n):
            raise InputError(f"guidance gate: expected shape [{b}, {cond.frames}, {n}], got {tuple(gate.shape)}")
        lam = lam[:, None, :] * gate.double().cpu()  # [B, T, 3]
    else:
        lam = lam[:, None, :]  # [B, 1, 3]: the same for every frame
    active = [i for i in range(n) if bool((lam[..., i] != 0).any())]
    variants = len(active) + 1
    masks = torch.zeros(variants, b, n, dtype=torch.bool)
    for v, i in enumerate(active, start=1):
        masks[v, :, i] = True
    cond_all, drop = cond.repeat(variants), masks.reshape(variants * b, -1)
    total = (1 + lam[..., active].sum(-1)).float()  # 1 + sum_c l_c summed in float64, as the numbers are given
    lam = lam.float()

    def model(x: Tensor, sigma: Tensor) -> Tensor:
        sigma = _per_frame(sigma, x)
        dev = x.device
        d = denoiser(x.repeat(variants, 1, 1), sigma.repeat(variants, 1), cond_all, drop.to(dev))
        d = d.reshape(variants, *x.shape)
        out = total.to(dev)[..., None] * d[0]
        for v, i in enumerate(active, start=1):
            out = out - lam[:, :, i, None].to(dev) * d[v]
        return out

    return model


def guidance_rows(strengths: Sequence[float] | Tensor, batch: int) -> Tensor:
    """Guidance strengths as ``[batch, 3]`` float64 (CPU): three numbers (for every row) or ``[batch, 3]``."""
    n = len(CONDITION_NAMES)
    try:
        lam = torch.as_tensor(strengths if isinstance(strengths, Tensor) else [float(s) for s in strengths],
                              dtype=torch.float64).cpu()
    except (TypeError, ValueError):
        raise InputError(f"guidance strengths: expected {n} numbers ({', '.join(CONDITION_NAMES)})") from None
    if lam.shape == (n,):
        lam = lam.expand(batch, n)
    if lam.shape != (batch, n):
        raise InputError(f"guidance strengths: expected {n} values ({', '.join(CONDITION_NAMES)}) or [{batch}, {n}] "
                         f"(one row per sequence), got shape {tuple(lam.shape)}")
    if not torch.isfinite(lam).all():
        raise InputError(f"guidance strengths: {lam.flatten()[:6].tolist()}; expected finite numbers")
    return lam


def _per_frame(sigma: Tensor | float, x: Tensor) -> Tensor:
    """Broadcast a number, ``[B]`` or ``[B, T]`` sigma to ``[B, T]`` for x ``[B, T, D]``."""
    b, t = x.shape[:2]
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.ndim == 1 and sigma.shape[0] == b:
        sigma = sigma[:, None]
    if sigma.ndim > 2 or (sigma.ndim == 2 and sigma.shape not in ((b, t), (b, 1), (1, t), (1, 1))):
        raise InputError(f"sigma: expected a number, [{b}] or [{b}, {t}] (one level per frame), got "
                         f"{tuple(sigma.shape)}")
    if (sigma < 0).any() or not torch.isfinite(sigma).all():
        raise InputError("sigma: noise levels must be finite and >= 0")
    return sigma.expand(b, t)
