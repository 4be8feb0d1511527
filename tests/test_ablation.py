import json

import numpy as np
import pytest

from painface.cli import main
from painface.data.corpus import Corpus, SubjectData, make_meta
from painface.errors import CorpusError, InputError
from painface.evaluate.ablation import AblationConfig, ablation_markdown, pick_windows, run_ablation, settings
from painface.face.code import AU_NAMES, EMOTIONS, FEATURE_NAMES, pspi
from painface.model.edm import DEFAULT_GUIDANCE
from painface.model.sampling import SamplerConfig

FPS = 10.0
SMALL = dict(windows=4, seconds=8.0, lead_s=1.0, tries=2)


def make_corpus(n_subjects: int = 3, frames: int = 600, split_val: int = 2) -> Corpus:
    """Subjects whose face is a function of the stimulus: AU4 = 2 x stimulus (PSPI = 2 x stimulus), with
    trials of levels 1..4 (2 s ramps + 3 s plateau at level / 4) every 12 s from 5 s on."""
    subjects, infos = {}, []
    for i in range(n_subjects):
        stim = np.zeros(frames, np.float32)
        level = np.zeros(frames, np.int8)
        trial = np.full(frames, -1, np.int16)
        for j, onset in enumerate(range(50, frames - 100, 120)):
            lv = 1 + (j + i) % 4
            shape = np.concatenate([np.linspace(0, 1, 20), np.ones(30), np.linspace(1, 0, 20)])
            stim[onset:onset + 70] = shape * lv / 4
            level[onset:onset + 70] = lv
            trial[onset:] = j
        face = np.zeros((frames, len(FEATURE_NAMES)), np.float32)
        face[:, AU_NAMES.index("AU4")] = 2 * stim
        face[:, AU_NAMES.index("AU1")] = 0.1 * (1 + np.sin(np.arange(frames) / 7 + i))
        info = {"id": f"s{i}", "split": "val" if i < split_val else "train", "emotion": EMOTIONS[i % 8],
                "expressiveness": 0.5 + i, "pattern": "p1_eyes_brows_nose"}
        subjects[info["id"]] = SubjectData(info=info, face=face, stimulus=stim, pspi=pspi(face),
                                           extras={"level": level, "trial": trial})
        infos.append(info)
    meta = make_meta(fps=FPS, feature_names=FEATURE_NAMES, stimulus_units="normalized", subjects=infos)
    return Corpus(meta, subjects=subjects)


class Oracle:
    """PainDiffusion's generate signature; AU4 = stimulus x (stimulus guidance strength), so with the default
    strength 2 it reproduces the corpus exactly; per-try noise on AU2 (diversity, PSPI untouched)."""

    fps = FPS
    feature_names = FEATURE_NAMES

    def __init__(self):
        self.calls: list[dict] = []

    def sampler_config(self, **overrides):
        d = SamplerConfig(window=64, horizon=48, guidance=(0.5, 1.0, 2.0)).to_dict()  # its default
        d.update(overrides)
        return SamplerConfig.from_dict(d)

    def generate(self, stimulus, expressiveness=1.0, emotion="Neutral", *, samples=1, seed=0, context=None,
                 **sampler):
        cfg = self.sampler_config(**sampler)
        stim = np.asarray(stimulus, np.float32)
        self.calls.append({"stimulus": stim, "expressiveness": np.asarray(expressiveness), "emotion": emotion,
                           "samples": samples, "context": context, "sampler": sampler})
        face = np.zeros((stim.shape[0] * samples, stim.shape[1], len(FEATURE_NAMES)), np.float32)
        face[:, :, AU_NAMES.index("AU4")] = np.repeat(stim, samples, 0) * cfg.guidance[2]
        face[:, :, AU_NAMES.index("AU2")] = np.random.default_rng(seed).random((face.shape[0], 1))
        return face


def test_windows_come_from_validation_subjects_with_levels_cycling_and_context_before():
    corpus = make_corpus()
    win = pick_windows(corpus, AblationConfig(**SMALL))
    assert win.stimulus.shape == (4, 80) and win.face.shape == (4, 80, 20) and win.before.shape == (4, 32, 20)
    assert [w["subject"] for w in win.where] == ["s0", "s1", "s0", "s1"]
    assert [w["level"] for w in win.where] == [4, 3, 2, 1]
    for w, face, before, ps in zip(win.where, win.face, win.before, win.pspi, strict=True):
        sub = corpus.subject(w["subject"])
        assert np.array_equal(face, sub.face[w["start"]:w["start"] + 80])
        assert np.array_equal(before, sub.face[w["start"] - 32:w["start"]])
        assert np.array_equal(ps, sub.pspi[w["start"]:w["start"] + 80])
        assert sub.extras["level"][w["start"] + 10:w["start"] + 20].max() == w["level"]
        # 1 s lead: the onset (first frame off baseline, as painface evaluate finds it) is 10 frames in
        assert sub.stimulus[w["start"] + 9] == 0 and sub.stimulus[w["start"] + 10] > 0
    assert win.expressiveness.tolist() == [0.5, 1.5, 0.5, 1.5]
    assert win.emotion.argmax(1).tolist() == [0, 1, 0, 1]
    again = pick_windows(corpus, AblationConfig(**SMALL))
    assert [w["start"] for w in again.where] == [w["start"] for w in win.where]  # deterministic


def test_settings_rows_and_overrides():
    rows = settings(AblationConfig(), window=64, default_context=16)
    assert len(rows) == 3 + 4 + 7
    assert rows[0] == ("context window", "8 frames", {"horizon": 56, "schedule": "full"})
    assert rows[5][2] == {"horizon": 48, "schedule": "pyramid", "uncertainty": 2.0}
    assert rows[8][1] == "(0, 0, 0)" and rows[8][2]["guidance"] == (0.0, 0.0, 0.0)
    with pytest.raises(InputError, match="context 64 frames"):
        settings(AblationConfig(contexts=(64,)), window=64, default_context=16)


def test_oracle_reproduces_ground_truth_and_no_stimulus_guidance_loses_it():
    model, corpus = Oracle(), make_corpus()
    report = run_ablation(model, corpus, AblationConfig(**SMALL), progress=False)
    # 14 rows; pyramid u = 0 and the default guidance sample like context 16: 12 generate calls
    assert len(report["rows"]) == 14 and report["generations"] == 12 == len(model.calls)
    by = {(r["group"].split()[0], r["setting"]): r["metrics"] for r in report["rows"]}
    best = by[("guidance", "(0.5, 1, 2)")]
    assert best["sim"]["mean"] == pytest.approx(0.0, abs=1e-6) and best["corr"]["mean"] == pytest.approx(1.0)
    assert best["dist"]["mean"] > 0 and best["divrs"]["mean"] > 0  # AU2 differs between tries
    assert by[("context", "16 frames")] == best == by[("uncertainty", "u = 0")]
    off = by[("guidance", "(0.5, 1, 0)")]
    assert off["corr"]["mean"] == 0.0 and off["sim"]["mean"] > 0.1  # constant PSPI 0: r = 0 by the rule
    assert by[("guidance", "(1, 2, 4)")]["sim"]["mean"] > 0.1  # twice too strong
    first = model.calls[0]
    assert first["sampler"]["horizon"] == 56 and first["sampler"]["window"] == 64 and first["samples"] == 2
    win = pick_windows(corpus, AblationConfig(**SMALL))
    assert np.array_equal(first["context"], np.repeat(win.before[:, -8:], 2, axis=0))  # GT context, per try
    assert model.calls[1]["context"].shape == (8, 16, 20) and model.calls[2]["context"].shape == (8, 32, 20)
    assert np.array_equal(first["stimulus"], win.stimulus)
    md = ablation_markdown(report)
    assert md.count("\n| ") == 15 and "| uncertainty u (pyramid) | u = 4 |" in md
    json.dumps(report, allow_nan=False)


def test_bad_inputs_are_clear_errors():
    corpus = make_corpus()
    with pytest.raises(InputError, match="tries >= 2"):
        run_ablation(Oracle(), corpus, AblationConfig(**{**SMALL, "tries": 1}), progress=False)
    with pytest.raises(InputError, match="guidances"):
        run_ablation(Oracle(), corpus, AblationConfig(**SMALL, guidances=((1.0, 2.0),)), progress=False)
    with pytest.raises(CorpusError, match="no validation subjects"):
        run_ablation(Oracle(), make_corpus(split_val=0), AblationConfig(**SMALL), progress=False)
    with pytest.raises(CorpusError, match="no heat onset with room"):
        run_ablation(Oracle(), make_corpus(frames=100), AblationConfig(**SMALL), progress=False)

    celsius = make_corpus()
    celsius.meta["stimulus_units"] = "celsius"
    with pytest.raises(CorpusError, match="normalized units"):
        run_ablation(Oracle(), celsius, AblationConfig(**SMALL), progress=False)

    class Slow(Oracle):
        fps = 25.0

    with pytest.raises(CorpusError, match="fps"):
        run_ablation(Slow(), corpus, AblationConfig(**SMALL), progress=False)

    class Broken(Oracle):
        def generate(self, *a, **kw):
            return super().generate(*a, **kw) * np.nan

    with pytest.raises(InputError, match="generator: expected finite faces"):
        run_ablation(Broken(), corpus, AblationConfig(**SMALL), progress=False)


def test_ablate_command_with_a_tiny_checkpoint(tmp_path, monkeypatch):
    from painface.data.windows import FeatureNormalizer
    from painface.model.checkpoint import save_model
    from painface.model.edm import Denoiser
    from painface.model.unet import UNetConfig
    from tests.model_helpers import randomized

    net = randomized(UNetConfig(feature_dim=20, channels=16, cond_dim=16, heads=2, noise_dim=8))
    info = {
        "normalizer": FeatureNormalizer(np.zeros(20), np.ones(20), FEATURE_NAMES).to_dict(),
        "sampler": SamplerConfig(steps=2, window=16, horizon=8).to_dict(),
        "corpus": {"fps": FPS},
    }
    ckpt = save_model(tmp_path / "m.safetensors", Denoiser(net), info)
    data = make_corpus().save(tmp_path / "corpus")
    import painface.evaluate.ablation as ablation

    small = dict(contexts=(4, 8), uncertainties=(0.0, 1.0), guidances=(DEFAULT_GUIDANCE, (0.0, 0.0, 0.0)))
    monkeypatch.setattr(ablation, "AblationConfig", lambda **kw: AblationConfig(**{**kw, **small, "lead_s": 1.0}))
    out = tmp_path / "out"
    args = ["ablate", "--checkpoint", str(ckpt), "--data", str(data), "--out", str(out), "--windows", "2",
            "--seconds", "4", "--steps", "1"]
    assert main(args) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert len(report["rows"]) == 6 and report["window"] == 16 and report["default_context"] == 8
    assert report["generations"] == 4  # u = 0 and the default guidance repeat context 8
    assert all(np.isfinite(r["metrics"]["sim"]["mean"]) for r in report["rows"])
    assert (out / "ablation.md").read_text().startswith("# Ablations")
    assert (out / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["ablate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "none"), "--out", str(out)]) == 2
