"""``painface evaluate`` end to end on a tiny corpus and a tiny random model: files, structure, sane values,
window selection, clear errors."""

import json

import numpy as np
import pytest
import torch

from painface.cli import main
from painface.data.corpus import Corpus, open_corpus
from painface.data.windows import FeatureNormalizer
from painface.errors import InputError
from painface.evaluate import metrics as M
from painface.evaluate.run import METHODS, METRICS, MODES, EvalConfig, evaluate, select_windows
from painface.model.checkpoint import save_model
from painface.model.edm import Denoiser
from painface.model.sampling import SamplerConfig
from painface.model.unet import UNetConfig
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol
from tests.model_helpers import randomized


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalcorpus")
    return simulate_corpus(out, n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=1), mixed=None, workers=1,
                           progress=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, corpus_dir):
    torch.set_num_threads(1)
    corpus = open_corpus(corpus_dir)
    net = randomized(UNetConfig(feature_dim=20, channels=16, cond_dim=16, heads=2, noise_dim=8))
    info = {
        "normalizer": FeatureNormalizer.fit(corpus, "train").to_dict(),
        "sampler": SamplerConfig(steps=1, window=16, horizon=8).to_dict(),
        "corpus": {"fps": corpus.fps},
    }
    return save_model(tmp_path_factory.mktemp("ckpt") / "m.safetensors", Denoiser(net), info)


def _cfg(corpus_dir, checkpoint, out, **kw):
    base = dict(data=str(corpus_dir), checkpoint=str(checkpoint), fsq=str(corpus_dir / "absent_fsq.safetensors"),
                out=str(out), tries=3, windows=4, length=96, lead=24, batch=3, progress=False, split="val")
    return EvalConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def result(tmp_path_factory, corpus_dir, checkpoint):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("evalout")
    return out, evaluate(_cfg(corpus_dir, checkpoint, out))


def test_metrics_json_structure_and_files(result):
    out, res = result
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert list(on_disk) == list(MODES)
    for mode in MODES:
        assert list(on_disk[mode]) == list(METHODS)
        assert "missing" in on_disk[mode]["fsq_ar"] and "absent_fsq" in on_disk[mode]["fsq_ar"]["missing"]
        for name in METHODS:
            if name == "fsq_ar":
                continue
            assert list(on_disk[mode][name]) == list(METRICS)
            for m in METRICS:
                assert set(on_disk[mode][name][m]) == {"mean", "std"}
                assert np.isfinite(on_disk[mode][name][m]["mean"])
    table = (out / "table.md").read_text()
    assert "| Ground truth |" in table and "PainDiffusion" in table and "### cold" in table
    for mode in MODES:
        assert (out / f"fig6_{mode}.png").read_bytes()[:4] == b"\x89PNG"
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["tries"] == 3 and len(cfg["windows"]) == 4 and cfg["pspi"]["kind"] == "exact (FACS)"
    assert cfg["corpus"]["split"] == "val" and cfg["stimulus_lookup"]["lag_s"] >= 0
    # the raw arrays: the metrics recompute from them
    with np.load(out / "generations.npz") as g:
        assert g["stimulus"].shape == (4, 96) and g["ground_truth"].shape == (4, 96, 20)
        assert g["cold/paindiffusion/face"].shape == (4, 3, 96, 20) and sorted(g["window_level"]) == [1, 2, 3, 4]
        gen_pspi, gt_pspi = g["seeded/paindiffusion/pspi"], g["ground_truth_pspi"]
        per_try = [M.pearson(gen_pspi[:, k], gt_pspi).mean() for k in range(3)]
        assert np.mean(per_try) == pytest.approx(on_disk["seeded"]["paindiffusion"]["corr"]["mean"], abs=1e-6)
    paired = json.loads((out / "paired.json").read_text())
    diff = paired["cold"]["stimulus_lookup"]["corr"]
    assert diff["lo"] <= diff["mean"] <= diff["hi"] and diff["n"] == 4


def test_values_are_sane(result):
    _, res = result
    for mode in MODES:
        gt = res[mode]["ground_truth"]
        assert gt["sim"]["mean"] == 0 and gt["dist"]["mean"] == 0 and gt["divrs"]["mean"] == 0
        assert gt["corr"]["mean"] == pytest.approx(1.0) and gt["corr_max"]["mean"] == pytest.approx(1.0)
        assert gt["sim"]["std"] == 0 and gt["var"]["mean"] > 0
        mf = res[mode]["mean_face"]
        assert mf["var"]["mean"] == pytest.approx(0, abs=1e-12) and mf["divrs"]["mean"] == 0
        assert mf["corr"]["mean"] == 0  # a constant PSPI: r = 0 by the documented rule
        nn = res[mode]["nearest_neighbor"]
        assert nn["divrs"]["mean"] == 0 and nn["sim"]["std"] == 0  # deterministic, like the paper's ±0
        assert gt["pspi_w1"]["mean"] == 0 and gt["peak_w1"]["mean"] == 0
        lk = res[mode]["stimulus_lookup"]
        assert lk["divrs"]["mean"] == 0 and lk["speed"]["mean"] < gt["speed"]["mean"]  # an average is smooth
        for name in ("random", "nearest_neighbor", "mean_face", "paindiffusion"):
            assert res[mode][name]["sim"]["mean"] > 0 and res[mode][name]["dist"]["mean"] > 0
            assert -1 <= res[mode][name]["corr"]["mean"] <= res[mode][name]["corr_max"]["mean"] <= 1
        assert res[mode]["random"]["divrs"]["mean"] > 0 and res[mode]["paindiffusion"]["divrs"]["mean"] > 0
    # the baselines ignore the context: both modes agree; the model does not
    assert res["seeded"]["random"] == res["cold"]["random"]
    assert res["seeded"]["paindiffusion"] != res["cold"]["paindiffusion"]


def test_runs_are_deterministic(tmp_path, corpus_dir, checkpoint, result):
    _, res = result
    again = evaluate(_cfg(corpus_dir, checkpoint, tmp_path))
    assert again == res


def test_window_selection(corpus_dir):
    corpus = open_corpus(corpus_dir)
    cfg = EvalConfig(windows=4, length=96, lead=24, split="val")
    ws = select_windows(corpus, cfg, min_start=16)
    assert sorted(w.level for w in ws) == [1, 2, 3, 4]  # the one val subject: one onset per level
    for w in ws:
        sub = corpus.subject(w.subject)
        assert w.start == w.onset - 24 and sub.stimulus[w.onset] > sub.stimulus[w.onset - 1]
        assert sub.info["split"] == "val"
    full = select_windows(corpus, EvalConfig(full=True, length=96, lead=24, split="val"), min_start=16)
    assert len(full) == 4  # repetitions=1: 4 onsets in all
    assert len(select_windows(corpus, EvalConfig(windows=2, length=96, lead=24, split="val"), min_start=16)) == 2
    with pytest.raises(InputError, match="no 'test' subjects"):  # the default split: reports touch test only
        select_windows(corpus, EvalConfig(windows=4, length=96, lead=24), min_start=16)


def test_command_and_clear_errors(tmp_path, corpus_dir, checkpoint, capsys):
    out = tmp_path / "o"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope.safetensors"), "--data", str(corpus_dir),
                 "--out", str(out), "--quiet"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    # a corpus without validation subjects
    corpus = open_corpus(corpus_dir)
    meta = dict(corpus.meta, subjects=[dict(s, split="train") for s in corpus.subjects])
    trainonly = Corpus(meta, {sid: corpus.subject(sid) for sid in corpus.ids()}).save(tmp_path / "trainonly")
    with pytest.raises(InputError, match="no 'val' subjects"):
        evaluate(_cfg(trainonly, checkpoint, tmp_path / "o2"))
    with pytest.raises(InputError, match="tries"):
        evaluate(_cfg(corpus_dir, checkpoint, tmp_path / "o3", tries=0))
    # windows longer than any recording
    with pytest.raises(InputError, match="room for"):
        evaluate(_cfg(corpus_dir, checkpoint, tmp_path / "o4", length=10**6, lead=10))


def test_fsq_ar_is_evaluated_when_its_checkpoint_exists(tmp_path, corpus_dir, checkpoint):
    """A tiny FSQ-AR trained for 2 steps by its own command takes part like every other method."""
    tiny = {"tokenizer": {"hidden": 32, "blocks": 1},
            "ar": {"d_model": 32, "layers": 1, "heads": 2, "max_tokens": 8, "dropout": 0.0},
            "tok_batch_size": 8, "batch_size": 8, "warmup": 2, "ckpt_every": 3, "val_every": 3, "val_windows": 8}
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    assert main(["train-fsq", "--data", str(corpus_dir), "--out", str(tmp_path / "fsq"), "--steps", "2",
                 "--config", str(tmp_path / "tiny.json"), "--quiet"]) == 0
    fsq = tmp_path / "fsq" / "fsq_ar.safetensors"
    res = evaluate(_cfg(corpus_dir, checkpoint, tmp_path / "o", fsq=str(fsq), tries=2, windows=2, length=64))
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert cfg["missing"] == {} and cfg["context_frames"] >= 16
    for mode in MODES:
        assert list(res[mode]["fsq_ar"]) == list(METRICS)
        assert res[mode]["fsq_ar"]["sim"]["mean"] > 0 and np.isfinite(res[mode]["fsq_ar"]["corr"]["mean"])
    assert res["seeded"]["fsq_ar"] != res["cold"]["fsq_ar"]


def test_default_corpus_is_built_once_in_out(tmp_path, monkeypatch):
    import painface.subjects.population as population
    from painface.evaluate.run import default_corpus

    calls = []
    real = population.simulate_corpus

    def small(out, **kw):  # the default recipe (87 subjects, seed 0) on a smaller scale
        calls.append(kw)
        return real(out, n_subjects=4, seed=kw["seed"], protocol=HeatProtocol(repetitions=1), workers=1,
                    progress=False)

    monkeypatch.setattr(population, "simulate_corpus", small)
    root = default_corpus(tmp_path, progress=False)
    assert root == tmp_path / "corpus" and (root / "meta.json").is_file()
    assert calls == [{"n_subjects": 87, "seed": 0, "progress": False}]
    assert default_corpus(tmp_path, progress=False) == root and len(calls) == 1  # reused


def test_pspi_from_rendered_faces(tmp_path, corpus_dir, checkpoint):
    """--pspi-from rendered: the faces are drawn and read by painface.analyze; exact-vs-detected agreement
    is recorded per method."""
    torch.set_num_threads(1)
    res = evaluate(_cfg(corpus_dir, checkpoint, tmp_path, tries=1, windows=2, length=64, lead=16,
                        pspi_from="rendered", render_stride=32))
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["pspi_from"] == "rendered" and "rendered" in info["pspi"]["kind"]
    agree = info["pspi"]["exact_vs_detected"]
    assert "ground_truth" in agree and "seeded/paindiffusion" in agree
    assert agree["ground_truth"]["detection_rate"] > 0.9
    assert np.isfinite(res["seeded"]["paindiffusion"]["dist"]["mean"])
    with pytest.raises(InputError, match="pspi-from"):
        evaluate(_cfg(corpus_dir, checkpoint, tmp_path / "x", pspi_from="nonsense"))
