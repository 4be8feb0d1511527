"""Colours of the whole head: skin of a Monk tone with a little variation and flush, lips, brows, the eye's
surroundings (lash lines, lid-crease and under-eye shading), hair, eyes (sclera, iris with a limbal ring,
pupil), teeth, mouth interior and tongue.

:func:`head_colors` returns per-vertex sRGB albedo ``[V, 3]`` in 0..1 and a per-vertex specular
strength ``[V]`` (1 = skin) for :func:`painface.face.render.render`.
"""

from __future__ import annotations

import numpy as np

from painface.face.head_asset import HeadAsset

SCLERA = np.array([0.93, 0.91, 0.87], np.float32)
PUPIL = np.array([0.02, 0.02, 0.025], np.float32)
TEETH = np.array([0.93, 0.90, 0.82], np.float32)
MOUTH = np.array([0.30, 0.09, 0.09], np.float32)
TONGUE = np.array([0.74, 0.38, 0.38], np.float32)
LID_INSIDE = np.array([0.30, 0.15, 0.14], np.float32)  # in the shadow of the lids
SPECULAR = {"skin": 1.0, "lips": 1.5, "eye": 5.0, "teeth": 2.0, "hair": 0.35, "inside": 0.2}


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def _variation(p: np.ndarray, seed: int) -> np.ndarray:
    """Low-frequency skin variation: a sum of seeded plane waves (wavelengths 25-80 mm), about +-1."""
    rng = np.random.default_rng([seed, 0x5C1])
    out = np.zeros(len(p))
    for _ in range(6):
        k = rng.normal(size=3)
        k *= 2 * np.pi / rng.uniform(40, 110) / np.linalg.norm(k)
        out += np.sin(p @ k + rng.uniform(0, 2 * np.pi))
    return (out / np.sqrt(3.0)).astype(np.float32)


def brow_mask(p: np.ndarray, eye_centers: np.ndarray, thickness: float = 0.0) -> np.ndarray:
    """0..1 per vertex: the eyebrows, an arch above each eye (inner end 14 mm above the eye centre,
    peak 19 mm at a third of the way out, tapering outward); ``thickness`` -1..1 scales it by +-35 %."""
    out = np.zeros(len(p), np.float32)
    for j, sign in ((0, 1.0), (1, -1.0)):
        c = eye_centers[j]
        u = (p[:, 0] - c[0]) * sign  # outward from the eye centre
        y_mid = c[1] + 14.5 + 4.5 * np.exp(-(((u - 7.0) / 13.0) ** 2)) - 0.004 * np.clip(u - 10, 0, None) ** 2
        half = (4.6 - 2.4 * np.clip((u + 15.0) / 40.0, 0, 1)) * (1.0 + 0.35 * thickness)
        d = np.abs(p[:, 1] - y_mid) / half
        along = _smooth(u, -17.0, -13.0) * (1.0 - _smooth(u, 20.0, 26.0))
        front = p[:, 2] > c[2] - 2.0
        out = np.maximum(out, (1.0 - _smooth(d, 0.6, 1.25)) * along * front)
    return out


def periocular(p: np.ndarray, lid_rim: np.ndarray, eye_centers: np.ndarray, seed: int, tone: int
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """The eye's surroundings on skin vertices ``p`` [N, 3] (mm), from the lid-rim vertices ``lid_rim``
    (indexes into ``p``; the skin's edge around the eye opening): ``lash`` 0..1 (the dark lash line along the
    rim, full on the upper lid, a third on the lower), ``shade`` 0..1 (darkening of the upper lid's crease
    toward the brow and of the skin under the eye) and the lash line's darkness.

    Every real face has these at rest; a head without them has eyes that look wider and paler than real
    ones, so a model trained on its renders reads a real resting eye as narrowed (AU6/AU7, docs/assess.md).
    Strengths vary per identity (seeded): lash line 0.7-0.95, crease 6-16 %, under-eye 2-10 % plus up to
    6 % more for darker tones (periorbital hyperpigmentation is commoner in darker skin)."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng([seed, 0xE7E])
    lash_dark, crease, under = rng.uniform(0.7, 0.95), rng.uniform(0.06, 0.16), rng.uniform(0.02, 0.10)
    under += 0.06 * np.clip((tone - 5) / 5.0, 0.0, 1.0)
    rim = p[lid_rim]
    d, k = cKDTree(rim).query(p)
    side = np.argmin(np.abs(rim[:, 0:1] - eye_centers[None, :, 0]), axis=1)[k]  # the eye of the nearest rim vertex
    upper = rim[k, 1] > eye_centers[side, 1]
    front = p[:, 2] > eye_centers[side, 2] - 8.0
    lash = np.where(upper, np.exp(-((d / 3.2) ** 2)), 0.35 * np.exp(-((d / 1.8) ** 2))) * front
    shade = front * np.where(upper, crease * np.exp(-(((d - 4.5) / 3.0) ** 2)),
                             under * np.exp(-(((d - 3.5) / 2.5) ** 2)))
    return lash.astype(np.float32), shade.astype(np.float32), float(lash_dark)


def head_colors(ident, asset: HeadAsset, verts: np.ndarray, parts: dict[str, tuple[int, int]], polar: np.ndarray,
                gaps: np.ndarray, hair: np.ndarray, eye_centers: np.ndarray, *, brow_offset: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Albedo ``[V, 3]`` and specular ``[V]`` of a head built by :func:`painface.face.head.build_head`.
    ``brow_offset`` ``[V_skin, 3]`` (mm): how far the identity's brow controls moved each skin vertex; the eyebrows
    are painted where they were before the move, so they travel with the skin (a low-browed person has low brows,
    not a brow band at the usual height over a lowered ridge)."""
    from painface.face.identity import HAIR_COLORS, IRIS_COLORS, MONK_SKIN_TONES, hex_to_rgb

    tone = ident.skin_tone if ident is not None else 4
    seed = ident.seed if ident is not None else 0
    skin = np.asarray(hex_to_rgb(MONK_SKIN_TONES[tone - 1]), np.float32)
    hair_c = np.asarray(HAIR_COLORS[ident.hair if ident is not None else "dark_brown"], np.float32)
    iris_c = np.asarray(IRIS_COLORS[ident.iris if ident is not None else "brown"], np.float32)
    n = len(verts)
    lo, hi = parts["skin"]
    p = verts[lo:hi]
    col = np.empty((n, 3), np.float32)
    spec = np.full(n, SPECULAR["skin"], np.float32)

    # skin: tone, +-5 % variation, flush on cheeks, nose and ears
    var = _variation(p, seed)
    c = skin[None, :] * (1.0 + 0.03 * var[:, None])
    flush = (np.exp(-(((np.abs(p[:, 0]) - 33) / 14) ** 2 + ((p[:, 1] + 30) / 14) ** 2)) * (p[:, 2] > 0)
             + 0.7 * np.exp(-((p[:, 0] / 10) ** 2 + ((p[:, 1] + 42) / 10) ** 2)) * (p[:, 2] > 10)
             + 0.6 * asset["paint_ears"])
    c *= (1.0 - 0.07 * np.clip(flush, 0, 1)[:, None] * np.array([0.0, 1.0, 1.0], np.float32))
    lips = 0.8 * _smooth(asset["paint_lips"], 0.2, 0.5)
    lip_col = skin * (np.array([0.84, 0.68, 0.68], np.float32) if tone <= 6 else np.array([0.76, 0.64, 0.64]))
    c = c * (1 - lips[:, None]) + lip_col * lips[:, None]
    spec[lo:hi] += (SPECULAR["lips"] - 1) * lips
    # darker skin shows its shape through highlights: more sheen as the albedo darkens (x1.6 at MST 10)
    spec[lo:hi] *= 1.0 + 0.6 * np.clip((0.55 - float(skin.mean())) / 0.4, 0.0, 1.0)
    # brows: a band of the identity's hair colour, thicker for a positive brow_thickness
    thick = ident.param("brow_thickness") if ident is not None else 0.0
    brows = brow_mask(p if brow_offset is None else p - brow_offset, eye_centers, thick)
    brow_col = 0.15 * skin + 0.85 * hair_c * (0.7 if ident is None or ident.hair != "grey" else 0.9)
    c = c * (1 - 0.92 * brows[:, None]) + brow_col * 0.92 * brows[:, None]
    # around the eyes: crease and under-eye shading, then the lash line (near black, a little of the hair colour)
    tri = asset["triangles"]
    region = asset["face_region"]
    rim = np.intersect1d(np.unique(tri[region == 2]), np.unique(tri[region == 0]))
    lash, shade, lash_dark = periocular(p, rim, eye_centers, seed, tone)
    c = c * (1 - shade[:, None])
    lash_col = 0.7 * np.array([0.06, 0.045, 0.04], np.float32) + 0.3 * 0.5 * hair_c
    w = (lash_dark * lash)[:, None]
    c = c * (1 - w) + lash_col * w
    # hair: the identity's colour over the scalp (buzz cuts let the skin show through)
    style = ident.hair_style if ident is not None else "short"
    cover = hair[lo:hi] * (0.65 if style == "buzz" else 0.97)
    strand = 1.0 + 0.08 * _variation(p * 3.0, seed + 1) * (hair[lo:hi] > 0.9)
    c = c * (1 - cover[:, None]) + (hair_c * strand[:, None]) * cover[:, None]
    spec[lo:hi] = spec[lo:hi] * (1 - hair[lo:hi]) + SPECULAR["hair"] * hair[lo:hi]
    # mouth interior, tongue, inside of the lids (by triangle region)
    for reg, rgb in ((1, MOUTH), (2, LID_INSIDE), (3, TONGUE)):
        on = np.zeros(hi - lo, bool)
        on[np.unique(tri[region == reg])] = True
        on[np.unique(tri[region == 0])] = False if reg != 3 else on[np.unique(tri[region == 0])]
        c[on] = rgb
        spec[lo:hi][on] = SPECULAR["inside"] if reg != 3 else 1.2
    col[lo:hi] = np.clip(c, 0, 1)

    for name in ("eye_l", "eye_r"):
        a, b = parts[name]
        ang = polar[a:b]
        ring = np.clip((ang - 22.0) / 6.0, 0, 1)[:, None]
        fleck = 1.0 + 0.25 * np.sin(np.radians(ang) * 90.0)[:, None]
        iris = iris_c * fleck * (1 - 0.55 * ring)
        e = np.where((ang < 11.0)[:, None], PUPIL, np.where((ang < 28.0)[:, None], iris, SCLERA))
        e = np.where((ang > 70)[:, None], SCLERA * np.array([1.0, 0.85, 0.82], np.float32), e)
        col[a:b] = np.clip(e, 0, 1)
        spec[a:b] = SPECULAR["eye"]
    for name in ("teeth_upper", "teeth_lower"):
        a, b = parts[name]
        col[a:b] = TEETH * (1 - 0.35 * gaps[a:b, None])
        spec[a:b] = SPECULAR["teeth"]
    a, b = parts["hair"]
    if b > a:
        col[a:b] = np.clip(hair_c * (1.0 + 0.1 * _variation(verts[a:b] * 4.0, seed + 2))[:, None], 0, 1)
        spec[a:b] = SPECULAR["hair"]
    return col.astype(np.float32), spec.astype(np.float32)
