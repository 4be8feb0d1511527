"""Fast inference for the denoiser: the same D_theta, less per-call overhead.

One call of the network costs about 2,900 PyTorch operator calls on tiny tensors; at the batch sizes of
``painface generate`` (4 guided rows x 64 frames) over half of a call is that overhead, not arithmetic.
:class:`FastDenoiser` is a :class:`~painface.model.edm.Denoiser` over the same network whose calls
*without gradients* (sampling: :func:`~painface.model.sampling.denoise_window` runs under
``torch.inference_mode``) run a compiled graph of D_theta (EDM preconditioning + network), one per window
length, built on first use:

* ``"onnxruntime"``: the graph exported by ``torch.onnx.export`` (TorchScript exporter; needs the ``onnx``
  and ``onnxruntime`` packages, the ``painface[fast]`` extra) and run by ONNX Runtime on the CPU; outputs
  within about 1e-5 of PyTorch's (tests/test_inference.py states the measured difference). The exported
  graph is cached beside the checkpoint (or in the user cache folder when that is read-only), keyed by the
  checkpoint's sha256 and the window length, written atomically, and checked against its own sha256 when read:
  a corrupt or stale cache is rebuilt, never trusted.
* ``"torchscript"``: ``torch.jit.trace`` + ``torch.jit.freeze`` of the same forward: bit-identical to PyTorch,
  no extra dependency, and the faster one at large batches (many live patients).
* ``"torch"``: the plain PyTorch forward.

``"auto"`` (the default) picks per call by size, from measurement (docs/benchmarks.md): ONNX Runtime for up to
:data:`ORT_MAX_ELEMENTS` rows x frames when it is installed, TorchScript otherwise. Whatever cannot be built
(no onnxruntime, an export that fails) falls back to the next backend with a warning, ending at plain PyTorch;
training and calls that need gradients always take the plain forward. ``PAINFACE_INFERENCE`` (environment)
overrides the backend of :meth:`painface.express.PainDiffusion.load`.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from painface.errors import InputError
from painface.io import atomic_write_bytes
from painface.model.conditions import CONDITION_NAMES, Conditions
from painface.model.edm import Denoiser, _per_frame, precondition

BACKENDS = ("auto", "onnxruntime", "torchscript", "torch")
ORT_MAX_ELEMENTS = 2048
"""``auto`` runs ONNX Runtime for calls of at most this many rows x frames (e.g. 32 x 64 or 64 x 32), TorchScript
above: ONNX Runtime wins 2-3x on small calls, where per-operator overhead dominates, and loses at large ones."""
OPSET = 17
_INPUTS = ("x", "sigma", "stimulus", "expressiveness", "emotion", "drop")

Runner = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]


class _Flat(nn.Module):
    """D_theta (EDM eq. 7) on plain tensors, the form the compilers take."""

    def __init__(self, denoiser: Denoiser) -> None:
        super().__init__()
        self.net, self.sigma_data, self.sigma_floor = denoiser.net, denoiser.sigma_data, denoiser.sigma_floor

    def forward(self, x: Tensor, sigma: Tensor, stimulus: Tensor, expressiveness: Tensor, emotion: Tensor,
                drop: Tensor) -> Tensor:
        c_skip, c_out, c_in, c_noise = precondition(sigma, self.sigma_data, self.sigma_floor)
        f = self.net(c_in[..., None] * x, c_noise, Conditions(stimulus, expressiveness, emotion), drop)
        return c_skip[..., None] * x + c_out[..., None] * f


def _example(denoiser: Denoiser, frames: int, rows: int = 4) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    d = denoiser.net.config.feature_dim
    emotion = torch.full((rows, 8), 1 / 8)
    drop = torch.zeros(rows, len(CONDITION_NAMES), dtype=torch.bool)
    drop[1:, :] = torch.eye(len(CONDITION_NAMES), dtype=torch.bool)[: rows - 1]
    ch = denoiser.net.config.stimulus_channels
    stimulus = torch.rand(rows, frames, *((ch,) if ch > 1 else ()), generator=g)
    return (torch.randn(rows, frames, d, generator=g), torch.rand(rows, frames, generator=g) * 3,
            stimulus, torch.rand(rows, generator=g), emotion, drop)


def onnx_bytes(denoiser: Denoiser, frames: int) -> bytes:
    """D_theta for windows of ``frames`` frames (any batch) as an ONNX model (TorchScript exporter)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Flat(denoiser).eval(), _example(denoiser, frames), buf, dynamo=False,
                          input_names=list(_INPUTS), output_names=["denoised"], opset_version=OPSET,
                          dynamic_axes={name: {0: "batch"} for name in (*_INPUTS, "denoised")})
    return buf.getvalue()


def _ort_runner(model: bytes, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = max(1, threads), 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def run(*args: Tensor) -> Tensor:
        feed = {name: a.detach().contiguous().numpy() for name, a in zip(_INPUTS, args, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


def _torchscript_runner(denoiser: Denoiser, frames: int) -> Runner:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_Flat(denoiser).eval(), _example(denoiser, frames), check_trace=False)
        return torch.jit.freeze(traced.eval())


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxCache:
    """Exported graphs on disk: ``<folder>/<checkpoint sha256[:16]>-T<frames>-opset<N>.onnx`` with the graph's own
    sha256 in a ``.sha256`` file beside it; a graph whose hash does not match is rebuilt and rewritten."""

    def __init__(self, checkpoint: str | os.PathLike) -> None:
        self.checkpoint = Path(checkpoint)
        self.sha = file_sha256(self.checkpoint)
        user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "painface" / "onnx"
        self.folders = [self.checkpoint.parent / f".{self.checkpoint.stem}.onnx", user]

    def _name(self, frames: int) -> str:
        return f"{self.sha[:16]}-T{frames}-opset{OPSET}-torch{torch.__version__.split('+')[0]}.onnx"

    def read(self, frames: int) -> bytes | None:
        for folder in self.folders:
            path = folder / self._name(frames)
            try:
                data, want = path.read_bytes(), path.with_suffix(".sha256").read_text().strip()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == want:
                return data
        return None

    def write(self, frames: int, data: bytes) -> Path | None:
        """Write the graph to the first writable folder; None when none is (the graph stays in memory)."""
        for folder in self.folders:
            path = folder / self._name(frames)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, lambda fh: fh.write(data), durable=False)
                atomic_write_bytes(path.with_suffix(".sha256"), lambda fh: fh.write(hashlib.sha256(data).hexdigest()
                                                                                     .encode()), durable=False)
                return path
            except OSError:
                continue
        return None


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class FastDenoiser(Denoiser):
    """A :class:`Denoiser` sharing ``denoiser``'s network whose gradient-free calls run a compiled graph (see the
    module docstring). ``backend``: one of :data:`BACKENDS`; ``checkpoint``: the file the weights came from (keys
    the ONNX cache; None: graphs are exported in memory). :attr:`used` counts calls per backend."""

    def __init__(self, denoiser: Denoiser, backend: str = "auto", checkpoint: str | os.PathLike | None = None) -> None:
        super().__init__(denoiser.net, denoiser.sigma_data, denoiser.sigma_floor)
        if backend not in BACKENDS:
            raise InputError(f"inference backend {backend!r}: expected one of {list(BACKENDS)}")
        self.train(denoiser.training)
        self.backend = backend
        self.ort = backend in ("auto", "onnxruntime") and onnxruntime_available()
        if backend == "onnxruntime" and not self.ort:
            warnings.warn("inference backend onnxruntime: onnx/onnxruntime not installed (pip install "
                          "'painface[fast]'); using TorchScript", RuntimeWarning, stacklevel=2)
        self.checkpoint = checkpoint
        self._cache: OnnxCache | None = None
        self._runners: dict[tuple[str, int, int], Runner | None] = {}
        self.used: dict[str, int] = {}

    def forward(self, x: Tensor, sigma: Tensor | float, cond: Conditions, drop: Tensor | None = None) -> Tensor:
        if self.training or torch.is_grad_enabled() or self.backend == "torch" or x.device.type != "cpu":
            return self._count("torch", super().forward(x, sigma, cond, drop))
        if x.ndim != 3:
            raise InputError(f"x: expected shape [batch, frames, features], got {tuple(x.shape)}")
        sigma = _per_frame(sigma, x).contiguous()
        if drop is None:
            drop = torch.zeros(x.shape[0], len(CONDITION_NAMES), dtype=torch.bool)
        self.net.check_inputs(x, sigma, cond, drop)
        rows, frames = x.shape[:2]
        kind = "onnxruntime" if self.ort and (self.backend == "onnxruntime" or rows * frames <= ORT_MAX_ELEMENTS) \
            else "torchscript"
        run = self._runner(kind, frames)
        if run is None and kind == "onnxruntime":
            kind, run = "torchscript", self._runner("torchscript", frames)
        if run is None:
            return self._count("torch", super().forward(x, sigma, cond, drop))
        args = (x, sigma, cond.stimulus, cond.expressiveness, cond.emotion, drop)
        return self._count(kind, run(*(a.float() if a.dtype != torch.bool else a for a in args)))

    def _count(self, kind: str, out: Tensor) -> Tensor:
        self.used[kind] = self.used.get(kind, 0) + 1
        return out

    def _runner(self, kind: str, frames: int) -> Runner | None:
        threads = torch.get_num_threads() if kind == "onnxruntime" else 0
        key = (kind, frames, threads)
        if key not in self._runners:
            try:
                self._runners[key] = self._build(kind, frames, threads)
            except Exception as e:  # an exporter or runtime that fails: fall back, say so once
                warnings.warn(f"inference backend {kind} failed for {frames}-frame windows ({type(e).__name__}: "
                              f"{str(e)[:200]}); falling back", RuntimeWarning, stacklevel=3)
                self._runners[key] = None
                if kind == "onnxruntime":
                    self.ort = False
        return self._runners[key]

    def _build(self, kind: str, frames: int, threads: int) -> Runner:
        if kind == "torchscript":
            return _torchscript_runner(self, frames)
        if self.checkpoint is None:
            return _ort_runner(onnx_bytes(self, frames), threads)
        if self._cache is None:
            self._cache = OnnxCache(self.checkpoint)
        data = self._cache.read(frames)
        if data is not None:
            try:
                return _ort_runner(data, threads)
            except Exception:  # a cache the runtime rejects is rebuilt
                pass
        data = onnx_bytes(self, frames)
        run = _ort_runner(data, threads)
        self._cache.write(frames, data)
        return run


def fast_denoiser(denoiser: Denoiser, backend: str | None = None,
                  checkpoint: str | os.PathLike | None = None) -> Denoiser:
    """``denoiser`` as a :class:`FastDenoiser` (``backend`` None: ``$PAINFACE_INFERENCE`` or ``"auto"``); the plain
    ``denoiser`` itself for ``"torch"``."""
    backend = backend or os.environ.get("PAINFACE_INFERENCE") or "auto"
    if backend not in BACKENDS:
        raise InputError(f"inference backend {backend!r} (PAINFACE_INFERENCE): expected one of {list(BACKENDS)}")
    return denoiser if backend == "torch" else FastDenoiser(denoiser, backend, checkpoint)
