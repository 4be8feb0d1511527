"""``painface assess`` and ``painface train-assess`` from the command line; real photos when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from painface.assess.model import ViTConfig, ViTPain, save
from painface.assess.predict import SHIPPED, Assessor
from painface.cli import main
from painface.errors import InputError

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "realfaces" / "london-dev"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save(tmp_path_factory.mktemp("m") / "tiny", ViTPain(ViTConfig(size=32, dim=32, depth=1, heads=2)), {})


def test_no_face_and_unreadable_rows(tmp_path, tiny):
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "t.csv"
    assert main(["assess", str(tmp_path), "--out", str(out), "--model", str(tiny), "--quiet"]) == 0
    df = pd.read_csv(out)
    assert len(df) == 3 and not df.face_detected.any()
    assert df.set_index(df.file.map(lambda f: Path(f).name)).loc["broken.jpg", "error"].startswith(str(tmp_path))
    from painface.analyze.detector import BASE_COLUMNS, MEASURE_COLUMNS

    assert list(df.columns) == [*BASE_COLUMNS, *MEASURE_COLUMNS, "p_pspi1", "p_pspi2", "p_pspi3"]


def test_cli_bad_options(tmp_path, tiny, capsys):
    assert main(["assess", str(tmp_path), "--out", str(tmp_path / "x.txt"), "--model", str(tiny)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["assess", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--model", str(tmp_path / "no")]) == 2
    assert main(["train-assess", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no metadata.csv" in capsys.readouterr().err
    other = SHIPPED.parent / "paindiffusion.safetensors"
    assert main(["assess", str(tmp_path), "--out", str(tmp_path / "x.csv"), "--model", str(other)]) == 2
    assert "not a ViTPain checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_variant_c_needs_neutral(tmp_path):
    p = save(tmp_path / "c", ViTPain(ViTConfig(variant="c", size=32, dim=32, depth=1, heads=2)), {})
    with pytest.raises(InputError, match="needs --neutral"):
        Assessor(p)


def test_assessor_reads_as_the_checkpoint_says(tmp_path):
    torch.manual_seed(1)
    net = ViTPain(ViTConfig(size=32, dim=32, depth=1, heads=2)).eval()
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        plain, mirrored = net(x), net(x.flip(3))
    default = Assessor(save(tmp_path / "old", net, {})).predict_crops(crops)  # older checkpoints: mirrored, no gate
    assert np.allclose(default["pspi"], ((plain["pspi"] + mirrored["pspi"]) / 2).numpy(), atol=1e-5)
    unmirrored = Assessor(save(tmp_path / "nomirror", net, {"mirror": False})).predict_crops(crops)
    assert np.allclose(unmirrored["pspi"], plain["pspi"].numpy(), atol=1e-5)
    gated = Assessor(save(tmp_path / "gated", net, {"gate": 0.9})).predict_crops(crops)
    p1 = default["p"][:, 0]
    below = p1 < 0.9
    assert below.any() and np.allclose(gated["pspi"][below], default["pspi"][below] * (p1[below] / 0.9) ** 4)
    assert np.allclose(gated["pspi"][~below], default["pspi"][~below]) and np.allclose(gated["aus"], default["aus"])


@pytest.mark.skipif(not REAL.is_dir(), reason="real photos (../shared/realfaces/london-dev) absent")
def test_real_photos_with_shipped_model(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip("no shipped model yet")
    files = [REAL / "006_neutral.jpg", REAL / "006_smiling.jpg"]
    df = Assessor().assess(files)
    assert df.face_detected.all() and len(df) == 2
    assert ((df.PSPI >= 0) & (df.PSPI <= 16)).all() and df[["AU4", "AU43", "p_pspi1"]].notna().all().all()
    assert df.AU12.isna().all()


@pytest.mark.skipif(not REAL.is_dir(), reason="real photos (../shared/realfaces/london-dev) absent")
def test_video_rows_match_analyze(tmp_path):
    """A 3-frame video of a real face: assess and analyze give the same rows (file, frame, face)."""
    if not SHIPPED.is_file():
        pytest.skip("no shipped model yet")
    import av

    from painface.analyze import Detector

    img = np.asarray(Image.open(REAL / "019_smiling.jpg").convert("RGB").resize((256, 256)))
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        for _ in range(3):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    ours = Assessor().assess([path])
    theirs = Detector().detect([path], progress=False)
    keys = ["file", "frame", "face", "face_detected"]
    assert ours[keys].equals(theirs[keys]) and len(ours) == 3 and ours.face_detected.all()
    assert np.allclose(ours.PSPI, ours.PSPI.iloc[0], atol=0.5)  # the same face in every frame
