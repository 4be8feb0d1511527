"""Exports of FACS face codes for other tools, and the ``painface export`` command.

* ``arkit-csv``: one row per frame: ``time`` (s), the 52 ARKit blendshape weights (0-1, ARKit's order,
  via :func:`painface.face.code.to_arkit`), then ``headPitch``, ``headYaw``, ``headRoll`` (degrees,
  face-code signs).
* ``arkit-json``: ``{"fps", "names" [52], "frames" [F][52], "head_rotation" [F][3] (pitch, yaw, roll
  in degrees), "head_rotation_quaternion" [F][4] (x, y, z, w, glTF axes)}``.
* ``glb``: glTF 2.0 binary of the whole head (default; ``--face mask`` for the older face mask), of an
  identity if given: one mesh (head, neck, ears, eyes, teeth, tongue, hair), vertex colours, one morph
  target per AU (:data:`painface.face.code.AU_NAMES`; the rig's displacement at intensity 5), and an
  animation with morph weights AU / 5 per frame and the head rotation as a rotation track of a
  ``head`` node pivoting at the head joint (the neck turns with it: glTF has no per-vertex fraction
  without a skin; painface's own renderer lets the neck follow partly). The eyes look straight ahead.
  Units are metres, +y up, +z toward the viewer (glTF's convention). Written with struct + json.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import numpy as np

from painface.errors import InputError
from painface.face.code import ARKIT_NAMES, AU_NAMES, FEATURE_NAMES, POSE_NAMES, check_face, to_arkit
from painface.face.color import srgb_to_linear
from painface.face.identity import Identity
from painface.io import atomic_write_bytes, atomic_write_json

FORMATS = ("arkit-csv", "arkit-json", "glb")


def _pose(face: np.ndarray) -> np.ndarray:
    return face[:, [FEATURE_NAMES.index(n) for n in POSE_NAMES]].astype(np.float64)


def head_quaternions(face: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[F, 4]`` (x, y, z, w) of the rig's head rotation for each frame."""
    from painface.face.rig import head_rotation

    p = _pose(face)
    return matrix_to_quaternion(head_rotation(p[:, 0], p[:, 1], p[:, 2]))


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[F, 3, 3]`` -> quaternions ``[F, 4]`` (x, y, z, w), w >= 0."""
    r = np.asarray(r, np.float64)
    w = np.sqrt(np.maximum(0.0, 1.0 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2])) / 2
    x = np.sqrt(np.maximum(0.0, 1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2])) / 2
    y = np.sqrt(np.maximum(0.0, 1.0 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2])) / 2
    z = np.sqrt(np.maximum(0.0, 1.0 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2])) / 2
    x = np.copysign(x, r[:, 2, 1] - r[:, 1, 2])
    y = np.copysign(y, r[:, 0, 2] - r[:, 2, 0])
    z = np.copysign(z, r[:, 1, 0] - r[:, 0, 1])
    q = np.stack([x, y, z, w], axis=1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def arkit_csv(face: np.ndarray, fps: float) -> str:
    """CSV text: header ``time, <52 ARKit names>, headPitch, headYaw, headRoll``; one row per frame."""
    code = check_face(face, FEATURE_NAMES, source="face code")
    w, pose = to_arkit(code), _pose(code)
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["time", *ARKIT_NAMES, "headPitch", "headYaw", "headRoll"])
    for i in range(code.shape[0]):
        out.writerow([f"{i / fps:.4f}", *(f"{v:.4f}" for v in w[i]), *(f"{v:.3f}" for v in pose[i])])
    return buf.getvalue()


def arkit_json(face: np.ndarray, fps: float) -> dict:
    """The JSON document described in the module docstring."""
    code = check_face(face, FEATURE_NAMES, source="face code")
    return {"fps": float(fps), "names": list(ARKIT_NAMES),
            "frames": np.round(to_arkit(code), 4).tolist(),
            "head_rotation": np.round(_pose(code), 3).tolist(),
            "head_rotation_order": ["pitch", "yaw", "roll"], "head_rotation_units": "degrees",
            "head_rotation_quaternion": np.round(head_quaternions(code), 6).tolist()}


def _normals(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    n = np.zeros_like(v)
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(ln > 1e-12, n / np.maximum(ln, 1e-12), [0.0, 0.0, 1.0])
    return n.astype(np.float32)


class _Buffer:
    """Accumulates binary chunks, buffer views and accessors of a glTF document."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, arr: np.ndarray, kind: str, *, target: int | None = None, minmax: bool = False) -> int:
        arr = np.ascontiguousarray(arr)
        comp = {np.dtype(np.float32): 5126, np.dtype(np.uint32): 5125}[arr.dtype]
        while len(self.data) % 4:
            self.data.append(0)
        view = {"buffer": 0, "byteOffset": len(self.data), "byteLength": arr.nbytes}
        if target is not None:
            view["target"] = target
        self.data += arr.tobytes()
        self.views.append(view)
        count = arr.shape[0] if kind != "SCALAR" or arr.ndim == 1 else arr.size
        acc = {"bufferView": len(self.views) - 1, "componentType": comp, "count": int(count), "type": kind}
        if minmax:
            flat = arr.reshape(count, -1)
            acc["min"] = flat.min(axis=0).tolist()
            acc["max"] = flat.max(axis=0).tolist()
        self.accessors.append(acc)
        return len(self.accessors) - 1


FACE_MODELS = ("head", "mask")
"""Face models: the whole head (default) and the older face mask."""


def _rig_arrays(model: str, identity: Identity | None) -> tuple[np.ndarray, ...]:
    """Rest vertices ``[V, 3]`` mm, head pivot ``[3]``, triangles, sRGB albedo ``[V, 3]`` and the AU
    displacements at intensity 5 ``[17, V, 3]`` of the head or the mask."""
    if model == "head":
        from painface.face.head import build_head

        h = build_head(identity)
        return h.vertices, h.pivot.astype(np.float64), h.triangles, h.colors, h.fields
    if model != "mask":
        raise InputError(f"face: expected one of {FACE_MODELS}, got {model!r}")
    from painface.face.identity import identity_colors, identity_rig
    from painface.face.mesh import vertex_colors
    from painface.face.rig import NECK_PIVOT, build_rig, deform

    rig = identity_rig(identity) if identity is not None else build_rig()
    rest = rig.mesh.vertices.astype(np.float64)
    albedo = identity_colors(identity, rig.mesh) if identity is not None else vertex_colors(rig.mesh)
    fields = []
    for au in AU_NAMES:
        one = np.zeros((1, len(FEATURE_NAMES)), np.float32)
        one[0, FEATURE_NAMES.index(au)] = 5.0
        fields.append(deform(one, rig)[0].astype(np.float64) - rest)
    return rest, NECK_PIVOT.astype(np.float64), rig.mesh.triangles, albedo, np.stack(fields)


def glb_bytes(face: np.ndarray, fps: float, identity: Identity | None = None, model: str = "head") -> bytes:
    """glTF 2.0 binary (see the module docstring) for a FACS face code ``[F, 20]`` at ``fps``."""
    code = check_face(face, FEATURE_NAMES, source="face code")
    if code.shape[0] == 0:
        raise InputError("face code: no frames to export")
    rest, pivot, tri, albedo, fields = _rig_arrays(model, identity)
    base = ((rest - pivot) / 1000.0).astype(np.float32)  # metres, relative to the head pivot
    tri = np.asarray(tri).astype(np.uint32)
    linear = srgb_to_linear(albedo)
    b = _Buffer()
    attrs = {"POSITION": b.add(base, "VEC3", target=34962, minmax=True),
             "NORMAL": b.add(_normals(base, tri), "VEC3", target=34962),
             "COLOR_0": b.add(linear, "VEC3", target=34962)}
    indices = b.add(tri.ravel(), "SCALAR", target=34963)
    targets = [{"POSITION": b.add((np.asarray(f, np.float64) / 1000.0).astype(np.float32), "VEC3", target=34962,
                                  minmax=True)} for f in fields]
    n = code.shape[0]
    times = (np.arange(n) / fps).astype(np.float32)
    t_acc = b.add(times, "SCALAR", minmax=True)
    weights = b.add((np.clip(code[:, : len(AU_NAMES)], 0, 5) / 5.0).astype(np.float32).ravel(), "SCALAR")
    rot = b.add(head_quaternions(code).astype(np.float32), "VEC4")
    doc = {
        "asset": {"version": "2.0", "generator": "painface export"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"name": "head", "translation": (pivot / 1000.0).tolist(), "children": [1]},
                  {"name": "face", "mesh": 0}],
        "meshes": [{"name": "painface", "weights": [0.0] * len(AU_NAMES),
                    "extras": {"targetNames": list(AU_NAMES)},
                    "primitives": [{"attributes": attrs, "indices": indices, "targets": targets,
                                    "material": 0, "mode": 4}]}],
        "materials": [{"name": "skin", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 0.7}}],
        "animations": [{"name": "face code",
                        "samplers": [{"input": t_acc, "output": weights, "interpolation": "LINEAR"},
                                     {"input": t_acc, "output": rot, "interpolation": "LINEAR"}],
                        "channels": [{"sampler": 0, "target": {"node": 1, "path": "weights"}},
                                     {"sampler": 1, "target": {"node": 0, "path": "rotation"}}]}],
        "buffers": [{"byteLength": 0}],
        "bufferViews": b.views,
        "accessors": b.accessors,
    }
    while len(b.data) % 4:
        b.data.append(0)
    doc["buffers"][0]["byteLength"] = len(b.data)
    js = json.dumps(doc, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(b.data)
    return (struct.pack("<III", 0x46546C67, 2, total) + struct.pack("<II", len(js), 0x4E4F534A) + js
            + struct.pack("<II", len(b.data), 0x004E4942) + bytes(b.data))


def export(face: np.ndarray, fps: float, to: str, out: str | Path, identity: Identity | None = None,
           model: str = "head") -> Path:
    """Write ``face`` (FACS ``[F, 20]``) at ``fps`` to ``out`` in format ``to`` (one of :data:`FORMATS`)."""
    out = Path(out)
    if to not in FORMATS:
        raise InputError(f"--to: expected one of {FORMATS}, got {to!r}")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{out}: folder {folder} does not exist")
    try:
        if to == "arkit-csv":
            text = arkit_csv(face, fps).encode()
            atomic_write_bytes(out, lambda fh: fh.write(text))
        elif to == "arkit-json":
            atomic_write_json(out, arkit_json(face, fps))
        else:
            data = glb_bytes(face, fps, identity, model)
            atomic_write_bytes(out, lambda fh: fh.write(data))
    except PermissionError as e:
        raise InputError(f"{out}: cannot write ({e.strerror})") from None
    return out
