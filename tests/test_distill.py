"""Guidance distillation (painface.model.distill): the distilled network runs only where it covers the sampler's
settings, once per solver stage; a student equal to the guided combination reproduces the guided sampler exactly;
`painface distill` learns, resumes, installs, and PainDiffusion.load picks the result up only for its teacher."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch
from model_helpers import randomized

from painface.cli import main
from painface.distill import DistillConfig
from painface.errors import InputError
from painface.express import PainDiffusion
from painface.model.checkpoint import load_model, save_model
from painface.model.conditions import Conditions
from painface.model.distill import DistilledGuidance, guided_path
from painface.model.edm import Denoiser, guided_denoiser
from painface.model.sampling import SamplerConfig, denoise_window, guidance_gate
from painface.model.unet import UNetConfig
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol
from painface.train import TrainConfig, Trainer

TINY = dict(feature_dim=4, channels=16, cond_dim=16, heads=2, noise_dim=8, stimulus_memory=(10.0, 40.0))
GUIDE = (2.0, 4.0, 8.0)


class Counting(Denoiser):
    """A denoiser that counts its calls and rows."""

    def __init__(self, net) -> None:
        super().__init__(net)
        self.calls, self.rows = 0, 0

    def forward(self, x, sigma, cond, drop=None):
        self.calls += 1
        self.rows += x.shape[0]
        return super().forward(x, sigma, cond, drop)


class PerfectStudent(Denoiser):
    """A "student" that is the teacher's guided combination itself (what distillation aims at)."""

    def __init__(self, teacher: Denoiser, config: SamplerConfig) -> None:
        super().__init__(teacher.net)
        self.teacher, self.config = teacher, config

    def forward(self, x, sigma, cond, drop=None):
        gate = guidance_gate(cond, self.config.gate, self.config.gate_terms)
        return guided_denoiser(self.teacher, cond, self.config.guidance, gate)(x, sigma)


def _window(b: int = 2, window: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    stim = torch.zeros(b, window)
    stim[:, 6:] = torch.linspace(0.3, 1.0, b)[:, None]
    mem = torch.stack([0.3 * stim, 0.1 * stim], -1)
    cond = Conditions(torch.cat([stim[..., None], mem], -1), torch.tensor([0.5, 2.0])[:b], torch.eye(8)[[0, 3]][:b])
    context = torch.randn(b, 8, 4, generator=g)
    eps = torch.randn(2, b, window, 4, generator=g)
    return context, cond, eps


def test_covers_only_the_learned_strengths_and_gate() -> None:
    d = DistilledGuidance(Denoiser(randomized(UNetConfig(**TINY))), GUIDE, 1, "exs")
    cfg = SamplerConfig(guidance=GUIDE, gate=1, gate_terms="exs")
    assert d.covers(GUIDE, cfg, 3)
    assert d.covers(torch.tensor([GUIDE] * 3, dtype=torch.float64), cfg, 3)  # the live engine's rows
    assert not d.covers(torch.tensor([GUIDE, GUIDE, (2.0, 4.0, 7.0)]), cfg, 3)  # one patient with their own
    assert not d.covers((1.0, 2.0, 4.0), cfg, 3)
    assert not d.covers(GUIDE, SamplerConfig(guidance=GUIDE, gate=0), 3)
    assert not d.covers(GUIDE, SamplerConfig(guidance=GUIDE, gate=1, gate_terms="s"), 3)
    assert not d.covers("loud", cfg, 3)
    assert not d.covers(GUIDE, SamplerConfig(guidance=GUIDE, gate=1, schedule="pyramid"), 3)  # never trained on it
    odd = DistilledGuidance(d.student, (1.5, 2.5, 0.3), 1, "exs")  # 0.3 is not exact in float32
    rows32 = torch.tensor([(1.5, 2.5, 0.3)] * 2, dtype=torch.float32)  # as the live engine keeps a patient's
    assert odd.covers((1.5, 2.5, 0.3), cfg, 2) and odd.covers(rows32, cfg, 2)


def test_the_student_runs_once_per_stage_and_only_where_it_covers() -> None:
    teacher, student = Counting(randomized(UNetConfig(**TINY), 0)), Counting(randomized(UNetConfig(**TINY), 1))
    cfg = SamplerConfig(window=16, horizon=8, steps=5, guidance=GUIDE, gate=1)
    teacher.distilled = DistilledGuidance(student, GUIDE, 1, "exs")
    context, cond, eps = _window()
    sig = cfg.window_sigmas()
    out = denoise_window(teacher, context, cond, GUIDE, eps, sig, cfg)
    assert (student.calls, student.rows, teacher.calls) == (5, 5 * 2, 0)  # one pass of B rows per stage
    assert torch.isfinite(out).all() and torch.equal(out[:, :8], context)
    denoise_window(teacher, context, cond, (1.0, 1.0, 1.0), eps, sig, cfg)  # another guidance: the 4 passes
    assert (student.calls, teacher.calls) == (5, 5) and teacher.rows == 5 * 4 * 2


def test_a_student_equal_to_the_guided_combination_reproduces_the_guided_sampler() -> None:
    teacher = Denoiser(randomized(UNetConfig(**TINY), 0))
    cfg = SamplerConfig(window=16, horizon=8, steps=6, guidance=GUIDE, gate=1, sigma_context=0.1, smooth=2.0)
    context, cond, eps = _window()
    sig = cfg.window_sigmas()
    guided = denoise_window(teacher, context, cond, GUIDE, eps, sig, cfg)
    seen = []
    teacher.distilled = DistilledGuidance(PerfectStudent(teacher, cfg), GUIDE, 1, "exs")
    distilled = denoise_window(teacher, context, cond, GUIDE, eps, sig, cfg,
                               observe=lambda x, s, c, out: seen.append((x.shape, s.shape, out.shape)))
    torch.testing.assert_close(distilled, guided, rtol=0, atol=1e-6)
    assert len(seen) == 6 and seen[0] == ((2, 16, 4), (2, 16), (2, 16, 4))  # the observer sees every stage


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="keep"):
        DistillConfig(keep=0)
    with pytest.raises(InputError, match="unknown key"):
        DistillConfig.from_dict({"stepz": 1})


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A tiny trained checkpoint (with a stimulus memory and the gate on) and its corpus."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("distill")
    corpus = simulate_corpus(root / "corpus", n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=2), workers=1,
                             progress=False)
    cfg = TrainConfig.from_dict(dict(steps=4, batch_size=4, warmup=1, ckpt_every=4, val_every=4, val_windows=2,
                                     unet={"channels": 16, "cond_dim": 16, "heads": 2, "noise_dim": 8,
                                           "stimulus_memory": [25.0, 100.0]}))
    Trainer(corpus, root / "teacher", cfg, progress=False).run()
    denoiser, info = load_model(root / "teacher" / "model.safetensors")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # 4 steps leave the zero-initialized layers near 0: give the conditions a say
        for p in denoiser.parameters():
            if p.abs().max() < 1e-3:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    info["sampler"] = SamplerConfig(steps=4, guidance=GUIDE, gate=1).to_dict()  # like the shipped one's
    return corpus, save_model(root / "teacher.safetensors", denoiser, info)


SMALL = {"sequences": 4, "val_sequences": 2, "seconds": 3, "collect_batch": 2, "keep": 0.5, "batch": 8,
         "val_every": 10, "lr": 1e-4, "warmup": 2, "ema_decay": 0.5}


def test_distill_learns_resumes_and_installs(teacher_run, tmp_path) -> None:
    corpus, ckpt = teacher_run
    work = tmp_path / "teacher.safetensors"
    shutil.copyfile(ckpt, work)
    shutil.copyfile(ckpt.with_suffix(".json"), work.with_suffix(".json"))
    (tmp_path / "cfg.json").write_text(json.dumps(SMALL))
    args = ["distill", "--data", str(corpus), "--checkpoint", str(work), "--config", str(tmp_path / "cfg.json"),
            "--threads", "1", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "run"), "--steps", "10"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "collected" and log[0]["train_states"] > 0 and log[0]["val_states"] > 0
    start = log[1]["val_loss"]  # the teacher's own conditional output against its guided one
    assert start > 0
    # resumed to 30 steps: the state holds step 10; the student now fits the guided output better
    assert main([*args, "--out", str(tmp_path / "run"), "--steps", "30", "--install"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "step" in r] == [10, 20, 30]
    info = json.loads((tmp_path / "run" / "model.json").read_text())["distilled"]
    assert info["val_loss"] < 0.8 * start and info["guidance"] == list(GUIDE) and info["gate"] == 1
    assert guided_path(work).is_file() and guided_path(work).with_suffix(".json").is_file()

    model = PainDiffusion.load(work, inference="torch")
    assert model.distilled_source == str(guided_path(work))
    student = model.denoiser.distilled.student
    calls = []
    student.register_forward_hook(lambda *a: calls.append(1))
    pulses = np.tile(np.r_[np.full(10, 0.8), np.zeros(10)], 2).astype(np.float32)  # short: no long hold
    result = model.generate(pulses, 0.5, steps=3)
    assert len(calls) > 0  # the default sampler ran the student
    assert result.sampler["distilled"] == "teacher_guided.safetensors"  # and the result says so
    calls.clear()
    result = model.generate(pulses, 0.5, steps=3, guidance=(1, 1, 1))
    assert not calls and result.sampler["distilled"] is None  # other strengths: the teacher's guided passes
    model.generate(np.full(80, 0.8, np.float32), 0.5, steps=3)
    assert not calls  # a long hold (the gate faded below HOLD_GATE): the guided passes too
    assert PainDiffusion.load(work, distilled=False).distilled_source is None


def test_a_student_of_another_checkpoint_is_not_used(teacher_run, tmp_path, monkeypatch, capsys) -> None:
    corpus, ckpt = teacher_run
    run = tmp_path / "run"
    (tmp_path / "cfg.json").write_text(json.dumps({**SMALL, "sequences": 2, "val_sequences": 1}))
    assert main(["distill", "--data", str(corpus), "--checkpoint", str(ckpt), "--config", str(tmp_path / "cfg.json"),
                 "--out", str(run), "--steps", "2", "--quiet"]) == 0
    meta = json.loads((run / "model.json").read_text())
    meta["distilled"]["val_loss"] = meta["distilled"]["val_loss_start"]  # as if it had never improved
    (run / "model.json").write_text(json.dumps(meta))
    assert main(["distill", "--data", str(corpus), "--checkpoint", str(ckpt), "--config", str(tmp_path / "cfg.json"),
                 "--out", str(run), "--steps", "2", "--quiet", "--install"]) == 2
    assert "never beat the teacher's unguided output" in capsys.readouterr().err and not guided_path(ckpt).exists()
    other = tmp_path / "other.safetensors"
    shutil.copyfile(ckpt, other)
    shutil.copyfile(ckpt.with_suffix(".json"), other.with_suffix(".json"))
    denoiser, info = load_model(other)  # the metadata rewritten (other sampler defaults): the same weights, still used
    info["sampler"]["smooth"] = 3.0
    save_model(other, denoiser, info)
    shutil.copyfile(run / "model.safetensors", guided_path(other))
    assert PainDiffusion.load(other, distilled=True).distilled_source == str(guided_path(other))
    with open(other, "r+b") as fh:  # a retrained checkpoint: same name, other weights
        fh.seek(-4, 2)
        fh.write(b"    ")
    shutil.copyfile(run / "model.safetensors", guided_path(other))
    with pytest.warns(RuntimeWarning, match="distilled from another checkpoint"):
        assert PainDiffusion.load(other).distilled_source is None
    with pytest.raises(InputError, match="another checkpoint"):
        PainDiffusion.load(other, distilled=True)
    guided_path(other).write_bytes(b"not a checkpoint")  # a broken optional file: warned about, the model loads
    with pytest.warns(RuntimeWarning, match="not used"):
        assert PainDiffusion.load(other).distilled_source is None
    with pytest.raises(InputError):
        PainDiffusion.load(other, distilled=True)
    monkeypatch.setenv("PAINFACE_DISTILLED", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert PainDiffusion.load(other).distilled_source is None  # switched off: not even looked at
    # a run folder keeps to its checkpoint and config
    (tmp_path / "cfg2.json").write_text(json.dumps({**SMALL, "sequences": 3, "val_sequences": 1}))
    assert main(["distill", "--data", str(corpus), "--checkpoint", str(ckpt), "--config", str(tmp_path / "cfg2.json"),
                 "--out", str(run), "--steps", "2", "--quiet"]) == 2
    assert "another checkpoint, corpus or other collection settings" in capsys.readouterr().err


def test_rows_the_student_does_not_cover_keep_their_guided_passes() -> None:
    """A live patient with their own strengths: the others still take the student, and every row gets exactly what it
    would get alone."""
    teacher = Denoiser(randomized(UNetConfig(**TINY), 0))
    student = Counting(randomized(UNetConfig(**TINY), 1))
    cfg = SamplerConfig(window=16, horizon=8, steps=4, guidance=GUIDE, gate=1)
    context, cond, eps = _window()
    sig = cfg.window_sigmas()
    lam = torch.tensor([GUIDE, (1.0, 0.0, 3.0)], dtype=torch.float64)
    teacher.distilled = DistilledGuidance(student, GUIDE, 1, "exs")
    mixed = denoise_window(teacher, context, cond, lam, eps, sig, cfg)
    assert (student.calls, student.rows) == (4, 4)  # only row 0
    alone0 = denoise_window(teacher, context[:1], cond.rows(torch.tensor([0])), GUIDE, eps[:, :1], sig, cfg)
    teacher.distilled = None
    alone1 = denoise_window(teacher, context[1:], cond.rows(torch.tensor([1])), (1.0, 0.0, 3.0), eps[:, 1:], sig, cfg)
    torch.testing.assert_close(mixed, torch.cat([alone0, alone1]), rtol=0, atol=1e-6)


def test_long_holds_keep_the_guided_passes() -> None:
    """held_frames: the stimulus on, not falling, its gate faded below HOLD_GATE (held for about 1.6 time constants);
    rest, fresh onsets and falling stimuli are not held."""
    from painface.model.distill import HOLD_GATE, held_frames

    s = torch.tensor([[0.0, 1.0, 1.0, 1.0, 0.5, 0.02]])
    m = torch.tensor([[0.0, 0.1, 0.6, 0.9, 0.8, 0.3]])  # the moving average: on for a moment, a while, long; falling
    cond = Conditions(torch.stack([s, m], -1), torch.tensor([1.0]), torch.eye(8)[[0]])
    assert held_frames(cond, 1).tolist() == [[False, False, False, True, False, False]]
    assert (1.0 - 0.6) / 1.0 >= HOLD_GATE > (1.0 - 0.9) / 1.0
    d = DistilledGuidance(Denoiser(randomized(UNetConfig(**TINY))), GUIDE, 1, "exs")
    cfg = SamplerConfig(guidance=GUIDE, gate=1)
    both = Conditions(torch.stack([torch.cat([s, s]), torch.cat([m, m])], -1), torch.ones(2), torch.eye(8)[[0, 0]])
    both.stimulus[1, 3, 1] = 0.5  # row 1: its average has not caught up, no frame held
    assert d.covered_rows(GUIDE, cfg, 2, both).tolist() == [False, True]
