"""Stimulus units: generate refuses values outside the normalized range with an error naming the unit,
and takes °C only when asked (celsius=True / --celsius) through a HeatCalibration."""

from __future__ import annotations

import numpy as np
import pytest

from painface.cli import main
from painface.errors import InputError
from painface.express import PainDiffusion, make_stimulus
from painface.generation import Generation
from painface.subjects.protocols import HeatCalibration, HeatProtocol, Stimulus, biovid_heat, check_normalized


@pytest.fixture(scope="module")
def model() -> PainDiffusion:
    return PainDiffusion.load()


def test_heat_calibration_maps_celsius_and_refuses_what_is_out_of_range() -> None:
    cal = HeatCalibration()
    assert (cal.baseline_c, cal.threshold_c, cal.tolerance_c) == (32.0, 43.0, 47.5)
    np.testing.assert_allclose(cal.to_normalized([32.0, 39.75, 47.5, 55.25]), [0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(cal.to_celsius([0.0, 1.0]), [32.0, 47.5])
    np.testing.assert_allclose(cal.levels_c(), [43.0, 44.5, 46.0, 47.5])
    with pytest.raises(InputError, match=r"30..30 °C; expected 32..55.25 °C \(normalized 0..1.5"):
        cal.to_normalized(np.full(3, 30.0))
    with pytest.raises(InputError, match=r"expected 36..60 °C"):
        HeatCalibration(36.0, 40.0, 52.0).to_normalized([61.0])
    for bad in ((32.0, 31.0, 47.0), (32.0, 45.0, 44.0), (32.0, float("nan"), 47.0), (32.0, "43", 47.0)):
        with pytest.raises(InputError, match="heat calibration"):
            HeatCalibration(*bad)


def test_normalized_range_error_names_the_unit_and_spots_celsius() -> None:
    with pytest.raises(InputError, match=r"values 40..40 lie outside 0..1.5, .*normalized.*40 looks like °C: do X"):
        check_normalized(np.full(4, 40.0), celsius_hint="do X")
    with pytest.raises(InputError, match=r"values -0.1..1 lie outside 0..1.5") as e:
        check_normalized(np.array([-0.1, 1.0]), celsius_hint="do X")
    assert "°C" not in str(e.value)  # -0.1 is no temperature
    np.testing.assert_array_equal(check_normalized([0.0, 1.5]), [0.0, 1.5])


def test_generate_refuses_celsius_passed_as_normalized(model: PainDiffusion) -> None:
    with pytest.raises(InputError, match=r"stimulus: values 40..40 lie outside 0..1.5.*pass celsius=True"):
        model.generate(np.full(20, 40.0), steps=1)
    with pytest.raises(InputError, match=r"lie outside 0..1.5"):
        model.generate(np.stack([np.zeros(20), np.full(20, 1.6)]), steps=1)
    with pytest.raises(InputError, match=r"expected 32..55.25 °C"):
        model.generate(np.full(20, 56.0), celsius=True, steps=1)
    with pytest.raises(InputError, match="calibration: expected a HeatCalibration"):
        model.generate(np.full(20, 40.0), celsius=True, calibration={"tolerance_c": 48}, steps=1)
    with pytest.raises(InputError, match="sampled at 32 fps; this model runs at 25 fps"):
        model.generate(Stimulus(fps=32.0, normalized=np.zeros(20, np.float32)), steps=1)


def test_celsius_input_gives_the_same_faces_as_its_normalized_value(model: PainDiffusion) -> None:
    cal = HeatCalibration(32.0, 42.0, 48.0)
    temps = np.r_[np.full(24, 32.0), np.full(40, 44.0)]  # 44 °C = 0.75 of this patient's range
    hot = model.generate(temps, 1.0, "Neutral", samples=2, seed=3, steps=2, celsius=True, calibration=cal)
    same = model.generate(np.r_[np.zeros(24), np.full(40, 0.75)], 1.0, "Neutral", samples=2, seed=3, steps=2)
    np.testing.assert_array_equal(hot.codes, same.codes)
    np.testing.assert_allclose(hot.stimulus[0, [0, -1]], [0.0, 0.75])
    np.testing.assert_allclose(hot.temperature[0, [0, -1]], [32.0, 44.0], atol=1e-5)
    assert hot.calibration == cal and same.calibration is None and same.temperature is None
    assert hot.to_frame()["temperature"].iloc[-1] == pytest.approx(44.0)


def test_the_biovid_stimulus_is_unchanged_by_default_and_follows_the_calibration() -> None:
    before = biovid_heat(43.0, 47.5, np.random.default_rng(0), HeatProtocol(fps=25.0)).normalized[:1500]
    np.testing.assert_array_equal(make_stimulus("biovid", 60.0, 25.0, 0), before)
    wide = make_stimulus("biovid", 1500.0, 25.0, 0, HeatCalibration(32.0, 40.0, 48.0))
    np.testing.assert_allclose(np.unique(wide[wide > 0.0].round(4))[-1], 1.0)
    plateaus = np.unique(np.round(wide, 4), return_counts=True)
    levels = plateaus[0][plateaus[1] > 1000]  # the four 4 s plateaus x 20 repetitions, and rest
    np.testing.assert_allclose(levels, [0.0, 0.5, 2 / 3, 5 / 6, 1.0], atol=1e-4)  # (T - 32) / 16


def test_cli_celsius_csv_writes_normalized_stimulus_and_temperature(tmp_path) -> None:
    csv = tmp_path / "heat.csv"
    csv.write_text("time_s,celsius\n0,32\n1,32\n1.04,44\n2,44\n")
    out = tmp_path / "g.npz"
    assert main(["generate", "--stimulus", str(csv), "--celsius", "--tolerance-c", "48", "--seconds", "2",
                 "--steps", "1", "--out", str(out)]) == 0
    g = Generation.load(out)
    assert g.calibration == HeatCalibration(32.0, 43.0, 48.0) and g.shape == (1, 50, 20)
    np.testing.assert_allclose(g.stimulus[0, [0, 25, 26, 49]], [0.0, 0.0, 0.75, 0.75], atol=1e-6)
    with np.load(out) as z:
        np.testing.assert_allclose(z["temperature"][[0, 49]], [32.0, 44.0], atol=1e-5)
