"""FLAME-space face codes (``exp0..exp99``, ``jaw0..jaw2`` = jaw axis-angle x 100) through a FLAME model
file that the user supplies, rendered with the built-in renderer.

:func:`load_flame` reads the standard ``generic_model.pkl`` WITHOUT chumpy: a restricted unpickler
maps chumpy's classes to a stub that keeps their numpy arrays (``x``), allows only numpy / scipy.sparse
reconstructors, and refuses anything else. An ``.npz`` with the same keys (v_template, shapedirs,
posedirs, J_regressor, weights, kintree_table, f) also works.

Forward pass (numpy, shape coefficients 0): ``v = T + E psi`` (``E`` the expression columns of
shapedirs, 300.. onward), joints ``J = J_regressor v``; the jaw joint (index 2) rotates by
``R = rodrigues(jaw / 100)``; pose correctives ``v += P vec(R_j - I)`` over joints 1..; linear blend
skinning ``v_i' = sum_j w_ij G_j (v_i - J_j)`` with ``G_j`` the world transform of joint j.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from painface.errors import InputError
from painface.face.code import FLAME_NAMES, check_face

KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
N_SHAPE = 300
JAW_JOINT = 2


class _ChumpyStub:
    """Stands in for any chumpy object: keeps the pickled state (its numpy array is ``x``)."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


class _Unpickler(pickle.Unpickler):
    ALLOWED = {("copyreg", "_reconstructor"), ("_codecs", "encode"), ("builtins", "object"),
               ("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStub
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            import scipy.sparse as sp

            return getattr(sp, name)
        if (module, name) in self.ALLOWED:
            return super().find_class(module.replace("numpy.core", "numpy._core")
                                      if module.startswith("numpy.core") and hasattr(np, "_core") else module, name)
        raise InputError(f"FLAME model: refusing to unpickle {module}.{name} (only numpy, scipy.sparse, chumpy)")


def _array(v) -> np.ndarray:
    if isinstance(v, _ChumpyStub):
        v = v.__dict__.get("x", v.__dict__.get("a"))
    if hasattr(v, "toarray"):
        v = v.toarray()
    return np.asarray(v)


@dataclass(frozen=True)
class FlameModel:
    """FLAME arrays: v_template ``[V, 3]`` (m), shapedirs ``[V, 3, K]``, posedirs ``[V, 3, 9 (J-1)]``,
    J_regressor ``[J, V]``, weights ``[V, J]``, parents ``[J]`` (-1 for the root), f ``[T, 3]``."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    f: np.ndarray


def load_flame(path: str | Path) -> FlameModel:
    """Load a FLAME model from ``.pkl`` (chumpy-free) or ``.npz``; shapes are checked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such FLAME model file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as fh:
                raw = _Unpickler(fh, encoding="latin1").load()
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise InputError(f"{path}: not a readable FLAME model ({e})") from None
    missing = [k for k in KEYS if k not in raw]
    if missing:
        raise InputError(f"{path}: FLAME model lacks {missing}; expected keys {KEYS}")
    a = {k: _array(raw[k]) for k in KEYS}
    v = a["v_template"].astype(np.float64)
    n_v = v.shape[0]
    kt = a["kintree_table"].astype(np.int64)
    n_j = kt.shape[1]
    parents = np.where(kt[0] >= n_j, -1, kt[0])
    parents[0] = -1
    checks = {"shapedirs": (n_v, 3), "posedirs": (n_v, 3, 9 * (n_j - 1)), "J_regressor": (n_j, n_v),
              "weights": (n_v, n_j)}
    for k, shape in checks.items():
        if a[k].shape[: len(shape)] != shape:
            more = " + [K]" if k == "shapedirs" else ""
            raise InputError(f"{path}: {k} has shape {a[k].shape}, expected {shape}{more}")
    if a["shapedirs"].ndim != 3 or a["shapedirs"].shape[2] <= N_SHAPE or n_j <= JAW_JOINT:
        raise InputError(f"{path}: expected shapedirs [V, 3, {N_SHAPE} + expressions] and >= 3 joints")
    return FlameModel(v, a["shapedirs"].astype(np.float64), a["posedirs"].astype(np.float64),
                      a["J_regressor"].astype(np.float64), a["weights"].astype(np.float64), parents,
                      a["f"].astype(np.int32))


def rodrigues(aa: np.ndarray) -> np.ndarray:
    """Axis-angle ``[F, 3]`` (radians) -> rotation matrices ``[F, 3, 3]``."""
    th = np.linalg.norm(aa, axis=1, keepdims=True)
    k = aa / np.maximum(th, 1e-12)
    kx = np.zeros((len(aa), 3, 3))
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx = kx - np.swapaxes(kx, 1, 2)
    s, c = np.sin(th)[:, :, None], np.cos(th)[:, :, None]
    return np.eye(3)[None] + s * kx + (1 - c) * (kx @ kx)


def flame_vertices(model: FlameModel, code: np.ndarray) -> np.ndarray:
    """Vertices ``[F, V, 3]`` (m) of a FLAME face code ``[F, 103]`` (see the module docstring)."""
    code = check_face(code, FLAME_NAMES, source="FLAME face code").astype(np.float64)
    n_exp = min(100, model.shapedirs.shape[2] - N_SHAPE)
    if np.any(code[:, n_exp:100] != 0):
        raise InputError(f"FLAME face code: the model has {n_exp} expression components, the code uses more")
    n_f, n_j = code.shape[0], len(model.parents)
    v = model.v_template[None] + np.einsum("vck,fk->fvc", model.shapedirs[:, :, N_SHAPE : N_SHAPE + n_exp],
                                           code[:, :n_exp])
    joints = np.einsum("jv,fvc->fjc", model.J_regressor, v)
    rots = np.repeat(np.eye(3)[None, None], n_f, axis=0).repeat(n_j, axis=1)
    rots[:, JAW_JOINT] = rodrigues(code[:, 100:103] / 100.0)
    feat = (rots[:, 1:] - np.eye(3)).reshape(n_f, -1)
    v = v + np.einsum("vck,fk->fvc", model.posedirs, feat)
    world = np.zeros((n_f, n_j, 4, 4))
    for j in range(n_j):
        local = np.zeros((n_f, 4, 4))
        local[:, :3, :3], local[:, 3, 3] = rots[:, j], 1.0
        p = model.parents[j]
        local[:, :3, 3] = joints[:, j] - (joints[:, p] if p >= 0 else 0.0)
        world[:, j] = local if p < 0 else world[:, p] @ local
    rel = world.copy()
    rel[:, :, :3, 3] -= np.einsum("fjab,fjb->fja", world[:, :, :3, :3], joints)
    blend = np.einsum("vj,fjab->fvab", model.weights, rel)
    return np.einsum("fvab,fvb->fva", blend[:, :, :3, :3], v) + blend[:, :, :3, 3]


def render_flame(model: FlameModel, code: np.ndarray, *, size: int = 256, yaw: float = 0.0,
                 skin: tuple[float, float, float] = (0.80, 0.62, 0.50)) -> np.ndarray:
    """Render a FLAME code ``[F, 103]``: uint8 ``[F, size, size, 3]`` (camera framed on the head)."""
    from painface.face.render import Camera, render

    verts = flame_vertices(model, code) * 1000.0  # mm
    center = model.v_template.mean(axis=0) * 1000.0
    extent = float(np.ptp(model.v_template, axis=0).max()) * 1000.0
    cam = Camera(yaw=yaw, distance=max(extent, 1e-3) * 3.2, target=tuple(center.tolist()))
    colors = np.broadcast_to(np.asarray(skin, np.float32), (verts.shape[1], 3))
    return render(verts.astype(np.float32), model.f, colors, size=size, camera=cam)


def render_flame_video(model: FlameModel, code: np.ndarray, path: str | Path, fps: float, *, size: int = 256,
                       yaw: float = 0.0, stimulus: np.ndarray | None = None, pspi: np.ndarray | None = None) -> Path:
    """A FLAME code to a video; beside a plot of ``stimulus`` (and ``pspi`` when given) if ``stimulus``."""
    from painface.face.video import PlotStrip, write_video

    frames = render_flame(model, code, size=size, yaw=yaw)
    if stimulus is not None:
        strip = PlotStrip(stimulus, np.zeros(len(frames)) if pspi is None else pspi, fps, height=size,
                          width=int(1.5 * size))
        frames = np.stack([np.concatenate([f, strip.frame(i)], axis=1) for i, f in enumerate(frames)])
    return write_video(frames, path, fps)
