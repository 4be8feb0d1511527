import dataclasses

import numpy as np
import pytest

from painface.errors import InputError
from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_NAMES
from painface.subjects.protocols import HeatProtocol, Stimulus, biovid_heat
from painface.subjects.simulate import asymmetric_lowpass, blinks, episodes, simulate_face
from painface.subjects.traits import PATTERNS, SimConfig, SubjectTraits, response_profile, sample_traits

CFG = SimConfig()


def person(**kw) -> SubjectTraits:
    base = dict(
        sex="female",
        age=30.0,
        pattern="p1_eyes_brows_nose",
        emotion="Neutral",
        emotion_strength=0.5,
        gain=1.0,
        threshold_c=43.0,
        tolerance_c=47.5,
        face_threshold=0.2,
        occurrence=1.0,
        habituation=0.0,
        adaptation=0.0,
        latency_s=1.0,
        head_drop_deg=5.0,
        head_turn_deg=2.0,
    )
    base.update(kw)
    return SubjectTraits(**base)


def step_stimulus(level=1.0, seconds=30.0, on_s=5.0, off_s=15.0, fps=25.0) -> Stimulus:
    t = np.arange(int(seconds * fps)) / fps
    s = np.where((t >= on_s) & (t < off_s), level, 0.0).astype(np.float32)
    return Stimulus(fps=fps, normalized=s)


def col(face, name):
    return face[:, FEATURE_NAMES.index(name)]


def test_output_is_a_valid_face_code():
    stim = biovid_heat(43.0, 47.5, np.random.default_rng(0), HeatProtocol(repetitions=3))
    face, p = simulate_face(person(), stim, CFG, np.random.default_rng(1))
    assert face.shape == (stim.frames, len(FEATURE_NAMES)) and face.dtype == np.float32
    assert p.shape == (stim.frames,) and np.all(np.isfinite(face))
    aus = face[:, : len(AU_NAMES)]
    assert aus.min() >= 0.0 and aus.max() <= 5.0
    assert 0.0 <= p.min() and p.max() <= 16.0


def test_same_stimulus_twice_gives_different_plausible_responses():
    stim = biovid_heat(43.0, 47.5, np.random.default_rng(0), HeatProtocol(repetitions=5))
    f1, p1 = simulate_face(person(), stim, CFG, np.random.default_rng(1))
    f2, p2 = simulate_face(person(), stim, CFG, np.random.default_rng(2))
    f1b, _ = simulate_face(person(), stim, CFG, np.random.default_rng(1))
    np.testing.assert_array_equal(f1, f1b)  # seeded
    assert np.abs(f1 - f2).mean() > 0.05
    assert abs(p1.max() - p2.max()) < 8 and p1.max() > 2 and p2.max() > 2


def test_response_follows_latency_and_onset_order_eyes_then_nose_then_brows():
    stim = step_stimulus()
    cfg = dataclasses.replace(CFG, au_noise_sd=1e-6, trial_gain_log_sd=0.0, au_join_prob=1.0)
    face, p = simulate_face(person(latency_s=1.0), stim, cfg, np.random.default_rng(0))
    onset = {au: int(np.argmax(col(face, au) > 0.3)) / 25.0 for au in ("AU7", "AU9", "AU4")}
    assert 6.0 <= onset["AU7"] < onset["AU9"] < onset["AU4"] < 7.5
    assert p[: int(6.0 * 25)].max() < 0.5 and p.max() > 5
    # after the stimulus ends, the face decays back to rest
    assert p[-25:].max() < 0.5


def test_low_heat_stays_below_the_display_threshold_and_stoics_do_not_respond():
    t1 = (43.0 - 32.0) / (47.5 - 32.0)  # threshold temperature in normalized units
    face, p = simulate_face(person(), step_stimulus(level=t1), CFG, np.random.default_rng(0))
    assert p.max() - p[:100].mean() < 1.0
    face, p = simulate_face(person(pattern="stoic"), step_stimulus(), CFG, np.random.default_rng(0))
    assert p.max() - p[:100].mean() < 1.0


def test_response_grows_with_stimulus_level():
    cfg = dataclasses.replace(CFG, trial_gain_log_sd=0.0)
    peaks = []
    for level in (0.75, 0.85, 1.0):
        _, p = simulate_face(person(face_threshold=0.1), step_stimulus(level=level), cfg, np.random.default_rng(0))
        peaks.append(p.max())
    assert peaks[0] < peaks[1] < peaks[2]


def test_habituation_weakens_later_trials():
    cfg = dataclasses.replace(CFG, trial_gain_log_sd=0.0, au_noise_sd=1e-6)
    on = np.zeros(25 * 400, dtype=np.float32)
    starts = np.arange(10, 390, 20) * 25
    for s in starts:
        on[s : s + 100] = 1.0
    stim = Stimulus(fps=25.0, normalized=on)

    def peaks(h):
        face, _ = simulate_face(person(habituation=h), stim, cfg, np.random.default_rng(0))
        au7 = col(face, "AU7")
        return np.array([au7[s : s + 300].max() for s in starts])

    flat, hab = peaks(0.0), peaks(0.4)
    np.testing.assert_allclose(flat, flat[0], rtol=1e-3)
    assert hab[-1] < 0.75 * hab[0] and np.all(np.diff(hab) <= 1e-6)


def test_patterns_move_their_own_regions():
    cfg = dataclasses.replace(CFG, trial_gain_log_sd=0.0, au_join_prob=1.0)
    peak = {}
    for pattern in PATTERNS[:4]:
        face, _ = simulate_face(person(pattern=pattern), step_stimulus(), cfg, np.random.default_rng(3))
        peak[pattern] = {au: col(face, au).max() for au in AU_NAMES}
    assert peak["p2_mouth_eyes"]["AU26"] > 1 and peak["p1_eyes_brows_nose"]["AU26"] < 0.5
    assert peak["p3_raised_brows"]["AU1"] > 1 and peak["p4_brows_eyes"]["AU1"] < 0.5
    assert peak["p1_eyes_brows_nose"]["AU9"] > 1 and peak["p4_brows_eyes"]["AU9"] < 0.5
    for pattern in PATTERNS[:4]:  # narrowed eyes in every pattern
        assert max(peak[pattern]["AU6"], peak[pattern]["AU7"]) > 1


def test_emotion_shifts_the_resting_face_and_colours_the_response():
    rest = step_stimulus(level=0.0, seconds=120)
    mean_rest = {}
    for emotion in ("Neutral", "Happiness", "Sadness", "Anger"):
        face, _ = simulate_face(person(emotion=emotion, emotion_strength=0.8), rest, CFG, np.random.default_rng(0))
        mean_rest[emotion] = face[:, : len(AU_NAMES)].mean(axis=0)
    i = AU_NAMES.index
    assert mean_rest["Happiness"][i("AU12")] > mean_rest["Neutral"][i("AU12")] + 0.3
    assert mean_rest["Sadness"][i("AU15")] > mean_rest["Neutral"][i("AU15")] + 0.2
    assert mean_rest["Anger"][i("AU4")] > mean_rest["Neutral"][i("AU4")] + 0.15
    fear = response_profile(person(emotion="Fear"))
    neutral = response_profile(person(emotion="Neutral"))
    assert fear["AU5"] > neutral.get("AU5", 0.0) and fear["AU4"] == neutral["AU4"]


def test_blinks_at_the_resting_rate():
    rate = np.full(25 * 600, 17 / 60 / 25)
    au45 = blinks(np.random.default_rng(0), rate, 25.0, 0.3)
    onsets = np.count_nonzero(np.diff((au45 > 2.5).astype(int)) == 1)
    assert 17 * 10 * 0.8 < onsets < 17 * 10 * 1.2
    assert au45.max() == pytest.approx(5.0)


def test_pain_drops_the_head():
    cfg = dataclasses.replace(CFG, head_sd_deg=[0.01, 0.01, 0.01])
    face, _ = simulate_face(person(head_drop_deg=6.0), step_stimulus(), cfg, np.random.default_rng(0))
    pitch = col(face, "head_pitch")
    assert pitch[: 5 * 25].mean() == pytest.approx(0.0, abs=0.1) and pitch.max() > 3.0
    assert col(face, "head_yaw").min() < -1.0  # turns toward the stimulated right arm
    assert POSE_NAMES == ("head_pitch", "head_yaw", "head_roll")


def test_women_are_more_expressive_on_average_and_stoic_share_holds():
    rng = np.random.default_rng(0)
    traits = [sample_traits(rng, CFG) for _ in range(3000)]
    women = np.mean([np.log(t.gain) for t in traits if t.sex == "female"])
    men = np.mean([np.log(t.gain) for t in traits if t.sex == "male"])
    assert women - men == pytest.approx(np.log(1.15 / 0.87), abs=0.06)
    assert np.mean([t.pattern == "stoic" for t in traits]) == pytest.approx(0.2, abs=0.025)
    assert all(40.0 <= t.threshold_c < t.tolerance_c <= 50.5 for t in traits)


def test_sustained_stimulus_adapts_and_shows_in_bursts_then_rests():
    """A 60 s plateau at tolerance: perceived pain adapts (by the person's share, over tens of seconds), the face
    shows pain intermittently (bursts with near-rest between them, not a held grimace), and rests once the
    stimulus ends."""
    stim = step_stimulus(1.0, seconds=90.0, on_s=5.0, off_s=65.0)
    fps = stim.fps
    from painface.subjects.simulate import adapted_pain, perceived_pain

    felt = perceived_pain(stim, person(), CFG)
    adapted = adapted_pain(felt, fps, 0.4, CFG.adaptation_tau_s)
    assert adapted[int(8 * fps)] > 0.9 * felt[int(8 * fps)]  # 3 s in: barely adapted
    assert adapted[int(64 * fps)] == pytest.approx(felt[int(64 * fps)] * (1 - 0.4 * (1 - np.exp(-59 / 20))), rel=0.02)
    late = []
    for seed in range(12):
        _, p = simulate_face(person(adaptation=0.3), stim, CFG, np.random.default_rng(seed))
        win = p[int(25 * fps):int(65 * fps)]
        late.append(win)
        assert p[int(75 * fps):].mean() < 0.5  # back to rest 10 s after the stimulus ends
    late = np.stack(late)
    peak = late.max()
    # intermittent: within 20-60 s of the plateau many frames sit near rest while others show a clear display
    assert peak > 4 and np.mean(late < 0.25 * peak) > 0.3 and np.mean(late > 0.5 * peak) > 0.02


def test_mixed_protocol_blocks():
    from painface.subjects.sustained import BLOCK_KINDS, MixedProtocol, mixed_blocks

    x, code = mixed_blocks(np.random.default_rng(0), MixedProtocol())
    assert x.shape == code.shape and x.min() >= 0 and x.max() <= 1.0 + 1e-6
    seconds = {k: np.sum(code == i) / 25.0 for i, k in enumerate(BLOCK_KINDS)}
    assert seconds["plateau"] >= 3 * 10 and seconds["walk"] == pytest.approx(60, abs=0.1)
    assert seconds["elbow"] > 0 and seconds["staircase"] > 4 * 8 and seconds["biovid"] == 0
    stair = x[code == BLOCK_KINDS.index("staircase")]
    steps = np.unique(np.round(stair[np.abs(np.diff(stair, append=stair[-1])) < 1e-6], 4))
    assert len(steps[steps > 0.01]) == 4  # four rising steps
    with pytest.raises(InputError, match="plateau_min_s"):
        mixed_blocks(np.random.default_rng(0), MixedProtocol(plateau_min_s=0))


def test_helpers():
    s, e = episodes(np.array([0, 1, 1, 0, 0, 2, 0, 3]))
    assert s.tolist() == [1, 5, 7] and e.tolist() == [3, 6, 8]
    y = asymmetric_lowpass(np.r_[np.ones(100), np.zeros(100)], 25.0, 0.2, 2.0)
    assert y[99] > 0.99 and 0.3 < y[100 + 50] < 0.45  # exp(-2 s / 2 s) = 0.37 after 2 s of decay


def test_docs_assumptions_lists_every_parameter_as_the_code_has_it():
    from pathlib import Path

    from painface.subjects.traits import assumptions_markdown

    doc = (Path(__file__).parents[1] / "docs" / "assumptions.md").read_text(encoding="utf-8")
    assert assumptions_markdown() in doc, "docs/assumptions.md is stale: run python3 -m painface.subjects.traits"
    for f in dataclasses.fields(SimConfig):
        assert f"`{f.name}`" in doc and f.metadata["source"]
