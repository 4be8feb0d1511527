"""FLAME: chumpy-free loading of a synthetic FLAME-format file, and the forward pass by its formulas."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest

from painface.errors import InputError
from painface.face.code import FLAME_NAMES
from painface.face.flame import flame_vertices, load_flame, render_flame, rodrigues


def synthetic(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A tiny FLAME-format model: 6 vertices (a double pyramid), 3 joints (root, neck, jaw)."""
    v = np.array([[0, 0, 0.05], [0.05, 0, 0], [-0.05, 0, 0], [0, 0.05, 0], [0, -0.05, 0], [0, 0, -0.05]])
    f = np.array([[0, 1, 3], [0, 3, 2], [0, 2, 4], [0, 4, 1], [5, 3, 1], [5, 2, 3], [5, 4, 2], [5, 1, 4]])
    jreg = np.zeros((3, 6))
    jreg[0, :] = 1 / 6
    jreg[1, 3] = 1.0
    jreg[2, [1, 2]] = 0.5
    w = np.zeros((6, 3))
    w[:, 0] = 1.0
    w[4] = [0, 0, 1]  # the lowest vertex belongs to the jaw
    return {"v_template": v, "shapedirs": rng.normal(0, 0.01, (6, 3, 310)),
            "posedirs": rng.normal(0, 0.01, (6, 3, 18)), "J_regressor": jreg, "weights": w,
            "kintree_table": np.array([[4294967295, 0, 1], [0, 1, 2]]), "f": f}


def write_chumpy_pkl(path, arrays):
    """Pickle like the FLAME release: chumpy objects for the big arrays (chumpy itself not needed)."""
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    mod.Ch = Ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), mod
    try:
        out = {}
        for k, a in arrays.items():
            if k in ("shapedirs", "v_template"):
                c = Ch()
                c.x = a
                out[k] = c
            else:
                out[k] = a
        path.write_bytes(pickle.dumps(out, protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


@pytest.fixture
def model_files(tmp_path):
    arrays = synthetic(np.random.default_rng(0))
    write_chumpy_pkl(tmp_path / "m.pkl", arrays)
    np.savez(tmp_path / "m.npz", **arrays)
    return arrays, tmp_path / "m.pkl", tmp_path / "m.npz"


def code(exp: dict[int, float] | None = None, jaw=(0.0, 0.0, 0.0)) -> np.ndarray:
    c = np.zeros((1, len(FLAME_NAMES)), np.float32)
    for k, v in (exp or {}).items():
        c[0, k] = v
    c[0, 100:] = jaw
    return c


def test_pkl_without_chumpy_equals_npz(model_files):
    arrays, pkl, npz = model_files
    assert "chumpy" not in sys.modules
    a, b = load_flame(pkl), load_flame(npz)
    assert np.array_equal(a.shapedirs, arrays["shapedirs"]) and np.array_equal(a.v_template, b.v_template)
    assert list(a.parents) == [-1, 0, 1]


def test_expression_is_linear_in_its_direction(model_files):
    arrays, pkl, _ = model_files
    m = load_flame(pkl)
    v = flame_vertices(m, code({0: 1.5, 7: -2.0}))[0]
    want = arrays["v_template"] + 1.5 * arrays["shapedirs"][:, :, 300] - 2.0 * arrays["shapedirs"][:, :, 307]
    assert np.allclose(v, want, atol=1e-12)
    assert np.allclose(flame_vertices(m, code())[0], arrays["v_template"])


def test_jaw_rotates_its_vertices_about_the_jaw_joint(model_files):
    arrays, _, npz = model_files
    m = load_flame(npz)
    aa = np.array([0.3, 0.0, 0.0])
    v = flame_vertices(m, code(jaw=tuple(100 * aa)))[0]
    r = rodrigues(aa[None])[0]
    posed = arrays["v_template"] + arrays["posedirs"] @ np.concatenate([np.zeros(9), (r - np.eye(3)).ravel()])
    joint = 0.5 * (arrays["v_template"][1] + arrays["v_template"][2])
    assert np.allclose(v[4], r @ (posed[4] - joint) + joint, atol=1e-12)  # jaw vertex
    assert np.allclose(v[:4], posed[:4], atol=1e-12)  # root-bound vertices only get the correctives
    assert np.allclose(rodrigues(np.array([[0, 0, np.pi / 2]]))[0] @ [1, 0, 0], [0, 1, 0], atol=1e-12)


def test_render_and_bad_files(model_files, tmp_path):
    _, pkl, _ = model_files
    m = load_flame(pkl)
    img = render_flame(m, np.concatenate([code(), code(jaw=(30, 0, 0))]), size=32)
    assert img.shape == (2, 32, 32, 3) and img[0].std() > 0
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"v_template": print}))
    with pytest.raises(InputError, match="refusing"):
        load_flame(evil)
    np.savez(tmp_path / "part.npz", v_template=np.zeros((3, 3)))
    with pytest.raises(InputError, match="lacks"):
        load_flame(tmp_path / "part.npz")
    with pytest.raises(InputError, match="expression components"):
        flame_vertices(m, code({50: 1.0}))
