"""The built-in face mesh: MediaPipe's canonical face, refined for rendering, with eyes and a mouth.

Coordinates are millimetres in a head frame: +x toward the subject's left, +y up, +z out of the face
toward a viewer in front of it. The base topology is MediaPipe's canonical face mesh (468 vertices,
898 triangles, Apache-2.0, see ``assets/NOTICE.txt``), stored in centimetres and scaled by 10 here.

:func:`build_face` turns it into a :class:`FaceMesh`:

1. the triangles that MediaPipe lays across the eye openings (14 each) and the mouth (18) are cut out,
   so that the eyes and the mouth are holes bounded by the lid and inner-lip landmarks below;
2. Loop subdivision (``levels`` times, 2 by default: 468 -> ~7,000 vertices); the original 468
   vertices keep their indices, so MediaPipe landmark numbers stay valid;
3. the lips are sealed at rest (MediaPipe's neutral mouth is 5.5 mm open);
4. two eyeballs (spheres with iris and pupil) are set behind the eye holes and a closed dark pouch
   hangs behind the inner lip line (mouth interior, with a pale band of upper teeth).

Per-vertex regions (:data:`REGIONS`) give colours; :func:`vertex_colors` paints them for a skin tone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

import numpy as np
import scipy.sparse as sp
from matplotlib.path import Path as MplPath

from painface.errors import InputError

# MediaPipe landmark indices (subject's left eye = +x). Lid rings run corner -> corner.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
RIGHT_BROW = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)  # upper edge outer->inner, lower edge inner->outer
LEFT_BROW = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LANDMARKS: dict[str, int] = {
    "nose_tip": 4, "nose_bridge": 6, "glabella": 168, "forehead": 10, "chin": 152, "chin_boss": 199,
    "mouth_corner_r": 61, "mouth_corner_l": 291, "upper_lip": 0, "lower_lip": 17,
    "inner_brow_r": 107, "inner_brow_l": 336, "mid_brow_r": 105, "mid_brow_l": 334,
    "outer_brow_r": 70, "outer_brow_l": 300, "cheek_r": 118, "cheek_l": 347,
    "nose_wing_r": 129, "nose_wing_l": 358, "nose_side_r": 198, "nose_side_l": 420,
    "eye_outer_r": 33, "eye_inner_r": 133, "eye_outer_l": 263, "eye_inner_l": 362,
}  # fmt: skip
"""Named MediaPipe landmarks the rig anchors on (indices into the first 468 vertices)."""

REGIONS: dict[str, int] = {"skin": 0, "lip": 1, "brow": 2, "sclera": 3, "iris": 4, "pupil": 5,
                           "mouth": 6, "teeth": 7}
PARTS = ("face", "eye_r", "eye_l", "mouth")
EYE_RADIUS_MM = 12.0
IRIS_HALF_ANGLE = 0.50  # rad: 12 mm iris on a 12 mm sphere
PUPIL_HALF_ANGLE = 0.17


@dataclass(frozen=True)
class FaceMesh:
    """A renderable face at rest.

    vertices ``[V, 3]`` float32 mm (rest pose, lips sealed); design ``[V, 3]`` the positions the rig's
    weights are authored on (MediaPipe's neutral, lips apart); triangles ``[T, 3]`` int32,
    counter-clockwise seen from outside; region ``[V]`` int8 codes of :data:`REGIONS`; part ``[V]``
    int8 index into :data:`PARTS`; attach ``[V]`` int32: for eye and mouth vertices the face vertex
    they follow (-1 for face vertices); eye_centers ``[2, 3]`` (right, left) mm.
    """

    vertices: np.ndarray
    design: np.ndarray
    triangles: np.ndarray
    region: np.ndarray
    part: np.ndarray
    attach: np.ndarray
    eye_centers: np.ndarray
    eye_radius: float
    lid_rings: dict[str, np.ndarray] = field(default_factory=dict)
    n_face: int = 0
    paint: np.ndarray | None = None
    """``[V, 2]`` soft lip and brow coverage 0..1 (smooth colour edges); None: from ``region``."""

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])


def load_canonical() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's canonical mesh: vertices ``[468, 3]`` mm, triangles ``[898, 3]``, uvs ``[468, 2]``."""
    ref = resources.files("painface.face") / "assets" / "canonical_face.npz"
    with resources.as_file(ref) as path, np.load(path) as d:
        return (d["vertices"].astype(np.float64) * 10.0, d["triangles"].astype(np.int64),
                d["uvs"].astype(np.float64))


def _soft_inside(pts: np.ndarray, outline: np.ndarray, width: float) -> np.ndarray:
    """0..1 coverage of 2-D points by a polygon, ramping over ``width`` across its edge."""
    a, b = outline, np.roll(outline, -1, axis=0)
    ab = b - a
    t = np.clip((((pts[:, None, :] - a) * ab).sum(-1)) / (ab * ab).sum(-1), 0.0, 1.0)
    d = np.linalg.norm(pts[:, None, :] - (a + t[..., None] * ab), axis=2).min(axis=1)
    sign = np.where(MplPath(outline).contains_points(pts), 1.0, -1.0)
    return np.clip(0.5 + sign * d / width, 0.0, 1.0)


def _ring_tris(tri: np.ndarray, ring: tuple[int, ...]) -> np.ndarray:
    return np.all(np.isin(tri, ring), axis=1)


def open_holes(tri: np.ndarray) -> np.ndarray:
    """Drop the triangles that fill the two eye openings and the mouth; ``[898,3] -> [852,3]``."""
    eye_r = RIGHT_EYE_UPPER + RIGHT_EYE_LOWER
    eye_l = LEFT_EYE_UPPER + LEFT_EYE_LOWER
    lips = LIPS_INNER_UPPER + LIPS_INNER_LOWER
    fill = _ring_tris(tri, eye_r) | _ring_tris(tri, eye_l) | _ring_tris(tri, lips)
    return tri[~fill]


def loop_subdivide(tri: np.ndarray, n_vertices: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """One step of Loop subdivision with boundary rules.

    Returns ``(S, new_tri, edges)``: ``S`` is a sparse ``[n_vertices + E, n_vertices]`` matrix mapping
    old vertex attributes to new ones (old vertices first, keeping their indices; new vertex
    ``n_vertices + e`` sits on edge ``edges[e]``), ``new_tri`` ``[4T, 3]``, ``edges`` ``[E, 2]``.
    """
    tri = np.asarray(tri, dtype=np.int64)
    corners = np.stack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]], axis=1)  # [T,3,2]
    opposite = tri[:, [2, 0, 1]]  # vertex opposite each corner edge
    keys = np.sort(corners.reshape(-1, 2), axis=1)
    edges, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1, 3)
    n_e = len(edges)
    boundary = counts == 1
    rows, cols, vals = [], [], []
    e_idx = np.arange(n_e) + n_vertices
    # edge points: 3/8 (a+b) + 1/8 (c+d) inside, 1/2 (a+b) on the boundary
    w_ab = np.where(boundary, 0.5, 0.375)
    for k in (0, 1):
        rows.append(e_idx)
        cols.append(edges[:, k])
        vals.append(w_ab)
    opp_e = inv.reshape(-1)
    opp_v = opposite.reshape(-1)
    inner = ~boundary[opp_e]
    rows.append(opp_e[inner] + n_vertices)
    cols.append(opp_v[inner])
    vals.append(np.full(int(inner.sum()), 0.125))
    # vertex points
    nbr = sp.coo_matrix((np.ones(2 * n_e), (np.r_[edges[:, 0], edges[:, 1]], np.r_[edges[:, 1], edges[:, 0]])),
                        shape=(n_vertices, n_vertices)).tocsr()
    bnd_e = edges[boundary]
    on_boundary = np.zeros(n_vertices, dtype=bool)
    on_boundary[bnd_e.ravel()] = True
    valence = np.asarray(nbr.sum(axis=1)).ravel()
    beta = np.where(valence > 3, 3.0 / (8.0 * np.maximum(valence, 1)), 3.0 / 16.0)
    coo = nbr.tocoo()
    keep = ~on_boundary[coo.row]
    rows.append(coo.row[keep])
    cols.append(coo.col[keep])
    vals.append(beta[coo.row[keep]])
    self_w = np.where(on_boundary, 0.75, 1.0 - valence * beta)
    rows.append(np.arange(n_vertices))
    cols.append(np.arange(n_vertices))
    vals.append(self_w)
    for k, j in ((0, 1), (1, 0)):
        rows.append(bnd_e[:, k])
        cols.append(bnd_e[:, j])
        vals.append(np.full(len(bnd_e), 0.125))
    s = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_vertices + n_e, n_vertices))
    ab, bc, ca = inv[:, 0] + n_vertices, inv[:, 1] + n_vertices, inv[:, 2] + n_vertices
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    new = np.concatenate([np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1),
                          np.stack([ca, bc, c], 1), np.stack([ab, bc, ca], 1)])
    return s, new, edges


def boundary_loop(tri: np.ndarray, through: int) -> np.ndarray:
    """The boundary loop of a triangle mesh that passes through vertex ``through``, in order."""
    corners = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]])
    keys = np.sort(corners, axis=1)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    bnd = corners[counts[inv.ravel()] == 1]
    nxt = {int(a): int(b) for a, b in bnd}  # directed boundary edges of a consistently oriented mesh
    if through not in nxt:
        raise InputError(f"vertex {through} is not on a boundary of the mesh")
    loop = [through]
    while nxt[loop[-1]] != through:
        loop.append(nxt[loop[-1]])
        if len(loop) > len(nxt):
            raise InputError("mesh boundary is not a simple loop")
    return np.asarray(loop, dtype=np.int64)


def split_ring(loop: np.ndarray, corner_a: int, corner_b: int) -> tuple[np.ndarray, np.ndarray]:
    """Split a closed boundary loop at two corner vertices into its two chains, each from a to b."""
    loop = list(loop)
    i = loop.index(corner_a)
    loop = loop[i:] + loop[:i]
    j = loop.index(corner_b)
    one = np.asarray(loop[: j + 1])
    two = np.asarray([corner_a] + loop[j:][::-1])
    return one, two


def _chain_at(chain_pts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Points of a polyline ``[n,3]`` (monotone in x) interpolated at x ``[m]`` -> ``[m,3]``."""
    order = np.argsort(chain_pts[:, 0])
    p = chain_pts[order]
    return np.stack([np.interp(x, p[:, 0], p[:, k]) for k in range(3)], axis=1)


def _upper_first(one: np.ndarray, two: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (one, two) if pos[one, 1].mean() >= pos[two, 1].mean() else (two, one)


def _seal_lips(pos: np.ndarray, upper: np.ndarray, lower: np.ndarray, n_face: int) -> np.ndarray:
    """Displacement ``[V,3]`` that closes the inner lip line at rest, fading over ~4 mm of lip."""
    disp = np.zeros_like(pos)
    mid_u = 0.5 * (pos[upper] + _chain_at(pos[lower], pos[upper, 0]))
    mid_l = 0.5 * (pos[lower] + _chain_at(pos[upper], pos[lower, 0]))
    ring = np.concatenate([upper, lower])
    ring_d = np.concatenate([mid_u - pos[upper], mid_l - pos[lower]])
    ring_up = np.concatenate([np.ones(len(upper), bool), np.zeros(len(lower), bool)])
    face = pos[:n_face]
    line_y = _chain_at(0.5 * (pos[upper] + _chain_at(pos[lower], pos[upper, 0])), face[:, 0])[:, 1]
    above = face[:, 1] >= line_y
    for side in (True, False):
        sel = np.flatnonzero(above == side)
        r = ring[ring_up == side]
        d = np.linalg.norm(face[sel, None, :] - pos[None, r, :], axis=2)
        nearest = d.argmin(axis=1)
        fall = np.exp(-((d.min(axis=1) / 4.0) ** 2))
        disp[sel] = ring_d[ring_up == side][nearest] * fall[:, None]
    disp[ring] = ring_d
    return disp


def _eyeball(center: np.ndarray, radius: float, n_seg: int = 28) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sphere cap looking along +z: vertices ``[N,3]``, triangles, region codes (pupil/iris/sclera)."""
    eps = 0.015
    thetas = np.array([0.0, 0.09, PUPIL_HALF_ANGLE - eps, PUPIL_HALF_ANGLE + eps, 0.3, 0.42,
                       IRIS_HALF_ANGLE - eps, IRIS_HALF_ANGLE + eps, 0.7, 0.95, 1.25, 1.6, 1.95])
    phis = np.linspace(0.0, 2 * np.pi, n_seg, endpoint=False)
    pts = [np.array([0.0, 0.0, 1.0])]
    reg = [REGIONS["pupil"]]
    for th in thetas[1:]:
        ring = np.stack([np.sin(th) * np.cos(phis), np.sin(th) * np.sin(phis), np.full(n_seg, np.cos(th))], 1)
        pts.extend(ring)
        code = "pupil" if th < PUPIL_HALF_ANGLE else "iris" if th < IRIS_HALF_ANGLE else "sclera"
        reg.extend([REGIONS[code]] * n_seg)
    tris = [[0, 1 + i, 1 + (i + 1) % n_seg] for i in range(n_seg)]
    for r in range(len(thetas) - 2):
        a0, b0 = 1 + r * n_seg, 1 + (r + 1) * n_seg
        for i in range(n_seg):
            j = (i + 1) % n_seg
            tris += [[a0 + i, b0 + i, b0 + j], [a0 + i, b0 + j, a0 + j]]
    return center + radius * np.asarray(pts), np.asarray(tris, dtype=np.int64), np.asarray(reg, dtype=np.int8)


def _place_eye(pos: np.ndarray, ring: np.ndarray, radius: float, clearance: float = 0.8) -> np.ndarray:
    """Centre an eyeball behind a lid ring: x/y at the ring's centroid, as far forward as the rim allows."""
    c = pos[ring].mean(axis=0)
    r2 = ((pos[ring, :2] - c[:2]) ** 2).sum(axis=1)
    inside = r2 < radius**2
    z_c = np.min(pos[ring[inside], 2] - np.sqrt(radius**2 - r2[inside])) - clearance
    return np.array([c[0], c[1], z_c])


def _mouth_pouch(pos: np.ndarray, loop: np.ndarray, upper: set[int],
                 offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A closed pouch behind the inner lip loop: vertices, triangles (global indices), regions, attach.

    Rings shrink toward the loop's centre and recede from the lip line (depths in mm); the first two
    rings under the upper lip are teeth-coloured. Each pouch vertex follows the lip vertex it hangs
    from (``attach``); the back cap (attach -2) follows the mean of the lip line.
    """
    depths = np.array([1.5, 4.0, 12.0, 22.0])
    scales = np.array([0.97, 0.92, 0.75, 0.45])
    ring_pos = pos[loop]
    centre = ring_pos.mean(axis=0)
    n = len(loop)
    verts, regs, att = [], [], []
    for k, (dz, s) in enumerate(zip(depths, scales, strict=True)):
        p = centre + (ring_pos - centre) * s
        p[:, 2] = ring_pos[:, 2] - dz
        verts.append(p)
        regs += [REGIONS["teeth"] if k <= 1 and int(v) in upper else REGIONS["mouth"] for v in loop]
        att += [int(v) for v in loop]
    back = centre.copy()
    back[2] = ring_pos[:, 2].min() - depths[-1] - 4.0
    verts.append(back[None])
    regs.append(REGIONS["mouth"])
    att.append(-2)
    chains = [np.asarray(loop)] + [offset + k * n + np.arange(n) for k in range(len(depths))]
    cap = offset + len(depths) * n
    tris = []
    for a, b in zip(chains[:-1], chains[1:], strict=True):
        nb_a, nb_b = np.roll(a, -1), np.roll(b, -1)
        tris += [np.stack([a, b, nb_a], 1), np.stack([nb_a, b, nb_b], 1)]
    last = chains[-1]
    tris.append(np.stack([last, np.full(n, cap), np.roll(last, -1)], 1))
    return np.concatenate(verts), np.concatenate(tris), np.asarray(regs, np.int8), np.asarray(att, np.int64)


@lru_cache(maxsize=4)
def build_face(levels: int = 2) -> FaceMesh:
    """Build the refined face (see the module docstring). ``levels`` of Loop subdivision: 0-3."""
    if not isinstance(levels, int) or not 0 <= levels <= 3:
        raise InputError(f"levels: expected an integer 0..3, got {levels!r}")
    pos, tri, uv = load_canonical()
    uv0 = uv.copy()
    tri = open_holes(tri)
    for _ in range(levels):
        s, tri, edges = loop_subdivide(tri, len(pos))
        pos = s @ pos
        uv = np.concatenate([uv, 0.5 * (uv[edges[:, 0]] + uv[edges[:, 1]])])  # UVs: plain midpoints
    n_face = len(pos)
    region = np.zeros(n_face, dtype=np.int8)
    lips_outline = LIPS_OUTER_UPPER + LIPS_OUTER_LOWER[::-1][1:-1]
    paint_face = np.zeros((n_face, 2))
    for outline, code in ((lips_outline, "lip"), (RIGHT_BROW, "brow"), (LEFT_BROW, "brow")):
        cover = _soft_inside(uv, uv0[list(outline)], 0.006)
        region[cover >= 0.5] = REGIONS[code]
        paint_face[:, int(code == "brow")] = np.maximum(paint_face[:, int(code == "brow")], cover)
    rings: dict[str, np.ndarray] = {}
    for name, up in (("r", RIGHT_EYE_UPPER), ("l", LEFT_EYE_UPPER)):
        loop = boundary_loop(tri, up[0])
        one, two = split_ring(loop, up[0], up[-1])
        rings[f"eye_{name}_upper"], rings[f"eye_{name}_lower"] = _upper_first(one, two, pos)
    lip_loop = boundary_loop(tri, LIPS_INNER_UPPER[0])
    one, two = split_ring(lip_loop, LIPS_INNER_UPPER[0], LIPS_INNER_UPPER[-1])
    rings["lips_upper"], rings["lips_lower"] = _upper_first(one, two, pos)
    region[np.concatenate([rings["lips_upper"], rings["lips_lower"]])] = REGIONS["lip"]
    paint_face[np.concatenate([rings["lips_upper"], rings["lips_lower"]]), 0] = 1.0
    design = pos.copy()
    rest = pos + _seal_lips(pos, rings["lips_upper"], rings["lips_lower"], n_face)

    all_v, all_t, all_r, all_p, all_a = [rest], [tri], [region], [np.zeros(n_face, np.int8)], [np.full(n_face, -1)]
    centers = []
    offset = n_face
    for k, name in enumerate(("r", "l")):
        ring = np.concatenate([rings[f"eye_{name}_upper"], rings[f"eye_{name}_lower"]])
        c = _place_eye(rest, ring, EYE_RADIUS_MM)
        centers.append(c)
        v, t, r = _eyeball(c, EYE_RADIUS_MM)
        all_v.append(v)
        all_t.append(t + offset)
        all_r.append(r)
        all_p.append(np.full(len(v), 1 + k, np.int8))
        all_a.append(np.full(len(v), -3 - k))  # -3/-4: follows the eye (rigid, head only)
        offset += len(v)
    pv, pt, pr, pa = _mouth_pouch(rest, lip_loop, set(rings["lips_upper"].tolist()), offset)
    all_v.append(pv)
    all_t.append(pt)
    all_r.append(pr)
    all_p.append(np.full(len(pv), 3, np.int8))
    all_a.append(pa)
    vertices = np.concatenate(all_v)
    return FaceMesh(
        vertices=vertices.astype(np.float32),
        design=np.concatenate([design, vertices[n_face:]]).astype(np.float32),
        triangles=np.concatenate(all_t).astype(np.int32),
        region=np.concatenate(all_r),
        part=np.concatenate(all_p),
        attach=np.concatenate(all_a).astype(np.int32),
        eye_centers=np.asarray(centers, np.float32),
        eye_radius=EYE_RADIUS_MM,
        lid_rings=rings,
        n_face=n_face,
        paint=np.concatenate([paint_face, np.zeros((len(vertices) - n_face, 2))]).astype(np.float32),
    )


SKIN_DEFAULT = (0.80, 0.62, 0.50)
REGION_COLORS = {"sclera": (0.93, 0.91, 0.88), "pupil": (0.04, 0.03, 0.03), "mouth": (0.22, 0.07, 0.07),
                 "teeth": (0.86, 0.83, 0.76)}


def vertex_colors(mesh: FaceMesh, skin: tuple[float, float, float] = SKIN_DEFAULT,
                  iris: tuple[float, float, float] = (0.30, 0.20, 0.12),
                  brow: tuple[float, float, float] = (0.22, 0.15, 0.10)) -> np.ndarray:
    """Per-vertex albedo ``[V, 3]`` float32 in 0..1: skin, lips (skin reddened), brows, eyes, mouth."""
    for name, c in (("skin", skin), ("iris", iris), ("brow", brow)):
        if np.shape(c) != (3,) or not np.all(np.isfinite(c)) or min(c) < 0 or max(c) > 1:
            raise InputError(f"{name}: expected an RGB triple in 0..1, got {c!r}")
    skin_a = np.asarray(skin, np.float32)
    lut = np.zeros((len(REGIONS), 3), np.float32)
    lut[REGIONS["skin"]] = skin_a
    lut[REGIONS["lip"]] = skin_a * np.array([0.85, 0.55, 0.55], np.float32)
    lut[REGIONS["brow"]] = 0.35 * skin_a + 0.65 * np.asarray(brow, np.float32)
    lut[REGIONS["iris"]] = iris
    for name, c in REGION_COLORS.items():
        lut[REGIONS[name]] = c
    out = lut[mesh.region.astype(np.int64)]
    if mesh.paint is not None:  # soft edges: blend skin -> lip / brow by coverage on the face part
        face = mesh.part == 0
        lip, brw = mesh.paint[face, 0:1], mesh.paint[face, 1:2]
        col = skin_a * (1 - lip) + lut[REGIONS["lip"]] * lip
        out[face] = col * (1 - brw) + lut[REGIONS["brow"]] * brw
    return out
