"""Who a virtual subject is: the population parameters (:class:`SimConfig`) and the traits of one
person (:class:`SubjectTraits`) drawn from them.

Every parameter carries its source in its field metadata; ``docs/assumptions.md`` is generated from
it (:func:`assumptions_markdown`) and a test keeps the two in step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from painface.errors import InputError
from painface.face.code import AU_NAMES, EMOTIONS
from painface.io import config_from_dict
from painface.subjects.protocols import BIOVID_MAX_C

PATTERNS: tuple[str, ...] = ("p1_eyes_brows_nose", "p2_mouth_eyes", "p3_raised_brows", "p4_brows_eyes", "stoic")
"""The four heat-pain response patterns of Kunz & Lautenbacher (2014) and the facially stoic."""

KL = "[Kunz2014]"
TONIC = ("direction: tonic heat pain adapts at moderate intensities over tens of seconds (Kleinboehl et al. 1999, "
         "Pain 81:35)")
BURSTS = ("direction: facial pain displays during ongoing pain are brief and intermittent, not held (LeResche & "
          "Dworkin 1988, Pain 35:71; Prkachin 1992, Pain 51:297)")
BIOVID = "[BioVid] protocol"
ASSUME = "assumption"


def P(default: Any, doc: str, source: str = ASSUME) -> Any:  # noqa: N802 - a field factory
    """A config field with its documentation and source."""
    if isinstance(default, dict | list):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, "source": source})
    return field(default=default, metadata={"doc": doc, "source": source})


# AU intensity (0-5 scale) each pattern reaches at full pain, gain 1, before saturation.
PATTERN_AUS: dict[str, dict[str, float]] = {
    "p1_eyes_brows_nose": {"AU4": 2.6, "AU6": 2.4, "AU7": 3.0, "AU9": 2.2, "AU10": 1.6, "AU43": 1.8},
    "p2_mouth_eyes": {"AU6": 2.4, "AU7": 3.0, "AU25": 3.2, "AU26": 2.6, "AU27": 1.0, "AU20": 1.2, "AU10": 1.0},
    "p3_raised_brows": {"AU1": 2.8, "AU2": 2.6, "AU5": 1.2, "AU7": 1.6, "AU6": 0.8},
    "p4_brows_eyes": {"AU4": 3.2, "AU6": 2.0, "AU7": 3.2, "AU43": 1.4},
    "stoic": {"AU7": 0.3},
}

# Resting display of each dominant emotion at strength 1 (EMFACS prototypes restricted to our AUs).
EMOTION_REST_AUS: dict[str, dict[str, float]] = {
    "Anger": {"AU4": 0.7, "AU5": 0.3, "AU7": 0.5, "AU17": 0.5},
    "Contempt": {"AU12": 0.6, "AU2": 0.2},
    "Disgust": {"AU9": 0.6, "AU10": 0.5, "AU15": 0.4, "AU17": 0.4},
    "Fear": {"AU1": 0.8, "AU2": 0.5, "AU4": 0.3, "AU5": 0.6, "AU20": 0.5},
    "Happiness": {"AU6": 0.5, "AU12": 1.2},
    "Neutral": {},
    "Sadness": {"AU1": 0.8, "AU4": 0.4, "AU15": 0.8, "AU17": 0.3},
    "Surprise": {"AU1": 0.8, "AU2": 0.8, "AU5": 0.6, "AU26": 0.4},
}

# How the dominant emotion colours the pain response: multipliers on the pattern's AUs, AUs added
# (intensity at full pain), and an overall gain.
EMOTION_RESPONSE: dict[str, dict[str, Any]] = {
    "Anger": {"mul": {"AU4": 1.3, "AU7": 1.2}, "add": {"AU17": 0.8}, "gain": 1.1},
    "Contempt": {"mul": {}, "add": {"AU12": 0.5}, "gain": 0.9},
    "Disgust": {"mul": {"AU9": 1.4, "AU10": 1.4}, "add": {"AU15": 0.8}, "gain": 1.0},
    "Fear": {"mul": {}, "add": {"AU1": 1.0, "AU2": 0.8, "AU5": 1.0, "AU20": 1.0}, "gain": 1.1},
    "Happiness": {"mul": {}, "add": {"AU12": 1.0}, "gain": 0.85},
    "Neutral": {"mul": {}, "add": {}, "gain": 1.0},
    "Sadness": {"mul": {"AU4": 1.1}, "add": {"AU1": 1.0, "AU15": 1.0, "AU17": 0.8}, "gain": 1.0},
    "Surprise": {"mul": {}, "add": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.8, "AU26": 0.8}, "gain": 1.0},
}

# Onset delay of each facial region after the perceived-pain onset (s): eyes first, then nose and
# upper lip, then brows (the order rated most realistic on avatars, [pain-face notes]).
REGION_DELAY_S: dict[str, float] = {
    "AU6": 0.0, "AU7": 0.0, "AU43": 0.15, "AU5": 0.1,
    "AU9": 0.2, "AU10": 0.2, "AU25": 0.25, "AU26": 0.25, "AU27": 0.25, "AU20": 0.25,
    "AU12": 0.3, "AU15": 0.3, "AU17": 0.3,
    "AU4": 0.4, "AU1": 0.4, "AU2": 0.4,
}  # fmt: skip


@dataclass
class SimConfig:
    """Population parameters of the virtual subjects (defaults and sources in docs/assumptions.md)."""

    # population
    stoic_share: float = P(
        0.2, "share of facially unresponsive (stoic) subjects", KL + " ('considerable number'); value assumption"
    )
    pattern_shares: dict = P(
        {"p1_eyes_brows_nose": 0.35, "p2_mouth_eyes": 0.2, "p3_raised_brows": 0.15, "p4_brows_eyes": 0.3},
        "shares of the four response patterns among responders",
        KL + " (patterns); shares assumption",
    )
    female_share: float = P(0.5, "share of women", BIOVID + " (balanced by sex)")
    age_min: float = P(18.0, "youngest age (years)", BIOVID + " (18-65)")
    age_max: float = P(65.0, "oldest age (years)", BIOVID + " (18-65)")
    emotion_shares: dict = P(
        {
            "Neutral": 0.4,
            "Sadness": 0.12,
            "Happiness": 0.1,
            "Anger": 0.08,
            "Fear": 0.08,
            "Disgust": 0.08,
            "Surprise": 0.07,
            "Contempt": 0.07,
        },
        "shares of each dominant emotion (8 HSEmotion classes)",
    )
    emotion_strength_min: float = P(0.2, "weakest resting emotional display (x EMFACS prototype)")
    emotion_strength_max: float = P(0.8, "strongest resting emotional display (x EMFACS prototype)")
    # calibration (°C)
    threshold_mean_c: float = P(43.0, "mean pain threshold T1 (°C)", "assumption, typical of BioVid calibration")
    threshold_sd_c: float = P(1.3, "SD of the pain threshold (°C)")
    threshold_min_c: float = P(40.0, "lowest pain threshold (°C)")
    tolerance_gap_mean_c: float = P(4.5, "mean tolerance T4 minus threshold T1 (°C)")
    tolerance_gap_sd_c: float = P(1.0, "SD of tolerance minus threshold (°C)")
    tolerance_gap_min_c: float = P(2.0, "smallest tolerance minus threshold (°C)")
    tolerance_max_c: float = P(BIOVID_MAX_C, "highest tolerance allowed (°C)", BIOVID + " (50.5 °C safety cap)")
    # expressiveness
    gain_log_sd: float = P(0.45, "SD of log expressiveness gain across people")
    female_gain: float = P(
        1.15, "gain multiplier for women", "direction: [pain-face notes] (women more responsive); size assumption"
    )
    male_gain: float = P(0.87, "gain multiplier for men", "direction: [pain-face notes]; size assumption")
    social_gain: float = P(
        1.0,
        "gain multiplier for the social setting (<1: an unfamiliar observer is present)",
        "direction: [pain-face notes] (suppression before strangers); 1.0 = alone, as in BioVid",
    )
    # perceived pain
    pain_offset_c: float = P(0.5, "°C below the threshold at which perceived pain starts")
    pain_exponent: float = P(
        1.2,
        "exponent of perceived pain vs (T - T1 + offset)/(T4 - T1 + offset)",
        "assumption (heat pain grows steeply above threshold)",
    )
    face_threshold_min: float = P(
        0.05,
        "lowest facial display threshold (perceived pain 0-1)",
        "assumption; [pain-face notes]: low heat levels rarely show",
    )
    face_threshold_max: float = P(0.35, "highest facial display threshold (perceived pain 0-1)")
    occurrence_min: float = P(
        0.45, "lowest probability of a visible response at tolerance", KL + " (10-60% of episodes); value assumption"
    )
    occurrence_max: float = P(0.9, "highest probability of a visible response at tolerance")
    au_join_prob: float = P(
        0.75,
        "probability that each AU of the person's profile joins a visible episode (the strongest always does)",
        KL + " (the full prototypical face is rare); value assumption",
    )
    trial_gain_log_sd: float = P(0.35, "SD of log response gain from trial to trial")
    habituation_min: float = P(0.1, "smallest fractional loss of gain over the session")
    habituation_max: float = P(0.4, "largest fractional loss of gain over the session")
    # sustained stimuli (tonic pain)
    adaptation_min: float = P(0.15, "smallest share of perceived pain lost to adaptation under a sustained stimulus",
                              TONIC + "; value assumption")
    adaptation_max: float = P(0.45, "largest share of perceived pain lost to adaptation under a sustained stimulus")
    adaptation_tau_s: float = P(20.0, "time constant of adaptation to a sustained stimulus (s)",
                                TONIC + "; value assumption")
    first_burst_s: float = P(5.0, "median duration of the first facial display of an episode (s); BioVid's 4 s "
                             "plateau plus ramps fits in it", BURSTS + "; value assumption")
    burst_s: float = P(2.5, "median duration of each later display burst while the stimulus goes on (s)",
                       BURSTS + "; value assumption")
    burst_log_sd: float = P(0.4, "SD of log burst duration")
    burst_rate_per_s: float = P(0.15, "rate of new display bursts at full facial drive after the first (1/s)",
                                BURSTS + "; value assumption")
    tonic_floor: float = P(0.15, "share of the facial drive displayed between bursts (0 = the face rests fully)")
    # timing (s)
    latency_mean_s: float = P(
        1.0,
        "mean latency of perceived pain after the temperature (s)",
        "assumption (no published facial onset latency found)",
    )
    latency_sd_s: float = P(0.3, "SD of that latency across people (s)")
    latency_min_s: float = P(0.3, "shortest latency (s)")
    rise_tau_s: float = P(0.35, "time constant of the facial response's rise (s)")
    decay_tau_s: float = P(1.2, "time constant of the facial response's decay (s)")
    # spontaneous behaviour
    blink_rate_per_min: float = P(17.0, "resting blink rate (blinks/min)", "Bentivoglio et al. 1997 (17/min at rest)")
    blink_pain_factor: float = P(1.5, "blink-rate multiplier at full pain")
    blink_duration_s: float = P(0.3, "duration of a blink, closing and reopening (s)", "assumption (~100-400 ms)")
    au_noise_sd: float = P(0.15, "SD of slow spontaneous AU fluctuations (intensity)")
    au_noise_tau_s: float = P(1.0, "time constant of spontaneous AU fluctuations (s)")
    rest_display_tau_s: float = P(10.0, "time constant of the waxing and waning of the resting emotion (s)")
    head_sd_deg: list = P([2.0, 3.0, 1.5], "SD of spontaneous head pitch, yaw, roll (degrees)")
    head_tau_s: float = P(2.0, "time constant of spontaneous head motion (s)")
    head_drop_min_deg: float = P(
        2.0,
        "smallest pain-related head drop at full pain (degrees pitch)",
        "direction: [Werner2018] (head down); size assumption",
    )
    head_drop_max_deg: float = P(8.0, "largest pain-related head drop at full pain (degrees pitch)")
    head_turn_max_deg: float = P(
        4.0,
        "largest turn toward the stimulated (right) arm at full pain (degrees yaw)",
        "direction: [Werner2018] (toward the pain site); size assumption",
    )

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InputError(f"simulation config: {msg}")

        need(0.0 <= self.stoic_share <= 1.0, f"stoic_share must be in 0..1, got {self.stoic_share}")
        need(set(self.pattern_shares) == set(PATTERNS[:4]), f"pattern_shares needs exactly {PATTERNS[:4]}")
        need(set(self.emotion_shares) == set(EMOTIONS), f"emotion_shares needs exactly {EMOTIONS}")
        for name in ("pattern_shares", "emotion_shares"):
            shares = np.array(list(getattr(self, name).values()), dtype=float)
            need(bool(np.all(shares >= 0) and shares.sum() > 0), f"{name} must be >= 0 and not all 0")
        need(0.0 <= self.female_share <= 1.0, "female_share must be in 0..1")
        need(self.age_min <= self.age_max, "age_min must be <= age_max")
        need(0 <= self.emotion_strength_min <= self.emotion_strength_max, "emotion strength range is empty")
        need(0 < self.face_threshold_min <= self.face_threshold_max < 1, "face thresholds must be in (0, 1)")
        need(0 <= self.occurrence_min <= self.occurrence_max <= 1, "occurrence range must lie in 0..1")
        need(0 <= self.au_join_prob <= 1, "au_join_prob must lie in 0..1")
        need(0 <= self.habituation_min <= self.habituation_max < 1, "habituation range must lie in [0, 1)")
        need(0 <= self.adaptation_min <= self.adaptation_max < 1, "adaptation range must lie in [0, 1)")
        need(0 <= self.tonic_floor <= 1, "tonic_floor must lie in 0..1")
        need(self.burst_rate_per_s >= 0 and self.burst_log_sd >= 0, "burst_rate_per_s and burst_log_sd must be >= 0")
        need(
            min(
                self.rise_tau_s,
                self.decay_tau_s,
                self.head_tau_s,
                self.au_noise_tau_s,
                self.rest_display_tau_s,
                self.blink_duration_s,
                self.adaptation_tau_s,
                self.first_burst_s,
                self.burst_s,
            )
            > 0,
            "time constants must be > 0",
        )
        need(len(self.head_sd_deg) == 3, "head_sd_deg needs 3 values (pitch, yaw, roll)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        cfg = config_from_dict(cls, d, "simulation config")
        cfg.validate()
        return cfg


@dataclass
class SubjectTraits:
    """One virtual person."""

    sex: str
    age: float
    pattern: str
    emotion: str
    emotion_strength: float
    gain: float
    threshold_c: float
    tolerance_c: float
    face_threshold: float
    occurrence: float
    habituation: float
    adaptation: float
    latency_s: float
    head_drop_deg: float
    head_turn_deg: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in dataclasses.asdict(self).items()}


def _choice(rng: np.random.Generator, shares: dict[str, float]) -> str:
    keys = list(shares)
    p = np.array([shares[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_traits(rng: np.random.Generator, cfg: SimConfig, *, sex: str | None = None) -> SubjectTraits:
    """Draw one person's traits from the population ``cfg`` (``sex`` may be fixed by the caller)."""
    sex = sex or ("female" if rng.random() < cfg.female_share else "male")
    if sex not in ("female", "male"):
        raise InputError(f"sex: {sex!r}, expected 'female' or 'male'")
    stoic = rng.random() < cfg.stoic_share
    pattern = "stoic" if stoic else _choice(rng, cfg.pattern_shares)
    emotion = _choice(rng, cfg.emotion_shares)
    threshold = max(cfg.threshold_min_c, rng.normal(cfg.threshold_mean_c, cfg.threshold_sd_c))
    gap = max(cfg.tolerance_gap_min_c, rng.normal(cfg.tolerance_gap_mean_c, cfg.tolerance_gap_sd_c))
    tolerance = min(cfg.tolerance_max_c, threshold + gap)
    threshold = min(threshold, tolerance - cfg.tolerance_gap_min_c)
    gain = float(np.exp(rng.normal(0.0, cfg.gain_log_sd)))
    gain *= (cfg.female_gain if sex == "female" else cfg.male_gain) * cfg.social_gain
    gain *= EMOTION_RESPONSE[emotion]["gain"]
    return SubjectTraits(
        sex=sex,
        age=float(rng.uniform(cfg.age_min, cfg.age_max)),
        pattern=pattern,
        emotion=emotion,
        emotion_strength=float(rng.uniform(cfg.emotion_strength_min, cfg.emotion_strength_max)),
        gain=gain,
        threshold_c=float(threshold),
        tolerance_c=float(tolerance),
        face_threshold=float(rng.uniform(cfg.face_threshold_min, cfg.face_threshold_max)),
        occurrence=float(rng.uniform(cfg.occurrence_min, cfg.occurrence_max)),
        habituation=float(rng.uniform(cfg.habituation_min, cfg.habituation_max)),
        adaptation=float(rng.uniform(cfg.adaptation_min, cfg.adaptation_max)),
        latency_s=float(max(cfg.latency_min_s, rng.normal(cfg.latency_mean_s, cfg.latency_sd_s))),
        head_drop_deg=float(rng.uniform(cfg.head_drop_min_deg, cfg.head_drop_max_deg)),
        head_turn_deg=float(rng.uniform(0.0, cfg.head_turn_max_deg)),
    )


def response_profile(traits: SubjectTraits) -> dict[str, float]:
    """AU -> intensity at full pain and gain 1 for this person: pattern weights coloured by emotion."""
    prof = dict(PATTERN_AUS[traits.pattern])
    if traits.pattern == "stoic":
        return prof
    mod = EMOTION_RESPONSE[traits.emotion]
    for au, m in mod["mul"].items():
        if au in prof:
            prof[au] *= m
    for au, a in mod["add"].items():
        prof[au] = prof.get(au, 0.0) + a * traits.emotion_strength
    assert set(prof) <= set(AU_NAMES)
    return prof


def _au_table(title: str, table: dict[str, dict[str, float]], source: str) -> list[str]:
    rows = [
        f"\n### {title}\n",
        f"Source: {source}.\n",
        "| | " + " | ".join(AU_NAMES) + " |",
        "| --- |" + " --- |" * len(AU_NAMES),
    ]
    for key, aus in table.items():
        rows.append(f"| {key} | " + " | ".join(f"{aus[a]:g}" if a in aus else "" for a in AU_NAMES) + " |")
    return rows


def assumptions_markdown() -> str:
    """Every simulation parameter with its default and source, and the AU tables (docs/assumptions.md)."""
    rows = ["| parameter | default | meaning | source |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(SimConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if isinstance(default, dict):
            default = ", ".join(f"{k} {v:g}" for k, v in default.items())
        elif isinstance(default, list):
            default = ", ".join(f"{v:g}" for v in default)
        rows.append(f"| `{f.name}` | {default} | {f.metadata['doc']} | {f.metadata['source']} |")
    rows += _au_table(
        "AU intensity of each response pattern at full pain, gain 1",
        PATTERN_AUS,
        KL + " for which regions move in each pattern; intensities assumption",
    )
    rows += _au_table(
        "Resting display of each dominant emotion at strength 1",
        EMOTION_REST_AUS,
        "EMFACS prototypes (Friesen & Ekman 1983) restricted to painface's AUs; intensities assumption",
    )
    rows += _au_table(
        "AUs each emotion adds to the pain response (x strength)",
        {e: m["add"] for e, m in EMOTION_RESPONSE.items()},
        "assumption (emotion prototypes as above)",
    )
    rows += _au_table(
        "Multipliers each emotion applies to the pattern's AUs",
        {e: m["mul"] for e, m in EMOTION_RESPONSE.items()},
        ASSUME,
    )
    rows += ["\n### Overall gain per emotion\n", "| emotion | gain |", "| --- | --- |"]
    rows += [f"| {e} | {m['gain']:g} |" for e, m in EMOTION_RESPONSE.items()]
    rows += _au_table(
        "Onset delay of each AU after perceived-pain onset (s)",
        {"delay": REGION_DELAY_S},
        "order: [pain-face notes] (eyes, then nose/upper lip, then brows, rated most realistic); values assumption",
    )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(assumptions_markdown(), end="")
