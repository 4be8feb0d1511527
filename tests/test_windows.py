"""Training and validation windows, stimulus change points and the feature normalizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from painface.data.corpus import Corpus, SubjectData, make_meta
from painface.data.trials import stimulus_changes
from painface.data.windows import FeatureNormalizer, WindowDataset, subject_emotion
from painface.errors import InputError
from painface.face.code import EMOTIONS, FEATURE_NAMES, pspi

FRAMES = 2000
ONSETS = (200, 600, 1000, 1400)
RAMP, PLATEAU = 25, 100
RISES = ONSETS
FALLS = tuple(o + RAMP + PLATEAU for o in ONSETS)
CHANGES = tuple(sorted(RISES + FALLS))


def stimulus(levels=(0.25, 0.5, 0.75, 1.0), frames: int = FRAMES) -> np.ndarray:
    """Trapezoid trials: the first frame above rest is the onset, the first frame below the plateau
    is onset + RAMP + PLATEAU."""
    t = np.arange(frames, dtype=np.float64)
    s = np.zeros(frames)
    for on, v in zip(ONSETS, levels, strict=True):
        up = np.clip((t - on + 1) / RAMP, 0, 1)
        down = np.clip(1 - (t - (on + RAMP + PLATEAU) + 1) / RAMP, 0, 1)
        s = np.maximum(s, v * np.minimum(up, down) * (t >= on))
    return s.astype(np.float32)


def make_corpus(n_train: int = 2, n_val: int = 1, frames: int = FRAMES, seed: int = 0, **info_extra) -> Corpus:
    rng = np.random.default_rng(seed)
    infos, subs = [], {}
    for i in range(n_train + n_val):
        sid = f"vs{i:03d}"
        face = np.zeros((frames, len(FEATURE_NAMES)), dtype=np.float32)
        face[:, :17] = rng.uniform(0, 5, size=(frames, 17)) * (i + 1) / (n_train + n_val)
        face[:, 17:] = rng.normal(scale=3.0, size=(frames, 3)) + i
        info = {
            "id": sid,
            "split": "train" if i < n_train else "val",
            "expressiveness": 1.5 + i,
            "emotion": EMOTIONS[i % 8],
            "pattern": "stoic",
            **info_extra,
        }
        infos.append(info)
        subs[sid] = SubjectData(info=info, face=face, stimulus=stimulus(frames=frames), pspi=pspi(face))
    meta = make_meta(fps=25.0, feature_names=FEATURE_NAMES, stimulus_units="normalized", subjects=infos)
    return Corpus(meta, subjects=subs)


# --- change points -----------------------------------------------------------------------------
def test_change_points_of_trapezoid_trials():
    s = stimulus()
    np.testing.assert_array_equal(stimulus_changes(s), CHANGES)
    np.testing.assert_array_equal(stimulus_changes(s, kinds="rise"), RISES)
    np.testing.assert_array_equal(stimulus_changes(s, kinds="fall"), FALLS)
    # the same in °C, with sensor jitter and a small overshoot ripple on every plateau
    rng = np.random.default_rng(3)
    celsius = 32 + 18 * s + rng.uniform(-0.01, 0.01, size=s.size)
    for on in ONSETS:
        celsius[on + RAMP + 10 : on + RAMP + 14] += 0.2
    np.testing.assert_array_equal(stimulus_changes(celsius), CHANGES)
    assert stimulus_changes(np.zeros(50)).size == 0
    # a step is a change point at the first frame of the new level
    np.testing.assert_array_equal(stimulus_changes(np.r_[np.zeros(10), np.ones(10), np.zeros(5)]), [10, 20])
    with pytest.raises(InputError, match="kinds"):
        stimulus_changes(s, kinds="up")
    with pytest.raises(InputError, match="NaN"):
        stimulus_changes(np.r_[s, np.nan])


# --- training windows --------------------------------------------------------------------------
def test_training_windows_hold_the_change_point_at_the_drawn_offset():
    ds = WindowDataset(make_corpus(), "train", random_share=0.0, min_before=8, max_before=40, seed=1)
    assert len(ds) == 2 * len(CHANGES) and ds.subject_ids == ["vs000", "vs001"]
    for s in range(2):
        np.testing.assert_array_equal(ds.changes[s], CHANGES)
    offsets = []
    for i in range(len(ds)):
        item = ds[i]
        start, change = int(item["start"]), int(item["change"])
        assert item["face"].shape == (64, 20) and item["face"].dtype == torch.float32
        assert item["stimulus"].shape == (64,) and item["pspi"].shape == (64,)
        assert change in CHANGES
        off = change - start
        assert 8 <= off <= 40
        offsets.append(off)
        # the window really holds the change: the stimulus moves between frames off-1 and off
        st = item["stimulus"].numpy()
        assert st[off] != st[off - 1]
        assert np.all(st[: off - 1] == st[0])
    assert len(set(offsets)) > 5  # jittered, not one fixed offset


def test_training_windows_are_deterministic_for_a_seed():
    corpus = make_corpus()
    a = WindowDataset(corpus, "train", seed=7)
    b = WindowDataset(corpus, "train", seed=7)
    c = WindowDataset(corpus, "train", seed=8)
    np.testing.assert_array_equal(a.windows, b.windows)
    assert not np.array_equal(a.windows, c.windows)
    first = a.windows.copy()
    a.set_epoch(1)
    b.set_epoch(1)
    np.testing.assert_array_equal(a.windows, b.windows)
    assert not np.array_equal(a.windows, first)
    a.set_epoch(0)
    np.testing.assert_array_equal(a.windows, first)
    for key in ("face", "stimulus", "start"):
        assert torch.equal(a[3][key], WindowDataset(corpus, "train", seed=7)[3][key])


def test_random_share_and_per_change():
    corpus = make_corpus()
    ds = WindowDataset(corpus, "train", random_share=0.2, per_change=3, seed=0)
    n_change = 2 * len(CHANGES) * 3
    assert len(ds) == n_change + round(0.2 * n_change / 0.8)
    rand = ds.windows[ds.windows[:, 2] == -1]
    assert rand.shape[0] == 12
    assert np.all(rand[:, 1] >= 0) and np.all(rand[:, 1] <= FRAMES - 64)
    assert ds[len(ds) - 1]["change"].item() == -1


def test_windows_near_the_edges_are_shifted_inside():
    corpus = make_corpus(frames=1500)  # the last fall (1525) lies beyond the end: 7 change points
    ds = WindowDataset(corpus, "train", length=300, random_share=0.0, seed=2)
    assert np.all(ds.windows[:, 1] >= 0) and np.all(ds.windows[:, 1] + 300 <= 1500)
    assert np.all((ds.windows[:, 2] >= ds.windows[:, 1]) & (ds.windows[:, 2] < ds.windows[:, 1] + 300))


# --- validation windows ------------------------------------------------------------------------
def test_val_windows_start_a_quarter_before_each_change():
    corpus = make_corpus(frames=3000)
    ds = WindowDataset(corpus, "val", mode="val")
    assert ds.length == 640 and ds.lead == 160 and ds.subject_ids == ["vs002"]
    assert len(ds) == len(CHANGES)
    item = ds[0]
    assert item["face"].shape == (640, 20)
    starts = [int(ds[i]["start"]) for i in range(len(ds))]
    changes = [int(ds[i]["change"]) for i in range(len(ds))]
    assert changes == list(CHANGES)
    assert starts == [c - 160 for c in CHANGES]
    # near the end of a recording the window is shifted inside it: 1525 - 160 + 640 > 2000
    short = WindowDataset(make_corpus(frames=2000), "val", mode="val")
    assert [int(w[1]) for w in short.windows] == [c - 160 for c in CHANGES[:-1]] + [2000 - 640]
    again = WindowDataset(corpus, "val", mode="val")
    again.set_epoch(5)
    np.testing.assert_array_equal(again.windows, ds.windows)
    rises = WindowDataset(corpus, "val", mode="val", kinds="rise", length=320)
    assert [int(w[1]) for w in rises.windows] == [max(0, r - 80) for r in RISES]


# --- items: conditions, normalizer, batching ---------------------------------------------------
def test_item_conditions():
    corpus = make_corpus()
    ds = WindowDataset(corpus, "train", seed=0)
    for i in range(len(ds)):
        item = ds[i]
        s = int(item["subject"])
        assert item["expressiveness"].shape == () and float(item["expressiveness"]) == 1.5 + s
        np.testing.assert_array_equal(item["emotion"].numpy(), np.eye(8, dtype=np.float32)[s])
        start = int(item["start"])
        sub = corpus.subject(ds.subject_ids[s])
        np.testing.assert_array_equal(item["face"].numpy(), sub.face[start : start + 64])
        np.testing.assert_array_equal(item["pspi"].numpy(), sub.pspi[start : start + 64])
    scores = [0.05] * 7 + [0.65]
    ds2 = WindowDataset(make_corpus(emotion_score=scores), "train")
    np.testing.assert_allclose(ds2[0]["emotion"].numpy(), scores)
    with pytest.raises(InputError, match="emotion_score"):
        subject_emotion({"id": "x", "emotion": "Fear", "emotion_score": [1.0, 2.0]})
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=False)))
    assert batch["face"].shape == (4, 64, 20) and batch["emotion"].shape == (4, 8)
    assert batch["expressiveness"].shape == (4,) and batch["start"].dtype == torch.int64


def test_normalizer_fit_apply_and_round_trip(tmp_path):
    corpus = make_corpus()
    norm = FeatureNormalizer.fit(corpus, "train")
    train = np.concatenate([corpus.subject(s).face for s in corpus.ids("train")]).astype(np.float64)
    np.testing.assert_allclose(norm.mean, train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(norm.std, train.std(axis=0), rtol=1e-4)
    ds = WindowDataset(corpus, "train", normalizer=norm, seed=0)
    whole = np.concatenate([ds._face[0], ds._face[1]])
    np.testing.assert_allclose(whole.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(whole.std(axis=0), 1.0, atol=1e-4)
    item = ds[0]
    raw = corpus.subject(ds.subject_ids[int(item["subject"])]).face
    start = int(item["start"])
    np.testing.assert_allclose(norm.denormalize(item["face"]).numpy(), raw[start : start + 64], atol=1e-4)
    # JSON round trip, via a dict and via a file
    again = FeatureNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    np.testing.assert_array_equal(again.mean, norm.mean)
    np.testing.assert_array_equal(again.std, norm.std)
    norm.save(tmp_path / "norm.json")
    loaded = FeatureNormalizer.load(tmp_path / "norm.json")
    assert loaded.feature_names == FEATURE_NAMES
    np.testing.assert_array_equal(loaded.std, norm.std)
    # a constant feature keeps std 1
    const = make_corpus()
    for s in const.ids():
        const.subject(s).face[:, 5] = 2.0
    n2 = FeatureNormalizer.fit(const)
    assert n2.std[5] == 1.0 and n2.mean[5] == pytest.approx(2.0)


def test_normalizer_bad_input(tmp_path):
    with pytest.raises(InputError, match="one per feature"):
        FeatureNormalizer([0.0, 1.0], [1.0], ["a", "b"])
    with pytest.raises(InputError, match="std finite and > 0"):
        FeatureNormalizer([0.0], [0.0], ["a"])
    with pytest.raises(InputError, match="keys"):
        FeatureNormalizer.from_dict({"mean": [0.0]})
    (tmp_path / "n.json").write_text("{")
    with pytest.raises(InputError, match="cannot read the normalizer"):
        FeatureNormalizer.load(tmp_path / "n.json")
    norm = FeatureNormalizer([0.0] * 3, [1.0] * 3, ["a", "b", "c"])
    with pytest.raises(InputError, match="has 20 features, expected 3"):
        norm.normalize(np.zeros((4, 20)))
    with pytest.raises(InputError, match="feature names differ"):
        WindowDataset(make_corpus(), "train", normalizer=norm)


# --- bad arguments -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "holdout"}, "split: 'holdout'"),
        ({"mode": "eval"}, "mode: 'eval'"),
        ({"length": 2500}, "subject 'vs000': 2000 frames, shorter than the window of 2500"),
        ({"length": 0}, "length"),
        ({"max_before": 64}, "max_before"),
        ({"min_before": 10, "max_before": 5}, "min_before"),
        ({"random_share": 1.0}, "random_share"),
        ({"per_change": 0}, "per_change"),
        ({"mode": "val", "lead": 700}, "lead"),
        ({"kinds": "up"}, "kinds"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        WindowDataset(make_corpus(), **kwargs)


def test_empty_split_and_flat_stimulus():
    with pytest.raises(InputError, match="no subjects"):
        WindowDataset(make_corpus(n_val=0), "val")
    flat = make_corpus()
    for s in flat.ids():
        flat.subject(s).stimulus[:] = 0.0
    with pytest.raises(InputError, match="no stimulus change points"):
        WindowDataset(flat, "train", random_share=0.0)
    ds = WindowDataset(flat, "train", random_share=0.1)
    assert len(ds) == 2 * FRAMES // 64 and np.all(ds.windows[:, 2] == -1)
    with pytest.raises(IndexError):
        ds[len(ds)]
