import json

import numpy as np
import pytest
import torch

from painface.cli import main
from painface.errors import InputError
from painface.express import PainDiffusion
from painface.model.checkpoint import load_model
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol
from painface.train import TrainConfig, Trainer, lr_at

TINY = {"unet": {"channels": 32, "depth": 1, "heads": 2}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return simulate_corpus(out, n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=2), workers=1, progress=False)


def tiny_cfg(**kw):
    d = dict(steps=6, batch_size=4, warmup=2, ckpt_every=3, val_every=3, val_windows=4, unet=dict(TINY["unet"]))
    d.update(kw)
    return TrainConfig.from_dict(d)


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(99, cfg) == pytest.approx(1e-4, rel=0.05)
    assert lr_at(55, cfg) < lr_at(20, cfg)


def test_config_rejects_unknown_keys(corpus, tmp_path):
    with pytest.raises(InputError, match="unknown key"):
        TrainConfig.from_dict({"stepz": 3})
    # a misspelt network key is an error too, not silently dropped (the run would train another network)
    with pytest.raises(InputError, match=r"unknown key.*levels"):
        Trainer(corpus, tmp_path / "run", tiny_cfg(unet={**TINY["unet"], "levels": 1}), progress=False)
    with pytest.raises(InputError, match="steps >= 1"):
        TrainConfig.from_dict({"steps": 0})


def test_training_writes_checkpoints_and_resumes_exactly(corpus, tmp_path):
    torch.set_num_threads(1)
    full = Trainer(corpus, tmp_path / "full", tiny_cfg(), progress=False)
    full.run()
    # the same run, stopped after 3 steps (one checkpoint) and restarted, ends with the same weights
    half = Trainer(corpus, tmp_path / "half", tiny_cfg(steps=3), progress=False)
    half.run()
    resumed = Trainer(corpus, tmp_path / "half", tiny_cfg(), progress=False)
    assert resumed.step == 3
    resumed.run()
    a, b = full.denoiser.state_dict(), resumed.denoiser.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3, 6] and all(np.isfinite(r["val_loss"]) for r in log)
    denoiser, info = load_model(tmp_path / "full" / "model.safetensors")
    assert info["training"]["step"] == 6 and len(info["normalizer"]["mean"]) == 20
    # the range of the training subjects' expressiveness travels with the checkpoint
    from painface.data.corpus import open_corpus

    c = open_corpus(corpus)
    train_expr = [float(c.subject(i).info["expressiveness"]) for i in c.ids("train")]
    assert info["corpus"]["expressiveness"] == {"min": round(min(train_expr), 4), "max": round(max(train_expr), 4),
                                                "subjects": len(train_expr)}
    assert PainDiffusion(denoiser, info).trained_expressiveness == (round(min(train_expr), 4),
                                                                    round(max(train_expr), 4))
    # ... and so do the subject ids of every split (which subjects a report may call held out)
    assert info["corpus"]["subjects"] == {sp: c.ids(sp) for sp in ("train", "val", "test") if c.ids(sp)}
    assert set(info["corpus"]["subjects"]["train"]).isdisjoint(info["corpus"]["subjects"].get("val", []))
    # the shipped-format checkpoint holds the EMA weights
    ema = full.ema.module.state_dict()
    for k, v in denoiser.state_dict().items():
        torch.testing.assert_close(v, ema[k])


def test_generate_command_writes_the_corpus_subject_format(corpus, tmp_path):
    Trainer(corpus, tmp_path / "run", tiny_cfg(steps=2, ckpt_every=2), progress=False).run()
    ckpt = tmp_path / "run" / "model.safetensors"
    out = tmp_path / "g.npz"
    rc = main(
        [
            "generate",
            "--checkpoint",
            str(ckpt),
            "--seconds",
            "4",
            "--samples",
            "3",
            "--steps",
            "4",
            "--emotion",
            "fear",
            "--out",
            str(out),
            "--csv",
        ]
    )
    assert rc == 0
    with np.load(out) as z:
        assert z["face"].shape == (3, 100, 20) and z["pspi"].shape == (3, 100) and z["stimulus"].shape == (100,)
        assert list(z["feature_names"])[:2] == ["AU1", "AU2"]
        assert z["face"][..., :17].min() >= 0 and z["face"][..., :17].max() <= 5
    rows = (tmp_path / "g.csv").read_text().splitlines()
    assert len(rows) == 1 + 300 and rows[0].startswith("patient,sample,frame,time,stimulus,temperature,")
    model = PainDiffusion.load(ckpt)
    one = model.generate(np.zeros(48, np.float32), 1.0, "Neutral", samples=1, seed=7, steps=3)
    again = model.generate(np.zeros(48, np.float32), 1.0, "Neutral", samples=1, seed=7, steps=3)
    np.testing.assert_array_equal(one, again)
    assert main(["generate", "--checkpoint", str(ckpt), "--emotion", "Joy", "--out", str(out)]) == 2
    assert main(["generate", "--checkpoint", str(ckpt), "--guidance", "1,2", "--out", str(out)]) == 2


def test_bad_checkpoints_are_clear_errors(corpus, tmp_path):
    Trainer(corpus, tmp_path / "run", tiny_cfg(steps=1, ckpt_every=1), progress=False).run()
    good = (tmp_path / "run" / "model.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_model(cut)
    with pytest.raises(InputError, match="not found"):
        load_model(tmp_path / "none.safetensors")
    # a config that does not match the weights
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / "run" / "model.safetensors"), framework="pt") as f:
        meta = json.loads(f.metadata()["painface"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["unet"]["channels"] = 48
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"painface": json.dumps(meta)})
    with pytest.raises(InputError, match="do not match the config"):
        load_model(bad)


def test_demo_command_writes_video_figure_and_codes(corpus, tmp_path):
    import av

    Trainer(corpus, tmp_path / "run", tiny_cfg(steps=1, ckpt_every=1), progress=False).run()
    out = tmp_path / "demo"
    rc = main(
        [
            "demo",
            "--checkpoint",
            str(tmp_path / "run" / "model.safetensors"),
            "--seconds",
            "2",
            "--size",
            "64",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    with np.load(out / "demo.npz") as z:
        assert z["face"].shape == (4, 50, 20) and z["pspi"].shape == (4, 50) and len(z["labels"]) == 4
    with av.open(str(out / "demo.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 50 and frames[0].shape[0] == 2 * 64
    assert (out / "demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_script_runs_under_torchrun_with_two_processes(corpus, tmp_path):
    import os
    import subprocess
    import sys

    cfg = tmp_path / "tiny.json"
    cfg.write_text(
        json.dumps(
            {
                "unet": {"channels": 16, "cond_dim": 16, "heads": 2, "noise_dim": 8},
                "ckpt_every": 2,
                "val_every": 2,
                "val_windows": 4,
                "warmup": 1,
            }
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
        "-m",
        "painface.train",
        "--data",
        str(corpus),
        "--out",
        str(tmp_path / "ddp"),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--config",
        str(cfg),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "on cpu x 2" in done.stderr
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]
    _, info = load_model(tmp_path / "ddp" / "model.safetensors")
    assert info["training"]["step"] == 2


def test_one_training_step_is_the_edm_objective_drawn_from_the_trainers_generator(corpus, tmp_path):
    """Trainer.run computes its loss through edm.training_loss: the first step's loss equals the EDM objective
    (per-frame sigmas, noise, then the condition null mask, drawn in that order) written out by hand."""
    import copy

    from painface.model.conditions import drop_mask
    from painface.model.edm import sample_training_sigmas

    torch.set_num_threads(1)
    trainer = Trainer(corpus, tmp_path / "run", tiny_cfg(steps=1, val_every=5), progress=False)
    before = copy.deepcopy(trainer.denoiser)
    gen = torch.Generator().manual_seed(0)
    gen.set_state(trainer.gen.get_state())
    trainer.train_set.set_epoch(0)
    idx = torch.randint(len(trainer.train_set), (trainer.cfg.batch_size,), generator=gen)
    x0, cond = trainer.batch(trainer.train_set, idx)
    b, t, _ = x0.shape
    sigma = sample_training_sigmas(b, t, trainer.edm, gen)
    noise = torch.randn(x0.shape, generator=gen)
    drop = drop_mask(b, trainer.edm.p_drop, gen)
    with torch.no_grad():
        expected = before.loss(x0, cond, sigma, noise, drop, trainer.edm.velocity).mean()
    result = trainer.run()
    assert result["loss"] == float(expected)
    assert trainer.gen.get_state().equal(gen.get_state())  # nothing else drew from the training generator


def test_init_warm_starts_from_a_checkpoint_and_refuses_another_network(corpus, tmp_path):
    torch.set_num_threads(1)
    first = Trainer(corpus, tmp_path / "a", tiny_cfg(steps=3), progress=False)
    first.run()
    ckpt = tmp_path / "a" / "model.safetensors"
    den, info = load_model(ckpt)
    warm = Trainer(corpus, tmp_path / "b", tiny_cfg(steps=3, init=str(ckpt)), progress=False)
    for k, v in den.state_dict().items():  # the run starts from the checkpoint's (EMA) weights ...
        torch.testing.assert_close(warm.denoiser.state_dict()[k], v, rtol=0, atol=0)
        torch.testing.assert_close(warm.ema.module.state_dict()[k], v, rtol=0, atol=0)
    assert warm.normalizer.to_dict() == info["normalizer"]  # ... and keeps the normalizer its weights assume
    cold = Trainer(corpus, tmp_path / "c", tiny_cfg(steps=3), progress=False)
    assert any(not torch.equal(cold.denoiser.state_dict()[k], v) for k, v in den.state_dict().items())
    wide = dict(TINY["unet"], channels=2 * TINY["unet"]["channels"])
    with pytest.raises(InputError, match="network config differs"):
        Trainer(corpus, tmp_path / "d", tiny_cfg(steps=3, init=str(ckpt), unet=wide), progress=False)
