"""painface.analyze: detector pieces, values on a real photo and on rendered faces, bad input, the table
writer and the CLI. Real-photo tests on ../shared/realfaces skip when that folder is absent; the
astronaut photo (scikit-image) always runs."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from painface.analyze import Calibration, Detector, write_table
from painface.analyze.aus import DETECTED_AUS, FEATURES, pspi_from_aus, uncalibrated_aus
from painface.analyze.blazeface import anchors, weighted_nms
from painface.analyze.calibrate import fit_ridge
from painface.analyze.landmarks import rotation_to_pose
from painface.analyze.models import BLENDSHAPE_OUTPUTS
from painface.cli import main
from painface.errors import InputError
from painface.face.code import ARKIT_NAMES, AU_NAMES, FEATURE_NAMES

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "realfaces" / "london-dev"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} absent (real test photos live beside the repo)")


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()


@pytest.fixture(scope="module")
def rendered() -> np.ndarray:
    """Neutral, AU4=5, AU43=5, head yaw +15 and AU4+6+7+9+10 at 4, on one identity, 256 px."""
    from painface.analyze.calibrate import render_identity
    from painface.face.identity import sample_identities
    from painface.face.render import Camera

    codes = np.zeros((5, len(FEATURE_NAMES)), np.float32)
    codes[1, AU_NAMES.index("AU4")] = 5
    codes[2, AU_NAMES.index("AU43")] = 5
    codes[3, FEATURE_NAMES.index("head_yaw")] = 15
    for au in ("AU4", "AU6", "AU7", "AU9", "AU10"):
        codes[4, AU_NAMES.index(au)] = 4
    return render_identity(sample_identities(1, seed=3)[0], codes, [Camera()] * 5, _lighting(), 256)


def _lighting():
    from painface.face.render import Lighting

    return Lighting()


def test_anchors_match_blazeface_short_range():
    a = anchors()
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], a[1])
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])
    assert (a[512:518] == a[512]).all()


def test_weighted_nms_merges_overlaps_and_keeps_apart():
    boxes = np.array([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [3, 3, 4, 4]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    out = weighted_nms(boxes, kps, np.array([0.9, 0.3, 0.8], np.float32))
    assert len(out) == 2
    np.testing.assert_allclose(out[0][0], [0.025, 0, 1.025, 1], atol=1e-6)  # 0.9/0.3 weighted
    assert out[0][2] == pytest.approx(0.9) and out[1][2] == pytest.approx(0.8)


def test_rotation_to_pose_inverts_head_rotation():
    from painface.face.rig import head_rotation

    for p, y, r in [(10, -20, 5), (-15, 30, -12), (0, 0, 0)]:
        np.testing.assert_allclose(rotation_to_pose(head_rotation(p, y, r)), (p, y, r), atol=1e-9)


def test_astronaut_landmarks_and_pose(det, astronaut):
    df = det.detect(astronaut, landmarks=True, progress=False)
    assert len(df) == 1 and bool(df.face_detected[0]) and df.error[0] == ""
    row = df.iloc[0]
    assert row.face_score > 0.8 and row.presence > 0.9
    # measured positions (pixels) of the nose tip and both outer eye corners in the 512 x 512 photo
    for i, (x, y) in {1: (223.7, 130.6), 33: (195.6, 101.0), 263: (255.4, 104.0)}.items():
        assert abs(row[f"x_{i}"] - x) < 4 and abs(row[f"y_{i}"] - y) < 4, i
    assert 170 < row.face_x < 185 and 260 < row.face_x + row.face_width < 280
    assert abs(row.yaw) < 8 and abs(row.roll) < 8 and 0 < row.pitch < 18
    assert row.mouthSmileLeft > 0.5 and row.mouthSmileRight > 0.5  # she smiles
    assert np.isnan(row.tongueOut)
    assert list(df.columns[:6]) == ["file", "frame", "time", "face", "face_detected", "error"]
    assert set(ARKIT_NAMES) | set(DETECTED_AUS) | {"PSPI"} <= set(df.columns)


def test_rendered_faces_read_as_expected(det, rendered):
    df = det.detect(list(rendered), progress=False)
    assert df.face_detected.all()
    neutral, brow, closed, turned, pain = (df.iloc[i] for i in range(5))
    assert brow.PSPI > neutral.PSPI
    assert pain.PSPI > neutral.PSPI + 1.5
    assert closed.AU43 > neutral.AU43 + 1.5
    assert turned.yaw == pytest.approx(15, abs=4) and abs(neutral.yaw) < 3


def test_uncalibrated_map_is_blendshape_times_five():
    b = np.zeros(52)
    for name, v in {"browDownLeft": 0.4, "browDownRight": 0.6, "eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0,
                    "noseSneerLeft": 0.2, "noseSneerRight": 0.2}.items():
        b[BLENDSHAPE_OUTPUTS.index(name)] = v
    aus = uncalibrated_aus(b)
    assert aus["AU4"] == pytest.approx(2.5) and aus["AU43"] == pytest.approx(5) and aus["AU9"] == pytest.approx(1)
    assert float(pspi_from_aus(aus)) == pytest.approx(2.5 + 0 + 1 + 1)


def test_calibration_roundtrip_and_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((200, len(FEATURES)))
    w_true = rng.normal(size=len(FEATURES))
    w, b = fit_ridge(x, x @ w_true + 0.7, ridge=1e-9)
    np.testing.assert_allclose(w, w_true, atol=1e-6)
    assert b == pytest.approx(0.7, abs=1e-6)
    cal = Calibration({"AU4": w}, {"AU4": b}, {"note": "test"})
    back = Calibration.load(cal.save(tmp_path / "c.json"))
    blend = rng.random((3, 52))
    np.testing.assert_allclose(back(blend)["AU4"], cal(blend)["AU4"], atol=1e-5)
    np.testing.assert_allclose(back(blend)["AU6"], uncalibrated_aus(blend)["AU6"])  # not fitted: fallback
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a painface AU calibration"):
        Calibration.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")


def _huge_png(path: Path, w: int, h: int) -> None:
    """A PNG header declaring w x h pixels (no pixel data): PIL reads the size from it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _video(path: Path, frames: list[np.ndarray] | None, fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        for f in frames or []:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        if not frames:
            c.start_encoding()  # header only: a video file with no frames
        for p in s.encode():
            c.mux(p)


def test_bad_inputs_give_rows_and_the_run_goes_on(det, astronaut, tmp_path):
    Image.fromarray(astronaut).save(tmp_path / "good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "notes.txt").write_text("hello")
    good = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (1, 1), (128, 100, 90)).save(tmp_path / "one.png")
    Image.fromarray(astronaut).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(astronaut).convert("RGBA").save(tmp_path / "rgba.png")
    _huge_png(tmp_path / "huge.png", 30000, 30000)
    _video(tmp_path / "noframes.mp4", None)
    inputs = [tmp_path / n for n in ("good.png", "empty.jpg", "text.jpg", "notes.txt", "truncated.png",
                                     "one.png", "gray.png", "rgba.png", "huge.png", "noframes.mp4", "nope.png")]
    df = det.detect(inputs, progress=False).set_index(df_index := "file")
    row = {Path(k).name: v for k, v in df.iterrows()}
    assert df_index == "file" and len(row) == len(inputs)
    for name in ("good.png", "gray.png", "rgba.png"):
        assert row[name].face_detected and row[name].error == "", name
    assert row["one.png"].error == "" and not row["one.png"].face_detected
    for name, msg in {"empty.jpg": "empty file", "text.jpg": "not a readable", "notes.txt": "not a readable",
                      "truncated.png": "not a readable", "huge.png": "too large", "noframes.mp4": "no video frames",
                      "nope.png": "no such file"}.items():
        assert not row[name].face_detected and msg in row[name].error, (name, row[name].error)
    assert row["gray.png"].PSPI == pytest.approx(row["good.png"].PSPI, abs=1.0)


def test_arrays_and_a_video(det, rendered, tmp_path):
    gray_float = rendered[0].mean(axis=2) / 255.0  # [H, W] float 0..1
    rgba = np.concatenate([rendered[1], np.full((256, 256, 1), 255, np.uint8)], axis=2)
    df = det.detect([gray_float, rgba, Image.fromarray(rendered[2])], progress=False)
    assert df.face_detected.all() and list(df.file) == ["<array 0>", "<array 1>", "<image 2>"]
    _video(tmp_path / "clip.mp4", [rendered[i % 5] for i in range(10)], fps=10)
    v = det.detect_video(tmp_path / "clip.mp4", progress=False)
    assert list(v.frame) == list(range(10)) and v.face_detected.all()
    np.testing.assert_allclose(v.time, np.arange(10) / 10, atol=1e-6)
    assert v.PSPI.iloc[4] > v.PSPI.iloc[0]
    from painface.analyze.plot import plot_face, plot_video

    assert plot_video(v, tmp_path / "v.png").stat().st_size > 1000
    assert plot_face(rendered[4], v.iloc[4], tmp_path / "f.png").stat().st_size > 1000


def test_write_table_is_atomic(tmp_path, monkeypatch):
    from painface.analyze.detector import make_table

    df = make_table([{"file": "a", "frame": 0, "time": 0.0, "face": 0, "face_detected": False, "error": ""}])
    path = write_table(df, tmp_path / "t.csv")
    before = path.read_bytes()
    assert pd.read_csv(path).columns[0] == "file"

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_table(make_table([{"file": "b", "frame": 0, "time": 0.0, "face": 0, "face_detected": True,
                                 "error": ""}]), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]
    with pytest.raises(InputError, match=".csv or .parquet"):
        write_table(df, tmp_path / "t.xlsx")


def test_cli_writes_a_table_and_refuses_bad_options(astronaut, tmp_path, capsys):
    Image.fromarray(astronaut).save(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8broken")
    out = tmp_path / "t.csv"
    assert main(["analyze", str(tmp_path), "--out", str(out), "--quiet", "--plot", str(tmp_path / "figs")]) == 0
    t = pd.read_csv(out, keep_default_na=False)
    assert list(t.file.map(lambda s: Path(s).name)) == ["a.jpg", "b.jpg"]
    assert list(t.face_detected) == [True, False] and "not a readable" in t.error[1]
    assert (tmp_path / "figs").is_dir()
    for bad in (["--out", str(tmp_path / "t.txt")], ["--out", str(out), "--every", "0"],
                ["--out", str(out), "--calibration", "nope.json"], ["--out", str(out), "--min-score", "2"]):
        assert main(["analyze", str(tmp_path / "a.jpg"), *bad]) == 2
        assert "error" in capsys.readouterr().err


def test_calibrate_command_small(tmp_path):
    assert main(["analyze-calibrate", "--identities", "5", "--per-identity", "12", "--out", str(tmp_path),
                 "--save-maps", str(tmp_path)]) == 0
    for name in ("au_map_offset.json", "au_map_regression.json"):
        assert set(Calibration.load(tmp_path / name).weights) == set(DETECTED_AUS)
    offset = Calibration.load(tmp_path / "au_map_offset.json")
    k = FEATURES.index("eyeSquint")
    assert np.count_nonzero(offset.weights["AU7"]) == 1 and offset.weights["AU7"][k] > 5  # 5 / (1 - b0)
    assert offset.bias["AU7"] < 0  # the resting level is taken off
    assert (tmp_path / "table.md").read_text().count("| **") == 7
    assert main(["analyze-calibrate", "--identities", "2", "--out", str(tmp_path)]) == 2


@needs_real
def test_real_photos_neutral_and_smiling(det):
    df = det.detect(REAL, progress=False)
    assert df.face_detected.mean() == 1.0 and len(df) == 40
    kind = df.file.str.extract(r"_(neutral|smiling)\.")[0]
    neutral, smile = df[kind == "neutral"], df[kind == "smiling"]
    assert neutral.PSPI.median() < 2.0
    assert smile.AU12.mean() > neutral.AU12.mean() + 1.0
    assert smile.AU4.mean() < neutral.AU4.mean() + 0.5 and smile.AU43.mean() < 1.0


def test_detected_aus_are_face_code_aus():
    assert all(a in AU_NAMES for a in DETECTED_AUS)
    assert len(BLENDSHAPE_OUTPUTS) == 52 and set(BLENDSHAPE_OUTPUTS[1:]) <= set(ARKIT_NAMES)


def test_rendered_pspi_interpolates_and_caches():
    from painface.analyze.rendered import RenderedPspi
    from painface.face.code import pspi

    face = np.zeros((1, 33, len(FEATURE_NAMES)), np.float32)
    face[0, 16:, AU_NAMES.index("AU43")] = 5.0  # eyes closed from frame 16
    face[0, 16:, AU_NAMES.index("AU4")] = 5.0
    rp = RenderedPspi(FEATURE_NAMES, stride=16, calibration="uncalibrated")
    out = rp(face)
    assert out.shape == (1, 33) and rp.frames_rendered == 3  # frames 0, 16, 32
    assert out[0, 32] > out[0, 0] and out[0, 8] == pytest.approx((out[0, 0] + out[0, 16]) / 2, abs=1e-5)
    rp(face)
    assert rp.frames_rendered == 3  # cached
    assert rp.agreement()["frames"] == 3 and pspi(face[0], FEATURE_NAMES)[-1] == 6
    with pytest.raises(InputError, match="FACS"):
        RenderedPspi(tuple(f"exp{i}" for i in range(100)) + ("jaw0", "jaw1", "jaw2"))


def test_short_eye_closures_in_videos_are_blinks():
    from painface.analyze.detector import make_table, split_blinks

    rows = []
    for i in range(30):  # 10 fps: frames 5-6 closed (0.2 s, a blink), 15-25 closed (1.1 s, eyes shut)
        closed = 5 <= i <= 6 or 15 <= i <= 25
        rows.append({"file": "v.mp4", "frame": i, "time": i / 10, "face": 0, "face_detected": True, "error": "",
                     **dict.fromkeys(DETECTED_AUS, 0.0), "AU4": 1.0, "AU43": 4.0 if closed else 0.0,
                     "PSPI": 2.0 if closed else 1.0})
    rows.append({"file": "img.png", "frame": 0, "time": 0.0, "face": 0, "face_detected": True, "error": "",
                 "AU4": 0.0, "AU43": 5.0, "PSPI": 1.0})
    df = split_blinks(make_table(rows))
    v = df[df.file == "v.mp4"]
    assert list(v.AU45[4:8]) == [0, 4, 4, 0] and (v.AU43[5:7] == 0).all() and (v.PSPI[5:7] == 1).all()
    assert (v.AU43[15:26] == 4).all() and (v.PSPI[15:26] == 2).all()
    assert np.isnan(df[df.file == "img.png"].AU45.iloc[0])


def test_parquet_needs_pyarrow_or_says_so(tmp_path, astronaut):
    from painface.analyze.detector import make_table

    df = make_table([{"file": "a", "frame": 0, "time": 0.0, "face": 0, "face_detected": False, "error": ""}])
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="pyarrow"):
            write_table(df, tmp_path / "t.parquet")
        Image.fromarray(astronaut).save(tmp_path / "a.png")
        assert main(["analyze", str(tmp_path / "a.png"), "--out", str(tmp_path / "t.parquet"), "--quiet"]) == 2
        assert not (tmp_path / "t.parquet").exists()
    else:
        back = pd.read_parquet(write_table(df, tmp_path / "t.parquet"))
        assert list(back.columns) == list(df.columns)


def test_large_image_keeps_original_pixel_coordinates(det, astronaut, tmp_path):
    big = Image.fromarray(astronaut).resize((4352, 4352), Image.Resampling.NEAREST)  # > 4096: scaled for models
    big.save(tmp_path / "big.jpg", quality=85)
    row = det.detect(tmp_path / "big.jpg", landmarks=True, progress=False).iloc[0]
    assert row.width == 4352 and row.face_detected
    assert row.x_1 / 8.5 == pytest.approx(223.7, abs=4) and row.y_1 / 8.5 == pytest.approx(130.6, abs=4)
