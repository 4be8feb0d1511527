"""FSQ-VAE autoregressive baseline: quantizer, tokenizer, transformer, training command, generation."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from painface.baselines.fsq import FsqAR, load_fsq, sample_tokens
from painface.baselines.fsq_nets import FSQ, ARConfig, FsqTokenizer, TokenizerConfig, TokenTransformer
from painface.baselines.fsq_train import FsqTrainConfig, FsqTrainer, lr_at, token_usage
from painface.cli import main
from painface.errors import InputError
from painface.face.code import FEATURE_NAMES
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol

TINY = {
    "tokenizer": {"hidden": 32, "blocks": 1},
    "ar": {"d_model": 32, "layers": 1, "heads": 2, "max_tokens": 8, "dropout": 0.0},
    "tok_batch_size": 8,
    "batch_size": 8,
    "warmup": 2,
    "ckpt_every": 3,
    "val_every": 3,
    "val_windows": 8,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("fsqcorpus")
    return simulate_corpus(out, n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=2), workers=1, progress=False)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """A tiny model trained for a few steps by the command (a checkpoint with real metadata)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("fsqrun")
    cfg = tmp_path_factory.mktemp("cfg") / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    assert main(["train-fsq", "--data", str(corpus), "--out", str(out), "--steps", "6", "--config", str(cfg),
                 "--quiet"]) == 0
    return out / "fsq_ar.safetensors"


# --- quantizer --------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 6, 4], [3, 3]])
def test_fsq_values_lie_on_the_level_grid(levels):
    fsq = FSQ(levels)
    z = torch.randn(2000, len(levels), generator=torch.Generator().manual_seed(0)) * 4
    q = fsq(z)
    ints = q * fsq.half_width
    assert torch.allclose(ints, ints.round(), atol=1e-5)
    lv = torch.tensor(levels)
    lo, hi = -(lv // 2), lv - 1 - lv // 2
    assert ((ints.round() >= lo) & (ints.round() <= hi)).all()
    # large inputs reach every level of every channel, and 0 maps to 0
    for j, n in enumerate(levels):
        assert len(torch.unique(ints[:, j].round())) == n
    assert torch.equal(fsq(torch.zeros(1, len(levels))), torch.zeros(1, len(levels)))
    assert q.abs().max() <= 1.0


def test_fsq_straight_through_gradient_equals_the_bound_derivative():
    fsq = FSQ([8, 5, 5, 5])
    z = torch.tensor([[0.3, -1.2, 0.05, 2.0]], requires_grad=True)
    fsq(z).sum().backward()
    # rounding is the identity backwards: d/dz [tanh(z + shift) * half_l / half_width]
    expected = (1 - torch.tanh(z.detach() + fsq.shift) ** 2) * fsq.half_l / fsq.half_width
    assert torch.allclose(z.grad, expected, atol=1e-6)
    assert (z.grad > 0).all()


def test_codes_and_ids_round_trip_exactly():
    fsq = FSQ([8, 5, 5, 5])
    assert fsq.codebook_size == 1000
    ids = torch.arange(1000)
    codes = fsq.ids_to_codes(ids)
    assert len({tuple(c) for c in codes.tolist()}) == 1000
    assert torch.equal(fsq.codes_to_ids(codes), ids)
    assert torch.equal(fsq.ids_to_codes(fsq.codes_to_ids(codes)), codes)
    q = fsq(torch.randn(64, 4) * 3)
    assert torch.equal(fsq.ids_to_codes(fsq.codes_to_ids(q)), q)
    with pytest.raises(InputError, match="0..999"):
        fsq.ids_to_codes(torch.tensor([1000]))
    with pytest.raises(InputError, match="levels"):
        FSQ([8, 2])


def test_tokenizer_round_trip_and_causal_decoder():
    tok = FsqTokenizer(TokenizerConfig(features=20, hidden=16, blocks=2)).eval()
    x = torch.randn(3, 24, 20, generator=torch.Generator().manual_seed(1))
    ids = tok.tokenize(x)
    assert ids.shape == (3, 6) and ids.dtype == torch.int64
    assert torch.equal(tok.detokenize(ids), tok.decode(tok.encode(x)))
    # appending tokens never changes the frames already decoded
    more = torch.cat([ids, ids[:, :2]], 1)
    torch.testing.assert_close(tok.detokenize(more)[:, :24], tok.detokenize(ids))
    with pytest.raises(InputError, match="multiple of 4"):
        tok.encode(torch.zeros(1, 10, 20))


def test_tiny_tokenizer_and_transformer_overfit_one_window():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 32)[:, None]
    x = torch.cat([torch.sin(6 * t + k) for k in range(6)], 1)[None]  # [1, 32, 6]
    tok = FsqTokenizer(TokenizerConfig(features=6, hidden=64, blocks=1, levels=[8, 8, 8]))
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    first = float(F.mse_loss(tok(x)[0], x).detach())
    for _ in range(300):
        loss = F.mse_loss(tok(x)[0], x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(F.mse_loss(tok(x)[0], x).detach()) < first / 10
    ar = TokenTransformer(ARConfig(vocab=50, chunk=4, d_model=32, layers=1, heads=2, max_tokens=8, dropout=0.0))
    target = torch.randint(50, (1, 8), generator=gen)
    prev = torch.cat([torch.full((1, 1), ar.bos), target[:, :-1]], 1)
    args = (prev, torch.rand(1, 8, 4, generator=gen), torch.tensor([1.0]), torch.full((1, 8), 0.125))
    opt = torch.optim.Adam(ar.parameters(), lr=1e-2)
    first = float(F.cross_entropy(ar(*args)[0], target[0]).detach())
    for _ in range(100):
        loss = F.cross_entropy(ar(*args)[0], target[0])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 10
    assert torch.equal(ar(*args).argmax(-1), target)


def test_transformer_is_causal():
    ar = TokenTransformer(ARConfig(vocab=20, chunk=2, d_model=16, layers=2, heads=2, max_tokens=6)).eval()
    gen = torch.Generator().manual_seed(0)
    prev, stim = torch.randint(20, (1, 6), generator=gen), torch.rand(1, 6, 2, generator=gen)
    e, emo = torch.tensor([1.0]), torch.full((1, 8), 0.125)
    a = ar(prev, stim, e, emo)
    prev2, stim2 = prev.clone(), stim.clone()
    prev2[0, 4], stim2[0, 4] = (prev[0, 4] + 1) % 20, 0.9
    b = ar(prev2, stim2, e, emo)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_incremental_decoding_with_cache_equals_full_recompute():
    ar = TokenTransformer(ARConfig(vocab=20, chunk=2, d_model=16, layers=2, heads=2, max_tokens=8)).eval()
    gen = torch.Generator().manual_seed(0)
    prev, stim = torch.randint(20, (3, 8), generator=gen), torch.rand(3, 8, 2, generator=gen)
    e, emo = torch.tensor([0.5, 1.0, 3.0]), torch.full((3, 8), 0.125)
    full = ar(prev, stim, e, emo)
    cache = [[] for _ in ar.blocks]
    steps = [ar(prev[:, :3], stim[:, :3], e, emo, cache=cache)]
    for j in range(3, 8):
        steps.append(ar(prev[:, j:j + 1], stim[:, j:j + 1], e, emo, start=j, cache=cache))
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(InputError, match="at most 8"):
        ar(prev[:, :1], stim[:, :1], e, emo, start=8)


def test_sample_tokens_inverse_cdf_greedy_and_top_k():
    logits = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))
    assert [int(sample_tokens(logits, torch.tensor([u]))) for u in (0.05, 0.15, 0.35, 0.95)] == [0, 1, 2, 3]
    assert int(sample_tokens(logits, torch.tensor([0.05]), temperature=0)) == 3
    # top-2 keeps tokens 2 and 3 with probabilities 3/7 and 4/7
    assert int(sample_tokens(logits, torch.tensor([0.4]), top_k=2)) == 2
    assert int(sample_tokens(logits, torch.tensor([0.45]), top_k=2)) == 3


def test_token_usage_and_lr_schedule():
    u = token_usage(torch.tensor([0, 0, 1, 1]), 10)
    assert u["used"] == 2 and u["usage"] == pytest.approx(0.2) and u["perplexity"] == pytest.approx(2.0)
    cfg = FsqTrainConfig(warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, 100, 1e-3, cfg) == pytest.approx(1e-4)
    assert lr_at(99, 100, 1e-3, cfg) == pytest.approx(1e-4, rel=0.05)


# --- training ---------------------------------------------------------------------------------
def test_training_writes_checkpoint_with_metrics(trained):
    meta = json.loads(trained.with_suffix(".json").read_text())
    m = meta["metrics"]
    assert m["recon_mse"] > 0 and len(m["recon_mse_per_feature"]) == len(FEATURE_NAMES)
    assert 1 <= m["train_tokens"]["used"] <= 1000 and 1 <= m["train_tokens"]["perplexity"] <= 1000
    assert 0 < m["ar_val_loss"] < 20 and 0 <= m["ar_val_accuracy"] <= 1
    assert meta["training"]["stage"] == "done" and meta["training"]["step"] == 6
    tok, ar, _ = load_fsq(trained)
    assert ar.config.vocab == tok.fsq.codebook_size == 1000


class Stop(Exception):
    pass


@pytest.mark.parametrize("stage", ["tokenizer", "ar"])
def test_training_stopped_mid_stage_resumes_to_the_same_weights(corpus, tmp_path, stage):
    torch.set_num_threads(1)
    cfg = {**TINY, "tokenizer_steps": 6, "ar_steps": 6, "ar": {**TINY["ar"], "dropout": 0.1}}
    full = FsqTrainer(corpus, tmp_path / "full", FsqTrainConfig.from_dict(cfg), progress=False)
    full.run()
    killed = FsqTrainer(corpus, tmp_path / "run", FsqTrainConfig.from_dict(cfg), progress=False)
    log = killed.log

    def stop_after_log(rec):
        log(rec)
        if killed.stage == stage and rec["step"] == 3:
            raise Stop

    killed.log = stop_after_log
    with pytest.raises(Stop):
        killed.run()
    resumed = FsqTrainer(corpus, tmp_path / "run", FsqTrainConfig.from_dict(cfg), progress=False)
    assert (resumed.stage, resumed.step) == (stage, 3)
    resumed.run()
    for module in ("tokenizer", "ar"):
        want = getattr(full, module).state_dict()
        for k, v in getattr(resumed, module).state_dict().items():
            assert torch.equal(v, want[k]), k
    assert json.loads((tmp_path / "run" / "fsq_ar.json").read_text())["metrics"] == full.metrics
    # asking a finished run for more AR steps continues it
    more = FsqTrainer(corpus, tmp_path / "run", FsqTrainConfig.from_dict({**cfg, "ar_steps": 8}), progress=False)
    assert (more.stage, more.step) == ("ar", 6)


def test_training_config_errors(corpus, tmp_path):
    with pytest.raises(InputError, match="unknown key"):
        FsqTrainConfig.from_dict({"stepz": 1})
    with pytest.raises(InputError, match=">= 1"):
        FsqTrainConfig.from_dict({"ar_steps": 0})
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["train-fsq", "--data", str(corpus), "--out", str(tmp_path / "o"), "--config", str(bad)]) == 2


# --- generation -------------------------------------------------------------------------------
def test_generate_shapes_units_and_determinism(trained):
    model = FsqAR.load(trained)
    stim = np.linspace(0, 1, 37, dtype=np.float32)
    a = model.generate(stim, 1.0, "Neutral", samples=3, seed=5)
    assert a.shape == (3, 37, len(FEATURE_NAMES)) and a.dtype == np.float32
    assert np.all(np.isfinite(a)) and a[..., :17].min() >= 0 and a[..., :17].max() <= 5
    assert np.array_equal(a, model.generate(stim, 1.0, "Neutral", samples=3, seed=5))
    assert not np.array_equal(a, model.generate(stim, 1.0, "Neutral", samples=3, seed=6))
    assert not np.array_equal(a[0], a[1])  # samples differ
    long = model.generate(np.zeros(100, np.float32), 2.0, "Fear", seed=0)  # longer than the sliding window
    assert long.shape == (1, 100, len(FEATURE_NAMES))
    greedy = model.generate(stim, 1.0, "Neutral", samples=2, temperature=0)
    assert np.array_equal(greedy[0], greedy[1])


def test_generate_batched_equals_alone(trained):
    model = FsqAR.load(trained)
    rng = np.random.default_rng(0)
    stim = rng.random((3, 30)).astype(np.float32)
    expr, emo = [0.5, 2.0, 4.0], np.eye(8, dtype=np.float32)[[0, 5, 7]]
    together = model.generate(stim, expr, emo, samples=2, seed=3)
    assert together.shape == (6, 30, len(FEATURE_NAMES))
    for p in range(3):
        alone = model.generate(stim[p], expr[p], emo[p], samples=2, seed=3)
        np.testing.assert_allclose(together[2 * p:2 * p + 2], alone, atol=1e-5)


def test_generate_with_context(trained):
    model = FsqAR.load(trained)
    ctx = np.zeros((2, 10, len(FEATURE_NAMES)), np.float32)
    ctx[..., 2] = 3.0  # brows lowered
    out = model.generate(np.zeros(12, np.float32), 1.0, "Neutral", samples=2, context=ctx)
    assert out.shape == (2, 12, len(FEATURE_NAMES))
    cold = model.generate(np.zeros(12, np.float32), 1.0, "Neutral", samples=2)
    assert not np.array_equal(out, cold)


def test_generate_bad_input(trained, tmp_path):
    model = FsqAR.load(trained)
    s = np.zeros(8, np.float32)
    with pytest.raises(InputError, match="stimulus"):
        model.generate(np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="NaN"):
        model.generate(np.array([0.0, np.nan]))
    with pytest.raises(InputError, match="expressiveness"):
        model.generate(s, -1.0)
    with pytest.raises(InputError, match="emotion"):
        model.generate(s, 1.0, "Grumpy")
    with pytest.raises(InputError, match="samples"):
        model.generate(s, samples=0)
    with pytest.raises(InputError, match="context"):
        model.generate(s, context=np.zeros((1, 2, len(FEATURE_NAMES))))
    with pytest.raises(InputError, match="context"):
        model.generate(s, samples=2, context=np.zeros((1, 8, len(FEATURE_NAMES))))
    with pytest.raises(InputError, match="temperature"):
        model.generate(s, temperature=-1)


def test_load_errors(trained, tmp_path):
    with pytest.raises(InputError, match="not found"):
        FsqAR.load(tmp_path / "missing.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(trained.read_bytes()[:200])
    with pytest.raises(InputError, match="corrupt"):
        FsqAR.load(broken)
    # a checkpoint whose weights do not match its config
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(trained), framework="pt") as f:
        meta = json.loads(f.metadata()["painface"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["ar"]["d_model"] = 64
    save_file(tensors, str(tmp_path / "mismatch.safetensors"), metadata={"painface": json.dumps(meta)})
    with pytest.raises(InputError, match="do not match"):
        FsqAR.load(tmp_path / "mismatch.safetensors")
    meta["format"] = "other"
    save_file(tensors, str(tmp_path / "other.safetensors"), metadata={"painface": json.dumps(meta)})
    with pytest.raises(InputError, match="not an FSQ-AR checkpoint"):
        FsqAR.load(tmp_path / "other.safetensors")


def test_shipped_checkpoint_loads_and_generates(monkeypatch, tmp_path):
    import painface.baselines.fsq as fsq

    model = FsqAR.load()
    assert fsq.SHIPPED.stat().st_size <= 5 * 2**20
    assert model.feature_names == FEATURE_NAMES and model.chunk == 4 and model.tokenizer.fsq.levels == (8, 5, 5, 5)
    m = model.info["metrics"]
    assert m["recon_mse"] < 0.5 and m["val_tokens"]["used"] > 500 and m["ar_val_loss"] < 3.5
    rest = model.generate(np.zeros(160, np.float32), 1.0, "Neutral", samples=4, seed=0)
    pain = model.generate(np.ones(160, np.float32), 1.0, "Neutral", samples=4, seed=0)
    assert rest.shape == (4, 160, len(FEATURE_NAMES))
    from painface.face.code import pspi

    assert pspi(pain).mean() > pspi(rest).mean() + 1.0  # it listens to the stimulus
    monkeypatch.setattr(fsq, "SHIPPED", tmp_path / "none.safetensors")
    with pytest.raises(InputError, match="no shipped"):
        FsqAR.load()
