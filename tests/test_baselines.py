"""Baselines: shapes and signature, exact nearest-neighbour retrieval, random windows come from training,
mean face, determinism, clear errors."""

import numpy as np
import pytest

from painface.data.corpus import Corpus, SubjectData, make_meta
from painface.errors import InputError
from painface.evaluate.baselines import (
    GroundTruth,
    MeanFace,
    NearestNeighbor,
    RandomTraining,
    TrainingPool,
    simple_baselines,
)
from painface.face.code import FEATURE_NAMES, pspi

D = len(FEATURE_NAMES)


def _corpus(frames=(300, 260, 200), n_val=1, units="normalized", seed=0):
    rng = np.random.default_rng(seed)
    subjects, infos = {}, []
    for i, t in enumerate(list(frames) + [150] * n_val):
        face = np.zeros((t, D), np.float32)
        face[:, :17] = rng.uniform(0, 5, (t, 17))
        face[:, 17:] = rng.normal(0, 3, (t, 3))
        stim = np.clip(np.sin(np.arange(t) / (7.0 + 3 * i)) + rng.normal(0, 0.05, t), 0, 1).astype(np.float32)
        info = {"id": f"s{i}", "split": "train" if i < len(frames) else "val", "expressiveness": 1.0,
                "emotion": "Neutral", "pattern": 0}
        infos.append(info)
        subjects[info["id"]] = SubjectData(info=info, face=face, stimulus=stim, pspi=pspi(face))
    meta = make_meta(fps=25, feature_names=FEATURE_NAMES, stimulus_units=units, subjects=infos)
    return Corpus(meta, subjects=subjects)


@pytest.fixture(scope="module")
def pool():
    return TrainingPool.from_corpus(_corpus())


def test_pool_statistics(pool):
    assert len(pool.faces) == 3 and np.concatenate(pool.faces).shape == (760, D)
    assert pool.spans(250).tolist() == [51, 11, 0]
    # mean and sd over all training frames, on faces whose answer is known: 100 frames of 1 and 300 of 3
    # give mean 2.5 and sd sqrt(0.25 * 1.5^2 + 0.75 * 0.5^2) = sqrt(0.75); the validation subject is left out
    c = _corpus(frames=(100, 300))
    for sid, value in zip(c.ids("train") + c.ids("val"), (1.0, 3.0, 100.0), strict=True):
        c.subject(sid).face[:] = value
    known = TrainingPool.from_corpus(c)
    np.testing.assert_allclose(known.mean, 2.5, atol=1e-6)
    np.testing.assert_allclose(known.std, np.sqrt(0.75), atol=1e-6)


def test_nearest_neighbor_finds_the_exact_training_window(pool):
    nn = NearestNeighbor(pool, stride=4, step=2)
    queries = np.stack([pool.stimuli[0][40:140], pool.stimuli[1][100:200], pool.stimuli[2][0:100]])
    assert nn.neighbors(queries).tolist() == [[0, 40], [1, 100], [2, 0]]
    out = nn.generate(queries, samples=3)
    assert out.shape == (9, 100, D)
    assert np.array_equal(out[0], pool.faces[0][40:140]) and np.array_equal(out[2], out[0])
    assert np.array_equal(out[3], pool.faces[1][100:200])
    # a noisy copy of a window still retrieves it (the signals of different subjects differ in period)
    noisy = pool.stimuli[1][100:200] + np.random.default_rng(0).normal(0, 0.01, 100).astype(np.float32)
    assert nn.neighbors(noisy).tolist() == [[1, 100]]


def test_random_training_windows_come_from_training(pool):
    rnd = RandomTraining(pool)
    out = rnd.generate(np.zeros((2, 50)), samples=4, seed=3)
    assert out.shape == (8, 50, D)
    for seq in out:  # each output is some training subject's frames t..t+50
        assert any(
            np.any(np.all(np.lib.stride_tricks.sliding_window_view(f, (50, D))[:, 0] == seq, axis=(1, 2)))
            for f in pool.faces
        )
    assert np.array_equal(out, rnd.generate(np.zeros((2, 50)), samples=4, seed=3))
    assert not np.array_equal(out, rnd.generate(np.zeros((2, 50)), samples=4, seed=4))
    assert not np.array_equal(out[0], out[1])


def test_mean_face_and_ground_truth(pool):
    out = MeanFace(pool).generate(np.zeros((2, 7)), samples=2)
    assert out.shape == (4, 7, D) and np.allclose(out, pool.mean)
    gt = np.random.default_rng(0).normal(size=(2, 7, D)).astype(np.float32)
    g = GroundTruth(gt).generate(np.zeros((2, 7)), 1.0, "Neutral", samples=3, seed=0, context=None, steps=5)
    assert g.shape == (6, 7, D) and np.array_equal(g[0], gt[0]) and np.array_equal(g[3], gt[1])
    assert np.array_equal(GroundTruth(gt).select(slice(1, 2)).generate(np.zeros((1, 7)))[0], gt[1])
    names = simple_baselines(pool, gt)
    assert list(names) == ["ground_truth", "random", "nearest_neighbor", "mean_face", "stimulus_lookup"]


def test_lagged_average_is_causal_and_lagged():
    from painface.evaluate.baselines import lagged_average

    s = np.array([0, 0, 0, 4, 4, 4, 4, 0, 0], np.float64)
    a = lagged_average(s, window=2, lag=1)
    # frame t averages s[t-2], s[t-1] (window 2 ending 1 frame before t); the start holds the first value
    assert a.tolist() == [0, 0, 0, 0, 2, 4, 4, 4, 2]
    assert lagged_average(s, 1, 0).tolist() == s.tolist()


def test_stimulus_lookup_recovers_a_lagged_response():
    """Training faces whose AU4 is 2 x the stimulus of 1 s earlier: the lookup finds the lag, returns the
    table's mean face per bin, scales AUs by expressiveness and leaves head pose alone."""
    from painface.evaluate.baselines import StimulusLookup

    rng = np.random.default_rng(1)
    subjects, infos, fps, lag = {}, [], 25, 25
    for i in range(3):
        t = 3000
        stim = np.repeat(rng.uniform(0, 1, t // 100), 100).astype(np.float32)  # 4 s steps
        face = np.zeros((t, D), np.float32)
        face[lag:, FEATURE_NAMES.index("AU4")] = 2.0 * stim[:-lag]
        face[:, FEATURE_NAMES.index("head_pitch")] = 3.0
        info = {"id": f"s{i}", "split": "train", "expressiveness": 0.5, "emotion": "Neutral", "pattern": 0}
        infos.append(info)
        subjects[info["id"]] = SubjectData(info=info, face=face, stimulus=stim, pspi=pspi(face))
    meta = make_meta(fps=fps, feature_names=FEATURE_NAMES, stimulus_units="normalized", subjects=infos)
    lk = StimulusLookup(TrainingPool.from_corpus(Corpus(meta, subjects=subjects)))
    centre_s = (lk.lag + (lk.window - 1) / 2) / fps  # the averaged span's centre, behind the current frame
    assert centre_s == pytest.approx(1.0, abs=0.3) and lk.train_corr > 0.95
    query = np.concatenate([np.zeros(100), np.full(200, 0.8)]).astype(np.float32)
    out = lk.generate(np.stack([query, query]), expressiveness=[0.5, 1.0], samples=2)
    assert out.shape == (4, 300, D) and np.array_equal(out[0], out[1])  # deterministic tries
    au4 = out[:, :, FEATURE_NAMES.index("AU4")]
    assert au4[0, 90] < 0.2 and au4[0, -1] == pytest.approx(1.6, abs=0.15)  # before and after the lagged rise
    assert au4[2, -1] == pytest.approx(2 * au4[0, -1], rel=1e-5)  # expressiveness 1.0 vs the mean 0.5
    assert np.allclose(out[:, :, FEATURE_NAMES.index("head_pitch")], 3.0)


def test_bad_inputs(pool):
    with pytest.raises(InputError, match="normalized"):
        TrainingPool.from_corpus(_corpus(units="celsius"))
    with pytest.raises(InputError, match="no 'train'"):
        TrainingPool.from_corpus(_corpus(frames=(), n_val=2))
    with pytest.raises(InputError, match="holds 400 frames"):
        NearestNeighbor(pool).generate(np.zeros(400))
    with pytest.raises(InputError, match="holds 400 frames"):
        RandomTraining(pool).generate(np.zeros(400))
    with pytest.raises(InputError, match="does not match"):
        GroundTruth(np.zeros((2, 7, D))).generate(np.zeros((3, 7)))
    with pytest.raises(InputError, match="samples"):
        MeanFace(pool).generate(np.zeros(5), samples=0)
    with pytest.raises(InputError, match="stimulus"):
        MeanFace(pool).generate(np.full(5, np.nan))
