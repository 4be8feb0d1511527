"""Expressions for synthetic pain-face datasets: pain AU configurations and hard negatives.

**Pain** follows the four facial-response patterns to experimental pain of Kunz & Lautenbacher (2014):
(1) narrowed eyes + furrowed brows + wrinkled nose / raised upper lip, (2) open mouth + narrowed eyes,
(3) raised eyebrows (+ narrowed eyes), (4) furrowed brows + narrowed eyes; narrowed eyes (AU6/AU7)
appear in every pattern. Pattern probabilities (:data:`PATTERN_P`) favour the brow-and-eyes patterns,
the commonest in heat pain. Each pain expression draws an overall level ``L = min(U(0.5, 5.6), 5)``
(near uniform, with a tenth of the draws at the maximum, so PSPI covers 1..16 instead of the real
data's pile-up at 0) and sets each of its pattern's AUs to ``clip(L w + N(0, 0.4), 0, 5)`` with a
per-AU weight ``w ~ U(0.7, 1.0)``; optional companions join
with probabilities rising with L (AU43 eyes closed: 0.05 + 0.3 L/5; AU25 lips part: 0.2 + 0.4 L/5;
AU10 in pattern 1: 0.7). The head turns a little down (pain brings the head down: pitch +N(2, 3) deg).

**Hard negatives** are non-pain expressions that share AUs with pain, so that a model does not read
every AU6 or AU9 as pain: a Duchenne smile (AU6 + AU12 [+ AU25]), surprise (AU1 + AU2 + AU5 + AU26),
disgust (AU9 + AU10 + AU15 + AU17), speech-like mouth movement (AU25/AU26 with a little AU10/AU12/
AU20) and a blink (AU45). Their PSPI is computed by the same formula (a smile with AU6 = 3 has PSPI 3:
PSPI is a sum of AUs, not a pain label); the ``pain`` column says which expressions are pain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from painface.face.code import AU_NAMES, FEATURE_NAMES, pspi

PATTERNS: dict[int, tuple[str, ...]] = {
    1: ("AU4", "AU6", "AU7", "AU9"),
    2: ("AU6", "AU7", "AU26"),
    3: ("AU1", "AU2", "AU6", "AU7"),
    4: ("AU4", "AU6", "AU7"),
}
PATTERN_P = np.array([0.35, 0.15, 0.15, 0.35])
NEGATIVES = ("smile", "surprise", "disgust", "speech", "blink")


@dataclass(frozen=True)
class Expression:
    """One expression: ``kind`` ("neutral", "pain" or a hard-negative name), ``pattern`` (1-4 for pain,
    0 otherwise), ``level`` (the drawn overall level L, 0 for others) and the face code ``[20]``."""

    kind: str
    pattern: int
    level: float
    code: np.ndarray

    @property
    def pain(self) -> bool:
        return self.kind == "pain"

    @property
    def pspi(self) -> float:
        return float(pspi(self.code[None], FEATURE_NAMES)[0])


def _code(aus: dict[str, float], pose: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    c = np.zeros(len(FEATURE_NAMES), np.float32)
    for k, v in aus.items():
        c[AU_NAMES.index(k)] = float(np.clip(v, 0.0, 5.0))
    c[len(AU_NAMES) :] = pose
    return c


def pain_expression(rng: np.random.Generator, pose_sd: float = 3.0) -> Expression:
    """A pain expression (see the module docstring)."""
    pattern = int(rng.choice(4, p=PATTERN_P)) + 1
    level = float(min(rng.uniform(0.5, 5.6), 5.0))
    aus = {au: level * rng.uniform(0.7, 1.0) + rng.normal(0, 0.4) for au in PATTERNS[pattern]}
    if pattern == 1 and rng.random() < 0.7:
        aus["AU10"] = level * rng.uniform(0.4, 0.9) + rng.normal(0, 0.4)
    if rng.random() < 0.05 + 0.3 * level / 5:
        aus["AU43"] = rng.uniform(2.5, 5.0)
    if rng.random() < 0.2 + 0.4 * level / 5:
        aus["AU25"] = rng.uniform(1.0, 3.0)
    pose = (float(rng.normal(2.0, pose_sd)), float(rng.normal(0, pose_sd)), float(rng.normal(0, pose_sd / 2)))
    return Expression("pain", pattern, level, _code(aus, pose))


def negative_expression(rng: np.random.Generator, kind: str | None = None, pose_sd: float = 3.0) -> Expression:
    """A hard negative of ``kind`` (default: drawn uniformly from :data:`NEGATIVES`)."""
    kind = kind or NEGATIVES[int(rng.integers(len(NEGATIVES)))]
    a = float(rng.uniform(1.5, 5.0))
    if kind == "smile":
        aus = {"AU6": a * rng.uniform(0.5, 1.0), "AU12": a}
        if rng.random() < 0.5:
            aus["AU25"] = rng.uniform(1, 3)
    elif kind == "surprise":
        aus = {"AU1": a, "AU2": a * rng.uniform(0.7, 1.0), "AU5": a * rng.uniform(0.5, 1.0), "AU26": a * 0.6}
    elif kind == "disgust":
        aus = {"AU9": a, "AU10": a * rng.uniform(0.5, 1.0), "AU15": a * rng.uniform(0.3, 0.8), "AU17": a * 0.5}
    elif kind == "speech":
        aus = {"AU25": rng.uniform(1.5, 4), "AU26": rng.uniform(0, 3), "AU10": rng.uniform(0, 1.2),
               "AU12": rng.uniform(0, 1.5), "AU20": rng.uniform(0, 1.5)}
    elif kind == "blink":
        aus = {"AU45": rng.uniform(4.0, 5.0)}
    else:
        raise ValueError(f"unknown hard negative {kind!r}; expected one of {NEGATIVES}")
    pose = (float(rng.normal(0, pose_sd)), float(rng.normal(0, pose_sd)), float(rng.normal(0, pose_sd / 2)))
    return Expression(kind, 0, 0.0, _code(aus, pose))


def neutral_expression(rng: np.random.Generator, pose_sd: float = 3.0) -> Expression:
    pose = (float(rng.normal(0, pose_sd)), float(rng.normal(0, pose_sd)), float(rng.normal(0, pose_sd / 2)))
    return Expression("neutral", 0, 0.0, _code({}, pose))


def identity_expressions(rng: np.random.Generator, n: int, negatives: int, pose_sd: float = 3.0) -> list[Expression]:
    """Expression 0 (neutral) then ``n`` expressions of which ``negatives`` are hard negatives, in a
    random order."""
    kinds = ["pain"] * (n - negatives) + ["neg"] * negatives
    order = rng.permutation(n)
    out = [neutral_expression(rng, pose_sd)]
    for i in order:
        out.append(pain_expression(rng, pose_sd) if kinds[i] == "pain" else negative_expression(rng, pose_sd=pose_sd))
    return out
