import json

import numpy as np
import pytest

from painface.cli import main
from painface.errors import InputError
from painface.evaluate.control import (
    BIOVID_LEVELS,
    ControlConfig,
    acceptance,
    holm,
    plateau_stimulus,
    rest_difference,
    rise_test,
    run_control,
    sequence_measures,
    spearman,
    write_report,
)
from painface.face.code import AU_NAMES, EMOTIONS, FEATURE_NAMES, FLAME_NAMES, emotion_index

FAST = dict(seeds=3, trials=1, lead_in_s=3.0, plateau_s=1.0, rest_s=2.0, ramp_s=0.5, response_tail_s=0.5,
            settle_s=1.0)


class FakeModel:
    """Obeys PainDiffusion.generate's signature. AU4 = gain * expressiveness * stimulus (so PSPI is exactly
    that), each non-Neutral emotion raises AU12 at rest by ``emotion_offset`` x (class index + 1), and every
    sequence gets its own small offset on AU1/AU2/AU5 (seed-to-seed spread, PSPI untouched)."""

    fps = 10.0

    def __init__(self, emotion_offset: float = 0.5, spread: float = 0.05, names=FEATURE_NAMES):
        self.emotion_offset, self.spread, self.feature_names = emotion_offset, spread, tuple(names)
        self.calls: list[tuple] = []

    def generate(self, stimulus, expressiveness=1.0, emotion="Neutral", *, samples=1, seed=0, context=None,
                 **sampler):
        stim = np.atleast_2d(np.asarray(stimulus, np.float32))
        p, length = stim.shape
        expr = np.broadcast_to(np.asarray(expressiveness, np.float32), (p,))
        emo = np.broadcast_to(np.asarray(emotion, np.float32), (p, len(EMOTIONS)))
        self.calls.append((p, samples, seed, sampler))
        rng = np.random.default_rng(seed)
        face = np.zeros((p * samples, length, len(self.feature_names)), np.float32)
        rep = np.repeat(np.arange(p), samples)
        face[:, :, AU_NAMES.index("AU4")] = 2.0 * expr[rep, None] * stim[rep]
        cls = emo[rep].argmax(1)
        offset = np.where(cls == emotion_index("Neutral"), 0.0, self.emotion_offset * (cls + 1))
        face[:, :, AU_NAMES.index("AU12")] = offset[:, None]
        for au in ("AU1", "AU2", "AU5"):
            face[:, :, AU_NAMES.index(au)] = 1.0 + self.spread * rng.standard_normal((p * samples, 1))
        return face


def test_biovid_levels_are_the_reference_persons_t1_to_t4():
    # (T - 32) / (47.5 - 32) for T = 43, 44.5, 46, 47.5 °C
    assert BIOVID_LEVELS == pytest.approx([11 / 15.5, 12.5 / 15.5, 14 / 15.5, 1.0], abs=1e-3)


def test_plateau_stimulus_has_level_plateaus_and_the_same_windows_for_every_level():
    cfg = ControlConfig(**FAST)
    s0, r0, q0 = plateau_stimulus(0.0, 10.0, cfg)
    s1, r1, q1 = plateau_stimulus(0.8, 10.0, cfg)
    assert s0.shape == s1.shape == (int(round((3.0 + 2 * 0.5 + 1.0 + 2.0) * 10)),)
    assert not s0.any() and s1.max() == pytest.approx(0.8)
    assert np.array_equal(r0, r1) and np.array_equal(q0, q1)
    assert not (r1 & q1).any()
    assert np.all(s1[q1] == 0) and np.all(s1[~r1] == 0)  # all stimulus lies in the response window
    assert (s1 == np.float32(0.8)).sum() >= 10  # 1 s plateau at 10 fps
    assert not q1[:10].any() and q1[10:30].all()  # settle 1 s, lead-in 3 s


def test_sequence_measures_on_a_hand_case():
    face = np.zeros((1, 5, len(FEATURE_NAMES)), np.float32)
    face[0, :, AU_NAMES.index("AU4")] = [0.0, 0.1, 0.2, 0.3, 0.4]
    face[0, :, AU_NAMES.index("AU7")] = 1.0
    face[0, :, FEATURE_NAMES.index("head_yaw")] = [0, 10, 0, 10, 0]  # head pose is not facial movement
    m = sequence_measures(face, FEATURE_NAMES, 25.0, np.array([True, True, True, False, False]))
    assert m["pspi"] == pytest.approx([0.1 + 1.0])
    assert m["movement"] == pytest.approx([0.1 * 25.0])
    assert m["face"].shape == (1, len(AU_NAMES))


def test_spearman_on_a_hand_case():
    # means 1, 3, 2, 4 against 1..4: d = 0, 1, 1, 0 -> rho = 1 - 6 * 2 / (4 * 15) = 0.8
    per_seed = np.array([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0], [4.0, 4.0]])
    r = spearman(np.arange(1.0, 5.0), per_seed)
    assert r["rho_means"] == pytest.approx(0.8)
    assert spearman(np.arange(1.0, 5.0), -per_seed)["rho_means"] == pytest.approx(-0.8)
    assert spearman(np.arange(1.0, 5.0), np.ones((4, 2)))["rho_means"] is None  # constant: undefined


def test_holm_adjustment():
    assert holm(np.array([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


def test_rest_difference_distance_spread_and_exact_permutation_p():
    faces = np.zeros((2, 3, 2))
    faces[0] = [[0.0, 0.0], [0.2, 0.0], [0.4, 0.0]]  # Neutral
    faces[1] = [[3.0, 4.2], [3.2, 4.0], [3.4, 3.8]]  # shifted by (3, 4) on average
    r = rest_difference(faces, ("Neutral", "Anger"))["Anger"]
    assert r["distance"] == pytest.approx(5.0)
    spread = np.sqrt((0.08 + (0.08 + 0.08)) / 4)  # pooled sum of squares / (2K - 2)
    assert r["spread"] == pytest.approx(spread) and r["ratio"] == pytest.approx(5.0 / spread)
    assert r["p"] == pytest.approx(2 / 20)  # fully separated groups: the split and its mirror of C(6, 3)
    assert r["distinguishable"] is False  # 3 seeds cannot reach p < 0.05


def test_fake_model_gives_rho_1_monotone_stimulus_and_distinguishable_emotions():
    model = FakeModel()
    report = run_control(model, ControlConfig(**{**FAST, "seeds": 6}), progress=False)
    assert [c[:3] for c in model.calls] == [(8, 6, 0), (6, 6, 0), (8, 6, 0)]  # one batched call per sweep
    sw = report["sweeps"]
    assert sw["expressiveness"]["pspi"]["spearman"]["rho_means"] == pytest.approx(1.0)
    assert sw["expressiveness"]["pspi"]["spearman"]["rho_samples"] == pytest.approx(1.0)
    assert sw["stimulus"]["pspi"]["spearman"]["rho_means"] == pytest.approx(1.0)
    assert np.asarray(sw["stimulus"]["pspi"]["per_seed"]).shape == (8, 6)
    assert sw["stimulus"]["pspi"]["mean"][0] == 0.0 and sw["stimulus"]["rest_pspi"]["mean"] == [0.0] * 8
    assert sw["emotion"]["values"] == list(EMOTIONS) and "spearman" not in sw["emotion"]["pspi"]
    rest = report["rest_vs_neutral"]
    assert set(rest) == set(EMOTIONS) - {"Neutral"}
    assert rest["Anger"]["distance"] == pytest.approx(0.5, abs=0.1)  # AU12 offset 0.5 x (0 + 1), + spread
    assert all(v["distinguishable"] and v["p"] == pytest.approx(2 / 924) for v in rest.values())
    assert report["min_attainable_p_holm"] == pytest.approx(7 * 2 / 924)
    acc = report["acceptance"]
    assert acc["expressiveness_pspi_rho_ge_0.9"] and acc["stimulus_pspi_monotonic"]
    assert acc["stimulus_pspi_monotonic_biovid_levels"] and acc["emotions_distinguishable_at_rest"]
    json.dumps(report, allow_nan=False)


def test_a_model_that_ignores_emotion_and_expressiveness_fails_acceptance():
    class Deaf(FakeModel):
        def generate(self, stimulus, expressiveness=1.0, emotion="Neutral", **kw):
            return super().generate(stimulus, 1.0, np.eye(8, dtype=np.float32)[5], **kw)

    report = run_control(Deaf(spread=0.2), ControlConfig(**{**FAST, "seeds": 6}), progress=False)
    acc = report["acceptance"]
    assert acc["expressiveness_pspi_rho"] is None and not acc["expressiveness_pspi_rho_ge_0.9"]
    assert acc["stimulus_pspi_monotonic"]
    assert not acc["emotions_distinguishable_at_rest"]
    assert all(v["p_holm"] > 0.05 for v in report["rest_vs_neutral"].values())


def test_acceptance_on_a_hand_made_report():
    def report(stim_means, rho, p_holm, sd=0.01):
        noise = np.array([-1.0, 0.0, 1.0]) * sd  # three seeds, sample sd = sd
        per_seed = (np.asarray(stim_means)[:, None] + noise).tolist()
        return {"sweeps": {"stimulus": {"values": [0.0, 0.4, *BIOVID_LEVELS],
                                        "pspi": {"mean": stim_means, "per_seed": per_seed}},
                           "expressiveness": {"pspi": {"spearman": {"rho_means": rho}}}},
                "rest_vs_neutral": {"Anger": {"distinguishable": p_holm < 0.05}}}

    acc = acceptance(report([0.5, 0.4, 0.6, 0.7, 0.8, 0.9], 0.9, 0.01))  # 0.5 -> 0.4: 10 sd down
    assert acc["expressiveness_pspi_rho_ge_0.9"] and acc["emotions_distinguishable_at_rest"]
    assert not acc["stimulus_pspi_monotonic"] and acc["stimulus_pspi_monotonic_biovid_levels"]
    assert [d["step"] for d in acc["stimulus_pspi_significant_drops"]] == [[0, 1]]
    acc = acceptance(report([0.1, 0.2, 0.3, 0.4, 0.4, 0.5], 0.89, 0.06))  # a tie: monotonic, not strict
    assert acc["stimulus_pspi_monotonic"] and not acc["stimulus_pspi_strictly_rising"]
    assert not acc["stimulus_pspi_monotonic_biovid_levels"]
    assert not acc["expressiveness_pspi_rho_ge_0.9"] and not acc["emotions_distinguishable_at_rest"]
    # a small dip inside the noise (0.16 -> 0.15 with sd 0.1) is no drop
    acc = acceptance(report([0.16, 0.15, 0.2, 0.3, 0.5, 2.4], 0.95, 0.01, sd=0.1))
    assert acc["stimulus_pspi_monotonic"] and not acc["stimulus_pspi_strictly_rising"]
    assert acc["stimulus_pspi_significant_drops"] == []


def test_rise_test_on_hand_made_samples():
    rising = np.array([[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]])
    r = rise_test(rising)
    assert r["monotonic"] and r["strictly_rising"] and r["drops"] == []
    # Spearman over the 6 samples: Pearson r of the midranks (1.5, 1.5, 3.5, 3.5, 5.5, 5.5) with 1..6
    assert r["rise_rho"] == pytest.approx(np.corrcoef([1.5, 1.5, 3.5, 3.5, 5.5, 5.5], np.arange(1, 7))[0, 1])
    flat = np.array([[1.0, 1.2, 0.8], [1.1, 0.9, 1.0], [1.0, 1.2, 0.9]])
    r = rise_test(flat)  # no drop, but no rise either
    assert r["drops"] == [] and not r["monotonic"]
    constant = np.array([[1.0, 1.0], [0.5, 0.5], [2.0, 2.0]])  # both groups constant: a certain drop
    r = rise_test(constant)
    assert not r["monotonic"] and r["drops"] == [{"step": [0, 1], "drop": 0.5, "p_holm": 0.0}]
    with pytest.raises(InputError, match="rise_test"):
        rise_test(np.ones((1, 3)))


def test_report_files(tmp_path):
    report = run_control(FakeModel(), ControlConfig(**FAST), progress=False)
    paths = write_report(report, tmp_path / "out")
    assert [p.name for p in paths] == ["control.json", "control.md", "control.png", "control_rest.png"]
    assert json.loads(paths[0].read_text())["sweeps"]["stimulus"]["values"] == list(ControlConfig().levels)
    md = paths[1].read_text()
    assert "| Sadness |" in md and "Spearman rho (pspi vs expressiveness)" in md
    assert paths[2].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(levels=(0.0, 0.5, 0.4)), "strictly increasing"),
        (dict(levels=(0.0, 1.5)), "0..1"),
        (dict(expressiveness=(0.0, 20.0)), "0..16"),
        (dict(emotions=("Anger", "Sadness")), "including Neutral"),
        (dict(emotions=("Neutral", "Joy")), "Joy"),
        (dict(seeds=1), "seeds"),
        (dict(rest_s=0.5, response_tail_s=1.0), "rest frames"),
    ],
)
def test_bad_config_is_a_clear_error(kw, match):
    with pytest.raises(InputError, match=match):
        run_control(FakeModel(), ControlConfig(**{**FAST, **kw}), progress=False)


def test_bad_generators_are_clear_errors():
    class Short(FakeModel):
        def generate(self, stimulus, *a, **kw):
            return super().generate(stimulus, *a, **kw)[:, :-1]

    with pytest.raises(InputError, match="generator: expected finite faces of shape"):
        run_control(Short(), ControlConfig(**FAST), progress=False)
    with pytest.raises(InputError, match="FACS"):
        run_control(FakeModel(names=FLAME_NAMES), ControlConfig(**FAST), progress=False)


def test_control_command_with_a_tiny_checkpoint(tmp_path, monkeypatch, capsys):
    from painface.data.windows import FeatureNormalizer
    from painface.model.checkpoint import save_model
    from painface.model.edm import Denoiser
    from painface.model.sampling import SamplerConfig
    from painface.model.unet import UNetConfig
    from tests.model_helpers import randomized

    net = randomized(UNetConfig(feature_dim=20, channels=16, cond_dim=16, heads=2, noise_dim=8))
    info = {
        "normalizer": FeatureNormalizer(np.zeros(20), np.ones(20), FEATURE_NAMES).to_dict(),
        "sampler": SamplerConfig(steps=2, window=16, horizon=8).to_dict(),
        "corpus": {"fps": 5.0},
    }
    ckpt = save_model(tmp_path / "m.safetensors", Denoiser(net), info)
    import painface.evaluate.control as control

    monkeypatch.setattr(control, "ControlConfig", lambda **kw: ControlConfig(**{**FAST, **kw}))
    out = tmp_path / "out"
    assert main(["control", "--checkpoint", str(ckpt), "--out", str(out), "--seeds", "2", "--steps", "1",
                 "--sweep-expressiveness", "0,0.5,2"]) == 0
    report = json.loads((out / "control.json").read_text())
    assert report["config"]["steps"] == 1 and report["fps"] == 5.0
    assert report["sweeps"]["expressiveness"]["values"] == [0.0, 0.5, 2.0] and report["trained_expressiveness"] is None
    assert np.asarray(report["sweeps"]["emotion"]["movement"]["per_seed"]).shape == (8, 2)
    assert "expressiveness->PSPI rho" in capsys.readouterr().out
    assert main(["control", "--checkpoint", str(tmp_path / "none.safetensors"), "--out", str(out)]) == 2
    assert main(["control", "--out", str(out), "--seeds", "1", "--checkpoint", str(ckpt)]) == 2
    with pytest.raises(SystemExit):  # argparse: not numbers
        main(["control", "--out", str(out), "--sweep-expressiveness", "low,high"])
    assert "expected numbers separated by commas" in capsys.readouterr().err


def test_the_trained_expressiveness_range_is_reported(tmp_path):
    class Trained(FakeModel):
        trained_expressiveness = (0.1, 0.5)

    report = run_control(Trained(), ControlConfig(**{**FAST, "expressiveness": (0.0, 0.5, 1.0)}), progress=False)
    assert report["trained_expressiveness"] == [0.1, 0.5]
    paths = write_report(report, tmp_path)
    assert "training subjects span expressiveness 0.1-0.5 PSPI" in paths[1].read_text()
    assert run_control(FakeModel(), ControlConfig(**FAST), progress=False)["trained_expressiveness"] is None
