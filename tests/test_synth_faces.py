"""painface synth faces: the dataset contract on a small run, resuming, determinism and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from painface.cli import main
from painface.errors import InputError
from painface.face.code import AU_NAMES, FEATURE_NAMES, pspi
from painface.synth.dataset import SynthFaces, read_metadata
from painface.synth.expressions import identity_expressions, negative_expression, pain_expression
from painface.synth.faces import SynthFacesConfig, make_faces

CFG = SynthFacesConfig(identities=6, expressions=3, negatives=1, views=2, size=64, seed=4, shard_size=2,
                       split=(0.5, 0.34, 0.16))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "faces"
    make_faces(CFG, root, workers=1, progress=False)
    return root


def test_contract(dataset):
    df = pd.read_csv(dataset / "metadata.csv")
    assert len(df) == CFG.n_images == 6 * 4 * 2
    for col in ("file", "identity", "split", "expression", "view_yaw", "view_pitch", "neutral_file", "heatmap_file",
                *AU_NAMES, "PSPI", "age", "age_group", "sex", "skin_tone", "light_key", "background", "file_name"):
        assert col in df.columns, col
    # identity-disjoint splits
    per_id = df.groupby("identity").split.nunique()
    assert (per_id == 1).all() and set(df.split) <= {"train", "val", "test"}
    # PSPI recomputed from the AU columns
    codes = np.zeros((len(df), len(FEATURE_NAMES)), np.float32)
    for i, au in enumerate(AU_NAMES):
        codes[:, i] = df[au]
    np.testing.assert_allclose(pspi(codes, FEATURE_NAMES), df.PSPI, atol=2e-3)
    # paired neutral exists, same identity and view, and is expression 0
    by_file = df.set_index("file")
    for _, r in df.iterrows():
        n = by_file.loc[r.neutral_file]
        assert n.expression == 0 and n.identity == r.identity and n.view == r.view
    # images decode at the size; heatmaps all zero exactly for neutral rows
    for _, r in df.iterrows():
        img = Image.open(dataset / r.file)
        assert img.size == (64, 64) and img.mode == "RGB"
        hm = np.asarray(Image.open(dataset / r.heatmap_file))
        assert hm.shape == (64, 64)
        assert (hm.max() == 0) == (r.expression == 0), r.file
    meta = json.loads((dataset / "dataset.json").read_text())
    assert meta["complete"] and meta["counts"]["images"] == len(df) and meta["config"]["seed"] == 4
    assert (dataset / "README.md").read_text().startswith("# painface synthetic pain faces")
    lm = pd.read_csv(dataset / "landmarks.csv")
    assert len(lm) == len(df) and list(lm.file) == list(df.file)
    # the eyes sit where the alignment template puts them (0.37 / 0.63 of the width, 0.40 of the height)
    assert np.allclose(lm.align_eye_r_x / 64, 0.37, atol=0.05) and np.allclose(lm.align_eye_l_y / 64, 0.40, atol=0.05)


def test_strata_balanced():
    from painface.face.identity import sample_identities

    ids = sample_identities(130, seed=0)
    counts = pd.Series([(i.age_group, i.sex, i.skin_tone) for i in ids]).value_counts()
    assert len(counts) == 60 and counts.max() - counts.min() <= 1


def test_torch_dataset_and_imagefolder_convention(dataset):
    ds = SynthFaces(dataset, "train", neutral=True, heatmap=True)
    item = ds[1]
    assert tuple(item["image"].shape) == (3, 64, 64) and 0.0 <= float(item["image"].min()) <= 1.0
    assert tuple(item["heatmap"].shape) == (1, 64, 64) and tuple(item["aus"].shape) == (6,)
    r = ds.table.iloc[1]
    assert float(item["pspi"]) == pytest.approx(r.PSPI, abs=1e-4)
    # Hugging Face imagefolder: metadata.csv at the root with file_name relative to it
    df = pd.read_csv(dataset / "metadata.csv")
    assert all((dataset / f).is_file() for f in df.file_name)


def test_resume_after_a_lost_shard_gives_the_same_dataset(dataset, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    # as if killed during shard 1: its table and some images are gone, a stray temporary is left
    (copy / "shards" / "shard_00001.csv").unlink()
    (copy / "metadata.csv").unlink()
    gone = pd.read_csv(dataset / "metadata.csv").query("identity == 2").file.iloc[0]
    (copy / gone).unlink()
    stray = (copy / gone).parent / f".{(copy / gone).name}.pid999999999.abcdefgh.part"  # a dead writer's
    stray.write_bytes(b"half")
    make_faces(CFG, copy, workers=1, progress=False)
    assert not stray.exists()
    a, b = pd.read_csv(dataset / "metadata.csv"), pd.read_csv(copy / "metadata.csv")
    pd.testing.assert_frame_equal(a, b)
    assert (copy / gone).read_bytes() == (dataset / gone).read_bytes()


def test_bad_input(dataset, tmp_path, capsys):
    with pytest.raises(InputError, match="another config"):
        make_faces(SynthFacesConfig(**{**CFG.to_dict(), "split": CFG.split, "seed": 5}), dataset, progress=False)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        make_faces(CFG, other, progress=False)
    assert (other / "notes.txt").read_text() == "mine"
    for argv, msg in ((["--identities", "-3"], "--identities"), (["--identities", "10000000"], "--identities"),
                      (["--negatives", "12"], "--negatives"), (["--size", "8"], "--size"),
                      (["--views", "9"], "--views")):
        assert main(["synth", "faces", "--out", str(tmp_path / "x"), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err
        assert not (tmp_path / "x").exists()
    f = tmp_path / "file"
    f.write_text("")
    assert main(["synth", "faces", "--out", str(f), "--identities", "1"]) == 2
    with pytest.raises(InputError, match="metadata.csv"):
        read_metadata(tmp_path)


def test_expressions_sampler():
    rng = np.random.default_rng(0)
    pains = [pain_expression(rng) for _ in range(2000)]
    scores = np.array([p.pspi for p in pains])
    assert scores.min() >= 0 and scores.max() <= 16 and (scores >= 10).mean() > 0.1 and (scores < 4).mean() > 0.1
    assert all(p.code[AU_NAMES.index("AU6")] > 0 or p.code[AU_NAMES.index("AU7")] > 0 for p in pains[:200])
    smile = negative_expression(rng, "smile")
    assert not smile.pain and smile.code[AU_NAMES.index("AU12")] > 1
    ex = identity_expressions(np.random.default_rng(1), 10, 2)
    assert ex[0].kind == "neutral" and sum(not e.pain for e in ex[1:]) == 2


def test_two_worker_processes_give_the_same_dataset(dataset, tmp_path):
    """Shards rendered by spawned worker processes (after this process has rendered: the fork hazard)
    give the same tables and bytes as one process."""
    cfg = SynthFacesConfig(**{**CFG.to_dict(), "split": CFG.split, "identities": 4})
    one = tmp_path / "one"
    two = tmp_path / "two"
    make_faces(cfg, one, workers=1, progress=False)
    make_faces(cfg, two, workers=2, progress=False)
    a, b = pd.read_csv(one / "metadata.csv"), pd.read_csv(two / "metadata.csv")
    pd.testing.assert_frame_equal(a, b)
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in a.file)
