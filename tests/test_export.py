"""Exports: ARKit CSV/JSON values, glTF binary structure, and the Khronos glTF validator."""

from __future__ import annotations

import csv
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from painface.cli import main
from painface.errors import InputError
from painface.face.code import ARKIT_NAMES, AU_NAMES, FEATURE_NAMES
from painface.face.export import arkit_csv, arkit_json, export, glb_bytes, head_quaternions
from painface.face.rig import head_rotation

ROOT = Path(__file__).resolve().parents[1]
VALIDATOR = ROOT / "node_modules" / "gltf-validator"


def codes(n: int = 6) -> np.ndarray:
    c = np.zeros((n, len(FEATURE_NAMES)), np.float32)
    c[:, FEATURE_NAMES.index("AU4")] = np.linspace(0, 5, n)
    c[:, FEATURE_NAMES.index("AU43")] = 5.0
    c[:, FEATURE_NAMES.index("head_yaw")] = np.linspace(-20, 20, n)
    c[:, FEATURE_NAMES.index("head_pitch")] = 10.0
    return c


def read_glb(data: bytes) -> tuple[dict, bytes]:
    magic, version, total = struct.unpack_from("<III", data, 0)
    assert (magic, version, total) == (0x46546C67, 2, len(data))
    jlen, jtype = struct.unpack_from("<II", data, 12)
    assert jtype == 0x4E4F534A
    doc = json.loads(data[20 : 20 + jlen])
    blen, btype = struct.unpack_from("<II", data, 20 + jlen)
    assert btype == 0x004E4942
    return doc, data[28 + jlen : 28 + jlen + blen]


def accessor(doc: dict, binary: bytes, k: int) -> np.ndarray:
    acc = doc["accessors"][k]
    view = doc["bufferViews"][acc["bufferView"]]
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[acc["type"]]
    dtype = np.float32 if acc["componentType"] == 5126 else np.uint32
    arr = np.frombuffer(binary, dtype, acc["count"] * width, view["byteOffset"])
    return arr.reshape(acc["count"], width)


def test_arkit_csv_values(tmp_path):
    c = codes()
    rows = list(csv.reader(arkit_csv(c, 25.0).splitlines()))
    assert rows[0] == ["time", *ARKIT_NAMES, "headPitch", "headYaw", "headRoll"] and len(rows) == 7
    last = dict(zip(rows[0], rows[-1], strict=True))
    assert float(last["time"]) == pytest.approx(5 / 25)
    assert float(last["browDownLeft"]) == pytest.approx(1.0) and float(last["eyeBlinkRight"]) == pytest.approx(1.0)
    assert float(rows[1][1 + ARKIT_NAMES.index("browDownLeft")]) == 0.0
    assert float(last["headYaw"]) == pytest.approx(20.0)


def test_arkit_json_and_quaternions():
    c = codes()
    doc = arkit_json(c, 30.0)
    assert doc["fps"] == 30.0 and doc["names"] == list(ARKIT_NAMES) and len(doc["frames"]) == 6
    assert np.asarray(doc["frames"]).shape == (6, 52) and doc["head_rotation"][0] == [10.0, -20.0, 0.0]
    q = head_quaternions(c)
    x, y, z, w = q.T  # quaternion -> matrix must give the rig's rotation back
    m = np.stack([np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
                  np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
                  np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)
    assert np.allclose(m, head_rotation(c[:, 17], c[:, 18], c[:, 19]), atol=1e-6)


def test_glb_morph_targets_and_animation():
    c = codes()
    doc, binary = read_glb(glb_bytes(c, 25.0))
    prim = doc["meshes"][0]["primitives"][0]
    assert len(prim["targets"]) == len(AU_NAMES) == len(doc["meshes"][0]["extras"]["targetNames"])
    au4 = accessor(doc, binary, prim["targets"][AU_NAMES.index("AU4")]["POSITION"])
    from painface.face.head import build_head

    head = build_head()
    assert au4.shape == (head.n_vertices, 3)
    assert au4[head.landmarks["brow_mid_l"], 1] < -0.002  # brow lowered by > 2 mm, in metres
    doc_m, bin_m = read_glb(glb_bytes(c, 25.0, model="mask"))
    au4_m = accessor(doc_m, bin_m, doc_m["meshes"][0]["primitives"][0]["targets"][AU_NAMES.index("AU4")]["POSITION"])
    assert au4_m[66, 1] < -0.002  # the mask's brow (MediaPipe landmark 66)
    sampler = doc["animations"][0]["samplers"][0]
    times = accessor(doc, binary, sampler["input"]).ravel()
    weights = accessor(doc, binary, sampler["output"]).reshape(len(times), len(AU_NAMES))
    assert np.allclose(times, np.arange(6) / 25.0)
    assert np.allclose(weights[:, AU_NAMES.index("AU4")], np.linspace(0, 1, 6))
    assert np.allclose(weights[:, AU_NAMES.index("AU43")], 1.0)


def test_glb_passes_the_khronos_validator(tmp_path):
    if not VALIDATOR.is_dir() or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("gltf-validator is not installed (run `npm ci` in the repository root)")
        pytest.skip("gltf-validator not installed: run `npm ci` in the repository root")
    path = export(codes(), 25.0, "glb", tmp_path / "face.glb")
    script = tmp_path / "validate.js"
    script.write_text(
        f"const v = require({json.dumps(str(VALIDATOR))});\n"
        "const fs = require('fs');\n"
        "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])))\n"
        "  .then(r => console.log(JSON.stringify(r.issues)))\n"
        "  .catch(e => { console.error(e); process.exit(1); });\n")
    res = subprocess.run(["node", str(script), str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    issues = json.loads(res.stdout)
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"][:5]


def test_cli_export_and_bad_input(tmp_path, capsys):
    npz = tmp_path / "codes.npz"
    np.savez(npz, face=codes()[None].repeat(2, 0), feature_names=np.array(FEATURE_NAMES), fps=np.float32(25))
    assert main(["export", str(npz), "--to", "arkit-csv", "--out", str(tmp_path / "a.csv"), "--sample", "1"]) == 0
    assert (tmp_path / "a.csv").read_text().startswith("time,eyeBlinkLeft")
    assert main(["export", str(npz), "--to", "glb", "--out", str(tmp_path / "a.glb"), "--identity", "3"]) == 0
    assert read_glb((tmp_path / "a.glb").read_bytes())[0]["asset"]["version"] == "2.0"
    bad = codes()
    bad[0, 0] = 7.0
    np.savez(npz, face=bad, feature_names=np.array(FEATURE_NAMES), fps=np.float32(25))
    assert main(["export", str(npz), "--to", "arkit-json", "--out", str(tmp_path / "a.json")]) == 2
    assert "0..5" in capsys.readouterr().err and not (tmp_path / "a.json").exists()
    with pytest.raises(InputError, match="does not exist"):
        export(codes(), 25.0, "arkit-json", tmp_path / "missing" / "a.json")
