"""Sampling: Karras schedule, DPM-Solver++(2M) per frame, scheduling matrices, rolling generation.

Samplers are short pure functions of ``(model, x, sigmas)`` where ``model(x [B, T, D], sigma [B, T])``
returns the denoised estimate (a :data:`~painface.model.edm.ModelFn`, e.g. from
:func:`~painface.model.edm.guided_denoiser`) and ``sigmas`` holds one row per solver stage with one
noise level per frame. A frame whose sigma does not change between two rows is left untouched and
keeps its own solver history, which is what diffusion forcing (Chen et al. 2024) needs.

:class:`RollingSampler` generates sequences of any length window by window ([PainDiffusion, §III-E]): each
window of ``window`` frames starts with ``window - horizon`` context frames (already generated, or a
resting face when cold) held at the small context noise level, and denoises ``horizon`` new frames
while the stimulus of the whole window is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from painface.errors import InputError
from painface.io import config_from_dict
from painface.model.conditions import Conditions
from painface.model.edm import DEFAULT_GUIDANCE, Denoiser, ModelFn, _per_frame, guidance_rows, guided_denoiser
from painface.stimulus import one_pole, stimulus_memory

SCHEDULES = ("full", "pyramid")
Observer = Callable[[Tensor, Tensor, Conditions, Tensor], None]
"""``observe(x, sigma, cond, denoised)``: sees each call of a window's guided model (:func:`denoise_window`)."""


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """Karras noise levels ``[steps + 1]``, decreasing from sigma_max to sigma_min, then 0 (EDM eq. 5)."""
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise InputError(f"karras schedule: steps={steps}, sigma_min={sigma_min}, sigma_max={sigma_max}; expected "
                         "steps >= 1 and 0 < sigma_min < sigma_max")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def pyramid_matrix(steps: int, frames: int, uncertainty: float = 0.0, frames_per_token: int = 1) -> Tensor:
    """Scheduling matrix as sigma indices ``[rows, frames]`` (long), row 0 all 0 (sigma_max), last row all
    ``steps`` (sigma 0). Diffusion forcing's pyramid ([Diffusion Forcing]): with
    M[m, t] = clip(steps + floor(t * u) - m, 0, steps) the remaining steps of token t at row m, the index is
    steps - M[m, t]; t counts tokens of ``frames_per_token`` frames. ``uncertainty`` u = 0 is the full-
    sequence schedule (every frame at the same level: steps + 1 rows)."""
    if steps < 1 or frames < 1 or uncertainty < 0 or frames_per_token < 1:
        raise InputError(f"scheduling matrix: steps={steps}, frames={frames}, uncertainty={uncertainty}; "
                         "expected steps >= 1, frames >= 1, uncertainty >= 0")
    token = torch.arange(frames) // frames_per_token
    delay = torch.floor(token.double() * uncertainty).long()
    rows = steps + int(delay.max()) + 1
    m = torch.arange(rows)[:, None]
    remaining = (steps + delay[None, :] - m).clamp(0, steps)
    return steps - remaining


def full_sequence_matrix(steps: int, frames: int) -> Tensor:
    """Full-sequence schedule ``[steps + 1, frames]``: every frame at the same index (pyramid with u = 0)."""
    return pyramid_matrix(steps, frames, 0.0)


def dpmpp_2m_step(x: Tensor, denoised: Tensor, sigma: Tensor, sigma_next: Tensor, old_denoised: Tensor,
                  h_last: Tensor, has_last: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One DPM-Solver++(2M) step per frame ([DPM-Solver++], Alg. 2).

    x, denoised, old_denoised ``[B, T, D]``; sigma, sigma_next, h_last ``[B, T]``; has_last ``[B, T]`` bool
    (the frame has a previous step). With h = ln(s / s_next): first order on a frame's first step or when
    s_next = 0, x <- (s_next / s) x - expm1(-h) D; otherwise r = h_last / h,
    D' = (1 + 1/(2r)) D - 1/(2r) D_last and x <- (s_next / s) x - expm1(-h) D'. Frames with
    s_next == s are returned unchanged with their history. Returns (x, old_denoised, h_last, has_last).
    """
    moving = sigma_next < sigma
    final = moving & (sigma_next == 0)
    second = moving & has_last & ~final
    s = torch.where(moving, sigma, torch.ones_like(sigma))
    s_next = torch.where(moving & ~final, sigma_next, torch.ones_like(sigma))
    h = torch.log(s / s_next)  # t = -ln(sigma); h = t_next - t
    r = torch.where(second, h_last / torch.where(second, h, torch.ones_like(h)), torch.ones_like(h))
    half_inv_r = (1 / (2 * r))[..., None]
    d = torch.where(second[..., None], (1 + half_inv_r) * denoised - half_inv_r * old_denoised, denoised)
    ratio = torch.where(final, torch.zeros_like(s), sigma_next / s)
    coef = torch.where(final, torch.ones_like(s), -torch.expm1(-h))
    x_new = ratio[..., None] * x + coef[..., None] * d
    x = torch.where(moving[..., None], x_new, x)
    old_denoised = torch.where(moving[..., None], denoised, old_denoised)
    h_last = torch.where(moving, h, h_last)
    has_last = has_last | (moving & ~final)
    return x, old_denoised, h_last, has_last


def sample_dpmpp_2m(model: ModelFn, x: Tensor, sigmas: Tensor) -> Tensor:
    """Run DPM-Solver++(2M) through the rows of ``sigmas`` and return the final x ``[B, T, D]``.

    ``x`` holds every frame at its row-0 level (e.g. sigma_max * noise, or clean frames where the row-0
    sigma is 0). ``sigmas``: ``[R]`` (one level for all frames), ``[R, T]`` (per frame) or ``[R, B, T]``;
    levels must never increase along rows.
    """
    sig = _rows(sigmas, x)
    if (sig[1:] > sig[:-1]).any():
        raise InputError("sigmas: a frame's noise level increases between rows; expected non-increasing rows")
    old = torch.zeros_like(x)
    h_last = torch.zeros_like(sig[0])
    has_last = torch.zeros_like(sig[0], dtype=torch.bool)
    for i in range(sig.shape[0] - 1):
        if not (sig[i + 1] < sig[i]).any():
            continue
        denoised = model(x, sig[i])
        x, old, h_last, has_last = dpmpp_2m_step(x, denoised, sig[i], sig[i + 1], old, h_last, has_last)
    return x


def hold_clean_frames(model: ModelFn, sigma_context: float, noise: Tensor) -> ModelFn:
    """Wrap ``model`` so that finished frames (sigma 0: context, or frames done early in a pyramid) are shown
    to the network at ``sigma_context``: x + sigma_context * noise with ``noise`` ``[B, T, D]`` fixed per frame,
    as in training (EDMConfig.sigma_context). Their returned estimate is the clean frame itself."""

    def wrapped(x: Tensor, sigma: Tensor) -> Tensor:
        done = sigma == 0
        if sigma_context <= 0 or not done.any():
            return model(x, sigma)
        x_in = torch.where(done[..., None], x + sigma_context * noise, x)
        d = model(x_in, torch.where(done, torch.full_like(sigma, sigma_context), sigma))
        return torch.where(done[..., None], x, d)

    return wrapped


@dataclass
class SamplerConfig:
    """Rolling-generation settings (JSON-serializable).

    steps: solver steps per frame (Karras schedule, 15-20 in the paper); window, horizon: frames per
    window and new frames per window (context = window - horizon; [PainDiffusion]: 64 and 48, context 16);
    schedule: "full" (all new frames share one level) or "pyramid" (diffusion forcing, ``uncertainty`` u,
    paper's best 2; costs steps + floor((horizon_tokens - 1) u) passes); guidance: strengths (emotion,
    expressiveness, stimulus); sigma_min, sigma_max, rho: Karras schedule (EDM); sigma_context: level the
    context frames are held at (trained at EDMConfig.sigma_context; the per-frame log-normal training noise covers
    nearby levels, and the shipped checkpoint holds them at 0.1 against exposure bias, docs/model.md); smooth: time
    constant (frames) of a causal one-pole low-pass applied to every new frame as it leaves the window, starting
    from the last context frame (0: none). It removes the frame-to-frame residue the solver leaves (docs/model.md,
    "issue 20 diagnosis"), costs ``smooth`` frames of lag, and is the same offline and live. gate: 0 = classic guidance,
    the strengths in every frame; k >= 1 (networks with a stimulus memory) = each frame's strengths of the
    conditions named in ``gate_terms`` (letters ``e``, ``x``, ``s``) scaled by the share of the stimulus above its
    moving average over ``UNetConfig.stimulus_memory[k - 1]`` frames, and 1 at rest (:func:`guidance_gate`):
    onsets and the resting face are guided, long holds and falling stimuli are not (docs/model.md, "Guidance that
    follows the stimulus's news").
    """

    steps: int = 20
    window: int = 64
    horizon: int = 48
    schedule: str = "full"
    uncertainty: float = 2.0
    guidance: tuple[float, float, float] = DEFAULT_GUIDANCE
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    sigma_context: float = 0.02
    smooth: float = 0.0
    gate: int = 0
    gate_terms: str = "exs"

    def __post_init__(self) -> None:
        self.guidance = tuple(float(g) for g in self.guidance)  # type: ignore[assignment]
        if isinstance(self.gate, bool) or not isinstance(self.gate, int) or not 0 <= self.gate <= 16:
            raise InputError(f"SamplerConfig.gate: {self.gate!r}; expected 0 (no gate) or the index 1..K of a "
                             "stimulus-memory channel")
        if not isinstance(self.gate_terms, str) or not self.gate_terms or set(self.gate_terms) - set("exs"):
            raise InputError(f"SamplerConfig.gate_terms: {self.gate_terms!r}; expected letters from 'exs' "
                             "(emotion, expressiveness, stimulus)")
        if not (math.isfinite(self.smooth) and 0 <= self.smooth <= 100):
            raise InputError(f"SamplerConfig.smooth: {self.smooth!r}; expected a time constant in frames, 0..100")
        if self.schedule not in SCHEDULES:
            raise InputError(f"SamplerConfig.schedule: {self.schedule!r}; expected one of {list(SCHEDULES)}")
        if not 0 < self.horizon < self.window:
            raise InputError(f"SamplerConfig: horizon {self.horizon}, window {self.window}; expected "
                             "0 < horizon < window (the rest is context)")
        if self.steps < 1 or self.uncertainty < 0 or len(self.guidance) != 3:
            raise InputError("SamplerConfig: expected steps >= 1, uncertainty >= 0 and 3 guidance strengths")

    @property
    def context(self) -> int:
        return self.window - self.horizon

    def to_dict(self) -> dict:
        d = asdict(self)
        d["guidance"] = list(self.guidance)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SamplerConfig:
        return config_from_dict(cls, d, "SamplerConfig")

    def window_sigmas(self, frames_per_token: int = 1) -> Tensor:
        """Per-frame sigmas ``[rows, window]`` of one window: context columns 0 throughout, new columns
        following the full-sequence or pyramid matrix over the Karras schedule."""
        sig = karras_sigmas(self.steps, self.sigma_min, self.sigma_max, self.rho)
        u = self.uncertainty if self.schedule == "pyramid" else 0.0
        new = sig[pyramid_matrix(self.steps, self.horizon, u, frames_per_token)]
        return torch.cat([new.new_zeros(new.shape[0], self.context), new], dim=1)


@contextmanager
def _eval_mode(module: torch.nn.Module):
    was_training = module.training
    if was_training:  # eval() walks every submodule: only when needed (once per window otherwise)
        module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            module.train()


class RollingSampler:
    """Stateful window-by-window generator for B sequences (patients or samples) at once.

    ``RollingSampler(denoiser, expressiveness, emotion, context=... | neutral=..., config, generator)``;
    then each :meth:`step` takes the stimulus of the next ``horizon`` frames ``[B, horizon]`` and returns
    those frames ``[B, horizon, D]``. Start from given ``context`` frames ``[B, window - horizon, D]`` or
    cold from a ``neutral`` resting face ``[D]`` or ``[B, D]`` repeated over the context. ``context_stimulus``
    ``[B, window - horizon]`` is the stimulus during the context (default 0 = baseline). expressiveness:
    number or ``[B]`` (PSPI); emotion: name, blend mapping, ``[8]`` or ``[B, 8]``.

    For a network with a stimulus memory (``UNetConfig.stimulus_memory``) the sampler carries the memory's
    state from step to step; ``stimulus_before`` ``[B, N]`` (or ``[N]``), the stimulus of the frames before the
    context, primes it (default: the stimulus rested at baseline).
    """

    def __init__(self, denoiser: Denoiser, expressiveness: object, emotion: object, *, context: Tensor | None = None,
                 neutral: Tensor | None = None, context_stimulus: Tensor | None = None,
                 config: SamplerConfig | None = None, batch: int | None = None,
                 generator: torch.Generator | None = None, stimulus_before: object = None,
                 observe: Observer | None = None) -> None:
        self.denoiser, self.config, self.generator = denoiser, config or SamplerConfig(), generator
        self.observe = observe
        cfg, net_cfg = self.config, denoiser.net.config
        for name, n in (("window", cfg.window), ("horizon", cfg.horizon)):
            if n % net_cfg.frames_per_token or (name == "window" and n % net_cfg.frame_multiple):
                raise InputError(f"SamplerConfig.{name}: {n} frames; expected a multiple of "
                                 f"{net_cfg.frame_multiple if name == 'window' else net_cfg.frames_per_token}")
        if (context is None) == (neutral is None):
            raise InputError("RollingSampler: give exactly one of context (frames) or neutral (a resting face)")
        dev = next(denoiser.parameters()).device
        start = torch.as_tensor(context if context is not None else neutral, dtype=torch.float32, device=dev)
        if batch is None and start.ndim == (3 if context is not None else 2):
            batch = start.shape[0]
        static = Conditions.build(np.zeros(1, np.float32), expressiveness, emotion, batch=batch)
        b, d, c = static.batch, net_cfg.feature_dim, cfg.context
        if neutral is not None:
            if start.shape not in ((d,), (b, d)):
                raise InputError(f"neutral: expected shape [{d}] or [{b}, {d}], got {tuple(start.shape)}")
            start = start.expand(b, d)[:, None, :].expand(b, c, d)
        elif start.shape != (b, c, d):
            raise InputError(f"context: expected shape [{b}, {c}, {d}] (window - horizon frames), got "
                             f"{tuple(start.shape)}")
        if not torch.isfinite(start).all():
            raise InputError("context/neutral: contains NaN or infinity")
        self.expressiveness, self.emotion = static.expressiveness.to(dev), static.emotion.to(dev)
        stim = torch.zeros(b, c) if context_stimulus is None else torch.as_tensor(context_stimulus, dtype=torch.float32)
        stim = stim.expand(b, -1) if stim.ndim == 1 else stim
        if stim.shape != (b, c):
            raise InputError(f"context_stimulus: expected shape [{b}, {c}], got {tuple(stim.shape)}")
        self.context, self.context_stimulus = start.clone(), stim.to(dev)
        self.sigmas = cfg.window_sigmas(net_cfg.frames_per_token).to(dev)
        self.taus = net_cfg.stimulus_memory
        if self.taus:  # memory state before the context, and over it
            before = np.zeros((b, 0)) if stimulus_before is None else np.asarray(stimulus_before, np.float64)
            before = np.broadcast_to(before, (b, before.shape[-1])) if before.ndim == 1 else before
            if before.ndim != 2 or before.shape[0] != b or not np.isfinite(before).all():
                raise InputError(f"stimulus_before: expected finite values of shape [{b}, frames] or [frames], "
                                 f"got {tuple(before.shape)}")
            _, self._state_before = stimulus_memory(before, self.taus)
            mem, self._state = stimulus_memory(stim.numpy(), self.taus, self._state_before)
            self.context_memory = torch.from_numpy(mem).to(dev)

    @property
    def batch(self) -> int:
        return int(self.context.shape[0])

    def step(self, stimulus: Tensor | np.ndarray | Sequence[float]) -> Tensor:
        """Generate the next ``horizon`` frames ``[B, horizon, D]`` for the stimulus ``[B, horizon]`` (or
        ``[horizon]`` for all) of those frames; the window's earlier stimulus comes from the sampler's state.
        A stimulus of the whole window ``[B, window]`` is accepted too (its first frames replace the stored
        context stimulus)."""
        cfg, (b, c, d) = self.config, self.context.shape
        stim = torch.as_tensor(np.asarray(stimulus, dtype=np.float32), device=self.context.device)
        if stim.ndim == 1:
            stim = stim.expand(b, -1)
        if stim.ndim != 2 or stim.shape[0] != b or stim.shape[1] not in (cfg.horizon, cfg.window):
            raise InputError(f"stimulus: expected shape [{b}, {cfg.horizon}] (the next horizon frames) or "
                             f"[{b}, {cfg.window}] (the whole window), got {tuple(stim.shape)}")
        whole = stim.shape[1] == cfg.window
        if not whole:
            stim = torch.cat([self.context_stimulus, stim], dim=1)
        full = stim
        if self.taus:
            if whole:
                mem, state = stimulus_memory(stim.cpu().numpy(), self.taus, self._state_before)
                mem = torch.from_numpy(mem).to(stim.device)
            else:
                new, state = stimulus_memory(stim[:, c:].cpu().numpy(), self.taus, self._state)
                mem = torch.cat([self.context_memory, torch.from_numpy(new).to(stim.device)], dim=1)
            full = torch.cat([stim[..., None], mem], dim=-1)
            self._state_before, self._state = mem[:, -c - 1].double().cpu().numpy(), state
            self.context_memory = mem[:, -c:].clone()
        cond = Conditions(full, self.expressiveness, self.emotion)
        eps = torch.randn(2, b, cfg.window, d, generator=self.generator).to(self.context.device)
        x = denoise_window(self.denoiser, self.context, cond, cfg.guidance, eps, self.sigmas, cfg, self.observe)
        self.context = x[:, -c:].clone()
        self.context_stimulus = stim[:, -c:].clone()
        return x[:, c:].clone()


def denoise_window(denoiser: Denoiser, context: Tensor, cond: Conditions, guidance: Sequence[float] | Tensor,
                   eps: Tensor, sigmas: Tensor, config: SamplerConfig, observe: Observer | None = None) -> Tensor:
    """One window ``[B, window, D]`` of rolling generation (what :meth:`RollingSampler.step` and the live engine
    run): the clean ``context`` frames ``[B, window - horizon, D]`` followed by ``horizon`` new frames started at
    sigma_max * ``eps[0]``, denoised by guided DPM-Solver++(2M) through the per-frame ``sigmas``
    ``[rows, window]`` while the context is shown at ``config.sigma_context`` with the fixed noise ``eps[1]``
    (``eps``: ``[2, B, window, D]``). ``cond`` covers the whole window; ``guidance``: three strengths or one row
    per sequence ``[B, 3]`` (:func:`~painface.model.edm.guided_denoiser`); a denoiser with a distilled guided
    network that covers these settings runs it instead, one pass per solver stage (:func:`window_model`).
    ``observe(x, sigma, cond, denoised)``, if given, sees every call of the guided model (what guidance
    distillation learns from, :mod:`painface.model.distill`)."""
    c = config.context
    x = torch.cat([context, config.sigma_max * eps[0, :, c:]], dim=1)
    with _eval_mode(denoiser):
        model = window_model(denoiser, cond, guidance, config)
        if observe is not None:
            model = _observed(model, cond, observe)
        model = hold_clean_frames(model, config.sigma_context, eps[1])
        x = sample_dpmpp_2m(model, x, sigmas)
    if config.smooth > 0:
        x = torch.cat([x[:, :c], lowpass(x[:, c:], context[:, -1], config.smooth)], dim=1)
    return x


def window_model(denoiser: Denoiser, cond: Conditions, guidance: Sequence[float] | Tensor,
                 config: SamplerConfig) -> ModelFn:
    """The guided denoiser of one window as a :data:`~painface.model.edm.ModelFn`: classifier-free guidance over
    the null-masked passes (:func:`~painface.model.edm.guided_denoiser`, gated by :func:`guidance_gate`), or,
    when ``denoiser.distilled`` (a :class:`painface.model.distill.DistilledGuidance`) covers ``guidance`` and
    ``config``'s gate, the distilled network's single pass, which learned that combination."""
    distilled = getattr(denoiser, "distilled", None)
    rows = None if distilled is None else distilled.covered_rows(guidance, config, cond.batch, cond)
    if rows is not None and rows.all():
        student = distilled.student
        return lambda x, sigma: student(x, sigma, cond)
    gate = guidance_gate(cond, config.gate, config.gate_terms)
    if rows is None or not rows.any():
        return guided_denoiser(denoiser, cond, guidance, gate)
    student = distilled.student
    # some rows (live patients with their own strengths) keep the guided passes; each row's result is its own
    mine, rest = rows.nonzero()[:, 0], (~rows).nonzero()[:, 0]
    lam = guidance_rows(guidance, cond.batch)[rest]
    guided = guided_denoiser(denoiser, cond.rows(rest), lam, None if gate is None else gate[rest])
    cond_mine = cond.rows(mine)

    def model(x: Tensor, sigma: Tensor) -> Tensor:
        sigma = _per_frame(sigma, x)
        out = torch.empty_like(x)
        out[mine.to(x.device)] = student(x[mine.to(x.device)], sigma[mine.to(x.device)], cond_mine)
        out[rest.to(x.device)] = guided(x[rest.to(x.device)], sigma[rest.to(x.device)])
        return out

    return model


def _observed(model: ModelFn, cond: Conditions, observe: Observer) -> ModelFn:
    def wrapped(x: Tensor, sigma: Tensor) -> Tensor:
        out = model(x, sigma)
        observe(x, sigma, cond, out)
        return out

    return wrapped


GATE_FLOOR = 0.02
"""Gate values below this are 0 (a hold of 4 time constants), so a held stimulus runs no guidance pass."""

GATE_REST = 0.05
"""Stimulus below this counts as rest (normalized units): the gate is 1 there, so the resting face (and the emotion it
shows) is guided as without a gate."""


def stimulus_news(cond: Conditions, channel: int) -> tuple[Tensor, Tensor]:
    """(s, (s - m) / max(s, 0.1)) ``[B, T]`` float64 on the CPU: the stimulus and its share above its moving average m
    (memory channel ``channel``, which the conditions must carry), unclipped."""
    s = cond.raw.double().cpu()
    return s, (s - cond.memory[..., channel - 1].double().cpu()) / s.clamp(min=0.1)


def guidance_gate(cond: Conditions, channel: int, terms: str = "exs") -> Tensor | None:
    """Per-frame factors on the guidance strengths ``[B, T, 3]`` (:attr:`SamplerConfig.gate`): None for
    ``channel`` 0; else, for the conditions named in ``terms``, g = clip((s - m_k) / max(s, 0.1), 0, 1), the share
    of the stimulus s above its moving average m_k (memory channel ``channel``), 0 below :data:`GATE_FLOOR`, 1 at
    rest (s below :data:`GATE_REST`); 1 for the other conditions."""
    if channel == 0:
        return None
    mem = cond.memory
    if mem is None or mem.shape[-1] < channel:
        have = 0 if mem is None else mem.shape[-1]
        raise InputError(f"SamplerConfig.gate: {channel}; this network has {have} stimulus-memory channels "
                         "(UNetConfig.stimulus_memory); use 0 or a channel it has")
    s, g = stimulus_news(cond, channel)
    g = g.clamp(0, 1)
    g = torch.where(g < GATE_FLOOR, torch.zeros_like(g), g)
    g = torch.where(s < GATE_REST, torch.ones_like(g), g)  # at rest: the resting face keeps its guidance
    out = torch.ones(*s.shape, 3, dtype=torch.float64)
    for i, letter in enumerate("exs"):
        if letter in terms:
            out[..., i] = g
    return out


def lowpass(x: Tensor, start: Tensor, tau: float) -> Tensor:
    """Causal one-pole low-pass over frames of ``x`` ``[B, T, D]`` (:func:`painface.stimulus.one_pole`, time
    constant ``tau`` frames) from ``y[-1] = start`` ``[B, D]``."""
    y = one_pole(x.detach().cpu().numpy(), tau, start.detach().cpu().numpy(), axis=1)
    return torch.from_numpy(y).to(x.device, x.dtype)


def generate(denoiser: Denoiser, stimulus: object, expressiveness: object, emotion: object, *,
             context: Tensor | None = None, neutral: Tensor | None = None, config: SamplerConfig | None = None,
             generator: torch.Generator | None = None, stimulus_before: object = None) -> Tensor:
    """Generate face codes ``[B, L, D]`` for a stimulus ``[L]`` or ``[B, L]`` of any length L >= 1 by rolling
    windows (see :class:`RollingSampler`; the last window's stimulus is padded with its last value).
    ``stimulus_before`` ``[N]`` or ``[B, N]``: the stimulus of the frames before the first one (its last
    ``window - horizon`` frames are the context's stimulus, the rest primes a stimulus memory); default: baseline."""
    stim = torch.as_tensor(np.asarray(stimulus, dtype=np.float32))
    if stim.ndim not in (1, 2) or stim.shape[-1] < 1:
        raise InputError(f"stimulus: expected shape [frames] or [batch, frames] with frames >= 1, got "
                         f"{tuple(stim.shape)}")
    if not torch.isfinite(stim).all():
        raise InputError("stimulus: contains NaN or infinity; expected finite normalized values")
    batch = stim.shape[0] if stim.ndim == 2 else None
    context_stim = before = None
    if stimulus_before is not None:
        sb = np.asarray(stimulus_before, np.float32)
        c = (config or SamplerConfig()).context
        if sb.ndim not in (1, 2) or not np.isfinite(sb).all():
            raise InputError(f"stimulus_before: expected finite values of shape [frames] or [batch, frames], got "
                             f"{sb.shape}")
        sb = np.concatenate([np.zeros((*sb.shape[:-1], max(0, c - sb.shape[-1])), np.float32), sb], axis=-1)
        before, context_stim = sb[..., :-c], sb[..., -c:]  # c >= 1: SamplerConfig keeps horizon < window
        batch = batch or (sb.shape[0] if sb.ndim == 2 else None)
    sampler = RollingSampler(denoiser, expressiveness, emotion, context=context, neutral=neutral, config=config,
                             batch=batch, generator=generator, context_stimulus=context_stim,
                             stimulus_before=before)
    stim = stim.expand(sampler.batch, -1) if stim.ndim == 1 else stim
    h, length = sampler.config.horizon, stim.shape[1]
    chunks = math.ceil(length / h)
    padded = torch.cat([stim, stim[:, -1:].expand(-1, chunks * h - length)], dim=1)
    out = [sampler.step(padded[:, i * h:(i + 1) * h]) for i in range(chunks)]
    return torch.cat(out, dim=1)[:, :length]


def _rows(sigmas: Tensor, x: Tensor) -> Tensor:
    """Broadcast sigmas ``[R]``, ``[R, T]`` or ``[R, B, T]`` to ``[R, B, T]`` for x ``[B, T, D]``."""
    b, t = x.shape[:2]
    sigmas = torch.as_tensor(sigmas, dtype=x.dtype, device=x.device)
    if sigmas.ndim == 1:
        sigmas = sigmas[:, None, None]
    elif sigmas.ndim == 2:
        sigmas = sigmas[:, None, :]
    if sigmas.ndim != 3 or sigmas.shape[1] not in (1, b) or sigmas.shape[2] not in (1, t) or sigmas.shape[0] < 2:
        raise InputError(f"sigmas: expected [rows], [rows, {t}] or [rows, {b}, {t}] with rows >= 2, got "
                         f"{tuple(sigmas.shape)}")
    if (sigmas < 0).any() or not torch.isfinite(sigmas).all():
        raise InputError("sigmas: noise levels must be finite and >= 0")
    return sigmas.expand(-1, b, t)
