"""The Python front door: lazy ``from painface import ...``, the Generation result (table, figure, video,
exports, file) and the README quickstart."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import painface
from painface.cli import main
from painface.errors import InputError
from painface.face.code import EMOTIONS, FEATURE_NAMES
from painface.face.codes import load_codes
from painface.generation import Generation
from painface.subjects.protocols import HeatCalibration

ROOT = Path(__file__).resolve().parent.parent


def hand_made(patients: int = 2, samples: int = 3, frames: int = 5, calibration: HeatCalibration | None = None
              ) -> Generation:
    """Codes whose PSPI is known by hand: row b has AU4 = b/2, AU6 = 1, AU7 = 3, AU10 = 1 (PSPI = b/2 + 4),
    head pitch b degrees; patient p's stimulus is 0.25 (p + 1) throughout."""
    b = patients * samples
    codes = np.zeros((b, frames, len(FEATURE_NAMES)), np.float32)
    for name, value in (("AU6", 1.0), ("AU7", 3.0), ("AU10", 1.0)):
        codes[:, :, FEATURE_NAMES.index(name)] = value
    codes[:, :, FEATURE_NAMES.index("AU4")] = (np.arange(b) / 2)[:, None]
    codes[:, :, FEATURE_NAMES.index("head_pitch")] = np.arange(b)[:, None]
    stim = np.repeat(0.25 * (np.arange(patients)[:, None] + 1), frames, axis=1)
    emotion = np.eye(len(EMOTIONS), dtype=np.float32)[[EMOTIONS.index("Fear"), EMOTIONS.index("Neutral")][:patients]]
    if patients > 1:
        emotion[1] = 0
        emotion[1, [EMOTIONS.index("Anger"), EMOTIONS.index("Sadness")]] = 0.5
    return Generation(codes, FEATURE_NAMES, 25.0, stim, np.arange(1, patients + 1, dtype=np.float32), emotion,
                      samples=samples, seed=7, sampler={"steps": 3}, calibration=calibration)


def test_import_painface_stays_light_and_names_resolve_on_use() -> None:
    code = ("import sys, painface; from painface import Generation, HeatCalibration; "
            "print(sorted(m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    from painface.express import PainDiffusion

    assert painface.PainDiffusion is PainDiffusion and painface.Generation is Generation
    assert "PainDiffusion" in dir(painface) and "Detector" in painface.__all__
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        painface.Nope  # noqa: B018


def test_table_has_one_row_per_frame_and_the_analysis_column_names() -> None:
    from painface.analyze.detector import BASE_COLUMNS, MEASURE_COLUMNS

    g = hand_made(calibration=HeatCalibration(32.0, 42.0, 48.0))
    df = g.to_frame()
    assert len(df) == 6 * 5 and g.shape == (6, 5, 20)
    assert list(df.columns[:8]) == ["patient", "sample", "frame", "time", "stimulus", "temperature",
                                    "expressiveness", "emotion"]
    assert list(df["patient"].unique()) == [0, 1] and list(df["sample"].unique()) == [0, 1, 2]
    row = df[(df["patient"] == 1) & (df["sample"] == 2) & (df["frame"] == 4)].iloc[0]
    assert row["time"] == pytest.approx(4 / 25) and row["stimulus"] == pytest.approx(0.5)
    assert row["temperature"] == pytest.approx(40.0)  # 32 + 0.5 x (48 - 32)
    assert row["PSPI"] == pytest.approx(5 / 2 + 4) and row["AU4"] == pytest.approx(2.5) and row["pitch"] == 5
    assert row["expressiveness"] == 2 and row["emotion"] == "Anger 0.5 + Sadness 0.5"
    assert df[df["patient"] == 0]["emotion"].unique().tolist() == ["Fear"]
    shared = {"time", "frame", "pitch", "yaw", "roll", "AU4", "AU6", "AU7", "AU9", "AU10", "AU43", "PSPI"}
    assert shared <= set(df.columns) and shared <= set(BASE_COLUMNS) | set(MEASURE_COLUMNS)
    assert "head_pitch" not in df.columns and df.attrs["seed"] == 7 and df.attrs["calibration"]["tolerance_c"] == 48
    np.testing.assert_allclose(g.pspi[:, 0], np.arange(6) / 2 + 4)
    np.testing.assert_array_equal(np.asarray(g), g.codes)


def test_save_load_round_trip_and_painface_render_reads_each_row(tmp_path) -> None:
    g = hand_made(calibration=HeatCalibration(32.0, 42.0, 48.0))
    g.save(tmp_path / "g.npz")
    back = Generation.load(tmp_path / "g.npz")
    np.testing.assert_array_equal(back.codes, g.codes)
    np.testing.assert_array_equal(back.stimulus, g.stimulus)
    np.testing.assert_array_equal(back.emotion, g.emotion)
    assert (back.samples, back.seed, back.sampler, back.calibration) == (3, 7, {"steps": 3}, g.calibration)
    with np.load(tmp_path / "g.npz") as z:
        assert z["stimulus"].shape == (6, 5) and z["temperature"][4, 0] == pytest.approx(40.0)
        assert list(z["emotion"]) == ["Fear", "Anger 0.5 + Sadness 0.5"]
    for b in (0, 4):  # row 4 = patient 1, sample 1: its own stimulus and PSPI
        codes = load_codes(tmp_path / "g.npz", sample=b)
        np.testing.assert_array_equal(codes.face, g.codes[b])
        assert codes.stimulus[0] == pytest.approx(0.25 * (b // 3 + 1)) and codes.pspi[0] == pytest.approx(b / 2 + 4)


def test_a_file_from_before_the_result_object_loads(tmp_path) -> None:
    face = hand_made(1, 2).codes
    np.savez(tmp_path / "old.npz", face=face, feature_names=np.asarray(FEATURE_NAMES), stimulus=np.full(5, 0.25),
             fps=np.asarray(25.0), expressiveness=np.asarray(1.0), emotion=np.asarray("fear"))
    g = Generation.load(tmp_path / "old.npz")
    assert (g.patients, g.samples, g.seed, g.calibration) == (1, 2, None, None)
    assert g.emotion_labels == ["Fear"] and g.temperature is None
    (tmp_path / "bad.npz").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        Generation.load(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="patients .1. x samples .3."):
        Generation(face, FEATURE_NAMES, 25.0, np.zeros((1, 5)), [1.0], np.eye(8)[:1], samples=3)


def test_plot_shows_the_stimulus_and_each_rows_pspi(tmp_path) -> None:
    g = hand_made(calibration=HeatCalibration())
    fig = g.plot(tmp_path / "g.png")
    top, bottom = fig.axes[:2]
    assert [list(line.get_ydata()) for line in top.lines] == [[0.25] * 5, [0.5] * 5]
    assert [float(line.get_ydata()[0]) for line in bottom.lines] == list(np.arange(6) / 2 + 4)
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match=".png"):
        g.plot(tmp_path / "g.jpg")


def test_exports_and_videos_are_what_the_commands_write(tmp_path) -> None:
    g = hand_made(frames=3)
    g.save(tmp_path / "g.npz")
    for to, suffix in (("arkit-csv", ".csv"), ("arkit-json", ".json")):
        g.export(tmp_path / f"api{suffix}", patient=1, sample=1)  # format from the suffix
        assert main(["export", str(tmp_path / "g.npz"), "--to", to, "--sample", "4",
                     "--out", str(tmp_path / f"cli{suffix}")]) == 0
        assert (tmp_path / f"api{suffix}").read_bytes() == (tmp_path / f"cli{suffix}").read_bytes()
    assert json.loads((tmp_path / "api.json").read_text())["head_rotation"][0][0] == 4.0  # row 4: pitch 4°
    with pytest.raises(InputError, match="pass to="):
        g.export(tmp_path / "x.bin")
    g.render(tmp_path / "api.gif", patient=1, sample=1, size=32, layout="face")
    assert main(["render", str(tmp_path / "g.npz"), "--sample", "4", "--size", "32", "--layout", "face",
                 "--out", str(tmp_path / "cli.gif")]) == 0
    assert (tmp_path / "api.gif").read_bytes() == (tmp_path / "cli.gif").read_bytes()
    with pytest.raises(InputError, match="patients 0..1 x samples 0..2"):
        g.render(tmp_path / "x.gif", patient=2)


def readme_quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Python quickstart\s+```python\n(.*?)```", text, re.S)
    assert m is not None, "README.md has no Python quickstart block"
    return m.group(1)


def test_the_readme_quickstart_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    code = readme_quickstart()
    assert len(code.strip().splitlines()) <= 16
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    peaks = capsys.readouterr().out
    assert "PSPI" in peaks
    g = Generation.load(tmp_path / "pain.npz")
    assert g.shape == (2, 200, 20) and g.calibration == HeatCalibration(32.0, 43.0, 47.5)
    np.testing.assert_allclose(g.temperature[0, [0, 60]], [32.0, 47.0], atol=1e-4)
    assert g.pspi[:, 100:150].mean() > g.pspi[:, :40].mean() + 1.0  # 47 °C shows on the face
    for name in ("pain.png", "pain.glb", "pain.mp4"):
        assert (tmp_path / name).stat().st_size > 1000, name
    assert os.path.getsize(tmp_path / "pain.npz") > 0
