import numpy as np
import pytest

from painface.errors import InputError
from painface.subjects import protocols as P


def session(seed=0, **kw):
    return P.biovid_heat(43.0, 47.5, np.random.default_rng(seed), P.HeatProtocol(**kw))


def test_biovid_heat_has_80_trials_20_per_level_in_random_order():
    s = session()
    assert s.onsets.size == 80
    assert np.bincount(s.trial_levels)[1:].tolist() == [20, 20, 20, 20]
    assert not np.array_equal(s.trial_levels, np.sort(s.trial_levels))
    assert not np.array_equal(s.trial_levels, session(seed=1).trial_levels)
    np.testing.assert_array_equal(s.trial_levels, session(seed=0).trial_levels)  # seeded


def test_biovid_levels_plateau_ramp_and_rest():
    s, fps = session(), 25.0
    temps = P.heat_levels(43.0, 47.5)
    np.testing.assert_allclose(temps, [43.0, 44.5, 46.0, 47.5])
    assert s.temperature.min() == pytest.approx(32.0)
    for k in range(80):
        o = s.onsets[k]
        nxt = s.onsets[k + 1] if k + 1 < 80 else s.frames
        seg = s.temperature[o:nxt]
        target = temps[s.trial_levels[k] - 1]
        plateau = np.count_nonzero(np.abs(seg - target) < 1e-3) / fps
        assert plateau == pytest.approx(4.0, abs=1.5 / fps)
        ramp_s = (target - 32.0) / 5.0
        at_rest = np.count_nonzero(np.abs(seg - 32.0) < 1e-3) / fps
        if k + 1 < 80:
            assert 8.0 - 2 / fps <= at_rest <= 12.0 + 2 / fps
        rising = np.diff(seg[1 : int(ramp_s * fps) - 1])
        np.testing.assert_allclose(rising, 5.0 / fps, atol=1e-4)  # 5 °C/s
        assert np.all(s.level[o : o + int(2 * ramp_s * fps + 4 * fps) - 1] == s.trial_levels[k])
        assert np.all(s.trial[o:nxt] == k)
    assert np.all(s.trial[: s.onsets[0]] == -1) and np.all(s.level[: s.onsets[0]] == 0)
    assert 21 * 60 <= s.seconds <= 27 * 60  # BioVid sessions last about 21-27 min
    np.testing.assert_allclose(s.normalized, (s.temperature - 32.0) / (47.5 - 32.0), atol=1e-6)


def test_ramp_rate_is_configurable():
    slow = session(ramp_c_per_s=1.0)
    fast = session(ramp_c_per_s=10.0)
    assert slow.seconds > fast.seconds
    assert np.max(np.diff(slow.temperature)) == pytest.approx(1.0 / 25.0, abs=1e-4)


def test_bad_protocols_are_refused():
    with pytest.raises(InputError, match="tolerance_c"):
        P.biovid_heat(45.0, 44.0, np.random.default_rng(0))
    with pytest.raises(InputError, match="rest_min_s"):
        P.biovid_heat(43.0, 47.0, np.random.default_rng(0), P.HeatProtocol(rest_min_s=5, rest_max_s=4))
    with pytest.raises(InputError, match="baseline"):
        P.biovid_heat(31.0, 47.0, np.random.default_rng(0))


def test_converters_round_trip():
    t = np.array([32.0, 40.0, 47.5])
    s = P.celsius_to_normalized(t, 32.0, 47.5)
    np.testing.assert_allclose(s, [0.0, 8 / 15.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(P.normalized_to_celsius(s, 32.0, 47.5), t, atol=1e-4)
    with pytest.raises(InputError):
        P.celsius_to_normalized(t, 40.0, 39.0)


def test_elbow_maps_angle_linearly_onto_the_stimulus():
    np.testing.assert_allclose(P.angle_to_stimulus([0, 40, 80, 120, 150], 40, 120), [0, 0, 0.5, 1, 1])
    proto = P.ElbowProtocol(peak_min_deg=100, peak_max_deg=100, pain_onset_deg=50, pain_max_deg=100, cycles=3)
    angle, stim = P.elbow_exercise(np.random.default_rng(0), proto)
    assert angle.max() == pytest.approx(100.0) and stim.normalized.max() == pytest.approx(1.0)
    assert stim.onsets.size == 3 and stim.normalized[0] == 0.0
    np.testing.assert_allclose(stim.normalized, np.clip((angle - 50) / 50, 0, 1), atol=1e-6)
    with pytest.raises(InputError, match="pain_max_deg"):
        P.elbow_exercise(np.random.default_rng(0), P.ElbowProtocol(pain_onset_deg=90, pain_max_deg=80))


def test_csv_is_resampled_to_the_frame_rate(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("time_s,value\n0,0\n1,1\n2,0\n")
    s = P.csv_stimulus(f, fps=4)
    np.testing.assert_allclose(s.normalized, [0, 0.25, 0.5, 0.75, 1, 0.75, 0.5, 0.25, 0])
    c = tmp_path / "c.csv"
    c.write_text("0,32\n1,47.5\n")
    sc = P.csv_stimulus(c, fps=2, units="celsius", tolerance_c=47.5)
    np.testing.assert_allclose(sc.normalized, [0, 0.5, 1], atol=1e-6)
    assert sc.temperature is not None and sc.temperature[-1] == pytest.approx(47.5)


@pytest.mark.parametrize(
    "text, match",
    [
        ("0,0\n2,1\n1,0\n", r"strictly increasing; row 3 \(1.0 s\) follows 2.0 s"),
        ("0,0\n1,nan\n", "NaN"),
        ("0,0\n", "at least two"),
        ("0,0\n1\n", "two columns"),
        ("0,0\n1,x\n", "not numbers"),
    ],
)
def test_bad_csv_names_the_file_and_the_problem(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(InputError, match=match) as e:
        P.csv_stimulus(f)
    assert "bad.csv" in str(e.value)


def test_missing_csv_and_bad_units(tmp_path):
    with pytest.raises(InputError, match="not found"):
        P.csv_stimulus(tmp_path / "none.csv")
    f = tmp_path / "s.csv"
    f.write_text("0,0\n1,1\n")
    with pytest.raises(InputError, match="units"):
        P.csv_stimulus(f, units="kelvin")
    with pytest.raises(InputError, match="tolerance_c"):
        P.csv_stimulus(f, units="celsius")


def test_check_stimulus():
    assert P.check_stimulus(np.array([0, 1, 2])).dtype == np.float32
    with pytest.raises(InputError, match="NaN or inf at frame 1"):
        P.check_stimulus(np.array([0.0, np.inf]))
    with pytest.raises(InputError, match="expected 5"):
        P.check_stimulus(np.zeros(4), frames=5)
    with pytest.raises(InputError, match="1-D"):
        P.check_stimulus(np.zeros((2, 2)))


def test_a_fixed_order_of_levels():
    s = P.biovid_heat(43.0, 47.5, np.random.default_rng(0), P.HeatProtocol(), order=[2, 4, 1])
    assert s.trial_levels.tolist() == [2, 4, 1] and s.onsets.size == 3
    assert s.temperature.max() == pytest.approx(47.5)
    with pytest.raises(InputError, match="order"):
        P.biovid_heat(43.0, 47.5, np.random.default_rng(0), order=[0, 5])
