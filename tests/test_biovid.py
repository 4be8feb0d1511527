"""The BioVid reader: a tiny tree in the PainDiffusion authors' layout, read back exactly."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from painface.data import biovid
from painface.data.corpus import open_corpus
from painface.errors import CorpusError, InputError
from painface.face.code import EMOTIONS, FLAME_NAMES

N = 50
# temperature protocol of the fixture (°C): rest, ramp to 40 (level 1), rest, ramp to 46 (level 4), rest
TEMP = np.array(
    [32.0] * 5
    + [34.0, 36.0, 38.0, 40.0, 40.0, 40.0, 38.0, 36.0, 34.0]
    + [32.0] * 8
    + [35.0, 38.0, 41.0, 44.0, 46.0, 46.0, 46.0, 46.0, 44.0, 41.0, 38.0, 35.0]
    + [32.0] * 15
)
LEVEL = np.array([0] * 5 + [1] * 9 + [0] * 8 + [4] * 12 + [0] * 15 + [1])  # a third trial starts at the last frame
assert TEMP.size == N - 1 and LEVEL.size == N
TEMP = np.append(TEMP, 33.0)


def subject_frames(k: int, *, first: int = 1, scores: bool = True) -> tuple[list[dict], list[dict]]:
    """Per-frame feature and label dicts of fixture subject ``k`` (values depend on k and the frame)."""
    rng = np.random.default_rng(k)
    feats, labs = [], []
    emos = ["Neutral", "Neutral", "Fear", "Sadness", "Neutral"]
    for i in range(N):
        feats.append(
            {
                "expcode": rng.normal(size=100).round(6).tolist(),
                "jawpose": rng.normal(scale=0.05, size=3).round(6).tolist(),
                "texcode": [0.0] * 50,
                "globalpose": [0.0] * 3,
                "cam": [1.0, 0.0, 0.0],
            }
        )
        lab = {
            "temperature": float(TEMP[i]),
            "label": int(LEVEL[i]),
            "pspi_no_au43": float(i % 7) * 0.5 + k,
            "emotion": emos[i % len(emos)],
            "au_bp4d_score": [0.1] * 12,
            "au_disfa_score": [0.2] * 8,
        }
        if scores:
            s = np.full(8, 0.01)
            s[(i + k) % 8] = 0.93
            lab["emotion_score"] = s.tolist()
        labs.append(lab)
    return feats, labs


def write_tree(root: Path, subjects: dict[str, tuple[list[dict], list[dict]]], *, first: int = 1) -> tuple[Path, Path]:
    fr, lr = root / "features", root / "labels"
    for sid, (feats, labs) in subjects.items():
        for base, rows in ((fr, feats), (lr, labs)):
            (base / sid).mkdir(parents=True, exist_ok=True)
            for i, row in enumerate(rows):
                (base / sid / f"{first + i}.json").write_text(json.dumps(row))
    return fr, lr


IDS = ["071309_w_21", "080314_m_40", "112016_m_25"]


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path, dict]:
    data = {sid: subject_frames(k) for k, sid in enumerate(IDS)}
    fr, lr = write_tree(tmp_path / "biovid", data)
    return fr, lr, data


def test_values_round_trip_exactly(tree, tmp_path):
    fr, lr, data = tree
    corpus = biovid.read_biovid(fr, lr, progress=False)
    assert corpus.feature_names == FLAME_NAMES and corpus.feature_space == "flame"
    assert corpus.fps == 25.0 and corpus.stimulus_units == "normalized"
    assert corpus.ids() == sorted(IDS)
    for sid in IDS:
        feats, labs = data[sid]
        sub = corpus.subject(sid)
        assert sub.face.shape == (N, 103) and sub.face.dtype == np.float32
        exp = np.array([f["expcode"] for f in feats], dtype=np.float32)
        jaw = np.array([f["jawpose"] for f in feats], dtype=np.float64) * 100.0
        np.testing.assert_array_equal(sub.face[:, :100], exp)
        np.testing.assert_array_equal(sub.face[:, 100:], jaw.astype(np.float32))
        np.testing.assert_array_equal(sub.extras["temperature"], TEMP.astype(np.float32))
        np.testing.assert_array_equal(sub.extras["level"], LEVEL.astype(np.int8))
        pspi = np.array([lab["pspi_no_au43"] for lab in labs], dtype=np.float32)
        np.testing.assert_array_equal(sub.pspi, pspi)
        # stimulus: (T - 32) / (tolerance - 32), tolerance = 99.5th percentile = the 46 °C plateau
        assert sub.info["tolerance_c"] == pytest.approx(46.0)
        np.testing.assert_allclose(sub.stimulus, (TEMP - 32.0) / 14.0, atol=1e-6)
        assert sub.info["levels_c"] == [40.0, None, None, 46.0]
        assert sub.info["threshold_c"] == 40.0 and sub.info["baseline_c"] == 32.0
        assert sub.info["expressiveness"] == pytest.approx(float(pspi.astype(np.float64).mean()), rel=1e-6)
        assert sub.info["emotion"] == "Neutral" and sub.info["pattern"] == "unknown"
        expected_scores = np.mean([lab["emotion_score"] for lab in labs], axis=0)
        np.testing.assert_allclose(sub.info["emotion_score"], expected_scores, rtol=1e-12)
        emos = [EMOTIONS.index(lab["emotion"]) for lab in labs]
        np.testing.assert_array_equal(sub.extras["emotion_class"], emos)
    assert corpus.info("071309_w_21")["sex"] == "female" and corpus.info("080314_m_40")["age"] == 40


def test_trial_index_from_level_onsets(tree):
    fr, lr, _ = tree
    sub = biovid.read_biovid_subject(fr / IDS[0], lr / IDS[0])
    trial = sub.extras["trial"]
    assert trial.dtype == np.int16
    expected = np.array([-1] * 5 + [0] * 17 + [1] * 27 + [2])
    np.testing.assert_array_equal(trial, expected)


def test_convert_writes_corpus_that_reads_back(tree, tmp_path):
    fr, lr, _ = tree
    out = biovid.convert_biovid(fr, lr, tmp_path / "corpus", progress=False)
    disk = open_corpus(out)
    mem = biovid.read_biovid(fr, lr, progress=False)
    assert disk.meta["subjects"] == json.loads(json.dumps(mem.meta["subjects"]))
    for sid in IDS:
        a, b = disk.subject(sid), mem.subject(sid)
        np.testing.assert_array_equal(a.face, b.face)
        np.testing.assert_array_equal(a.stimulus, b.stimulus)
        np.testing.assert_array_equal(a.pspi, b.pspi)
        for key in ("temperature", "level", "trial", "emotion_class"):
            np.testing.assert_array_equal(a.extras[key], b.extras[key])
            assert a.extras[key].dtype == b.extras[key].dtype
    # a second conversion into the same folder is refused unless asked for
    with pytest.raises(InputError, match="already holds a corpus"):
        biovid.convert_biovid(fr, lr, out, progress=False)
    biovid.convert_biovid(fr, lr, out, progress=False, overwrite=True, workers=2)
    np.testing.assert_array_equal(open_corpus(out).subject(IDS[1]).face, mem.subject(IDS[1]).face)


def test_default_split_is_seeded_and_val_ids_are_honoured(tree, tmp_path):
    ids = [f"s{i:03d}" for i in range(87)]
    a = biovid.split_subjects(ids, seed=0)
    assert sum(v == "val" for v in a.values()) == 26
    assert biovid.split_subjects(ids, seed=0) == a
    assert biovid.split_subjects(ids, seed=1) != a
    fr, lr, _ = tree
    val_file = tmp_path / "val.txt"
    val_file.write_text(f"# held out\n{IDS[2]}\n\n")
    assert biovid.read_id_list(val_file) == [IDS[2]]
    (tmp_path / "val.json").write_text(json.dumps([IDS[0]]))
    assert biovid.read_id_list(tmp_path / "val.json") == [IDS[0]]
    corpus = biovid.read_biovid(fr, lr, val_ids=[IDS[2]], progress=False)
    assert corpus.ids("val") == [IDS[2]] and corpus.ids("train") == IDS[:2]
    with pytest.raises(InputError, match="not among"):
        biovid.split_subjects(IDS, ["nobody"])


def test_cli_run(tree, tmp_path, capsys):
    fr, lr, _ = tree
    from painface.commands import convert_biovid as command

    parser = argparse.ArgumentParser()
    command.configure(parser)
    val_file = tmp_path / "val.txt"
    val_file.write_text(IDS[0] + "\n")
    args = parser.parse_args([str(fr), "--labels", str(lr), "--out", str(tmp_path / "c"), "--val-ids", str(val_file)])
    assert command.run(args) == 0
    assert "3 subjects (2 train, 1 val)" in capsys.readouterr().out
    assert open_corpus(tmp_path / "c").ids("val") == [IDS[0]]


# --- bad input: every case is a CorpusError naming the file --------------------------------------
def _one(tmp_path: Path, mutate=None, *, labels_mutate=None) -> tuple[Path, Path]:
    feats, labs = subject_frames(0)
    if mutate:
        mutate(feats)
    if labels_mutate:
        labels_mutate(labs)
    return write_tree(tmp_path / "bad", {"s1": (feats, labs)})


def _read(fr: Path, lr: Path):
    return biovid.read_biovid(fr, lr, progress=False)


@pytest.mark.parametrize(
    "mutate, match, fname",
    [
        (lambda f: f[3].pop("expcode"), "missing key 'expcode'", "4.json"),
        (lambda f: f[7].pop("jawpose"), "missing key 'jawpose'", "8.json"),
        (lambda f: f[2].update(expcode=[0.0] * 99), "'expcode' has 99 values", "3.json"),
        (lambda f: f[2].update(jawpose=[0.0] * 4), "'jawpose' has 4 values", "3.json"),
        (lambda f: f[9]["expcode"].__setitem__(5, float("nan")), "NaN", "10.json"),
        (lambda f: f[9].update(expcode="abc"), "expcode", "10.json"),
    ],
)
def test_bad_features(tmp_path, mutate, match, fname):
    fr, lr = _one(tmp_path, mutate)
    with pytest.raises(CorpusError, match=match) as e:
        _read(fr, lr)
    assert str(fr / "s1" / fname) in str(e.value)


@pytest.mark.parametrize(
    "mutate, match, fname",
    [
        (lambda labs: labs[0].pop("temperature"), "missing key 'temperature'", "1.json"),
        (lambda labs: labs[4].pop("pspi_no_au43"), "missing key 'pspi_no_au43'", "5.json"),
        (lambda labs: labs[4].pop("label"), "missing key 'label'", "5.json"),
        (lambda labs: labs[4].pop("emotion"), "missing key 'emotion'", "5.json"),
        (lambda labs: labs[6].update(temperature=float("nan")), "finite number", "7.json"),
        (lambda labs: labs[6].update(pspi_no_au43=None), "finite number", "7.json"),
        (lambda labs: labs[6].update(label=7), "stimulus class 0-4", "7.json"),
        (lambda labs: labs[6].update(emotion="Joy"), "unknown emotion 'Joy'", "7.json"),
        (lambda labs: labs[6].update(emotion_score=[0.1] * 7), "'emotion_score' has 7 values", "7.json"),
        (lambda labs: labs[6].pop("emotion_score"), "missing key 'emotion_score'", "7.json"),
    ],
)
def test_bad_labels(tmp_path, mutate, match, fname):
    fr, lr = _one(tmp_path, labels_mutate=mutate)
    with pytest.raises(CorpusError, match=match) as e:
        _read(fr, lr)
    assert str(lr / "s1" / fname) in str(e.value)


def test_missing_and_mismatched_frames(tmp_path):
    fr, lr = _one(tmp_path)
    (lr / "s1" / "12.json").unlink()
    with pytest.raises(CorpusError, match="frame 12 has features but no labels") as e:
        _read(fr, lr)
    assert str(lr / "s1" / "12.json") in str(e.value)
    (fr / "s1" / "12.json").unlink()
    (fr / "s1" / "20.json").unlink()
    with pytest.raises(CorpusError, match="frame 20 has labels but no features"):
        _read(fr, lr)
    (lr / "s1" / "20.json").unlink()
    with pytest.raises(CorpusError, match="missing in both roots .* jumps from 11 to 13"):
        _read(fr, lr)


def test_bad_files_and_folders(tmp_path):
    fr, lr = _one(tmp_path)
    (fr / "s1" / "7.json").write_text("{not json")
    with pytest.raises(CorpusError, match="not a readable JSON") as e:
        _read(fr, lr)
    assert "7.json" in str(e.value)
    (fr / "s1" / "7.json").write_text("[1, 2]")
    with pytest.raises(CorpusError, match="expected a JSON object"):
        _read(fr, lr)
    (fr / "s1" / "7.json").unlink()
    (fr / "s1" / "frame_7.json").write_text("{}")
    with pytest.raises(CorpusError, match="must be integers"):
        _read(fr, lr)
    (fr / "s1" / "frame_7.json").unlink()
    (fr / "s2").mkdir()
    with pytest.raises(CorpusError, match=r"no label folder for subject\(s\) \['s2'\]"):
        _read(fr, lr)
    (fr / "s2").rmdir()
    (lr / "s3").mkdir()
    with pytest.raises(CorpusError, match=r"no feature folder for subject\(s\) \['s3'\]"):
        _read(fr, lr)
    with pytest.raises(CorpusError, match="features root folder not found"):
        _read(tmp_path / "nowhere", lr)


def test_flat_temperature_cannot_be_normalized(tmp_path):
    fr, lr = _one(tmp_path, labels_mutate=lambda labs: [lab.update(temperature=32.0) for lab in labs])
    with pytest.raises(CorpusError, match="never rises above the baseline"):
        _read(fr, lr)


def test_frames_need_not_start_at_one(tmp_path):
    fr, lr = write_tree(tmp_path / "b", {"x": subject_frames(1, scores=False)}, first=100)
    sub = biovid.read_biovid(fr, lr, progress=False).subject("x")
    assert sub.info["first_frame"] == 100 and sub.frames == N
    assert "emotion_score" not in sub.info
    feats, _ = subject_frames(1)
    np.testing.assert_array_equal(sub.face[0, :100], np.asarray(feats[0]["expcode"], dtype=np.float32))


def test_emotion_ties_case_and_meta_keys(tmp_path):
    feats, labs = subject_frames(2, scores=False)
    for i, lab in enumerate(labs):  # 25 x "fear" (lower-case) and 25 x "Sadness": a tie
        lab["emotion"] = "fear" if i % 2 else "Sadness"
    fr, lr = write_tree(tmp_path / "t", {"s": (feats, labs)})
    corpus = biovid.read_biovid(fr, lr, progress=False, val_ids=[], baseline_c=30.0)
    sub = corpus.subject("s")
    assert sub.info["emotion"] == "Fear"  # ties go to the lower class index (Fear 3 < Sadness 6)
    assert set(sub.extras["emotion_class"].tolist()) == {EMOTIONS.index("Fear"), EMOTIONS.index("Sadness")}
    np.testing.assert_allclose(sub.stimulus, (TEMP - 30.0) / 16.0, atol=1e-6)
    assert corpus.meta["jaw_scale"] == 100.0 and corpus.meta["source"] == "biovid"
    assert corpus.meta["baseline_c"] == 30.0 and corpus.meta["split_seed"] is None
    assert biovid.read_biovid(fr, lr, progress=False, seed=3).meta["split_seed"] == 3
    assert biovid.subject_traits("s") == {}


def test_vectors_saved_with_a_batch_dimension_are_read(tmp_path):
    feats, labs = subject_frames(0)
    flat = [list(f["jawpose"]) for f in feats]
    for f in feats:
        f["jawpose"] = [f["jawpose"]]  # [[x, y, z]]: a tensor of shape [1, 3] dumped as is
    fr, lr = write_tree(tmp_path / "n", {"s": (feats, labs)})
    sub = biovid.read_biovid(fr, lr, progress=False).subject("s")
    np.testing.assert_array_equal(sub.face[:, 100:], (np.asarray(flat) * 100.0).astype(np.float32))


@pytest.mark.parametrize("workers", [1, 2])
def test_failed_conversion_leaves_no_corpus(tmp_path, workers):
    fr, lr = _one(tmp_path, lambda f: f[3].pop("expcode"))
    with pytest.raises(CorpusError, match="missing key 'expcode'"):
        biovid.convert_biovid(fr, lr, tmp_path / "out", progress=False, workers=workers)
    assert not (tmp_path / "out" / "meta.json").exists()
    with pytest.raises(InputError, match="workers"):
        biovid.convert_biovid(fr, lr, tmp_path / "out", progress=False, workers=0)
