"""The AU rig: FACS face codes ``[frames, 20]`` -> vertex positions ``[frames, V, 3]`` (mm).

Every action unit of :data:`painface.face.code.AU_NAMES` owns a displacement field authored from its
FACS description on the neutral MediaPipe geometry (``FaceMesh.design``): Gaussian falloffs around
MediaPipe landmarks, in mm at intensity 5 (see ``docs/face.md`` for the table). Fields are split into
the subject's left and right halves by a smooth 6 mm-wide blend across the midline, so each side can
be driven on its own (``sides=``). Three mechanisms are not plain linear fields:

* **Lids.** Each eye has an upper-lid field that carries the upper lid rim onto the lower one (closure
  ``c_up`` 0..1) and a lower-lid field that lifts the lower rim toward the upper one (``c_lo``); both
  fade over the lid (9 mm above, 7 mm below the rim) and bulge forward mid-way so the lids slide over
  the eyeball. ``c_up = AU43/5 + AU45/5 + 0.25 AU7/5 + 0.12 AU4/5 - 0.55 AU5/5`` and
  ``c_lo = 0.3 AU6/5 + 0.35 AU7/5``, limited to ``c_lo <= 0.5`` and ``c_up <= 1 - c_lo``.
* **Jaw.** AU25/26/27 rotate the lower face about a jaw pivot (``JAW_PIVOT``) by
  ``min(26, 1.5 AU25/5 + 11 AU26/5 + 22 AU27/5)`` degrees, weighted from 0 above the lip line to 1
  below it (linear blend skinning, so the lips part without tearing).
* **Head.** Pitch, yaw and roll (degrees, signs as in :mod:`painface.face.code`) rotate everything
  about ``NECK_PIVOT``: ``R = R_yaw(y) R_pitch(p) R_roll(r)``.

AUs add; intensities are validated by :func:`painface.face.code.check_face` (0..5, out-of-range values
are refused, not clipped). Eyeballs are rigid; the mouth pouch follows the lip vertex it hangs from.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from painface.errors import InputError
from painface.face import mesh as fm
from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_NAMES, check_face

NECK_PIVOT = np.array([0.0, -45.0, -75.0])
"""Head rotation centre (mm, head frame): behind and below the face, near the upper neck."""
JAW_PIVOT = np.array([0.0, -22.0, -30.0])
"""Jaw (temporomandibular) rotation axis passes through this point, parallel to x."""
JAW_DEGREES = {"AU25": 1.5, "AU26": 11.0, "AU27": 22.0}
JAW_MAX_DEGREES = 26.0
LINEAR_AUS = ("AU1", "AU2", "AU4", "AU6", "AU9", "AU10", "AU12", "AU15", "AU17", "AU20", "AU25", "AU27")


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def head_rotation(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` from head pitch/yaw/roll in degrees (face-code signs)."""
    p, y, r = (np.radians(np.asarray(v, np.float64)) for v in (pitch, yaw, roll))
    return _rot_y(y) @ _rot_x(p) @ _rot_z(-r)


@dataclass(frozen=True)
class Rig:
    """Precomputed fields on a :class:`~painface.face.mesh.FaceMesh`.

    basis ``[2, len(LINEAR_AUS), n_face * 3]``: per side (0 = subject's left, 1 = right) the
    displacement at intensity 5; lids ``[2, 4, n_face * 3]``: per eye (0 = left, 1 = right) the
    upper-close, upper-bulge, lower-raise, lower-bulge fields; jaw_weight ``[n_face]``.
    """

    mesh: fm.FaceMesh
    basis: np.ndarray
    lids: np.ndarray
    jaw_weight: np.ndarray


class _Author:
    """Helpers to write fields on the design geometry of the face part."""

    def __init__(self, mesh: fm.FaceMesh) -> None:
        self.p = mesh.design[: mesh.n_face].astype(np.float64)
        self.n = mesh.n_face
        rings = np.concatenate([mesh.lid_rings[k] for k in mesh.lid_rings if k.startswith("eye")])
        d = np.linalg.norm(self.p[:, None, :] - self.p[None, rings, :], axis=2).min(axis=1)
        self.eye_guard = _smoothstep(d, 1.5, 7.0)  # 0 on the lid rims, 1 from 7 mm away

    def lm(self, i: int | str) -> np.ndarray:
        return self.p[fm.LANDMARKS[i] if isinstance(i, str) else i]

    def bump(self, center: np.ndarray, sigma: tuple[float, float, float]) -> np.ndarray:
        d = (self.p - center) / np.asarray(sigma)
        return np.exp(-0.5 * (d * d).sum(axis=1))

    def pair(self, idx_r: int, sigma: tuple[float, float, float], move: tuple[float, float, float],
             medial: bool = True) -> np.ndarray:
        """Mirrored bumps at a right-side landmark and its mirror; ``move`` is for the right side with
        x toward the midline when ``medial`` (so +x on the right means toward the centre)."""
        out = np.zeros_like(self.p)
        c = self.p[idx_r].copy()
        for sign in (-1.0, 1.0):  # -1: right side (x < 0), +1: left side
            cc = c.copy()
            cc[0] = sign * abs(c[0])
            w = self.bump(cc, sigma)
            mv = np.array(move, np.float64)
            mv[0] = -sign * move[0] if medial else sign * move[0]
            out += w[:, None] * mv
        return out


def _linear_fields(a: _Author, mesh: fm.FaceMesh, jaw_w: np.ndarray) -> dict[str, np.ndarray]:
    """Each linear AU's displacement ``[n_face, 3]`` at intensity 5 (mm), both sides together."""
    f: dict[str, np.ndarray] = {}
    g = a.eye_guard[:, None]
    f["AU1"] = g * (a.pair(107, (9, 8, 12), (1.0, 7.0, 0.3)) + a.pair(66, (8, 8, 12), (0, 3.0, 0))
                    + a.bump(a.lm(151), (22, 14, 30))[:, None] * [0, 2.5, 0])
    f["AU2"] = g * (a.pair(63, (11, 9, 12), (-0.5, 7.0, 0.5)) + a.pair(105, (8, 8, 12), (0, 3.0, 0)))
    f["AU4"] = g * (a.pair(66, (13, 9, 12), (4.0, -4.5, 1.0)) + a.pair(107, (7, 7, 10), (2.0, -2.0, 1.5))
                    + a.bump(a.lm(168), (7, 8, 10))[:, None] * [0, -2.0, 1.0])
    # AU6: infraorbital cheek up and forward, crow's-feet region pulled in
    f["AU6"] = (a.pair(118, (13, 10, 12), (0.5, 4.5, 2.0)) + a.pair(50, (14, 12, 14), (0, 2.5, 1.5))
                + a.pair(226, (7, 7, 10), (1.5, 1.0, 0))) * a.eye_guard[:, None] ** 0.5
    # AU9: nose sides and wings up, medial brows down, upper lip up, wrinkles over the nose root
    ripple = np.sin(2 * np.pi * (a.p[:, 1] - a.lm(6)[1]) / 5.5) * a.bump(a.lm(6) + [0, 3, 0], (9, 6, 12))
    f["AU9"] = (a.pair(198, (7, 9, 9), (1.5, 5.0, 0.5)) + a.pair(129, (7, 6, 8), (0.5, 5.0, 1.0))
                + g * a.pair(55, (8, 6, 10), (1.0, -2.5, 0.5))
                + a.bump(a.lm(0), (12, 6, 10))[:, None] * [0, 2.0, 0.5] + ripple[:, None] * [0, 0, 1.2])
    upper = (1 - jaw_w)[:, None]
    f["AU10"] = upper * (a.pair(39, (8, 6, 8), (0, 5.0, 1.5)) + a.bump(a.lm(0), (6, 6, 8))[:, None] * [0, 3.0, 1.0]
                         + a.pair(64, (6, 6, 8), (0, 2.0, 0.5)))
    f["AU12"] = (a.pair(61, (9, 9, 10), (-5.0, 4.0, -3.0)) + a.pair(205, (12, 11, 12), (-1.0, 2.5, 1.5)))
    f["AU15"] = a.pair(61, (8, 9, 10), (-1.0, -4.5, -0.5)) + a.pair(91, (7, 7, 10), (0, -1.5, 0))
    f["AU17"] = (a.bump(a.lm(200), (16, 10, 14))[:, None] * [0, 4.5, 3.0]
                 + jaw_w[:, None] * a.bump(a.lm(17), (12, 6, 10))[:, None] * [0, 2.5, 3.5]
                 + upper * a.bump(a.lm(0), (12, 5, 10))[:, None] * [0, 1.5, 1.0])
    f["AU20"] = a.pair(61, (10, 10, 10), (-6.0, -1.0, -1.5)) + a.pair(172, (15, 15, 15), (0, -1.5, 0))
    lower = jaw_w[:, None] * a.bump(a.lm(17), (18, 9, 14))[:, None]
    f["AU25"] = lower * [0, -3.5, 0.3] + upper * a.bump(a.lm(0), (14, 6, 10))[:, None] * [0, 1.2, 0]
    f["AU27"] = a.pair(61, (8, 8, 10), (3.0, -2.0, 0)) + lower * [0, -2.0, 0]
    return f


def _jaw_weight(a: _Author, mesh: fm.FaceMesh) -> np.ndarray:
    """0 above the lip line, 1 below, a 5 mm band at the mouth that widens toward the cheeks."""
    up, lo = mesh.lid_rings["lips_upper"], mesh.lid_rings["lips_lower"]
    ring = np.concatenate([a.p[up], a.p[lo]])
    x_corner = np.abs(ring[:, 0]).max()
    xs = np.linspace(-x_corner, x_corner, 41)
    mid = 0.5 * (fm._chain_at(a.p[up], xs)[:, 1] + fm._chain_at(a.p[lo], xs)[:, 1])
    line = np.interp(a.p[:, 0], xs, mid)
    band = 2.6 + 0.45 * np.maximum(np.abs(a.p[:, 0]) - x_corner + 2.0, 0.0)
    return _smoothstep(line - a.p[:, 1], -band, band)


def _sphere_push(p: np.ndarray, center: np.ndarray, radius: float, clearance: float = 0.8) -> np.ndarray:
    """How far (mm, along +z) each point must move to lie ``clearance`` in front of an eyeball."""
    r2 = ((p[:, :2] - center[:2]) ** 2).sum(axis=1)
    inside = r2 < radius**2
    need = center[2] + np.sqrt(np.where(inside, radius**2 - r2, 0.0)) + clearance
    return np.where(inside & (p[:, 2] > center[2]), np.maximum(need - p[:, 2], 0.0), 0.0)


def _lid_fields(a: _Author, mesh: fm.FaceMesh, side: str, center: np.ndarray) -> np.ndarray:
    """``[4, n_face, 3]``: upper close, upper mid-bulge, lower raise, lower mid-bulge for one eye."""
    up, lo = mesh.lid_rings[f"eye_{side}_upper"], mesh.lid_rings[f"eye_{side}_lower"]
    pu, pl = a.p[up], a.p[lo]
    x0, x1 = min(pu[:, 0].min(), pl[:, 0].min()), max(pu[:, 0].max(), pl[:, 0].max())
    x = a.p[:, 0]
    taper = 1.0 - _smoothstep(np.maximum(x0 - x, x - x1), 0.0, 4.0)
    near = np.abs(x - 0.5 * (x0 + x1)) < 0.5 * (x1 - x0) + 6.0
    u, l = fm._chain_at(pu, np.clip(x, x0, x1)), fm._chain_at(pl, np.clip(x, x0, x1))
    gap = l - u
    depth_ok = (a.p[:, 2] > center[2]).astype(np.float64)
    h_up = a.p[:, 1] - u[:, 1]
    f_up = np.where(h_up >= -0.05, 1.0 - _smoothstep(h_up, 0.0, 9.0), 0.0) * taper * near * depth_ok
    h_lo = l[:, 1] - a.p[:, 1]
    f_lo = np.where(h_lo >= -0.05, 1.0 - _smoothstep(h_lo, 0.0, 7.0), 0.0) * taper * near * depth_ok
    f_up[up], f_lo[lo] = 1.0, 1.0  # rims travel the whole way
    f_up[lo], f_lo[up] = 0.0, 0.0
    f_up[[up[0], up[-1]]] = f_lo[[up[0], up[-1]]] = 0.0  # corners stay
    out = np.zeros((4, a.n, 3))
    for k, (f, d) in enumerate(((f_up, gap), (f_lo, -gap))):
        field = f[:, None] * d
        field[:, 2] += _sphere_push(a.p + field, center, mesh.eye_radius)  # closed: in front of the eye
        half = a.p + 0.5 * field
        out[2 * k] = field
        out[2 * k + 1, :, 2] = _sphere_push(half, center, mesh.eye_radius) * (f > 0)
    return out


@lru_cache(maxsize=4)
def build_rig(levels: int = 2) -> Rig:
    """Author every field on :func:`painface.face.mesh.build_face` ``(levels)``; cached."""
    mesh = fm.build_face(levels)
    a = _Author(mesh)
    jaw_w = _jaw_weight(a, mesh)
    fields = _linear_fields(a, mesh, jaw_w)
    left = _smoothstep(a.p[:, 0], -3.0, 3.0)[:, None]
    basis = np.zeros((2, len(LINEAR_AUS), a.n * 3), np.float32)
    for k, name in enumerate(LINEAR_AUS):
        basis[0, k] = (fields[name] * left).ravel()
        basis[1, k] = (fields[name] * (1.0 - left)).ravel()
    lids = np.stack([_lid_fields(a, mesh, "l", mesh.eye_centers[1].astype(np.float64)),
                     _lid_fields(a, mesh, "r", mesh.eye_centers[0].astype(np.float64))])
    return Rig(mesh=mesh, basis=basis, lids=lids.reshape(2, 4, -1).astype(np.float32),
               jaw_weight=jaw_w.astype(np.float32))


def lid_closure(aus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid closure (0..1, upper may go to -0.55 for AU5) from one side's AUs ``[..., 17]``."""
    def au(n: str) -> np.ndarray:
        return aus[..., AU_NAMES.index(n)] / 5.0

    c_lo = np.minimum(0.3 * au("AU6") + 0.35 * au("AU7"), 0.5)
    c_up = au("AU43") + au("AU45") + 0.25 * au("AU7") + 0.12 * au("AU4") - 0.55 * au("AU5")
    c_up = np.minimum(c_up, 1.0 - c_lo)
    return c_up, c_lo


def deform(face: np.ndarray, rig: Rig | None = None, *, sides: np.ndarray | None = None) -> np.ndarray:
    """Vertex positions ``[frames, V, 3]`` (mm, float32) for a FACS face code ``[frames, 20]``.

    ``sides`` (optional) ``[frames, 17, 2]`` gives per-side AU intensities (subject's left, right) that
    replace the code's AU columns, for asymmetric expressions; the code still gives the head pose.
    A zero code gives ``rig.mesh.vertices`` exactly.
    """
    rig = rig or build_rig()
    code = check_face(face, FEATURE_NAMES, source="face code")
    n_f, n_au, nf = code.shape[0], len(AU_NAMES), rig.mesh.n_face
    if sides is None:
        lr = np.repeat(code[:, :n_au, None], 2, axis=2).astype(np.float64)
    else:
        lr = np.asarray(sides, dtype=np.float64)
        if lr.shape != (n_f, n_au, 2):
            raise InputError(f"sides: expected shape [{n_f}, {n_au}, 2] (left, right), got {lr.shape}")
        if not np.all(np.isfinite(lr)) or lr.min() < -1e-3 or lr.max() > 5.001:
            raise InputError("sides: expected finite AU intensities in 0..5")
        lr = np.clip(lr, 0.0, 5.0)
    idx = [AU_NAMES.index(n) for n in LINEAR_AUS]
    w = (lr[:, idx, :] / 5.0).astype(np.float32)  # [F, K, 2]
    disp = w[:, :, 0] @ rig.basis[0] + w[:, :, 1] @ rig.basis[1]  # [F, nf*3]
    for s in (0, 1):
        c_up, c_lo = lid_closure(lr[:, :, s])
        coef = np.stack([c_up, 4 * c_up * (1 - c_up) * (c_up > 0), c_lo, 4 * c_lo * (1 - c_lo)], axis=1)
        disp += coef.astype(np.float32) @ rig.lids[s]
    base = rig.mesh.vertices
    face_pts = base[None, :nf] + disp.reshape(n_f, nf, 3)
    jaw_amount = lr.mean(axis=2)
    deg = sum(JAW_DEGREES[n] * jaw_amount[:, AU_NAMES.index(n)] / 5.0 for n in JAW_DEGREES)
    rot = _rot_x(np.radians(np.minimum(deg, JAW_MAX_DEGREES)))  # [F, 3, 3]
    rot = rot.astype(np.float32)
    pivot = JAW_PIVOT.astype(np.float32)
    q = (face_pts - pivot) @ np.swapaxes(rot, 1, 2) + pivot
    wj = rig.jaw_weight[None, :, None]
    face_pts = face_pts + wj * (q - face_pts)
    out = np.repeat(base[None], n_f, axis=0)
    out[:, :nf] = face_pts
    att = rig.mesh.attach
    follow = np.flatnonzero(att >= 0)
    moved = face_pts - base[None, :nf]
    out[:, follow] += moved[:, att[follow]]
    cap = np.flatnonzero(att == -2)
    if cap.size:
        ring = np.unique(att[follow])
        out[:, cap] += moved[:, ring].mean(axis=1, keepdims=True)
    pose = code[:, [FEATURE_NAMES.index(n) for n in POSE_NAMES]].astype(np.float64)
    head = head_rotation(pose[:, 0], pose[:, 1], pose[:, 2])
    neck = NECK_PIVOT.astype(np.float32)
    out = (out - neck) @ np.swapaxes(head, 1, 2).astype(np.float32) + neck
    return out.astype(np.float32, copy=False)
