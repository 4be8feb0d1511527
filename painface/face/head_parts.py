"""Procedural parts that the Anny head lacks or that painface draws better itself: eyeballs with iris
and pupil, two rows of teeth, and the hair's extent (a scalp cap with a hairline; longer styles come
lower behind the ears and at the nape).

Every function returns plain arrays in the head frame (mm; +x subject's left, +y up, +z out of the face):
vertices ``[N, 3]``, triangles ``[M, 3]`` (counter-clockwise seen from outside) and what the colouring
needs. Nothing here knows about identities or AUs.
"""

from __future__ import annotations

import numpy as np

EYE_RADIUS = 12.0
"""Eyeball radius (mm), adult average."""
IRIS_ANGLE = 28.0
PUPIL_ANGLE = 11.0
"""Iris and pupil edges as polar angles from the eye's optical axis (degrees): 5.6 / 2.3 mm radius."""


def orient_outward(v: np.ndarray, t: np.ndarray, center: np.ndarray, axis: np.ndarray | None = None) -> np.ndarray:
    """Flip triangles whose normal points toward ``center`` (or, with ``axis``, toward the line through
    ``center`` along ``axis``), so every triangle is counter-clockwise seen from outside."""
    n = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    d = v[t].mean(1) - center
    if axis is not None:
        d = d - np.outer(d @ axis, axis)
    t = t.copy()
    flip = (n * d).sum(1) < 0
    t[flip] = t[flip][:, ::-1]
    return t


def _grid_tris(rows: int, cols: int, offset: int = 0, flip: bool = False) -> np.ndarray:
    """Quads of a ``rows x cols`` vertex grid (row-major) split into triangles."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel() + offset
    b, d, e = a + 1, a + cols, a + cols + 1
    t = np.concatenate([np.stack([a, d, b], 1), np.stack([b, d, e], 1)])
    return t[:, ::-1].copy() if flip else t


def eyeball(center: np.ndarray, radius: float = EYE_RADIUS, n_lat: int = 16, n_lon: int = 24
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A UV sphere looking along +z: vertices, triangles and each vertex's polar angle from +z (degrees).

    Rings are denser toward the front so the iris and pupil edges are sharp.
    """
    theta = np.radians(np.concatenate([[0.0], np.linspace(4.0, PUPIL_ANGLE, 3), np.linspace(16, IRIS_ANGLE, 3),
                                       np.linspace(IRIS_ANGLE + 5, 150, n_lat - 7)]))
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    ring = np.stack([np.sin(theta)[:, None] * np.cos(phi), np.sin(theta)[:, None] * np.sin(phi),
                     np.cos(theta)[:, None] * np.ones_like(phi)], -1)[1:].reshape(-1, 3)
    pts = np.concatenate([[[0.0, 0.0, 1.0]], ring])
    # the cornea bulges a little over the iris
    polar = np.degrees(np.arccos(np.clip(pts[:, 2], -1, 1)))
    bulge = 1.0 + 0.06 * np.clip(1 - polar / IRIS_ANGLE, 0, 1) ** 2
    v = center + radius * pts * bulge[:, None]
    tris = [np.stack([np.zeros(n_lon, int), 1 + (np.arange(n_lon) + 1) % n_lon, 1 + np.arange(n_lon)], 1)]
    nr = len(theta) - 1
    for i in range(nr - 1):
        a = 1 + i * n_lon + np.arange(n_lon)
        b = 1 + i * n_lon + (np.arange(n_lon) + 1) % n_lon
        tris += [np.stack([a, b, a + n_lon], 1), np.stack([b, b + n_lon, a + n_lon], 1)]
    tris = orient_outward(v, np.concatenate(tris), center)
    return v.astype(np.float32), tris.astype(np.int32), polar.astype(np.float32)


def tooth_row(center_x: float, front_z: float, top_y: float, half_width: float, height: float, depth: float,
              upper: bool, n_teeth: int = 12, cols_per_tooth: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A row of teeth along a parabolic arch: front and back surfaces joined at the biting edge.

    The arch passes ``front_z`` at the midline and bends back by ``depth`` at ``+-half_width``. ``top_y`` is
    the gum line (upper row: teeth hang below it; lower row: teeth stand above it, ``top_y`` is then
    the biting edge). Returns vertices, triangles and a per-vertex "gap" value (1 on the seams between
    teeth) for shading.
    """
    n_cols = n_teeth * cols_per_tooth + 1
    s = np.linspace(-1.0, 1.0, n_cols)
    x = center_x + half_width * s
    z = front_z - depth * s**2
    gap = (np.arange(n_cols) % cols_per_tooth == 0).astype(np.float32)
    sign = -1.0 if upper else 1.0
    y_edge = top_y + sign * height  # biting edge
    y_root = top_y
    thickness = 2.5
    rows = []
    # front surface: gum line -> biting edge; then back surface: biting edge -> gum line
    for yy, dz in ((y_root, 0.0), (y_edge + sign * -0.6, 0.0), (y_edge, -thickness * 0.5),
                   (y_edge + sign * -0.6, -thickness), (y_root, -thickness)):
        # a slightly rounded edge: the edge rows step back by up to a full thickness
        rows.append(np.stack([x * (1 + dz / 40.0), np.full(n_cols, yy), z + dz], 1))
    v = np.concatenate(rows)
    t = _grid_tris(len(rows), n_cols)
    # outward = away from a point well behind the arch, at mid height
    t = orient_outward(v, t, np.array([center_x, top_y + sign * height / 2, front_z - 40.0]), np.array([0.0, 1.0, 0.0]))
    g = np.tile(gap, len(rows))
    return v.astype(np.float32), t.astype(np.int32), g


def hairline_height(azimuth_deg: np.ndarray, style_drop: float = 0.0) -> np.ndarray:
    """Height of the hairline above the eyes (mm) by azimuth around the vertical axis (0 = front,
    +-90 = over the ears, 180 = back): high on the forehead, down at the temples and sideburns, low at
    the nape. ``style_drop`` lowers it behind the ears (longer styles)."""
    a = np.abs(((np.asarray(azimuth_deg) + 180.0) % 360.0) - 180.0)
    knots_a = np.array([0.0, 25.0, 45.0, 68.0, 80.0, 95.0, 120.0, 150.0, 180.0])
    knots_h = np.array([70.0, 66.0, 56.0, 30.0, 2.0, 10.0, -18.0, -55.0, -68.0])
    h = np.interp(a, knots_a, knots_h)
    return h - style_drop * np.clip((a - 95.0) / 60.0, 0, 1)


def hair_mask(vertices: np.ndarray, ears: np.ndarray, style_drop: float = 0.0, softness: float = 4.0) -> np.ndarray:
    """0..1 per vertex: how much of the scalp's hair covers it (a soft edge ``softness`` mm wide below
    :func:`hairline_height`); ears and the face stay bare."""
    v = np.asarray(vertices, np.float64)
    az = np.degrees(np.arctan2(v[:, 0], v[:, 2] + 60.0))  # azimuth about a vertical axis through the skull
    h = hairline_height(az, style_drop)
    m = np.clip((v[:, 1] - h) / softness + 0.5, 0.0, 1.0)
    return (m * np.clip(1.0 - 3.0 * np.asarray(ears, np.float64), 0.0, 1.0)).astype(np.float32)


def hair_curtain(vertices: np.ndarray, top: float, bottom: float, front_deg: float = 68.0, offset: float = 5.0,
                 n_az: int = 40, n_down: int = 14, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Long hair: a double-sided sheet around the back and sides of the head, from ``top`` mm (above
    the ears, under the scalp cap) down to ``bottom`` mm, reaching forward to ``front_deg`` degrees from
    the face's axis on each side. At each azimuth the sheet keeps ``offset`` mm outside the widest part
    of the skull above it, so it falls straight past the neck instead of following it in.

    ``skip`` (bool ``[V]``) leaves vertices out of the skull's outline (the ears, which the hair covers).
    Returns vertices ``[N, 3]`` and triangles ``[M, 3]`` (both faces of the sheet).
    """
    v = np.asarray(vertices, np.float64)
    if skip is not None:
        v = v[~np.asarray(skip, bool)]
    axis_z = -60.0
    rel_x, rel_z = v[:, 0], v[:, 2] - axis_z
    theta = np.degrees(np.arctan2(rel_x, rel_z))  # 0 = front, +-180 = back
    rho = np.hypot(rel_x, rel_z)
    az = np.linspace(front_deg, 360.0 - front_deg, n_az)  # around the back, from the left side to the right
    ys = np.linspace(top, bottom, n_down)
    r = np.zeros((n_down, n_az))
    for j, a in enumerate(az):
        near = np.abs(((theta - a + 180.0) % 360.0) - 180.0) < 9.0
        for i, y in enumerate(ys):
            sel = near & (np.abs(v[:, 1] - y) < 8.0)
            r[i, j] = rho[sel].max() if sel.any() else 0.0
    r = np.maximum.accumulate(r, axis=0) + offset  # never closer in than the widest skull above
    r[r <= offset] = 60.0
    a = np.radians(az)[None, :]
    outer = np.stack([r * np.sin(a), np.repeat(ys[:, None], n_az, 1), axis_z + r * np.cos(a)], -1).reshape(-1, 3)
    inner = outer.copy()
    inner[:, [0, 2]] = (outer[:, [0, 2]] - [0.0, axis_z]) * 0.985 + [0.0, axis_z]
    t = _grid_tris(n_down, n_az)
    centre = np.array([0.0, 0.0, axis_z])
    t_out = orient_outward(outer, t, centre, np.array([0.0, 1.0, 0.0]))
    t_in = t_out[:, ::-1] + len(outer)
    return np.concatenate([outer, inner]).astype(np.float32), np.concatenate([t_out, t_in]).astype(np.int32)
