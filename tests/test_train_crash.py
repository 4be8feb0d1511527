"""Crash safety of ``painface train``: killed at every save point, the rerun leaves a model and a state
of the same step; stale temporaries are removed; checkpoints also come by time."""

import json
import os

import pytest
import torch

import painface.model.checkpoint as checkpoint
import painface.train as train
import painface.training as training
from painface.cli import main
from painface.errors import InputError
from painface.io import atomic_write_bytes, clean_stale
from painface.model.checkpoint import load_model, read_tensors
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol
from painface.train import TrainConfig, Trainer


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing on the way catches it."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return simulate_corpus(out, n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=2), workers=1, progress=False)


def tiny(**kw):
    d = dict(steps=4, batch_size=2, warmup=1, ckpt_every=2, val_every=100, val_windows=2,
             unet={"channels": 16, "cond_dim": 16, "heads": 2, "noise_dim": 8, "depth": 1})
    d.update(kw)
    return TrainConfig.from_dict(d)


def steps_on_disk(run):
    """(model.safetensors step, model.json step, state step)."""
    model = json.loads(read_tensors(run / "model.safetensors")[1]["painface"])["training"]["step"]
    twin = json.loads((run / "model.json").read_text())["training"]["step"]
    state = json.loads(read_tensors(run / "state.safetensors")[1]["painface_state"])["step"]
    return model, twin, state


def count_writes(monkeypatch):
    """Patch the writers used by a checkpoint so that each call is recorded (name of the target)."""
    calls = []
    real_tensors, real_json = checkpoint.save_tensors_atomic, checkpoint.atomic_write_json

    def tensors(path, *a, **k):
        calls.append(path.name)
        hook(path)
        return real_tensors(path, *a, **k)

    def js(path, *a, **k):
        calls.append(path.name)
        hook(path)
        return real_json(path, *a, **k)

    def hook(path):
        if state["kill_at"] is not None and len(calls) - 1 == state["kill_at"]:
            raise Killed(path.name)

    state = {"kill_at": None}
    for mod in (checkpoint, train, training):
        if hasattr(mod, "save_tensors_atomic"):
            monkeypatch.setattr(mod, "save_tensors_atomic", tensors)
    monkeypatch.setattr(checkpoint, "atomic_write_json", js)
    monkeypatch.setattr(train, "atomic_write_json", js)
    return calls, state


def test_the_pair_is_consistent_after_a_kill_at_every_save_point(corpus, tmp_path, monkeypatch):
    calls, state = count_writes(monkeypatch)
    Trainer(corpus, tmp_path / "probe", tiny(), progress=False).run()
    writes = list(calls)
    # train.json, then per checkpoint: model weights, model JSON, state (the commit point)
    assert writes == ["train.json"] + ["model.safetensors", "model.json", "state.safetensors"] * 2
    for k in range(len(writes)):
        run = tmp_path / f"kill{k}"
        calls.clear()
        state["kill_at"] = k
        with pytest.raises(Killed):
            Trainer(corpus, run, tiny(), progress=False).run()
        state["kill_at"] = None
        if (run / "state.safetensors").exists():
            # the rerun's resume alone repairs the model to the state's step
            resumed = Trainer(corpus, run, tiny(), progress=False)
            model, twin, st = steps_on_disk(run)
            assert model == twin == st == resumed.step, (k, writes[k])
        Trainer(corpus, run, tiny(), progress=False).run()
        assert steps_on_disk(run) == (4, 4, 4), (k, writes[k])
        load_model(run / "model.safetensors")


def test_a_run_killed_after_the_last_model_write_is_repaired(corpus, tmp_path, monkeypatch):
    """The issue's case: killed while writing the final model (state already at the end in the old order)."""
    run = tmp_path / "run"
    Trainer(corpus, run, tiny(steps=2), progress=False).run()
    Trainer(corpus, run, tiny(steps=4), progress=False).run()
    # simulate the old failure: a state of step 4 beside a model of step 2
    old = tmp_path / "old"
    Trainer(corpus, old, tiny(steps=2), progress=False).run()
    for name in ("model.safetensors", "model.json"):
        (run / name).write_bytes((old / name).read_bytes())
    assert steps_on_disk(run) == (2, 2, 4)
    assert main(["train", "--data", str(corpus), "--out", str(run), "--steps", "4", "--quiet",
                 "--config", str(_config(tmp_path))]) == 0
    assert steps_on_disk(run) == (4, 4, 4)
    ema = read_tensors(run / "state.safetensors")[0]
    weights = read_tensors(run / "model.safetensors")[0]
    for k, v in weights.items():
        torch.testing.assert_close(v, ema[f"ema.module.{k}"])


def _config(tmp_path):
    cfg = tmp_path / "tiny.json"
    d = {k: v for k, v in tiny().__dict__.items() if k in ("batch_size", "warmup", "ckpt_every", "val_every",
                                                           "val_windows")}
    d["unet"] = {"channels": 16, "cond_dim": 16, "heads": 2, "noise_dim": 8, "depth": 1}
    cfg.write_text(json.dumps(d))
    return cfg


def test_stale_temporaries_of_a_killed_run_are_removed(corpus, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = 2**22 + 12345  # above the usual pid_max of 4194304: no such process
    stale = [run / f".state.safetensors.pid{dead}.abcd1234.part", run / ".train.json.k2j4h5g6.part",
             run / f".model.json.pid{dead}.zz_zz_zz.part"]
    alive = run / f".model.json.pid{os.getpid()}.abcd1234.part"  # a writer still running
    other = run / "notes.txt"
    for p in [*stale, alive, other]:
        p.write_bytes(b"x")
    assert main(["train", "--data", str(corpus), "--out", str(run), "--steps", "1", "--quiet",
                 "--config", str(_config(tmp_path))]) == 0
    assert not any(p.exists() for p in stale)
    assert alive.exists() and other.exists()


def test_videos_and_arrays_clean_their_own_temporaries(tmp_path):
    dead = 2**22 + 54321
    leftovers = [tmp_path / f".f.mp4.pid{dead}.abcdefgh.tmp.mp4", tmp_path / ".x.npz.abcdefgh.part"]
    for p in leftovers:
        p.write_bytes(b"\x00" * 10)
    keep = tmp_path / f".x.npz.csv.pid{dead}.abcdefgh.part"  # another target's temporary
    keep.write_bytes(b"x")
    atomic_write_bytes(tmp_path / "x.npz", lambda fh: fh.write(b"data"))
    assert not leftovers[1].exists() and keep.exists()
    assert clean_stale(tmp_path / "f.mp4") == [leftovers[0]]


def test_outputs_get_the_umask_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.bin", lambda fh: fh.write(b"1"))
        checkpoint.save_tensors_atomic(tmp_path / "b.safetensors", {"w": torch.zeros(2)}, {})
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "c.bin", lambda fh: fh.write(b"1"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.bin").stat().st_mode & 0o777 == 0o600


def test_checkpoints_also_come_by_time(corpus, tmp_path, monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(train.time, "monotonic", lambda: clock["t"])
    trainer = Trainer(corpus, tmp_path / "run", tiny(steps=3, ckpt_every=1000, ckpt_minutes=1.0), progress=False)
    saved = []
    real = trainer.save

    def save():
        saved.append(trainer.step)
        real()

    trainer.save = save
    real_step = trainer.batch

    def batch(*a):
        clock["t"] += 45.0  # each step takes 45 s of (fake) time
        return real_step(*a)

    trainer.batch = batch
    trainer.run()
    assert saved == [2, 3]  # 90 s after the start (>= 1 min), then the last step
    with pytest.raises(InputError, match="ckpt_minutes"):
        tiny(ckpt_minutes=0)
