"""How a virtual subject's face responds to a stimulus: traits + stimulus -> face code.

The generative model, step by step (parameters in :class:`~painface.subjects.traits.SimConfig`, their
sources in docs/assumptions.md):

1. Perceived pain from the temperature relative to the person's threshold T1 and tolerance T4:
   ``I = clip((T - T1 + offset) / (T4 - T1 + offset), 0, 1.25) ** exponent``; under a sustained stimulus
   it adapts: ``I * (1 - adaptation * z)`` with ``z`` a first-order low-pass of ``I`` (time constant
   ``adaptation_tau_s``, ~20 s), so a 4 s BioVid plateau loses ~5 % and a minute-long one up to the
   person's ``adaptation`` share; then delayed by the person's latency.
2. Facial drive: the part of ``I`` above the person's display threshold ``theta``:
   ``d = max(0, I - theta) / (1 - theta)``. Low heat (T1) stays below it.
3. Episodes and bursts: each contiguous stretch of ``d > 0`` is one pain episode. Its first display burst
   starts with it and lasts a lognormal ``first_burst_s`` (median 5 s: a BioVid stimulus is one burst);
   while the episode goes on, later bursts (median ``burst_s``) start at random with rate
   ``burst_rate_per_s * d``; between bursts the face shows only ``tonic_floor`` of the drive. So a long
   stimulus gives an intermittent display, not a held grimace, and the face returns to rest when the
   stimulus ends. Each burst shows with probability ``occurrence * sqrt(peak d)``; if it does, with a gain
   ``gain * lognormal(trial sd) * (1 - habituation * t / session length)``, and each AU of the person's
   response profile (pattern x emotion) joins with probability ``au_join_prob`` (the strongest always does).
4. Dynamics: an asymmetric first-order filter (fast rise, slow decay) of the displayed drive; every AU
   follows it after its region's onset delay (eyes, then nose and upper lip, then brows).
5. Resting face: the dominant emotion's prototype x strength, waxing and waning slowly; small
   spontaneous AU fluctuations; blinks (AU45) as a Poisson process whose rate rises with pain; head
   pose as slow random motion plus a pain-related drop (pitch) and turn toward the stimulated arm.
6. AU intensities saturate softly at 5: ``5 tanh(x / 5)``.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_NAMES, pspi
from painface.stimulus import one_pole
from painface.subjects.protocols import BIOVID_BASELINE_C, Stimulus, normalized_to_celsius
from painface.subjects.traits import EMOTION_REST_AUS, REGION_DELAY_S, SimConfig, SubjectTraits, response_profile

MAX_PERCEIVED = 1.25


def perceived_pain(
    stim: Stimulus, traits: SubjectTraits, cfg: SimConfig, baseline_c: float = BIOVID_BASELINE_C
) -> np.ndarray:
    """Perceived pain 0..1.25 per frame (before the latency), from the stimulus in normalized units."""
    temp = normalized_to_celsius(stim.normalized, baseline_c, traits.tolerance_c).astype(np.float64)
    span = traits.tolerance_c - traits.threshold_c + cfg.pain_offset_c
    x = np.clip((temp - traits.threshold_c + cfg.pain_offset_c) / span, 0.0, MAX_PERCEIVED)
    return x**cfg.pain_exponent


def lowpass(x: np.ndarray, fps: float, tau_s: float) -> np.ndarray:
    """First-order low-pass (unit DC gain, starting at 0) of ``x`` ``[frames]`` with time constant ``tau_s``."""
    return one_pole(x, fps * tau_s)


def adapted_pain(felt: np.ndarray, fps: float, adaptation: float, tau_s: float) -> np.ndarray:
    """Perceived pain under adaptation: ``felt * (1 - adaptation * lowpass(felt, tau_s))``."""
    return felt * (1.0 - adaptation * lowpass(felt, fps, tau_s))


def display_bursts(rng: np.random.Generator, drive: np.ndarray, fps: float, cfg: SimConfig) -> np.ndarray:
    """``[bursts, 2]`` (start, end) frames of facial display bursts within the episodes of ``drive`` (see the
    module docstring, step 3): a first burst at each episode's start, later ones at rate
    ``burst_rate_per_s * drive`` while the episode lasts; every burst ends by its episode's end."""
    starts, ends = episodes(drive)
    out: list[tuple[int, int]] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        t = min(e, s + max(1, int(round(cfg.first_burst_s * np.exp(rng.normal(0, cfg.burst_log_sd)) * fps))))
        out.append((s, t))
        if t >= e or cfg.burst_rate_per_s <= 0:
            continue
        # a burst may start at frame f (f >= the end of the previous burst) when u[f] < rate * drive[f] / fps
        starts = t + np.flatnonzero(rng.random(e - t) < cfg.burst_rate_per_s * np.minimum(drive[t:e], 1.0) / fps)
        for b in starts.tolist():
            if b < t:
                continue  # inside the previous burst
            t = min(e, b + max(1, int(round(cfg.burst_s * np.exp(rng.normal(0, cfg.burst_log_sd)) * fps))))
            out.append((b, t))
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def delay(x: np.ndarray, frames: int) -> np.ndarray:
    """Shift a signal later by ``frames`` (axis 0), holding its first value."""
    if frames <= 0:
        return x
    frames = min(frames, x.shape[0])
    return np.concatenate([np.repeat(x[:1], frames, axis=0), x[:-frames]], axis=0)


def asymmetric_lowpass(x: np.ndarray, fps: float, rise_tau_s: float, decay_tau_s: float) -> np.ndarray:
    """First-order follower with a rise and a decay time constant (s)."""
    a_up, a_down = 1.0 - np.exp(-1.0 / (fps * rise_tau_s)), 1.0 - np.exp(-1.0 / (fps * decay_tau_s))
    out = np.empty_like(x, dtype=np.float64)
    y = 0.0
    for i, v in enumerate(x.tolist()):
        y += (a_up if v > y else a_down) * (v - y)
        out[i] = y
    return out


def ou_noise(rng: np.random.Generator, frames: int, dims: int, fps: float, tau_s: float, sd: float) -> np.ndarray:
    """Ornstein-Uhlenbeck noise ``[frames, dims]`` with stationary SD ``sd`` and time constant ``tau_s``."""
    a = np.exp(-1.0 / (fps * tau_s))
    white = rng.standard_normal((frames, dims)) * sd * np.sqrt(1.0 - a * a)
    start = rng.standard_normal((1, dims)) * sd
    y, _ = lfilter([1.0], [1.0, -a], white, axis=0, zi=a * start)
    return y


def episodes(drive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end frames (end exclusive) of each contiguous stretch where ``drive > 0``."""
    on = np.concatenate([[False], drive > 0, [False]])
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    return edges[0::2], edges[1::2]


def blinks(rng: np.random.Generator, rate_per_frame: np.ndarray, fps: float, duration_s: float) -> np.ndarray:
    """AU45 intensity per frame: blinks as a Poisson process with a varying rate (thinning)."""
    n = rate_per_frame.shape[0]
    rmax = float(rate_per_frame.max()) if n else 0.0
    au45 = np.zeros(n)
    if rmax <= 0:
        return au45
    starts = np.flatnonzero(rng.random(n) < rmax)
    starts = starts[rng.random(starts.size) < rate_per_frame[starts] / rmax]
    dur = max(3, int(round(duration_s * fps)))
    close = max(1, dur // 3)
    shape = np.concatenate([np.linspace(0, 5, close + 1)[1:], np.linspace(5, 0, dur - close + 1)[1:]])
    for s in starts:
        seg = shape[: n - s]
        au45[s : s + seg.size] = np.maximum(au45[s : s + seg.size], seg)
    return au45


def simulate_face(
    traits: SubjectTraits,
    stim: Stimulus,
    cfg: SimConfig,
    rng: np.random.Generator,
    baseline_c: float = BIOVID_BASELINE_C,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate one person's face under ``stim``. Returns (face ``[frames, 20]`` float32 in
    :data:`~painface.face.code.FEATURE_NAMES` order, PSPI ``[frames]`` float32)."""
    fps, n = stim.fps, stim.frames
    n_au = len(AU_NAMES)
    felt = adapted_pain(perceived_pain(stim, traits, cfg, baseline_c), fps, traits.adaptation, cfg.adaptation_tau_s)
    felt = delay(felt, int(round(traits.latency_s * fps)))
    drive = np.maximum(0.0, felt - traits.face_threshold) / (1.0 - traits.face_threshold)

    # Display bursts within the episodes, and the amplitude of every AU in each burst.
    profile = response_profile(traits)
    weights = np.zeros(n_au)
    for au, w in profile.items():
        weights[AU_NAMES.index(au)] = w
    strongest = int(np.argmax(weights))
    bursts = display_bursts(rng, drive, fps, cfg)
    gate = np.where(drive > 0, cfg.tonic_floor, 0.0)
    amp = np.zeros((bursts.shape[0] + 1, n_au))  # row 0: before any burst
    head_amp = np.zeros(bursts.shape[0] + 1)
    for k, (s, e) in enumerate(bursts.tolist(), start=1):
        gate[s:e] = 1.0
        peak = float(drive[s:e].max())
        shows = rng.random() < traits.occurrence * np.sqrt(min(1.0, peak))
        g = traits.gain * np.exp(rng.normal(0.0, cfg.trial_gain_log_sd)) * (1.0 - traits.habituation * s / n)
        join = rng.random(n_au) < cfg.au_join_prob
        join[strongest] = True
        if shows:
            amp[k] = g * weights * join
            head_amp[k] = min(1.5, g)
        else:
            head_amp[k] = 0.2 * min(1.5, g)
    # Each frame belongs to the latest burst that started at or before it (tails included).
    ep_index = np.zeros(n, dtype=np.int64)
    ep_index[bursts[:, 0]] = np.arange(1, bursts.shape[0] + 1)
    ep_index = np.maximum.accumulate(ep_index)

    env = asymmetric_lowpass(drive * gate, fps, cfg.rise_tau_s, cfg.decay_tau_s)
    pain_aus = np.zeros((n, n_au))
    for j, au in enumerate(AU_NAMES):
        if weights[j] == 0:
            continue
        d = int(round(REGION_DELAY_S.get(au, 0.0) * fps))
        pain_aus[:, j] = delay(env, d) * amp[delay(ep_index, d), j]

    # Resting face: dominant emotion, waxing and waning; spontaneous fluctuations.
    rest = np.zeros(n_au)
    for au, w in EMOTION_REST_AUS[traits.emotion].items():
        rest[AU_NAMES.index(au)] = w * traits.emotion_strength
    display = np.clip(0.6 + ou_noise(rng, n, 1, fps, cfg.rest_display_tau_s, 0.4), 0.0, 1.5)
    spont = np.maximum(0.0, ou_noise(rng, n, n_au, fps, cfg.au_noise_tau_s, cfg.au_noise_sd) - cfg.au_noise_sd)
    aus = 5.0 * np.tanh((pain_aus + rest[None, :] * display + spont) / 5.0)

    rate = cfg.blink_rate_per_min / 60.0 / fps * (1.0 + (cfg.blink_pain_factor - 1.0) * np.minimum(env, 1.0))
    aus[:, AU_NAMES.index("AU45")] = blinks(rng, rate, fps, cfg.blink_duration_s)

    head = ou_noise(rng, n, 3, fps, cfg.head_tau_s, 1.0) * np.asarray(cfg.head_sd_deg)[None, :]
    head_env = env * head_amp[ep_index]
    head[:, POSE_NAMES.index("head_pitch")] += traits.head_drop_deg * head_env
    head[:, POSE_NAMES.index("head_yaw")] -= traits.head_turn_deg * head_env

    face = np.concatenate([np.clip(aus, 0.0, 5.0), head], axis=1).astype(np.float32)
    return face, pspi(face, FEATURE_NAMES)
