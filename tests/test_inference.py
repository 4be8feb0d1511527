"""The fast inference path (painface.model.inference) against the plain PyTorch denoiser.

Measured on the shipped checkpoint (tests below): ONNX Runtime differs from PyTorch by at most 1e-6 per call
(8.9e-7 on a guided 4 x 64 call; the test allows 1e-5) and by 4.6e-5 face-code units after a whole 20 s
generation at 20 steps; TorchScript is bit-identical."""

import warnings

import numpy as np
import pytest
import torch

from painface.errors import InputError
from painface.express import SHIPPED, PainDiffusion
from painface.model import inference
from painface.model.checkpoint import save_model
from painface.model.conditions import Conditions
from painface.model.edm import Denoiser, guided_denoiser
from painface.model.inference import FastDenoiser, OnnxCache, fast_denoiser
from painface.model.unet import UNetConfig
from painface.stimulus import stimulus_memory
from tests.model_helpers import TINY, inputs, randomized

has_ort = inference.onnxruntime_available()
needs_ort = pytest.mark.skipif(not has_ort, reason="onnx/onnxruntime not installed (painface[fast])")


def den(seed: int = 0) -> Denoiser:
    return Denoiser(randomized(UNetConfig(**TINY), seed)).eval()


def guided_call(d: Denoiser, rows: int = 3, frames: int = 16) -> torch.Tensor:
    x, _, cond = inputs(rows, frames, seed=rows)
    sigma = torch.exp(2 * torch.randn(rows, frames, generator=torch.Generator().manual_seed(1)))
    sigma[:, :4] = 0.0  # context frames at sigma 0
    with torch.inference_mode():
        return guided_denoiser(d, cond, (0.5, 1.0, 2.0))(x, sigma)


def test_torchscript_is_bit_identical_at_any_batch() -> None:
    plain = den()
    fast = FastDenoiser(plain, "torchscript")
    for rows in (1, 3, 7):
        assert torch.equal(guided_call(fast, rows), guided_call(plain, rows))
    assert fast.used == {"torchscript": 3}


@needs_ort
def test_onnxruntime_matches_pytorch_and_auto_picks_by_size() -> None:
    plain = den(1)
    fast = FastDenoiser(plain, "auto")
    for rows, frames in ((1, 16), (5, 16), (2, 32)):  # any batch; one graph per window length
        diff = (guided_call(fast, rows, frames) - guided_call(plain, rows, frames)).abs().max().item()
        assert diff < 1e-5, diff
    assert fast.used == {"onnxruntime": 3}
    assert {k[1] for k in fast._runners} == {16, 32}
    big = inference.ORT_MAX_ELEMENTS // (4 * 16) + 1  # rows whose guided call (4 variants x 16 frames) exceeds it
    assert torch.equal(guided_call(fast, big), guided_call(plain, big))  # TorchScript: bit-identical
    assert fast.used == {"onnxruntime": 3, "torchscript": 1}


def test_gradients_and_training_take_the_plain_forward() -> None:
    fast = FastDenoiser(den(), "torchscript")
    x, _, cond = inputs(2, 16)
    out = fast(x.requires_grad_(), torch.ones(2, 16), cond)
    assert out.requires_grad and fast.used == {"torch": 1}
    fast.train()
    with torch.no_grad():
        fast(x, torch.ones(2, 16), cond)
    assert fast.used == {"torch": 2}
    assert fast.state_dict().keys() == den().state_dict().keys()  # same parameters: checkpoints unchanged


def test_fallbacks(monkeypatch) -> None:
    plain = den()
    want = guided_call(plain)
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="not installed"):
        fast = FastDenoiser(plain, "onnxruntime")
    assert torch.equal(guided_call(fast), want) and fast.used == {"torchscript": 1}
    monkeypatch.setattr(inference, "onnxruntime_available", lambda: True)

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(inference, "onnx_bytes", broken)
    monkeypatch.setattr(inference, "_torchscript_runner", broken)
    fast = FastDenoiser(plain, "auto")
    with pytest.warns(RuntimeWarning, match="falling back"):
        got = guided_call(fast)
    assert torch.equal(got, want) and fast.used == {"torch": 1}
    assert fast(*inputs(1, 16)[:1], torch.ones(1, 16), inputs(1, 16)[2]).shape == (1, 16, 6)  # no second warning


def test_backend_choice_and_bad_names(monkeypatch) -> None:
    plain = den()
    assert fast_denoiser(plain, "torch") is plain
    monkeypatch.setenv("PAINFACE_INFERENCE", "torch")
    assert fast_denoiser(plain) is plain
    monkeypatch.setenv("PAINFACE_INFERENCE", "tensorrt")
    with pytest.raises(InputError, match="PAINFACE_INFERENCE"):
        fast_denoiser(plain)
    with pytest.raises(InputError, match="backend"):
        FastDenoiser(plain, "fastest")


@needs_ort
def test_onnx_cache_is_keyed_atomic_and_never_trusted_when_corrupt(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user"))
    plain = den(2)
    ckpt = save_model(tmp_path / "tiny", plain, {})
    want = guided_call(plain)
    fast = FastDenoiser(plain, "onnxruntime", checkpoint=ckpt)
    assert (guided_call(fast) - want).abs().max() < 1e-5
    cache = OnnxCache(ckpt)
    graph = cache.folders[0] / cache._name(16)
    assert graph.is_file() and cache.read(16) == graph.read_bytes()
    assert not [p for p in graph.parent.iterdir() if p.name.startswith(".")]  # no temporaries left
    exports = []
    real = inference.onnx_bytes
    monkeypatch.setattr(inference, "onnx_bytes", lambda *a: exports.append(1) or real(*a))
    assert (guided_call(FastDenoiser(plain, "onnxruntime", checkpoint=ckpt)) - want).abs().max() < 1e-5
    assert exports == []  # read from the cache
    graph.write_bytes(graph.read_bytes()[:1000])  # truncated: its sha256 no longer matches
    assert cache.read(16) is None
    assert (guided_call(FastDenoiser(plain, "onnxruntime", checkpoint=ckpt)) - want).abs().max() < 1e-5
    assert exports == [1] and cache.read(16) is not None  # rebuilt and rewritten
    other = save_model(tmp_path / "other", den(3), {})
    assert OnnxCache(other).read(16) is None  # another checkpoint's sha256: another key


@needs_ort
@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped checkpoint")
def test_shipped_checkpoint_fast_path_matches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    plain = PainDiffusion.load(inference="torch")
    fast = PainDiffusion.load(inference="onnxruntime")
    g = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(4, 64, 20, generator=g), torch.rand(4, 64, generator=g) * 3
    _, _, cond = inputs(4, 64, 20)
    if plain.stimulus_memory:  # the shipped network reads the stimulus's memory channels too
        mem = torch.from_numpy(stimulus_memory(cond.stimulus.numpy(), plain.stimulus_memory)[0])
        cond = Conditions(torch.cat([cond.stimulus[..., None], mem], -1), cond.expressiveness, cond.emotion)
    drop = torch.zeros(4, 3, dtype=torch.bool)
    drop[1:] = torch.eye(3, dtype=torch.bool)
    with torch.inference_mode():
        diff = (fast.denoiser(x, sigma, cond, drop) - plain.denoiser(x, sigma, cond, drop)).abs().max().item()
    assert diff < 1e-5, diff
    stim = np.clip(np.linspace(-0.5, 1.5, 100), 0, 1).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback
        a = fast.generate(stim, steps=4, seed=1)
    assert np.abs(a - plain.generate(stim, steps=4, seed=1)).max() < 1e-3
