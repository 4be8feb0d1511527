"""Identities: seeded face shapes, sex and age cues, skin tones, iris and hair colours.

An :class:`Identity` is a small JSON-able record. :func:`identity_rig` turns it into a
:class:`~painface.face.rig.Rig` whose rest mesh is reshaped and whose AU fields are carried through the
local Jacobian of the reshaping, so :func:`painface.face.rig.deform` drives it unchanged (closed lids
still land on the reshaped lower lids). :func:`identity_colors` paints it.

Shape is a smooth displacement field ``S(p)`` over the head frame (mm; +x subject's left, +y up, +z
toward the viewer), the sum of named terms, each a parameter ``v`` in -1..1 times a displacement at
``v = 1``: face width (x x 8 %), face length (y about the nose x 7 %), jaw width (x below the mouth x
12 %), nose length (tip 3 mm down, 2 mm forward), nose width (wings x 18 %), eye size (x 7 % about each
eye centre, rigid inside 16 mm so the eyeball stays a sphere), eye spacing (each eye 2.5 mm outward),
brow height (3 mm), cheek fullness (4 mm out), lip thickness (1.5 mm each lip). Sex adds a brow ridge
(males 2.5 mm forward), a wider jaw and thinner lips; age adds sagging jowls and cheeks (up to 3 mm down
for the oldest group), thinner lips and darker folds (nasolabial, crow's feet, forehead lines, under the
eyes). Brow thickness changes the painted brow band (half-height 2.6 mm x (1 + 0.35 v)).

Skin tones are the 10 tones of the Monk Skin Tone (MST) scale (Monk 2019; Google's published sRGB
values, https://skintone.google), :data:`MONK_SKIN_TONES`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from painface.errors import InputError
from painface.face import mesh as fm
from painface.face.rig import Rig, build_rig

MONK_SKIN_TONES: tuple[str, ...] = (
    "#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
    "#a07e56", "#825c43", "#604134", "#3a312a", "#292420",
)  # fmt: skip
"""Monk Skin Tone scale, tones 1 (lightest) .. 10 (darkest), sRGB hex (Monk 2019, skintone.google)."""

IRIS_COLORS: dict[str, tuple[float, float, float]] = {
    "dark_brown": (0.16, 0.09, 0.05), "brown": (0.33, 0.20, 0.10), "hazel": (0.45, 0.36, 0.18),
    "green": (0.32, 0.42, 0.25), "blue": (0.30, 0.45, 0.62), "grey": (0.45, 0.50, 0.53),
}  # fmt: skip
HAIR_COLORS: dict[str, tuple[float, float, float]] = {
    "black": (0.07, 0.06, 0.05), "dark_brown": (0.18, 0.12, 0.08), "brown": (0.32, 0.22, 0.14),
    "blond": (0.62, 0.50, 0.32), "red": (0.50, 0.24, 0.12), "grey": (0.66, 0.65, 0.63),
}  # fmt: skip
SEXES = ("female", "male")
AGE_GROUPS: dict[str, tuple[int, int]] = {"young": (20, 35), "middle": (36, 55), "old": (56, 80)}
SHAPE_PARAMS: tuple[str, ...] = (
    "face_width", "face_length", "jaw_width", "nose_length", "nose_width", "eye_size", "eye_spacing",
    "brow_height", "brow_thickness", "fullness", "lip_thickness",
)  # fmt: skip
"""Named shape parameters, each in -1..1 (0 = the built-in face)."""


def hex_to_rgb(h: str) -> tuple[float, float, float]:
    """``"#rrggbb"`` -> sRGB triple in 0..1."""
    h = h.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


@dataclass(frozen=True)
class Identity:
    """One virtual person. ``shape`` maps each of :data:`SHAPE_PARAMS` to a value in -1..1;
    ``age`` in years; ``skin_tone`` 1..10 on the Monk scale; ``iris`` / ``hair`` keys of
    :data:`IRIS_COLORS` / :data:`HAIR_COLORS`; ``seed`` the seed it was drawn from."""

    seed: int = 0
    sex: str = "female"
    age_group: str = "young"
    age: int = 28
    skin_tone: int = 5
    iris: str = "brown"
    hair: str = "dark_brown"
    shape: dict[str, float] = field(default_factory=lambda: dict.fromkeys(SHAPE_PARAMS, 0.0))
    ancestry: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    muscle: float = 0.5
    weight: float = 0.5
    hair_style: str = "short"
    details: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.sex not in SEXES:
            raise InputError(f"identity.sex: expected one of {SEXES}, got {self.sex!r}")
        if self.age_group not in AGE_GROUPS:
            raise InputError(f"identity.age_group: expected one of {tuple(AGE_GROUPS)}, got {self.age_group!r}")
        if not 1 <= int(self.skin_tone) <= 10:
            raise InputError(f"identity.skin_tone: expected a Monk scale tone 1..10, got {self.skin_tone!r}")
        if not 18 <= int(self.age) <= 100:
            raise InputError(f"identity.age: expected 18..100 years, got {self.age!r}")
        if self.iris not in IRIS_COLORS or self.hair not in HAIR_COLORS:
            raise InputError(f"identity: iris {self.iris!r} / hair {self.hair!r} not in "
                             f"{tuple(IRIS_COLORS)} / {tuple(HAIR_COLORS)}")
        unknown = set(self.shape) - set(SHAPE_PARAMS)
        if unknown:
            raise InputError(f"identity.shape: unknown parameter(s) {sorted(unknown)}; expected {SHAPE_PARAMS}")
        for k, v in self.shape.items():
            if not np.isfinite(v) or abs(v) > 1.0:
                raise InputError(f"identity.shape.{k}: expected a number in -1..1, got {v!r}")
        from painface.face.head import HAIR_STYLES

        if self.hair_style not in HAIR_STYLES:
            raise InputError(f"identity.hair_style: expected one of {tuple(HAIR_STYLES)}, got {self.hair_style!r}")
        self.phenotype().corner_weights()  # range checks of ancestry, muscle, weight
        for k, v in self.details.items():
            if not isinstance(v, int | float) or not np.isfinite(v) or abs(v) > 1.0:
                raise InputError(f"identity.details.{k}: expected a number in -1..1, got {v!r}")

    def phenotype(self):
        """The head's :class:`~painface.face.head.Phenotype`: ancestry, sex (female 0.9, male 0.1 on Anny's
        gender axis), age, muscle and weight."""
        from painface.face.head import Phenotype

        anc = tuple(float(a) for a in self.ancestry)
        if len(anc) != 3:
            raise InputError(f"identity.ancestry: expected 3 weights (african, asian, caucasian), "
                             f"got {self.ancestry!r}")
        return Phenotype(ancestry=anc, gender=0.9 if self.sex == "female" else 0.1, age=float(self.age),
                         muscle=float(self.muscle), weight=float(self.weight))

    def param(self, name: str) -> float:
        return float(self.shape.get(name, 0.0))

    @property
    def age_amount(self) -> float:
        """0 at 20 years, 1 at 80 (drives sagging and wrinkles)."""
        return float(np.clip((self.age - 20) / 60.0, 0.0, 1.0))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Identity:
        names = {f.name for f in dataclasses.fields(cls)}
        extra = set(d) - names
        if extra:
            raise InputError(f"identity: unknown key(s) {sorted(extra)}; expected {sorted(names)}")
        try:
            return cls(**{**d, "shape": {k: float(v) for k, v in dict(d.get("shape", {})).items()},
                          "ancestry": tuple(d.get("ancestry", (1 / 3, 1 / 3, 1 / 3))),
                          "details": dict(d.get("details", {}))})
        except (TypeError, ValueError) as e:
            if isinstance(e, InputError):
                raise
            raise InputError(f"identity: {e}") from None


def _iris_for(rng: np.random.Generator, tone: int) -> str:
    names = list(IRIS_COLORS)
    light = max(0.0, (6 - tone) / 5.0)  # 1 for tone 1, 0 from tone 6
    p = np.array([0.45 - 0.35 * light, 0.35 - 0.1 * light, 0.1 + 0.05 * light, 0.04 + 0.12 * light,
                  0.04 + 0.23 * light, 0.02 + 0.05 * light])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _hair_for(rng: np.random.Generator, tone: int, age: int) -> str:
    if age >= 56 and rng.random() < 0.75:
        return "grey"
    light = max(0.0, (5 - tone) / 4.0)
    p = np.array([0.35 - 0.25 * light, 0.4 - 0.1 * light, 0.2 + 0.1 * light, 0.03 + 0.17 * light,
                  0.02 + 0.08 * light])
    return ("black", "dark_brown", "brown", "blond", "red")[int(rng.choice(5, p=p / p.sum()))]


def make_identity(seed: int, *, sex: str | None = None, age_group: str | None = None,
                  skin_tone: int | None = None) -> Identity:
    """Draw one identity from ``seed``; ``sex`` / ``age_group`` / ``skin_tone`` fix those strata."""
    rng = np.random.default_rng([int(seed), 0x1D])
    sex = sex if sex is not None else SEXES[int(rng.integers(2))]
    age_group = age_group if age_group is not None else tuple(AGE_GROUPS)[int(rng.integers(3))]
    if age_group not in AGE_GROUPS:
        raise InputError(f"age_group: expected one of {tuple(AGE_GROUPS)}, got {age_group!r}")
    tone = int(skin_tone) if skin_tone is not None else int(rng.integers(1, 11))
    lo, hi = AGE_GROUPS[age_group]
    age = int(rng.integers(lo, hi + 1))
    shape = {k: float(np.clip(rng.normal(0.0, 0.45), -1.0, 1.0)) for k in SHAPE_PARAMS}
    iris, hair = _iris_for(rng, tone), _hair_for(rng, tone, age)
    # the head (drawn after the mask's fields so that those keep their values for a given seed)
    from painface.face.head import HAIR_STYLES
    from painface.face.head_asset import load_head_asset

    anc = _ancestry_for(rng, tone)
    muscle = float(np.clip(rng.normal(0.5, 0.18), 0.05, 0.95))
    weight = float(np.clip(rng.normal(0.5, 0.2), 0.05, 0.95))
    styles = list(HAIR_STYLES)
    p = np.array([0.30, 0.45, 0.15, 0.10]) if sex == "male" else np.array([0.03, 0.22, 0.35, 0.40])
    style = styles[int(rng.choice(len(styles), p=p))]
    # detail controls: sd 0.35; the eye's own size and height stay at 0 (the eyeball does not follow them)
    details = {k: float(np.clip(rng.normal(0.0, 0.35), -1.0, 1.0)) for k in load_head_asset().detail_names
               if k not in ("eye_size", "eye_height")}
    return Identity(seed=int(seed), sex=sex, age_group=age_group, age=age, skin_tone=tone, iris=iris, hair=hair,
                    shape=shape, ancestry=anc, muscle=muscle, weight=weight, hair_style=style, details=details)


def _ancestry_for(rng: np.random.Generator, tone: int) -> tuple[float, float, float]:
    """Anny's (african, asian, caucasian) mix, drawn from a Dirichlet that leans with the skin tone: darker
    tones toward African, middle tones toward Asian, lighter toward Caucasian, every mix possible."""
    t = (tone - 1) / 9.0
    alpha = np.array([0.3 + 3.0 * max(0.0, t - 0.35) / 0.65, 0.4 + 1.6 * (1.0 - abs(t - 0.4) / 0.6),
                      0.3 + 3.0 * max(0.0, 0.6 - t) / 0.6])
    w = rng.dirichlet(alpha)
    return tuple(float(x) for x in w)  # type: ignore[return-value]


def identity_plan(n: int, seed: int = 0, start: int = 0, stop: int | None = None
                  ) -> list[tuple[int, str, str, int]]:
    """The draws behind :func:`sample_identities` without building the identities: ``(identity seed,
    sex, age group, skin tone)`` for indexes ``start..stop`` of ``n`` (cheap; the identities themselves
    are made by :func:`make_identity`)."""
    if not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"n: expected a non-negative integer, got {n!r}")
    rng = np.random.default_rng(int(seed))
    strata = [(a, s, t) for a in AGE_GROUPS for s in SEXES for t in range(1, 11)]
    out: list[tuple[int, str, str, int]] = []
    while len(out) < n:
        for k in rng.permutation(len(strata)):
            if len(out) == n:
                break
            a, s, t = strata[int(k)]
            out.append((int(rng.integers(2**31)), s, a, t))
    return out[start:stop]


def sample_identities(n: int, seed: int = 0) -> list[Identity]:
    """``n`` identities balanced over age group x sex x skin tone (3 x 2 x 10 = 60 strata).

    Strata are visited round-robin in a seeded random order (a fresh order every 60), so every stratum
    count differs by at most one; each identity's own seed is drawn from ``seed``.
    """
    return [make_identity(i, sex=s, age_group=a, skin_tone=t) for i, s, a, t in identity_plan(n, seed)]


# ---------------------------------------------------------------------------------------------- shape

def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(p: np.ndarray, c: np.ndarray, sigma: tuple[float, float, float]) -> np.ndarray:
    d = (p - c) / np.asarray(sigma)
    return np.exp(-0.5 * (d * d).sum(axis=-1))


class _Landmarks:
    def __init__(self, mesh: fm.FaceMesh) -> None:
        v = mesh.vertices.astype(np.float64)
        self.v = v
        self.eyes = mesh.eye_centers.astype(np.float64)  # right, left
        self.nose_tip = v[4]
        self.mouth_y = float(v[0, 1] + v[17, 1]) / 2
        self.brow_y = float(v[105, 1])


def _face_terms(p: np.ndarray, ident: Identity, lm: _Landmarks) -> np.ndarray:
    """Every term but the eyes' (see the module docstring), ``[N, 3]`` mm at points ``[N, 3]``."""
    g = ident.param
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    male = 1.0 if ident.sex == "male" else -1.0
    age = ident.age_amount
    d = np.zeros_like(p)
    d[:, 0] += 0.08 * g("face_width") * x
    d[:, 1] += 0.07 * (g("face_length") + 0.25 * male) * (y - lm.nose_tip[1])
    below_mouth = _smoothstep(lm.mouth_y + 5.0 - y, 0.0, 30.0)
    d[:, 0] += 0.12 * np.clip(g("jaw_width") + 0.5 * male, -1.2, 1.2) * x * below_mouth
    nose = _gauss(p, lm.nose_tip + [0, 2, -6], (9, 12, 14))
    d[:, 1] += -3.0 * g("nose_length") * nose
    d[:, 2] += 2.0 * (g("nose_length") + 0.3 * male) * nose
    wings = _gauss(p, lm.nose_tip + [0, -5, -8], (14, 7, 12))
    d[:, 0] += 0.18 * g("nose_width") * x * wings
    cheek = sum(_gauss(p, np.array(c), (16, 14, 18)) for c in ([-43.4, -8.0, 33.0], [43.4, -8.0, 33.0]))
    d[:, 0] += 4.0 * g("fullness") * cheek * x / 45.0
    d[:, 2] += 3.0 * g("fullness") * cheek
    lips = _gauss(p, np.array([0.0, lm.mouth_y, 55.0]), (20, 9, 14))
    lip_t = 1.5 * g("lip_thickness") - 0.6 * male - 1.2 * age
    d[:, 1] += lip_t * lips * np.tanh((y - lm.mouth_y) / 3.0)
    d[:, 2] += 0.8 * lip_t * lips
    brows = _gauss(p[:, :2], np.array([0.0, lm.brow_y]), (60, 9)) * _smoothstep(y - lm.eyes[0, 1], 4.0, 12.0)
    d[:, 1] += (3.0 * g("brow_height") - 1.2 * male) * brows
    ridge = _gauss(p[:, :2], np.array([0.0, lm.brow_y - 3.0]), (38, 8)) * _smoothstep(z, 0.0, 10.0)
    d[:, 2] += 2.5 * max(male, 0.0) * ridge
    jowl = sum(_gauss(p, np.array(c), (14, 14, 20)) for c in ([-48, -55, 20], [48, -55, 20]))
    d[:, 1] += -3.0 * age * (jowl + 0.6 * cheek)
    d[:, 0] += 1.5 * age * jowl * x / 48.0
    return d


def shape_field(p: np.ndarray, ident: Identity, lm: _Landmarks) -> np.ndarray:
    """Identity displacement ``[N, 3]`` (mm) at points ``p`` ``[N, 3]`` (mm, head frame).

    Around each eye centre ``c`` the face terms are replaced, within 16 mm and blending out by 30 mm,
    by a similarity: the face terms' displacement at ``c``, plus eye-size scaling about ``c`` and the
    eye-spacing shift, so the eyeball and the lid rims move together and the eyeball stays a sphere.
    """
    d = _face_terms(p, ident, lm)
    s = 0.07 * ident.param("eye_size")
    at_c = _face_terms(lm.eyes, ident, lm)
    for k, c in enumerate(lm.eyes):
        w = (1.0 - _smoothstep(np.linalg.norm(p - c, axis=1), 16.0, 30.0))[:, None]
        shift = np.array([(-1.0 if k == 0 else 1.0) * 2.5 * ident.param("eye_spacing"), 0.0, 0.0])
        d = (1.0 - w) * d + w * (at_c[k] + s * (p - c) + shift)
    return d


def _jacobians(p: np.ndarray, ident: Identity, lm: _Landmarks, eps: float = 0.05) -> np.ndarray:
    """``[N, 3, 3]`` Jacobian of ``p -> p + S(p)`` by central differences."""
    cols = []
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        cols.append((shape_field(p + e, ident, lm) - shape_field(p - e, ident, lm)) / (2 * eps))
    return np.eye(3)[None] + np.stack(cols, axis=2)


def identity_rig(ident: Identity, rig: Rig | None = None) -> Rig:
    """A rig for ``ident``: rest mesh reshaped by the identity's field; every AU field ``u`` at a face
    vertex ``p`` becomes ``J(p) u`` (``J`` the Jacobian of the reshaping), so AUs keep their meaning."""
    rig = rig or build_rig()
    mesh = rig.mesh
    lm = _Landmarks(mesh)
    rest = mesh.vertices.astype(np.float64)
    shaped = rest + shape_field(rest, ident, lm)
    n = mesh.n_face
    jac = _jacobians(rest[:n], ident, lm).astype(np.float32)  # [n, 3, 3]

    def carry(b: np.ndarray) -> np.ndarray:
        u = b.reshape(*b.shape[:-1], n, 3)
        return np.einsum("nij,...nj->...ni", jac, u).reshape(b.shape).astype(np.float32)

    centers = mesh.eye_centers.astype(np.float64)
    new_centers = centers + shape_field(centers, ident, lm)
    new_mesh = dataclasses.replace(mesh, vertices=shaped.astype(np.float32), eye_centers=new_centers.astype(np.float32),
                                   eye_radius=float(mesh.eye_radius * (1 + 0.07 * ident.param("eye_size"))))
    return Rig(mesh=new_mesh, basis=carry(rig.basis), lids=carry(rig.lids), jaw_weight=rig.jaw_weight)


# -------------------------------------------------------------------------------------------- colours

def _brow_cover(p: np.ndarray, half: float) -> np.ndarray:
    """Brow coverage 0..1 at face points ``p`` (rest mesh, mm): a band of half-height ``half`` mm
    around each brow's centre line, tapering toward the tail."""
    cover = np.zeros(len(p))
    for brow in (fm.RIGHT_BROW, fm.LEFT_BROW):
        q = fm.build_face().vertices[list(brow)].astype(np.float64)
        upper, lower = q[:5], q[5:][::-1]  # both outer -> inner
        mid = 0.5 * (upper + lower)
        seg_a, seg_b = mid[:-1], mid[1:]
        ab = seg_b - seg_a
        t = np.clip(((p[:, None, :] - seg_a) * ab).sum(-1) / (ab * ab).sum(-1), 0.0, 1.0)
        closest = seg_a + t[..., None] * ab
        dist = np.linalg.norm(p[:, None, :] - closest, axis=2)
        k = dist.argmin(axis=1)
        along = (k + t[np.arange(len(p)), k]) / (len(mid) - 1)  # 0 at the tail, 1 at the head
        h = half * (0.55 + 0.45 * np.clip(along * 1.6, 0.0, 1.0))
        c = 1.0 - _smoothstep(dist.min(axis=1), h - 0.8, h + 0.8)
        cover = np.maximum(cover, c)
    return cover


def _folds(p: np.ndarray) -> np.ndarray:
    """Where age darkens the skin (0..1): nasolabial folds, crow's feet, under-eyes, forehead lines."""
    out = np.zeros(len(p))
    for sx in (-1.0, 1.0):
        # nasolabial: a line from beside the nose wing to beside the mouth corner
        a, b = np.array([sx * 22.0, -12.0]), np.array([sx * 30.0, -44.0])
        ab = b - a
        t = np.clip(((p[:, :2] - a) @ ab) / (ab @ ab), 0.0, 1.0)
        dist = np.linalg.norm(p[:, :2] - (a + t[:, None] * ab), axis=1)
        out = np.maximum(out, np.exp(-0.5 * (dist / 2.2) ** 2) * (p[:, 2] > 20))
        crow = _gauss(p[:, :2], np.array([sx * 60.0, 24.0]), (4, 7))
        ripple = 0.5 + 0.5 * np.cos(2 * np.pi * (p[:, 1] - 24.0) / 4.0)
        out = np.maximum(out, 0.5 * crow * ripple)
        under = _gauss(p[:, :2], np.array([sx * 31.0, 13.0]), (9, 2.5)) * (p[:, 2] > 15)
        out = np.maximum(out, 0.7 * under)
    forehead = _gauss(p[:, :2], np.array([0.0, 68.0]), (30, 9))
    lines = np.clip(np.cos(2 * np.pi * (p[:, 1] - 64.0) / 8.0), 0.0, 1.0) ** 2
    return np.maximum(out, 0.45 * forehead * lines)


def identity_colors(ident: Identity, mesh: fm.FaceMesh | None = None) -> np.ndarray:
    """Per-vertex sRGB albedo ``[V, 3]`` float32 in 0..1 for ``ident`` on ``mesh`` (default: the
    built-in face): Monk skin tone, lips, brows of the identity's thickness and hair colour, iris,
    and age darkening in the folds."""
    mesh = mesh or build_rig().mesh
    skin = np.asarray(hex_to_rgb(MONK_SKIN_TONES[ident.skin_tone - 1]), np.float32)
    hair = np.asarray(HAIR_COLORS[ident.hair], np.float32)
    base = fm.vertex_colors(mesh, tuple(skin.tolist()), iris=IRIS_COLORS[ident.iris], brow=tuple(hair.tolist()))
    n = mesh.n_face
    p = fm.build_face().vertices[:n].astype(np.float64)
    lip = mesh.paint[:n, 0:1] if mesh.paint is not None else np.zeros((n, 1), np.float32)
    lip_col = skin * np.array([0.85, 0.55, 0.55], np.float32) if ident.sex == "female" else skin * np.array(
        [0.88, 0.66, 0.64], np.float32)
    col = skin * (1 - lip) + lip_col * lip
    shade = 1.0 - (0.14 + 0.10 * (ident.skin_tone <= 5)) * ident.age_amount * _folds(p)
    col = col * shade[:, None].astype(np.float32)
    brow = _brow_cover(p, 2.6 * (1.0 + 0.35 * ident.param("brow_thickness")))[:, None].astype(np.float32)
    brow_col = 0.3 * skin + 0.7 * hair
    alpha = 0.9 * brow
    base[:n] = col * (1 - alpha) + brow_col * alpha
    return np.clip(base, 0.0, 1.0).astype(np.float32)
