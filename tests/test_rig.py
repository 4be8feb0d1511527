"""The AU rig: each AU moves its region the right way; rest, limits, no tearing, head pose."""

from __future__ import annotations

import numpy as np
import pytest

from painface.errors import InputError
from painface.face import mesh as fm
from painface.face.code import AU_NAMES, FEATURE_NAMES
from painface.face.rig import build_rig, deform, head_rotation


@pytest.fixture(scope="module")
def rig():
    return build_rig()


def code(**vals: float) -> np.ndarray:
    c = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for k, v in vals.items():
        c[0, FEATURE_NAMES.index(k)] = v
    return c


def moved(rig, idx, **vals):
    """Displacement [len(idx), 3] of vertices idx under a one-frame code."""
    return (deform(code(**vals), rig)[0] - rig.mesh.vertices)[idx]


def brows(side: str) -> list[int]:
    return list(fm.RIGHT_BROW if side == "r" else fm.LEFT_BROW)


def test_zero_code_is_rest_mesh(rig):
    out = deform(np.zeros((3, len(FEATURE_NAMES)), np.float32), rig)
    assert out.shape == (3, rig.mesh.n_vertices, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[1], rig.mesh.vertices, atol=1e-4)


def test_au4_lowers_brows_toward_midline(rig):
    for side in ("r", "l"):
        d = moved(rig, brows(side), AU4=5.0)
        x = rig.mesh.vertices[brows(side), 0]
        assert d[:, 1].mean() < -2.0
        assert np.mean(d[:, 0] * np.sign(x)) < -1.0  # toward x = 0


def test_brow_raisers_inner_and_outer(rig):
    inner, outer = [107, 336], [70, 300]
    d1_in, d1_out = moved(rig, inner, AU1=5.0)[:, 1], moved(rig, outer, AU1=5.0)[:, 1]
    d2_in, d2_out = moved(rig, inner, AU2=5.0)[:, 1], moved(rig, outer, AU2=5.0)[:, 1]
    assert d1_in.min() > 4.0 and d1_in.mean() > d1_out.mean() + 2.0
    assert d2_out.min() > 3.0 and d2_out.mean() > d2_in.mean() + 2.0


@pytest.mark.parametrize("au", ["AU43", "AU45"])
def test_closing_brings_upper_lid_onto_lower_lid(rig, au):
    m = rig.mesh
    pts = deform(code(**{au: 5.0}), rig)[0]
    for side in ("r", "l"):
        up, lo = m.lid_rings[f"eye_{side}_upper"], m.lid_rings[f"eye_{side}_lower"]
        gap_rest = np.abs(m.vertices[up[len(up) // 2], 1] - m.vertices[lo[len(lo) // 2], 1])
        gap = np.linalg.norm(pts[up] - pts[lo], axis=1).max()  # chains pair up vertex by vertex
        assert gap_rest > 5.0 and gap < 0.3


def test_closed_lids_stay_in_front_of_the_eyeball(rig):
    m = rig.mesh
    for c_amount in (2.5, 5.0):
        pts = deform(code(AU43=c_amount), rig)[0]
        for k, side in enumerate(("r", "l")):
            up = m.lid_rings[f"eye_{side}_upper"]
            assert np.linalg.norm(pts[up] - m.eye_centers[k], axis=1).min() > m.eye_radius + 0.3


def test_au5_raises_and_au7_narrows_the_eye(rig):
    m = rig.mesh
    up, lo = m.lid_rings["eye_r_upper"], m.lid_rings["eye_r_lower"]
    mid_u, mid_l = up[len(up) // 2], lo[len(lo) // 2]

    def opening(**v):
        p = deform(code(**v), rig)[0]
        return p[mid_u, 1] - p[mid_l, 1]

    rest = opening()
    assert opening(AU5=5.0) > rest + 2.5
    assert opening(AU7=5.0) < 0.6 * rest
    assert opening(AU6=5.0) < 0.9 * rest


@pytest.mark.parametrize("au, idx, axis, sign", [
    ("AU6", [118, 347], 1, +1),          # cheeks up
    ("AU9", [198, 420, 129, 358], 1, +1),  # nose sides up
    ("AU10", [39, 269, 0], 1, +1),       # upper lip up
    ("AU12", [61, 291], 1, +1),          # lip corners up
    ("AU15", [61, 291], 1, -1),          # lip corners down
    ("AU17", [199, 200], 1, +1),         # chin boss up
    ("AU25", [17, 14], 1, -1),           # lower lip down
    ("AU26", [152, 175], 1, -1),         # chin down
    ("AU27", [152, 175], 1, -1),
])  # fmt: skip
def test_each_au_moves_its_region_the_right_way(rig, au, idx, axis, sign):
    d = moved(rig, idx, **{au: 5.0})
    assert np.all(sign * d[:, axis] > 1.0), d


def test_lateral_aus_move_corners_outward(rig):
    for au in ("AU12", "AU20"):
        d = moved(rig, [61, 291], **{au: 5.0})
        assert d[0, 0] < -2.0 and d[1, 0] > 2.0  # 61 is the subject's right corner (-x)


def test_jaw_opens_mouth_more_for_au27_than_au26_and_upper_face_stays(rig):
    chin26 = moved(rig, [152], AU26=5.0)[0, 1]
    chin27 = moved(rig, [152], AU27=5.0)[0, 1]
    assert chin27 < chin26 < -10.0
    np.testing.assert_allclose(moved(rig, [10, 168, 4], AU26=5.0), 0.0, atol=1e-3)
    m = rig.mesh
    up, lo = m.lid_rings["lips_upper"], m.lid_rings["lips_lower"]
    p = deform(code(AU25=5.0), rig)[0]
    assert p[up[len(up) // 2], 1] - p[lo[len(lo) // 2], 1] > 3.0


def _flipped_share(rig, pts):
    m = rig.mesh
    t = m.triangles[m.part[m.triangles[:, 0]] == 0]

    def normals(v):
        return np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])

    return float(np.mean((normals(pts) * normals(m.vertices)).sum(1) < 0))


def test_no_tearing_at_full_intensity(rig):
    for au in AU_NAMES:
        assert _flipped_share(rig, deform(code(**{au: 5.0}), rig)[0]) < 0.005, au
    everything = code(**{au: 5.0 for au in AU_NAMES})
    pts = deform(everything, rig)[0]
    assert np.all(np.isfinite(pts))
    assert _flipped_share(rig, pts) < 0.02


def test_random_codes_finite_and_batch_equals_single(rig):
    rng = np.random.default_rng(0)
    c = np.zeros((6, len(FEATURE_NAMES)), np.float32)
    c[:, : len(AU_NAMES)] = rng.uniform(0, 5, (6, len(AU_NAMES)))
    c[:, len(AU_NAMES):] = rng.uniform(-30, 30, (6, 3))
    batch = deform(c, rig)
    assert np.all(np.isfinite(batch))
    np.testing.assert_allclose(batch[4], deform(c[4:5], rig)[0], atol=1e-4)


def test_head_pose_rotates_by_the_given_angle(rig):
    m = rig.mesh
    nose, forehead = 4, 10
    for deg in (20.0, -35.0):
        p = deform(code(head_yaw=deg), rig)[0]
        a, b = m.vertices[nose] - m.vertices[168], p[nose] - p[168]
        ang = np.degrees(np.arctan2(b[0], b[2]) - np.arctan2(a[0], a[2]))
        assert ang == pytest.approx(deg, abs=1e-3)  # yaw > 0 turns the nose toward +x (subject's left)
    p = deform(code(head_pitch=15.0), rig)[0]
    assert p[nose, 1] < m.vertices[nose, 1] - 5.0  # pitch > 0: head down
    p = deform(code(head_roll=15.0), rig)[0]
    assert p[forehead, 0] > m.vertices[forehead, 0] + 5.0  # roll > 0: toward the left shoulder
    r = head_rotation(np.array([10.0]), np.array([20.0]), np.array([30.0]))[0]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


def test_per_side_intensities(rig):
    sides = np.zeros((1, len(AU_NAMES), 2), np.float32)
    sides[0, AU_NAMES.index("AU12"), 0] = 5.0  # subject's left only
    d = deform(code(), rig, sides=sides)[0] - rig.mesh.vertices
    assert d[291, 1] > 2.0 and abs(d[61, 1]) < 0.05
    sides[0, AU_NAMES.index("AU43"), 1] = 5.0  # right eye closed only
    p = deform(code(), rig, sides=sides)[0]
    up, lo = rig.mesh.lid_rings["eye_r_upper"], rig.mesh.lid_rings["eye_r_lower"]
    assert np.linalg.norm(p[up] - p[lo], axis=1).max() < 0.3
    up, lo = rig.mesh.lid_rings["eye_l_upper"], rig.mesh.lid_rings["eye_l_lower"]
    assert np.linalg.norm(p[up] - p[lo], axis=1).max() > 5.0


def test_bad_input(rig):
    with pytest.raises(InputError, match="columns"):
        deform(np.zeros((2, 5), np.float32), rig)
    bad = code()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        deform(bad, rig)
    with pytest.raises(InputError, match="0..5"):
        deform(code(AU4=7.0), rig)
    with pytest.raises(InputError, match="sides"):
        deform(code(), rig, sides=np.zeros((1, 3, 2)))
