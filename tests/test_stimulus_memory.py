"""The stimulus memory (moving averages of the stimulus over seconds to a minute): its values, and that the
training windows, the rolling sampler, the live engine and the fast inference path all feed the network the
same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from painface.data.windows import WindowDataset
from painface.errors import InputError
from painface.express import PainDiffusion
from painface.face.code import FEATURE_NAMES, neutral_face
from painface.model import inference
from painface.model.conditions import Conditions
from painface.model.edm import Denoiser
from painface.model.sampling import RollingSampler, SamplerConfig, generate
from painface.model.unet import UNetConfig
from painface.stimulus import stimulus_memory
from painface.stream import LIVE_DEFAULTS, StreamEngine
from painface.train import collate
from tests.model_helpers import TINY, randomized
from tests.test_windows import make_corpus

TAUS = (10.0, 40.0)
SMALL = dict(horizon=8, window=16, steps=3)


def test_memory_values_step_response_and_chunking() -> None:
    step = np.r_[np.zeros(5), np.ones(200)]
    mem, state = stimulus_memory(step, TAUS)
    assert mem.shape == (205, 2) and state.shape == (2,)
    assert not mem[:5].any()
    # after tau frames at 1 a channel reads 1 - 1/e (the first frame at 1 counts)
    for j, tau in enumerate(TAUS):
        np.testing.assert_allclose(mem[5 + int(tau) - 1, j], 1 - math.exp(-tau / tau), atol=1e-6)
    # chunk by chunk with the carried state = one call; batched rows are independent
    parts, st = [], None
    for a, b in ((0, 7), (7, 8), (8, 100), (100, 205)):
        m, st = stimulus_memory(step[a:b], TAUS, st)
        parts.append(m)
    np.testing.assert_array_equal(np.concatenate(parts), mem)
    both, _ = stimulus_memory(np.stack([step, 0.5 * step]), TAUS)
    np.testing.assert_allclose(both[1], 0.5 * mem, atol=1e-7)
    empty, same = stimulus_memory(np.zeros(0), TAUS, state)
    assert empty.shape == (0, 2) and np.array_equal(same, state)
    with pytest.raises(InputError, match="time constants"):
        stimulus_memory(step, (10.0, 0.0))
    with pytest.raises(InputError, match="state"):
        stimulus_memory(step, TAUS, np.zeros(3))


def test_training_windows_carry_the_memory_of_the_whole_recording() -> None:
    corpus = make_corpus()
    ds = WindowDataset(corpus, "train", length=64, memory=TAUS)
    item = ds[3]
    s, start = int(item["subject"]), int(item["start"])
    full, _ = stimulus_memory(corpus.subject(ds.subject_ids[s]).stimulus, TAUS)
    np.testing.assert_allclose(item["memory"].numpy(), full[start:start + 64], atol=1e-6)
    x0, cond = collate([ds[0], ds[3]], 0.5, torch.device("cpu"))
    assert cond.stimulus.shape == (2, 64, 3)
    torch.testing.assert_close(cond.raw[1], item["stimulus"])
    torch.testing.assert_close(cond.memory[1], item["memory"])
    assert "memory" not in WindowDataset(corpus, "train", length=64)[3]


def memory_net(seed: int = 0, **extra) -> Denoiser:
    return Denoiser(randomized(UNetConfig(**{**TINY, **extra}, stimulus_memory=TAUS), seed)).eval()


class Recorder(Denoiser):
    """A denoiser that records the stimulus (with memory channels) of every call."""

    def __init__(self, inner: Denoiser) -> None:
        super().__init__(inner.net)
        self.seen: list[torch.Tensor] = []

    def forward(self, x, sigma, cond, drop=None):
        self.seen.append(cond.stimulus[:1].clone())
        return super().forward(x, sigma, cond, drop)


def test_network_reads_the_memory_and_refuses_a_stimulus_without_it() -> None:
    den = memory_net()
    b, t = 2, 16
    x = torch.randn(b, t, TINY["feature_dim"], generator=torch.Generator().manual_seed(0))
    raw = torch.rand(b, t, generator=torch.Generator().manual_seed(1))
    emo = torch.full((b, 8), 1 / 8)
    mem = torch.from_numpy(stimulus_memory(raw.numpy(), TAUS)[0])
    def net(memory: torch.Tensor, drop: torch.Tensor | None = None) -> torch.Tensor:
        stim = torch.cat([raw[..., None], memory], -1)
        with torch.no_grad():
            return den.net(x, torch.zeros(b, t), Conditions(stim, torch.ones(b), emo), drop)

    a, other = net(mem), net(mem + 0.5)
    dropped = torch.zeros(b, 3, dtype=torch.bool)
    dropped[:, 2] = True  # stimulus nulled: the memory goes with it
    n1, n2 = net(mem, dropped), net(mem + 0.5, dropped)
    assert (a - other).abs().max() > 1e-3  # the memory changes the output
    torch.testing.assert_close(n1, n2)
    with pytest.raises(InputError, match=r"memory channels"):
        den.net(x, torch.zeros(b, t), Conditions(raw, torch.ones(b), emo))
    with pytest.raises(InputError, match="time constants"):
        UNetConfig(stimulus_memory=(-1.0,))
    assert UNetConfig.from_dict(UNetConfig(stimulus_memory=TAUS).to_dict()).stimulus_memory == TAUS
    assert UNetConfig.from_dict({k: v for k, v in UNetConfig().to_dict().items()
                                 if k != "stimulus_memory"}).stimulus_memory == ()  # older checkpoints


def test_rolling_generation_feeds_the_memory_of_the_whole_stimulus() -> None:
    rec = Recorder(memory_net(1))
    cfg = SamplerConfig(steps=2, window=16, horizon=8)
    rng = np.random.default_rng(0)
    before, stim = rng.uniform(0, 1, 30).astype(np.float32), rng.uniform(0, 1, 20).astype(np.float32)
    out = generate(rec, stim, 1.0, "Neutral", neutral=torch.zeros(TINY["feature_dim"]), config=cfg,
                   generator=torch.Generator().manual_seed(0), stimulus_before=before)
    assert out.shape == (1, 20, TINY["feature_dim"])
    padded = np.r_[before, stim, np.full(4, stim[-1])]  # the last window is padded with the last value
    want, _ = stimulus_memory(padded, TAUS)
    windows = [w for i, w in enumerate(rec.seen) if i % (len(rec.seen) // 3) == 0]  # first call of each window
    assert len(rec.seen) % 3 == 0 and len(windows) == 3
    for k, w in enumerate(windows):  # window k covers frames 30 - 8 + 8k .. + 16 of padded
        lo = 30 - 8 + 8 * k
        np.testing.assert_allclose(w[0, :, 0].numpy(), padded[lo:lo + 16], atol=1e-6)
        np.testing.assert_allclose(w[0, :, 1:].numpy(), want[lo:lo + 16], atol=1e-5)
    # the same sampler fed a whole window at once reads the same memory as one fed the horizon
    a = RollingSampler(rec, 1.0, "Neutral", neutral=torch.zeros(TINY["feature_dim"]), config=cfg,
                       generator=torch.Generator().manual_seed(3), stimulus_before=before[:22],
                       context_stimulus=before[22:])
    b = RollingSampler(rec, 1.0, "Neutral", neutral=torch.zeros(TINY["feature_dim"]), config=cfg,
                       generator=torch.Generator().manual_seed(3), stimulus_before=before[:22],
                       context_stimulus=before[22:])
    torch.testing.assert_close(a.step(stim[:8]), b.step(np.r_[before[22:], stim[:8]]))
    torch.testing.assert_close(a.step(stim[8:16]), b.step(stim[8:16]))


def tiny_memory_model(seed: int = 0) -> PainDiffusion:
    net = randomized(UNetConfig(feature_dim=len(FEATURE_NAMES), channels=16, cond_dim=16, heads=2, noise_dim=8,
                                stimulus_history=8, stimulus_memory=TAUS), seed)
    info = {"normalizer": {"feature_names": list(FEATURE_NAMES), "mean": [0.5] * len(FEATURE_NAMES),
                           "std": [0.5] * len(FEATURE_NAMES)},
            "data_scale": 0.5, "corpus": {"fps": 25.0}}
    return PainDiffusion(Denoiser(net), info)


def test_live_engine_carries_the_memory_like_the_rolling_sampler() -> None:
    model = tiny_memory_model()
    stim = np.clip(np.linspace(-0.5, 1.2, 40), 0, 1).astype(np.float32)
    eng = StreamEngine(model, **SMALL)
    pid = eng.add_patient(expressiveness=2.0, emotion="Sadness", seed=7)
    eng.push(pid, stim)
    for _ in range(5):
        eng.step()
    got = eng.pull(pid).face
    cfg = model.sampler_config(**SMALL, smooth=LIVE_DEFAULTS["smooth"])
    ref = RollingSampler(model.denoiser, 2.0, "Sadness", neutral=model.encode(neutral_face(1)[0]), config=cfg,
                         batch=1, generator=torch.Generator().manual_seed(7))
    want = np.concatenate([model.decode(ref.step(stim[None, i * 8:(i + 1) * 8]))[0] for i in range(5)])
    np.testing.assert_allclose(got, want, atol=1e-4)
    # and the memory matters: a patient who had a long stimulus before differs from one at rest
    gen_rest = model.generate(stim, 2.0, seed=1, steps=3, window=16, horizon=8)
    gen_hot = model.generate(stim, 2.0, seed=1, steps=3, window=16, horizon=8, stimulus_before=np.ones(200))
    assert np.abs(np.asarray(gen_rest) - np.asarray(gen_hot)).max() > 1e-3
    assert model.stimulus_memory == TAUS


@pytest.mark.skipif(not inference.onnxruntime_available(), reason="onnx/onnxruntime not installed (painface[fast])")
def test_fast_inference_of_a_memory_network_matches_pytorch() -> None:
    plain = memory_net(2)
    fast = inference.FastDenoiser(plain, "onnxruntime")
    rows, t = 3, 16
    g = torch.Generator().manual_seed(4)
    x = torch.randn(rows, t, TINY["feature_dim"], generator=g)
    raw = torch.rand(rows, t, generator=g)
    stim = torch.cat([raw[..., None], torch.from_numpy(stimulus_memory(raw.numpy(), TAUS)[0])], -1)
    cond = Conditions(stim, torch.ones(rows), torch.full((rows, 8), 1 / 8))
    sigma = torch.exp(torch.randn(rows, t, generator=g))
    with torch.inference_mode():
        diff = (fast(x, sigma, cond) - plain(x, sigma, cond)).abs().max().item()
    assert diff < 1e-5 and fast.used == {"onnxruntime": 1}


def test_generate_command_passes_the_low_pass(tmp_path) -> None:
    from painface.cli import main
    from painface.model.checkpoint import save_model

    model = tiny_memory_model(3)
    ckpt = save_model(tmp_path / "tiny", model.denoiser, model.info)
    speeds = {}
    for smooth in ("0", "6"):
        out = tmp_path / f"g{smooth}.npz"
        assert main(["generate", "--checkpoint", str(ckpt), "--seconds", "3", "--steps", "2", "--smooth", smooth,
                     "--out", str(out)]) == 0
        with np.load(out) as z:
            speeds[smooth] = float(np.abs(np.diff(z["face"][..., :17], axis=-2)).mean())
    assert speeds["6"] < 0.6 * speeds["0"], speeds


def test_gated_guidance_amplifies_only_what_is_new_in_the_stimulus() -> None:
    from painface.model.edm import guided_denoiser
    from painface.model.sampling import GATE_FLOOR, GATE_REST, guidance_gate

    den = memory_net(2)
    b, t = 2, 16
    g = torch.Generator().manual_seed(4)
    x, sigma = torch.randn(b, t, TINY["feature_dim"], generator=g), torch.full((b, t), 0.7)
    raw = torch.cat([torch.zeros(b, 6), torch.ones(b, 10)], 1)  # an onset: raw above its moving average
    raw[1] *= 0.5
    mem = torch.from_numpy(stimulus_memory(raw.numpy(), TAUS)[0])
    cond = Conditions(torch.cat([raw[..., None], mem], -1), torch.ones(b), torch.full((b, 8), 1 / 8))
    gate = guidance_gate(cond, 1, "xs")
    share = ((raw - mem[..., 0]) / raw.clamp(min=0.1)).clamp(0, 1)
    want = torch.where(raw < GATE_REST, 1.0, torch.where(share < GATE_FLOOR, 0.0, share))
    torch.testing.assert_close(gate[..., 2].float(), want)
    torch.testing.assert_close(gate[..., 1], gate[..., 2])
    assert (gate[..., 0] == 1).all() and (gate[:, :6, 2] == 1).all() and (gate[:, 6, 2] > 0.85).all()
    assert (gate[:, 7:, 2].diff(dim=1) < 0).all()  # fades as the moving average catches up
    torch.testing.assert_close(gate[0], gate[1])  # a share: the same for a weaker stimulus of the same shape
    assert guidance_gate(cond, 0) is None
    lam = (0.5, 1.0, 3.0)
    with torch.no_grad():
        got = guided_denoiser(den, cond, lam, gate)(x, sigma)
        d = den(x, sigma, cond)
        nulls = [den(x, sigma, cond, torch.eye(3, dtype=torch.bool)[i].expand(b, 3)) for i in range(3)]
    w = torch.tensor(lam) * gate.float()  # [B, T, 3]
    want = (1 + w.sum(-1))[..., None] * d - sum(w[..., i, None] * nulls[i] for i in range(3))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # a stimulus held long enough, or falling, gets no gated guidance and runs no pass for it
    class Rows(Denoiser):
        def __init__(self) -> None:
            super().__init__(den.net)
            self.rows: list[int] = []

        def forward(self, x, sigma, cond, drop=None):
            self.rows.append(x.shape[0])
            return super().forward(x, sigma, cond, drop)

    calls = Rows()
    for level, average in ((1.0, 1.0), (0.6, 0.9)):
        held = torch.full((b, t), level)
        cond_h = Conditions(torch.cat([held[..., None], torch.full((b, t, 2), average)], -1), torch.ones(b),
                            torch.full((b, 8), 1 / 8))
        gate_h = guidance_gate(cond_h, 2, "exs")
        assert not gate_h.any()
        with torch.no_grad():
            calls.rows.clear()
            torch.testing.assert_close(guided_denoiser(calls, cond_h, lam, gate_h)(x, sigma), den(x, sigma, cond_h))
            assert calls.rows == [b]  # one plain pass: no "without" variants
    # through the sampler; a network without memory, or a channel it lacks, is refused
    cfg = SamplerConfig(steps=2, window=16, horizon=8, gate=1)
    out = generate(den, raw[0].numpy(), 1.0, "Neutral", neutral=torch.zeros(TINY["feature_dim"]), config=cfg,
                   generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 16, TINY["feature_dim"]) and torch.isfinite(out).all()
    with pytest.raises(InputError, match="stimulus-memory channels"):
        guidance_gate(cond, 3)
    plain = Conditions(raw, torch.ones(b), torch.full((b, 8), 1 / 8))
    with pytest.raises(InputError, match="stimulus-memory channels"):
        guidance_gate(plain, 1)
    for bad in ({"gate": -1}, {"gate": True}, {"gate_terms": "q"}, {"gate_terms": ""}):
        with pytest.raises(InputError, match="SamplerConfig.gate"):
            SamplerConfig(**bad)
    with pytest.raises(InputError, match="guidance gate"):
        guided_denoiser(den, cond, lam, gate[:1])
