"""Evaluation metrics: DTW against a brute-force reference, hand-computed cases, the constant rule, the
PSPI regressor."""

import itertools

import numpy as np
import pytest

from painface.data.corpus import Corpus, SubjectData, make_meta
from painface.errors import InputError
from painface.evaluate import metrics as M
from painface.face.code import FEATURE_NAMES, FLAME_NAMES, pspi


def brute_dtw(a, b, window=None):
    """Minimum over all monotone warping paths (enumerated by recursion) of sum (a_i - b_j)^2."""
    n, m = len(a), len(b)

    def best(i, j):
        if window is not None and abs(i - j) > window:
            return np.inf
        c = (a[i] - b[j]) ** 2
        if i == 0 and j == 0:
            return c
        prev = []
        if i > 0:
            prev.append(best(i - 1, j))
        if j > 0:
            prev.append(best(i, j - 1))
        if i > 0 and j > 0:
            prev.append(best(i - 1, j - 1))
        return c + min(prev)

    return best(n - 1, m - 1)


@pytest.mark.parametrize("seed", range(12))
def test_dtw_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    a, b = rng.uniform(0, 16, n), rng.uniform(0, 16, n)
    assert M.dtw_cost(a, b) == pytest.approx(brute_dtw(a, b), rel=1e-9)
    assert M.dtw_cost(a, b, window=1) == pytest.approx(brute_dtw(a, b, window=1), rel=1e-9)
    assert M.dtw_cost(a, b, window=0) == pytest.approx(((a - b) ** 2).sum(), rel=1e-9)
    c = rng.uniform(0, 16, n + 2)  # unequal lengths, unconstrained
    assert M.dtw_cost(a, c) == pytest.approx(brute_dtw(a, c), rel=1e-9)


def test_sim_hand_computed():
    # y is g delayed by one frame; the path must end at (3, 3), so g's final 0 meets y's final 4 once:
    # (0,0)(1,1)(1,2)(2,3)(3,3) costs 0 + 0 + 0 + 0 + 16
    g = np.array([0.0, 0.0, 4.0, 0.0])
    y = np.array([0.0, 0.0, 0.0, 4.0])
    assert M.dtw_cost(g, y) == pytest.approx(16.0)
    assert M.sim(g, y)[0] == pytest.approx(np.sqrt(16.0 / 4))
    # a shift with a plateau is warped away entirely
    g2, y2 = np.array([0.0, 2.0, 2.0, 5.0]), np.array([0.0, 0.0, 2.0, 5.0])
    assert M.sim(g2, y2)[0] == pytest.approx(0.0)
    # constant offset of 1 PSPI over all frames: sim = 1 (no warping helps)
    assert M.sim(np.ones((1, 8)), np.zeros(8))[0] == pytest.approx(1.0)
    # sim <= RMSE always
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 5, (4, 30)), rng.uniform(0, 5, (4, 30))
    assert np.all(M.sim(a, b) <= np.sqrt(((a - b) ** 2).mean(1)) + 1e-12)
    assert np.all(M.sim(a, a) == 0)


def test_pearson_values_and_constant_rule():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    r = M.pearson(np.stack([y, 2 * y + 1, -y, np.array([1.0, 0, 0, 1])]), y)
    assert r[:3] == pytest.approx([1.0, 1.0, -1.0])
    assert r[3] == pytest.approx(0.0)  # symmetric bump: uncorrelated with a ramp
    g = np.array([1.0, 2.0, 4.0, 3.0])  # hand: gc=[-1.5,-.5,1.5,.5], yc=[-1.5,-.5,.5,1.5]; cov=(2.25+.25+.75+.75)/4=1
    assert M.pearson(g, y)[0] == pytest.approx(1.0 / 1.25)  # var of each = 1.25
    zeros = np.zeros(4)
    assert M.pearson(zeros, zeros)[0] == 1.0  # identical constants: a perfect reproduction
    assert M.pearson(zeros, y)[0] == 0.0  # generated constant
    assert M.pearson(y, zeros)[0] == 0.0  # ground truth constant, generated moves
    assert M.pearson(np.ones(4), zeros)[0] == 0.0  # different constants
    assert M.constant_share(np.stack([zeros, y]), y) == 0.5


def test_dist_var_divrs_hand_computed():
    gt = np.zeros((1, 2, 2))
    gen = np.array([[[1.0, 2.0], [3.0, 0.0]]])
    assert M.dist(gen, gt)[0] == pytest.approx((1 + 4 + 9 + 0) / 4)
    assert M.dist(gen, gt, scale=[1.0, 2.0])[0] == pytest.approx((1 + 1 + 9 + 0) / 4)
    # var over time: feature 0 values 1, 3 -> var 1; feature 1 values 2, 0 -> var 1
    assert M.var(gen)[0] == pytest.approx(1.0)
    assert M.var(gen, scale=[1.0, 2.0])[0] == pytest.approx((1 + 0.25) / 2)
    # divrs: 3 tries of one frame, one feature: values 0, 1, 3 -> pairs 1, 9, 4 -> mean 14/3
    x = np.array([0.0, 1.0, 3.0]).reshape(1, 3, 1, 1)
    assert M.divrs(x)[0] == pytest.approx(14 / 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 5, 3))
    ref = [np.mean([((x[p, i] - x[p, j]) ** 2).mean() for i, j in itertools.combinations(range(4), 2)])
           for p in range(2)]
    assert M.divrs(x) == pytest.approx(ref)
    assert M.divrs(np.repeat(x[:, :1], 3, axis=1)) == pytest.approx([0, 0])


def test_summarize_and_sequence_metrics():
    assert M.summarize([1.0, 3.0]) == {"mean": 2.0, "std": 1.0}
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 5, (3, 20, len(FEATURE_NAMES))).astype(np.float32)
    ps = pspi(face)
    out = M.sequence_metrics(ps, ps, face, face)
    assert np.all(out["sim"] == 0) and np.allclose(out["corr"], 1) and np.all(out["dist"] == 0)
    assert np.all(out["var"] > 0)


def test_bad_inputs_are_clear():
    with pytest.raises(InputError, match="sim"):
        M.sim(np.zeros((2, 5)), np.zeros((2, 6)))
    with pytest.raises(InputError, match="equal length"):
        M.dtw_cost(np.zeros(3), np.zeros(4), window=1)
    with pytest.raises(InputError, match="NaN"):
        M.pearson(np.array([np.nan, 1.0]), np.zeros(2))
    with pytest.raises(InputError, match="at least 2"):
        M.divrs(np.zeros((1, 1, 4, 2)))
    with pytest.raises(InputError, match="scale"):
        M.dist(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), scale=[1.0, 0.0, 1.0])
    with pytest.raises(InputError, match="shape"):
        M.dist(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(InputError, match="PspiRegressor"):
        M.pspi_of(np.zeros((2, len(FLAME_NAMES))), FLAME_NAMES)


def _flame_corpus(rng, n_train=4, n_val=2, frames=200):
    """FLAME-space subjects whose PSPI is a known linear function of the code plus a little noise."""
    w = rng.normal(size=len(FLAME_NAMES)) * 0.05
    subjects, infos = {}, []
    for i in range(n_train + n_val):
        face = rng.normal(size=(frames, len(FLAME_NAMES))).astype(np.float32)
        ps = np.clip(4.0 + face @ w + 0.01 * rng.normal(size=frames), 0, 16).astype(np.float32)
        info = {"id": f"s{i}", "split": "train" if i < n_train else "val", "expressiveness": 1.0,
                "emotion": "Neutral", "pattern": 0}
        infos.append(info)
        subjects[info["id"]] = SubjectData(info=info, face=face, stimulus=np.zeros(frames, np.float32), pspi=ps)
    meta = make_meta(fps=25, feature_names=FLAME_NAMES, stimulus_units="normalized", subjects=infos)
    return Corpus(meta, subjects=subjects), w


def test_pspi_regressor_recovers_a_linear_map():
    corpus, w = _flame_corpus(np.random.default_rng(0))
    reg = M.fit_pspi_regressor(corpus, alpha=1e-3)
    assert reg.r2_val > 0.95 and reg.r2_train > 0.95
    assert np.allclose(reg.weights / reg.std, w, atol=0.01)
    sub = corpus.subject("s5")
    assert np.abs(M.pspi_of(sub.face, FLAME_NAMES, reg) - sub.pspi).max() < 0.1
    d = reg.describe()
    assert d["kind"] == "ridge" and d["r2_val"] == reg.r2_val


def test_pspi_of_facs_is_exact():
    face = np.zeros((2, len(FEATURE_NAMES)), np.float32)
    face[1, FEATURE_NAMES.index("AU4")] = 3.0
    assert M.pspi_of(face, FEATURE_NAMES).tolist() == [0.0, 3.0]
