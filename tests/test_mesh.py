"""The face mesh: asset extraction, subdivision, holes, eyes, mouth, colours."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from painface.errors import InputError
from painface.face import mesh as fm

ROOT = Path(__file__).resolve().parents[1]


def _extract_module():
    spec = importlib.util.spec_from_file_location("extract_face_mesh", ROOT / "scripts" / "extract_face_mesh.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def test_protobuf_reader_decodes_a_handmade_mesh():
    ext = _extract_module()
    vb = [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.5, -2.0, 0.0, 1.0]
    mesh3d = (_varint(1 << 3) + _varint(0) + _field(3, struct.pack("<15f", *vb))
              + _field(4, b"".join(_varint(i) for i in (0, 1, 2))))
    meta = _varint(3 << 3 | 2) + _varint(0) + _field(1, mesh3d)  # an empty input_source first
    v, t, uv = ext.decode_mesh(meta)
    np.testing.assert_allclose(v, [[0, 0, 0], [1, 0, 0], [0, 1.5, -2]])
    np.testing.assert_array_equal(t, [[0, 1, 2]])
    np.testing.assert_allclose(uv, [[0, 0], [1, 0], [0, 1]])
    with pytest.raises(ValueError):
        ext.decode_mesh(meta[:-3])


def test_canonical_asset_is_mediapipe_topology():
    v, t, uv = fm.load_canonical()
    assert v.shape == (468, 3) and t.shape == (898, 3) and uv.shape == (468, 2)
    assert 0.0 <= uv.min() and uv.max() <= 1.0
    # mm, face about 15 cm wide; subject's right eye outer corner (33) at -x, left (263) mirrored
    assert 140 < np.ptp(v[:, 0]) < 170
    assert v[33, 0] < 0 and np.allclose(v[263], v[33] * [-1, 1, 1], atol=1e-3)


def test_open_holes_leaves_eye_and_mouth_boundaries():
    _, t, _ = fm.load_canonical()
    opened = fm.open_holes(t)
    assert len(opened) == 898 - 14 - 14 - 18
    assert len(fm.boundary_loop(opened, 33)) == 16
    assert len(fm.boundary_loop(opened, 263)) == 16
    assert len(fm.boundary_loop(opened, 78)) == 20
    with pytest.raises(InputError):
        fm.boundary_loop(opened, 4)  # the nose tip is interior


def test_loop_subdivision_counts_and_partition_of_unity():
    tet = np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    s, new, edges = fm.loop_subdivide(tet, 4)
    assert s.shape == (10, 4) and new.shape == (16, 3) and edges.shape == (6, 2)
    np.testing.assert_allclose(np.asarray(s.sum(axis=1)).ravel(), 1.0)
    # a single boundary triangle: corners keep 3/4 + 1/8 + 1/8, edges are midpoints
    s1, _, e1 = fm.loop_subdivide(np.array([[0, 1, 2]]), 3)
    p = np.eye(3)
    q = s1 @ p
    np.testing.assert_allclose(q[0], [0.75, 0.125, 0.125])
    np.testing.assert_allclose(q[3 + np.flatnonzero((e1 == [0, 1]).all(1))[0]], [0.5, 0.5, 0])


def test_built_face_parts_and_sizes():
    m = fm.build_face()
    assert m.n_face > 6000 and m.n_vertices == len(m.region) == len(m.part) == len(m.attach)
    assert m.triangles.min() >= 0 and m.triangles.max() < m.n_vertices
    v = m.vertices[m.triangles]
    area = 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
    assert area.min() > 1e-4
    assert set(np.unique(m.part)) == {0, 1, 2, 3}
    for name in ("lip", "brow", "sclera", "iris", "pupil", "mouth", "teeth"):
        assert (m.region == fm.REGIONS[name]).sum() > 10, name
    # landmark indices survive subdivision: the first 468 design vertices keep their layout
    assert m.design[33, 0] < m.design[133, 0] < 0 < m.design[362, 0] < m.design[263, 0]


def test_lips_sealed_at_rest_but_apart_in_design():
    m = fm.build_face()
    up, lo = m.lid_rings["lips_upper"], m.lid_rings["lips_lower"]
    mid_up, mid_lo = up[len(up) // 2], lo[len(lo) // 2]
    assert np.linalg.norm(m.vertices[mid_up] - m.vertices[mid_lo]) < 0.3
    assert np.linalg.norm(m.design[mid_up] - m.design[mid_lo]) > 4.0


def test_eyeballs_sit_behind_the_lid_rims():
    m = fm.build_face()
    for k, side in enumerate(("r", "l")):
        ring = np.concatenate([m.lid_rings[f"eye_{side}_upper"], m.lid_rings[f"eye_{side}_lower"]])
        d = np.linalg.norm(m.vertices[ring] - m.eye_centers[k], axis=1)
        assert d.min() >= m.eye_radius + 0.5
        iris = m.vertices[(m.part == 1 + k) & (m.region == fm.REGIONS["pupil"])]
        assert np.linalg.norm(iris.mean(0)[:2] - m.vertices[ring].mean(0)[:2]) < 1.0  # looks ahead


def test_vertex_colors():
    m = fm.build_face()
    c = fm.vertex_colors(m, skin=(0.5, 0.4, 0.3))
    assert c.shape == (m.n_vertices, 3) and c.dtype == np.float32
    np.testing.assert_allclose(c[m.region == fm.REGIONS["skin"]][0], [0.5, 0.4, 0.3])
    assert c[m.region == fm.REGIONS["pupil"]].max() < 0.1
    with pytest.raises(InputError, match="skin"):
        fm.vertex_colors(m, skin=(1.5, 0, 0))
    with pytest.raises(InputError, match="levels"):
        fm.build_face(7)
