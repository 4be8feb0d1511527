import json

import numpy as np
import pytest

from painface.data.corpus import open_corpus
from painface.errors import CorpusError, InputError
from painface.face.code import AU43_CLOSED_THRESHOLD, FEATURE_NAMES
from painface.subjects.population import simulate_corpus, split_plan
from painface.subjects.protocols import HeatProtocol
from painface.subjects.sustained import BLOCK_KINDS

SHORT = HeatProtocol(repetitions=2)  # 8 trials: a ~3 min session keeps the tests fast


def test_split_is_the_papers_61_26_balanced_by_sex():
    plan = split_plan(87, seed=0)
    val = [sex for split, sex in plan if split == "val"]
    test = [sex for split, sex in plan if split == "test"]
    assert len(val) + len(test) == 26 and sum(split == "train" for split, _ in plan) == 61
    assert (len(val), len(test)) == (14, 12)  # pairs (woman, man) alternate between val and test
    assert val.count("female") == val.count("male") == 7 and test.count("female") == test.count("male") == 6
    assert plan == split_plan(87, seed=0) and plan != split_plan(87, seed=1)
    with pytest.raises(InputError):
        split_plan(0, 0)


def test_corpus_layout_meta_and_arrays(tmp_path):
    out = simulate_corpus(tmp_path / "c", n_subjects=4, seed=3, protocol=SHORT, workers=1, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["fps"] == 25.0
    assert meta["feature_names"] == list(FEATURE_NAMES) and meta["stimulus_units"] == "normalized"
    assert [s["id"] for s in meta["subjects"]] == ["vs001", "vs002", "vs003", "vs004"]
    assert {s["split"] for s in meta["subjects"]} == {"train", "val"}
    corpus = open_corpus(out)
    for entry in meta["subjects"]:
        for key in ("id", "split", "expressiveness", "emotion", "pattern", "sex", "threshold_c", "tolerance_c"):
            assert key in entry
        sub = corpus.subject(entry["id"])
        assert sub.face.dtype == np.float32 and sub.face.shape == (entry["frames"], 20)
        heat = sub.extras["block"] == BLOCK_KINDS.index("biovid")
        assert heat[: entry["heat_frames"]].all() and not heat[entry["heat_frames"]:].any()
        kinds = {BLOCK_KINDS[c] for c in np.unique(sub.extras["block"][entry["heat_frames"]:])}
        assert kinds == {"rest", "plateau", "staircase", "elbow", "walk"}
        # PSPI from its definition (Prkachin & Solomon 2008: AU43, eyes closed, is coded 0/1) on the stored
        # AU intensities, and expressiveness = the subject's mean PSPI (the PainDiffusion paper's definition)
        au = {name: sub.face[:, FEATURE_NAMES.index(name)] for name in ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")}
        closed = (au["AU43"] >= AU43_CLOSED_THRESHOLD).astype(np.float32)
        by_hand = au["AU4"] + np.maximum(au["AU6"], au["AU7"]) + np.maximum(au["AU9"], au["AU10"]) + closed
        np.testing.assert_allclose(sub.pspi, by_hand, atol=1e-5)
        # expressiveness: the mean PSPI over the BioVid heat session (the paper's definition, on its protocol)
        assert entry["expressiveness"] == pytest.approx(float(by_hand[heat].mean()), abs=1e-4)
        # the normalized stimulus is 0 at the 32 °C baseline and 1 at the subject's tolerance (the BioVid
        # protocol's top level T4 is the tolerance): checked at those anchors, not by the formula
        level, temp = sub.extras["level"], sub.extras["temperature"]
        assert set(np.unique(level)) <= {0, 1, 2, 3, 4}
        np.testing.assert_allclose(sub.stimulus[temp == 32.0], 0.0, atol=1e-6)
        plateau = np.isclose(temp, entry["tolerance_c"], atol=1e-4)
        assert plateau.any() and np.allclose(sub.stimulus[plateau], 1.0, atol=1e-5)
        assert sub.stimulus.max() == pytest.approx(1.0, abs=1e-5) and sub.stimulus.min() >= 0.0
    # readable with numpy alone
    with np.load(out / "subjects" / "vs001.npz") as z:
        assert z["face"].shape[1] == len(z["feature_names"]) and z["pspi"].shape == z["stimulus"].shape


def test_deterministic_for_a_seed_and_different_across_seeds(tmp_path):
    a = simulate_corpus(tmp_path / "a", n_subjects=2, seed=5, protocol=SHORT, workers=1, progress=False)
    b = simulate_corpus(tmp_path / "b", n_subjects=2, seed=5, protocol=SHORT, workers=2, progress=False)
    c = simulate_corpus(tmp_path / "c", n_subjects=2, seed=6, protocol=SHORT, workers=1, progress=False)
    fa, fb, fc = (open_corpus(x).subject("vs002").face for x in (a, b, c))
    np.testing.assert_array_equal(fa, fb)
    assert fa.shape != fc.shape or not np.array_equal(fa, fc)
    assert json.loads((a / "meta.json").read_text()) == json.loads((b / "meta.json").read_text())


def test_a_rerun_completes_a_killed_run(tmp_path):
    out = simulate_corpus(tmp_path / "c", n_subjects=3, seed=0, protocol=SHORT, workers=1, progress=False)
    reference = (out / "subjects" / "vs002.npz").read_bytes()
    untouched = (out / "subjects" / "vs001.npz").stat().st_mtime_ns
    # what a kill mid-run leaves: no meta.json, one subject missing, one truncated, a temporary file
    (out / "meta.json").unlink()
    (out / "subjects" / "vs002.npz").unlink()
    data = (out / "subjects" / "vs003.npz").read_bytes()
    (out / "subjects" / "vs003.npz").write_bytes(data[: len(data) // 2])
    (out / "subjects" / ".vs002.npz.abc.part").write_bytes(b"half")
    with pytest.raises(CorpusError, match="meta.json"):
        open_corpus(out)  # an incomplete corpus does not look complete
    simulate_corpus(out, n_subjects=3, seed=0, protocol=SHORT, workers=1, progress=False)
    assert (out / "subjects" / "vs002.npz").read_bytes() == reference
    assert (out / "subjects" / "vs001.npz").stat().st_mtime_ns == untouched  # reused, not redone
    assert not list((out / "subjects").glob(".*.part"))
    corpus = open_corpus(out)
    assert len(corpus) == 3 and corpus.subject("vs003").frames > 0


def test_a_different_seed_into_the_same_folder_regenerates(tmp_path):
    out = simulate_corpus(tmp_path / "c", n_subjects=2, seed=0, protocol=SHORT, workers=1, progress=False)
    before = open_corpus(out).subject("vs001").face
    simulate_corpus(out, n_subjects=2, seed=1, protocol=SHORT, workers=1, progress=False)
    after = open_corpus(out).subject("vs001").face
    assert before.shape != after.shape or not np.array_equal(before, after)


def test_unwritable_out_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        simulate_corpus(f, n_subjects=1, protocol=SHORT, progress=False)


def test_simulate_command(tmp_path, capsys):
    from painface.cli import main

    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"stoic_share": 1.0}')
    rc = main(["simulate", "--out", str(tmp_path / "c"), "--subjects", "2", "--seed", "1", "--config", str(cfg),
               "--workers", "1", "--quiet"])
    assert rc == 0 and "wrote 2 subjects" in capsys.readouterr().out
    meta = json.loads((tmp_path / "c" / "meta.json").read_text())
    assert [s["pattern"] for s in meta["subjects"]] == ["stoic", "stoic"]
    assert meta["generator"]["seed"] == 1 and meta["generator"]["config"]["stoic_share"] == 1.0
    bad = tmp_path / "bad.json"
    bad.write_text('{"stoic_shar": 1.0}')
    assert main(["simulate", "--out", str(tmp_path / "d"), "--config", str(bad), "--quiet"]) == 2
    assert "unknown key(s) ['stoic_shar']" in capsys.readouterr().err
