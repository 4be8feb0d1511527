"""ViTPain: metrics against hand-computed values, model and checkpoints, training (overfit, resume), data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from painface.assess import metrics as M
from painface.assess.model import GATES, ViTConfig, ViTPain, load, read, save, tune_gate
from painface.assess.train import TrainConfig, predict_split, train
from painface.errors import InputError
from tests.assess_fixtures import write_fake_synth

TINY = {"size": 32, "dim": 32, "depth": 1, "heads": 2}


# ------------------------------------------------------------------------------------------ metrics
def test_metrics_hand_computed():
    assert M.mae([0, 1, 2], [1, 1, 4]) == pytest.approx(1.0)
    assert M.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / np.sqrt(2 * 38 / 3), abs=1e-12)
    assert np.isnan(M.pearson([1, 2, 3], [5, 5, 5]))
    assert M.auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert M.auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(M.auroc([1, 1], [0.2, 0.3]))
    assert M.f1([1, 1, 0, 0], [3, 1, 2, 0], 1.5) == pytest.approx(0.5)
    assert M.icc31([1, 2, 3], [2, 2, 5]) == pytest.approx(0.75)
    assert M.icc31([1, 2, 3, 4], [3, 4, 5, 6]) == pytest.approx(1.0)  # consistency: offsets do not count
    assert M.tune_threshold([0, 0, 1, 1], [0, 1, 2, 3]) == pytest.approx(1.5)
    s = M.summary([0, 0, 2, 4], [0.5, 0, 2, 3], {1: 1.0, 2: 1.0, 3: 2.5})
    assert s["MAE"] == pytest.approx(0.375) and s["AUROC1"] == 1.0 and s["F1_3"] == pytest.approx(1.0)


def test_metrics_errors_and_bootstrap():
    with pytest.raises(InputError, match="2 labels but 3"):
        M.mae([1, 2], [1, 2, 3])
    with pytest.raises(InputError, match="finite"):
        M.mae([1, np.nan], [1, 2])
    groups = np.repeat([0, 1, 2, 3], 5)
    y = np.arange(20.0)
    ci = M.bootstrap(groups, lambda i: {"MAE": M.mae(y[i], y[i] + 1)}, n=50)
    assert ci["MAE"] == pytest.approx((1.0, 1.0, 1.0))


# ------------------------------------------------------------------------------------------ model
def test_model_shapes_and_ranges():
    torch.manual_seed(0)
    m = ViTPain(ViTConfig(variant="c", **TINY)).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        out = m(x, torch.rand(3, 3, 32, 32))
    assert out["aus"].shape == (3, 6) and out["pspi"].shape == (3,) and out["logits"].shape == (3, 3)
    assert float(out["pspi"].min()) >= 0 and float(out["pspi"].max()) <= 16 and float(out["aus"].max()) <= 5
    with pytest.raises(InputError, match="neutral reference"):
        m(x)
    with pytest.raises(InputError, match=r"expected \[B, 3, 32, 32\]"):
        m(torch.rand(2, 3, 30, 30), torch.rand(2, 3, 30, 30))
    with pytest.raises(InputError, match="variant"):
        ViTPain(ViTConfig(variant="z"))


def test_checkpoint_roundtrip_and_refusals(tmp_path):
    torch.manual_seed(0)
    m = ViTPain(ViTConfig(**TINY)).eval()
    p = save(tmp_path / "m", m, {"note": "x"})
    m2, meta = load(p)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(m(x)["pspi"], m2(x)["pspi"]) and meta["note"] == "x"
    assert (tmp_path / "m.json").is_file()
    from pathlib import Path

    other = Path(__file__).resolve().parent.parent / "painface" / "assets" / "paindiffusion.safetensors"
    with pytest.raises(InputError, match="not a ViTPain checkpoint"):
        load(other)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="not a readable safetensors"):
        load(tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="not found"):
        load(tmp_path / "missing.safetensors")


def test_read_mirrors_and_gates():
    torch.manual_seed(0)
    m = ViTPain(ViTConfig(**TINY)).eval()
    x = torch.rand(4, 3, 32, 32)
    plain, mirrored = m(x), m(x.flip(3))
    r = read(m, x)
    for k in ("aus", "pspi", "logits"):
        assert torch.allclose(r[k], (plain[k] + mirrored[k]) / 2, atol=1e-6)
    assert torch.allclose(read(m, x, flip=False)["pspi"], plain["pspi"])
    p1 = torch.sigmoid(r["logits"][:, 0])
    g = float(p1.sort().values[1:3].mean())  # between the 2nd and 3rd smallest P(PSPI >= 1)
    gated = read(m, x, gate=g)["pspi"]
    low = p1 < g
    assert low.sum() == 2 and torch.equal(gated[~low], r["pspi"][~low])
    assert torch.allclose(gated[low], r["pspi"][low] * (p1[low] / g) ** 4)
    assert torch.equal(read(m, x, gate=0.0)["pspi"], r["pspi"])  # 0: no gate


def test_tune_gate_finds_the_hurdle():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(50), rng.uniform(2, 10, 50)]
    pspi = np.r_[np.full(50, 0.7), y[50:] + rng.normal(0, 0.3, 50)]
    p1 = np.r_[rng.uniform(0.0, 0.3, 50), rng.uniform(0.6, 1.0, 50)]
    g = tune_gate(y, pspi, p1)
    assert 0.3 <= g <= 0.6  # every zero face gated, no painful one
    assert tune_gate(y[50:], pspi[50:], p1[50:]) == 0.0  # nothing to gate: no gate
    with pytest.raises(InputError, match="tune_gate"):
        tune_gate(y, pspi[:3], p1)


# ------------------------------------------------------------------------------------------ training
def test_tiny_model_overfits(tmp_path):
    ds = write_fake_synth(tmp_path / "ds")
    cfg = TrainConfig(data=str(ds), **TINY, steps=150, batch=16, lr=3e-3, warmup=10, augment=0.0,
                      eval_every=150, save_every=150, ema=0.9)
    res = train(cfg, tmp_path / "run", progress=False, log=lambda *_: None)
    from painface.assess import data as D

    tr = D.load_split(ds, "train", 32)
    model, meta = load(tmp_path / "run" / "best")
    y, p = tr.pspi.numpy(), predict_split(model, tr)
    assert M.mae(y, p) < 0.35 * M.mae(y, np.full_like(y, y.mean()))  # far below the mean predictor
    assert set(meta["thresholds"]) == {"1", "2", "3"} and res["test_images"] == 5
    assert meta["mirror"] is False and meta["gate"] in GATES  # no flips in training (augment 0): read unmirrored
    assert (tmp_path / "run" / "test.json").is_file()


def test_resume_reproduces_weights(tmp_path):
    ds = write_fake_synth(tmp_path / "ds", identities=4, expressions=2)
    cfg = TrainConfig(data=str(ds), **TINY, steps=12, batch=4, warmup=2, eval_every=8, save_every=4)
    train(cfg, tmp_path / "full", progress=False, log=lambda *_: None)

    def killer(msg: str) -> None:
        if msg.startswith("step 8"):
            raise KeyboardInterrupt  # killed after step 8's evaluation, before its state was saved

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", progress=False, log=killer)
    train(cfg, tmp_path / "cut", progress=False, log=lambda *_: None)
    a, b = load_file(tmp_path / "full" / "state.safetensors"), load_file(tmp_path / "cut" / "state.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(InputError, match="other settings"):
        train(TrainConfig(**{**cfg.__dict__, "lr": 0.5}), tmp_path / "cut", progress=False)


def test_bad_training_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no metadata.csv"):
        train(TrainConfig(data=str(tmp_path / "empty"), **TINY), tmp_path / "r", progress=False)
    ds = write_fake_synth(tmp_path / "ds", identities=3, expressions=1)
    next((ds / "images").rglob("*.png")).unlink()
    with pytest.raises(InputError, match="missing"):
        train(TrainConfig(data=str(ds), **TINY), tmp_path / "r2", progress=False)
    assert not (tmp_path / "r2").exists()  # nothing half-written
    ds2 = write_fake_synth(tmp_path / "ds2", identities=3, expressions=1)
    with pytest.raises(InputError, match="needs --teacher"):
        train(TrainConfig(data=str(ds2), variant="b", **TINY), tmp_path / "r3", progress=False)
    student = save(tmp_path / "student", ViTPain(ViTConfig(**TINY)), {})
    with pytest.raises(InputError, match="not a heatmap teacher"):
        train(TrainConfig(data=str(ds2), variant="b", teacher=str(student), **TINY), tmp_path / "r4", progress=False)


def test_augment_keeps_range_and_geometry():
    from painface.assess.data import augment

    g = torch.Generator().manual_seed(0)
    img = torch.rand(4, 3, 32, 32)
    hm = torch.zeros(4, 1, 32, 32)
    out, hm2 = augment(img, g, hm)
    assert out.shape == img.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert float(hm2.abs().max()) == 0.0
    same, _ = augment(img, g, None, strength=0.0)
    assert torch.equal(same, img)


@pytest.mark.parametrize("strength", [0.01, 0.25, 0.5])
def test_weak_augmentation_flips_faces_instead_of_squashing_them(strength):
    # the flip once was scaled towards the identity with the rest: at strength 0.5 half of the training images
    # were squashed to a single column, at 0.25 to half their width
    from painface.assess.data import _affine

    theta = _affine(4000, torch.Generator().manual_seed(0), strength)
    det = torch.linalg.det(theta[:, :, :2])
    flipped = det < 0
    assert 0.45 < float(flipped.float().mean()) < 0.55  # half are mirrored, at any strength
    lo, hi = 1 / (1 + 0.1 * strength) ** 2, 1 / (1 - 0.1 * strength) ** 2  # area factor of scale 1 +- 0.1 s
    assert float(det.abs().min()) >= lo - 1e-5 and float(det.abs().max()) <= hi + 1e-5
    # a weak augmentation of a left-right ramp is the ramp or its mirror, nothing in between
    from painface.assess.data import augment

    ramp = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(64, 3, 32, 32).contiguous()
    out, _ = augment(ramp, torch.Generator().manual_seed(1), strength=0.001)
    slope = out[:, 0, 16, 28] - out[:, 0, 16, 3]
    assert ((slope - 0.8).abs() < 0.1).sum() + ((slope + 0.8).abs() < 0.1).sum() == 64
    assert 16 <= int((slope < 0).sum()) <= 48


def test_init_from_checkpoint(tmp_path):
    ds = write_fake_synth(tmp_path / "ds", identities=3, expressions=1)
    torch.manual_seed(1)
    start = save(tmp_path / "start", ViTPain(ViTConfig(**TINY)), {})
    cfg = TrainConfig(data=str(ds), init=str(start), **TINY, steps=1, batch=2, lr=1e-12, warmup=1, eval_every=1,
                      save_every=1, ema=0.0)
    train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    a, b = load(start)[0].state_dict(), load(tmp_path / "r" / "best")[0].state_dict()
    weights = [k for k in a if "running" not in k and "num_batches" not in k]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in weights)
    bad = save(tmp_path / "bad", ViTPain(ViTConfig(size=32, dim=64, depth=1, heads=2)), {})
    with pytest.raises(InputError, match="differs"):
        train(TrainConfig(**{**cfg.__dict__, "init": str(bad)}), tmp_path / "r2", progress=False)


def test_the_recorded_command_spells_out_every_non_default_setting():
    from painface.assess.train import command_line

    cmd = command_line(TrainConfig(data="d", init="x.safetensors", augment=0.8, steps=2000, lr=2e-4), "runs/r")
    assert cmd == ("painface train-assess --data d --out runs/r --variant a --init x.safetensors --steps 2000 "
                   "--lr 0.0002 --augment 0.8")
    assert command_line(TrainConfig(data="d", variant="c"), "o") == "painface train-assess --data d --out o --variant c"


def test_extra_data_adds_every_image_of_other_people_and_keeps_neutral_pairs(tmp_path):
    from painface.assess import data as D
    from painface.assess.train import command_line

    main = write_fake_synth(tmp_path / "main", identities=5, expressions=2, seed=0)  # 3 train identities
    more = write_fake_synth(tmp_path / "more", identities=4, expressions=2, seed=1)  # every split is used
    s = D.load_training(main, [str(more)], 32)
    assert len(s) == (3 + 4) * 3 and len(set(s.identity.tolist())) == 7
    # each image's neutral is the same person's expression-0 image, in its own part
    assert (s.pspi[s.neutral] == 0).all() and (s.identity[s.neutral] == s.identity).all()
    assert torch.equal(s.images[s.neutral[-1]], D.load_split(more, "test", 32).images[0])
    # a dataset holding one of main's val/test people is refused, as is one that cannot tell
    with pytest.raises(InputError, match="twice"):
        D.load_training(main, [str(more), str(more)], 32)
    with pytest.raises(InputError, match="val/test identities"):
        D.load_training(main, [str(write_fake_synth(tmp_path / "copy", identities=5, expressions=2, seed=0))], 32)
    import pandas as pd

    df = pd.read_csv(more / "metadata.csv").drop(columns="identity_seed")
    df.to_csv(more / "metadata.csv", index=False)
    with pytest.raises(InputError, match="identity_seed"):
        D.load_training(main, [str(more)], 32)
    write_fake_synth(more, identities=4, expressions=2, seed=1)
    cfg = TrainConfig(data=str(main), extra_data=(str(more),), **TINY, steps=2, batch=4, eval_every=1, save_every=1)
    assert command_line(cfg, "o").endswith(f"--extra-data {more}")
    train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)
    assert load(tmp_path / "r" / "best")[1]["train_images"] == 21
    train(cfg, tmp_path / "r", progress=False, log=lambda *_: None)  # the stored config (a list) still matches
    with pytest.raises(InputError, match="extra_data"):
        train(TrainConfig(**{**cfg.__dict__, "extra_data": ()}), tmp_path / "r", progress=False)
