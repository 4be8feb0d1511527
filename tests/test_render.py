"""The rasterizer: coverage, depth order, purity, shapes and errors; the face reads correctly."""

from __future__ import annotations

import numpy as np
import pytest

from painface.errors import InputError
from painface.face import mesh as fm
from painface.face.code import FEATURE_NAMES
from painface.face.render import Camera, Lighting, render
from painface.face.rig import build_rig, deform

FLAT = Lighting(key=0.0, fill=0.0, ambient=1.0, specular=0.0, background=(0.0, 0.0, 0.0),
                interior=(0.0, 1.0, 0.0))
CAM = Camera(target=(0.0, 0.0, 0.0), distance=100.0, fov=90.0)  # 100 mm half-width at z = 0


def square(half: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], np.float32)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def test_known_square_covers_the_expected_pixels():
    v, t = square(50.0, 0.0)  # spans pixels 64..191 at 256
    img = render(v, t, np.full((4, 3), 0.5, np.float32), size=256, camera=CAM, lighting=FLAT)
    assert img.shape == (1, 256, 256, 3) and img.dtype == np.uint8
    covered = img[0].max(axis=2) > 0
    expected = np.zeros((256, 256), bool)
    expected[64:192, 64:192] = True
    np.testing.assert_array_equal(covered, expected)
    assert np.all(np.abs(img[0, 64:192, 64:192].astype(int) - 128) <= 1)  # sRGB albedo 0.5 unlit


def test_triangle_orientation_and_interior_colour():
    v, t = square(50.0, 0.0)
    img = render(v, t[:, ::-1], np.full((4, 3), 0.5, np.float32), size=64, camera=CAM, lighting=FLAT)
    np.testing.assert_array_equal(img[0, 32, 32], [0, 255, 0])  # seen from behind: interior colour
    culled, alpha = render(v, t[:, ::-1], np.full((4, 3), 0.5, np.float32), size=64, camera=CAM, lighting=FLAT,
                           cull_back=True, return_alpha=True)
    assert culled[0, 32, 32].tolist() != [0, 255, 0] and alpha[0, 32, 32] == 0.0  # culled: background
    _, alpha = render(v, t, np.full((4, 3), 0.5, np.float32), size=64, camera=CAM, lighting=FLAT, return_alpha=True)
    assert alpha[0, 32, 32] == 1.0 and alpha[0, 0, 0] == 0.0


def test_nearer_surface_wins_whatever_the_order():
    near, t = square(30.0, 10.0)
    far, _ = square(50.0, -10.0)
    verts = np.concatenate([near, far])
    tris = np.concatenate([t, t + 4])
    cols = np.concatenate([np.tile([1.0, 0.0, 0.0], (4, 1)), np.tile([0.0, 0.0, 1.0], (4, 1))]).astype(np.float32)
    for order in (tris, tris[::-1]):
        img = render(verts, order, cols, size=128, camera=CAM, lighting=FLAT)[0]
        np.testing.assert_array_equal(img[64, 64], [255, 0, 0])
        np.testing.assert_array_equal(img[64, 39], [0, 0, 255])  # near square spans px 43..85, far 35..93


def test_shading_depends_on_light_direction():
    v, t = square(50.0, 0.0)
    c = np.full((4, 3), 0.6, np.float32)
    lit = render(v, t, c, size=32, camera=CAM, lighting=Lighting(key_dir=(0, 0, 1), ambient=0.1, fill=0.0))
    grazing = render(v, t, c, size=32, camera=CAM, lighting=Lighting(key_dir=(1, 0, 0.05), ambient=0.1, fill=0.0))
    assert lit[0, 16, 16, 0] > grazing[0, 16, 16, 0] + 60


@pytest.fixture(scope="module")
def face():
    rig = build_rig()
    return rig, fm.vertex_colors(rig.mesh)


def test_pure_function_batch_and_views(face):
    rig, col = face
    codes = np.zeros((3, len(FEATURE_NAMES)), np.float32)
    codes[1, FEATURE_NAMES.index("AU26")] = 5.0
    codes[2, FEATURE_NAMES.index("head_yaw")] = 20.0
    verts = deform(codes, rig)
    cams = [Camera(), Camera(yaw=30.0), Camera(pitch=-15.0)]
    a = render(verts, rig.mesh.triangles, col, size=96, camera=cams)
    b = render(verts, rig.mesh.triangles, col, size=96, camera=cams)
    np.testing.assert_array_equal(a, b)
    single = render(verts[1], rig.mesh.triangles, col, size=96, camera=cams[1])
    np.testing.assert_array_equal(a[1], single[0])
    assert not np.array_equal(a[0], a[1])
    big = render(verts[0], rig.mesh.triangles, col, size=512)
    assert big.shape == (1, 512, 512, 3)


def _dark(img: np.ndarray, box: tuple[slice, slice]) -> int:
    return int((img[box].max(axis=2) < 40).sum())


def test_closed_eyes_hide_the_pupils_and_open_mouth_reads_dark(face):
    rig, col = face
    codes = np.zeros((3, len(FEATURE_NAMES)), np.float32)
    codes[1, FEATURE_NAMES.index("AU43")] = 5.0
    codes[2, FEATURE_NAMES.index("AU26")] = 5.0
    img = render(deform(codes, rig), rig.mesh.triangles, col, size=256, supersample=1)
    eyes = (slice(80, 115), slice(50, 206))
    mouth = (slice(150, 215), slice(90, 166))
    assert _dark(img[0], eyes) >= 8  # pupils
    assert _dark(img[1], eyes) == 0
    assert _dark(img[0], mouth) == 0
    assert _dark(img[2], mouth) > 100
    bg = np.array([51, 56, 66])  # Lighting().background in sRGB 0..255 (0.20, 0.22, 0.26)
    assert np.abs(img[0, 128, 128].astype(int) - bg).sum() > 30  # the face fills the centre


def test_bad_input():
    v, t = square(10.0, 0.0)
    c = np.full((4, 3), 0.5, np.float32)
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="vertices"):
        render(bad, t, c)
    with pytest.raises(InputError, match="triangles"):
        render(v, t + 10, c)
    with pytest.raises(InputError, match="colors"):
        render(v, t, c[:2])
    with pytest.raises(InputError, match="colors"):
        render(v, t, c * 3)
    with pytest.raises(InputError, match="size"):
        render(v, t, c, size=8)
    with pytest.raises(InputError, match="camera"):
        render(np.stack([v, v]), t, c, camera=[Camera()])
    with pytest.raises(InputError, match="camera"):
        render(v, t, c, camera=Camera(distance=-1.0))
    with pytest.raises(InputError, match="key_dir"):
        render(v, t, c, lighting=Lighting(key_dir=(0, 0, 0)))
