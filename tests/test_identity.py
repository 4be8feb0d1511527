"""Identities: balanced sampling, JSON round trip, reshaping, AUs still work, no tearing, colours."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from painface.errors import InputError
from painface.face import mesh as fm
from painface.face.code import AU_NAMES, FEATURE_NAMES
from painface.face.identity import (
    MONK_SKIN_TONES,
    SHAPE_PARAMS,
    Identity,
    hex_to_rgb,
    identity_colors,
    identity_rig,
    make_identity,
    sample_identities,
)  # fmt: skip
from painface.face.rig import build_rig, deform


def code(**vals: float) -> np.ndarray:
    c = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for k, v in vals.items():
        c[0, FEATURE_NAMES.index(k)] = v
    return c


@pytest.fixture(scope="module")
def rigs():
    ids = [make_identity(s) for s in (1, 2, 3)]
    extreme = Identity(seed=9, sex="male", age_group="old", age=80, skin_tone=10,
                       shape={k: (1.0 if i % 2 else -1.0) for i, k in enumerate(SHAPE_PARAMS)})
    return [identity_rig(i) for i in [*ids, extreme]]


def test_sampling_is_balanced_and_seeded():
    ids = sample_identities(125, seed=4)
    strata = Counter((i.age_group, i.sex, i.skin_tone) for i in ids)
    assert len(strata) == 60 and max(strata.values()) - min(strata.values()) <= 1
    assert Counter(i.sex for i in ids)["female"] in (62, 63)
    assert [i.to_dict() for i in sample_identities(125, seed=4)] == [i.to_dict() for i in ids]
    assert [i.to_dict() for i in sample_identities(10, seed=5)] != [i.to_dict() for i in ids[:10]]
    assert all(i.age_group == "old" and 56 <= i.age <= 80 for i in ids if i.age_group == "old")


def test_json_round_trip_and_bad_values():
    ident = make_identity(7)
    back = Identity.from_dict(json.loads(json.dumps(ident.to_dict())))
    assert back == ident
    with pytest.raises(InputError, match="skin_tone"):
        Identity(skin_tone=11)
    with pytest.raises(InputError, match="shape.nose_width"):
        Identity(shape={"nose_width": 2.0})
    with pytest.raises(InputError, match="unknown"):
        Identity.from_dict({**ident.to_dict(), "hat": 1})


def test_monk_scale_is_ordered_light_to_dark():
    lum = [np.dot(hex_to_rgb(h), [0.2126, 0.7152, 0.0722]) for h in MONK_SKIN_TONES]
    assert len(lum) == 10 and lum[0] > 0.85 and lum[-1] < 0.2 and lum[3] > lum[6] > lum[9]


def test_shape_parameters_change_the_named_measures():
    rest = build_rig().mesh.vertices

    def measure(**shape: float) -> np.ndarray:
        v = identity_rig(Identity(shape=shape)).mesh.vertices
        return v

    wide = measure(face_width=1.0)
    assert wide[234, 0] < rest[234, 0] - 4 and wide[454, 0] > rest[454, 0] + 4  # cheekbones apart
    long_nose = measure(nose_length=1.0)
    assert long_nose[4, 1] < rest[4, 1] - 1.5
    big_eyes = identity_rig(Identity(shape={"eye_size": 1.0})).mesh
    assert big_eyes.eye_radius > 12.5
    gap = lambda v: v[145, 1] - v[159, 1]  # noqa: E731  lower - upper lid (right eye), negative
    assert gap(big_eyes.vertices) < gap(rest) - 0.3
    spaced = measure(eye_spacing=1.0)
    assert spaced[133, 0] < rest[133, 0] - 2 and spaced[362, 0] > rest[362, 0] + 2


def test_eyeballs_stay_spheres(rigs):
    for r in rigs:
        m = r.mesh
        for k in (0, 1):
            pts = m.vertices[m.part == 1 + k]
            radius = np.linalg.norm(pts - m.eye_centers[k], axis=1)
            assert np.ptp(radius) < 1e-3 and abs(radius.mean() - m.eye_radius) < 0.02


@pytest.mark.parametrize("au, idx, axis, sign", [
    ("AU4", 66, 1, -1), ("AU1", 107, 1, 1), ("AU6", 118, 1, 1), ("AU9", 129, 1, 1), ("AU10", 0, 1, 1),
    ("AU12", 291, 0, 1), ("AU15", 61, 1, -1), ("AU26", 17, 1, -1), ("AU43", 159, 1, -1),
])  # fmt: skip
def test_aus_move_their_regions_on_every_identity(rigs, au, idx, axis, sign):
    for r in rigs:
        d = deform(code(**{au: 5.0}), r)[0] - r.mesh.vertices
        assert sign * d[idx, axis] > 1.0, (au, d[idx])


def test_closed_lids_meet_on_reshaped_eyes(rigs):
    for r in rigs:
        v = deform(code(AU43=5.0), r)[0]
        up, lo = r.mesh.lid_rings["eye_r_upper"], r.mesh.lid_rings["eye_r_lower"]
        mid_up, mid_lo = v[up[len(up) // 2]], v[lo[len(lo) // 2]]
        assert np.linalg.norm(mid_up - mid_lo) < 1.0
        face = v[: r.mesh.n_face]
        near = np.linalg.norm(face[:, :2] - r.mesh.eye_centers[0, :2], axis=1) < 0.8 * r.mesh.eye_radius
        front = face[near & (face[:, 2] > r.mesh.eye_centers[0, 2])]
        assert np.all(np.linalg.norm(front - r.mesh.eye_centers[0], axis=1) > r.mesh.eye_radius - 0.3)


def _flipped_share(rest: np.ndarray, pts: np.ndarray, tri: np.ndarray) -> float:
    def normals(v):
        return np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])

    return float(np.mean((normals(pts) * normals(rest)).sum(1) < 0))


def test_identities_and_aus_do_not_tear(rigs):
    base = build_rig().mesh
    tri = base.triangles[np.all(base.part[base.triangles] == 0, axis=1)]
    every = code(**{au: 5.0 for au in AU_NAMES})
    edges = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]]])

    def stretch(pts: np.ndarray, rest: np.ndarray) -> float:
        return float((np.linalg.norm(pts[edges[:, 0]] - pts[edges[:, 1]], axis=1)
                      / np.linalg.norm(rest[edges[:, 0]] - rest[edges[:, 1]], axis=1)).max())

    plain = stretch(deform(every, build_rig())[0], base.vertices)
    for r in rigs:
        assert _flipped_share(base.vertices, r.mesh.vertices, tri) == 0.0
        pts = deform(every, r)[0]
        assert np.all(np.isfinite(pts)) and _flipped_share(base.vertices, pts, tri) < 0.02
        assert stretch(pts, r.mesh.vertices) < 1.3 * plain  # no edge stretched far beyond the plain rig's


def test_colours_follow_tone_iris_and_age():
    mesh = build_rig().mesh
    skin = mesh.region == fm.REGIONS["skin"]
    light, dark = (identity_colors(Identity(skin_tone=t), mesh) for t in (1, 10))
    assert light[skin].mean() > 0.8 and dark[skin].mean() < 0.25
    c = identity_colors(Identity(iris="blue"), mesh)[mesh.region == fm.REGIONS["iris"]].mean(0)
    assert c[2] > c[0]
    young = identity_colors(Identity(age=20, age_group="young"), mesh)
    old = identity_colors(Identity(age=80, age_group="old"), mesh)
    assert old.sum(1).min() <= young.sum(1).min() and (old[skin].mean() < young[skin].mean())
    thick = identity_colors(Identity(shape={"brow_thickness": 1.0}), mesh)
    thin = identity_colors(Identity(shape={"brow_thickness": -1.0}), mesh)
    assert (thick[: mesh.n_face].sum(1) < 1.5).sum() > (thin[: mesh.n_face].sum(1) < 1.5).sum()
