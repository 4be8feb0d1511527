"""Bad input for every command, table-driven: exit code 2, one line ``painface CMD: error: ...`` that names
the input and what was expected, no traceback, and no output file left behind that looks complete."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from test_stream import tiny_model

from painface.cli import main
from painface.model.checkpoint import save_model
from painface.subjects.population import simulate_corpus
from painface.subjects.protocols import HeatProtocol

TINY_UNET = {"channels": 16, "cond_dim": 16, "heads": 2, "noise_dim": 8, "depth": 1}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs shared by the cases: a corpus, a tiny checkpoint, a face-code file and broken files."""
    root = tmp_path_factory.mktemp("inputs")
    corpus = simulate_corpus(root / "corpus", n_subjects=4, seed=0, protocol=HeatProtocol(repetitions=2),
                             workers=1, progress=False)
    model = tiny_model()
    info = {"normalizer": model.normalizer.to_dict(), "data_scale": 0.5, "corpus": {"fps": 25.0},
            "training": {"step": 1}}
    ckpt = save_model(root / "tiny", model.denoiser, info)
    zero = save_model(root / "zero_scale", model.denoiser, {**info, "data_scale": 0.0})
    torch.set_num_threads(1)
    codes = root / "codes.npz"
    assert main(["generate", "--checkpoint", str(ckpt), "--seconds", "1", "--steps", "2", "--out", str(codes)]) == 0
    (root / "empty.npz").write_bytes(b"")
    (root / "cut.npz").write_bytes(codes.read_bytes()[: codes.stat().st_size // 2])
    (root / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (root / "wide.csv").write_text("time_s,value\n0,-5\n1,100\n")
    (root / "hot.csv").write_text("time_s,value\n0,32\n1,40\n")  # °C, read as normalized
    (root / "bad_types.json").write_text(json.dumps({"lr": "fast", "window": -3}))
    (root / "nan.json").write_text('{"lr": NaN}')
    (root / "corrupt.safetensors").write_bytes(ckpt.read_bytes()[:3000])
    nan_corpus = root / "nan_corpus"
    shutil.copytree(corpus, nan_corpus)
    meta = (nan_corpus / "meta.json").read_text()
    (nan_corpus / "meta.json").write_text(meta.replace('"expressiveness": ', '"expressiveness": NaN, "x": ', 1))
    (root / "a_file").write_text("not a folder")
    (root / "tiny_train.json").write_text(json.dumps({"unet": TINY_UNET, "batch_size": 2, "val_windows": 2}))
    return {"root": root, "corpus": corpus, "ckpt": ckpt, "zero": zero, "codes": codes}


def _proc_path(name: str) -> str:
    return f"/proc/{name}" if Path("/proc/self").exists() else "/nonexistent-folder/" + name


# (command line with {placeholders}, text the message must contain). {out}: a fresh folder per case
CASES = [
    # demo
    ("demo --seconds nan --out {out}/d", "--seconds nan"),
    ("demo --seconds 1e12 --out {out}/d", "--seconds"),
    ("demo --size 0 --out {out}/d", "--size 0"),
    ("demo --out {root}/a_file", "--out"),
    # simulate
    ("simulate --subjects 0 --out {out}/c", "subjects"),
    ("simulate --config {root}/binary.csv --out {out}/c", "--config"),
    ("simulate --config {root}/nan.json --out {out}/c", "NaN"),
    ("simulate --out {root}/a_file --subjects 1", "--out"),
    # inspect
    ("inspect {corpus} --figure {root}", "--figure"),
    ("inspect {corpus} --figure {root}/a_file/x.png", "--figure"),
    ("inspect {corpus} --figure {out}/x.txt", ".png"),
    ("inspect {root}/nan_corpus --json", "NaN"),
    ("inspect {root}/missing", "not found"),
    # train
    ("train --data {corpus} --out {out}/r --config {root}/bad_types.json", "lr = 'fast'"),
    ("train --data {corpus} --out {out}/r --config {root}/nan.json", "--config"),
    ("train --data {corpus} --out {out}/r --steps 1 --config {root}/tiny_train.json --threads 0", "--threads"),
    ("train --data {corpus} --out {root}/a_file", "--out"),
    ("train --data {corpus} --out {out}/r --device tpu", "--device"),
    ("train --data {corpus} --out {out}/r --steps 0", "steps"),
    ("train --data {root}/missing --out {out}/r", "not found"),
    ("train --data {corpus} --out {out}/state_is_a_model --steps 1 --config {root}/tiny_train.json",
     "not a painface training state"),
    # generate
    ("generate --checkpoint {ckpt} --seconds nan --out {out}/g.npz", "--seconds nan"),
    ("generate --checkpoint {ckpt} --seconds inf --out {out}/g.npz", "--seconds inf"),
    ("generate --checkpoint {ckpt} --seconds 1e12 --out {out}/g.npz", "--seconds"),
    ("generate --checkpoint {ckpt} --seconds 1 --samples 100000000 --out {out}/g.npz", "--samples"),
    ("generate --checkpoint {ckpt} --seconds 1 --samples 0 --out {out}/g.npz", "--samples"),
    ("generate --checkpoint {ckpt} --seconds 1 --smooth -1 --out {out}/g.npz", "--smooth"),
    ("generate --checkpoint {ckpt} --seconds 1 --smooth nan --out {out}/g.npz", "--smooth"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/binary.csv --out {out}/g.npz", "--stimulus"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/wide.csv --out {out}/g.npz", "outside 0..1.5"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/hot.csv --out {out}/g.npz",
     "40 looks like °C: pass --celsius"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/hot.csv --celsius --tolerance-c 30 --out {out}/g.npz",
     "--tolerance-c: heat calibration: expected baseline_c < threshold_c < tolerance_c"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/wide.csv --celsius --out {out}/g.npz",
     "-5..100 °C; expected 32..55.25 °C"),
    ("generate --checkpoint {ckpt} --seconds 1 --celsius --out {out}/g.npz", "--celsius: for a CSV"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus elbow --threshold-c 44 --out {out}/g.npz", "--threshold-c"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/wide.csv --tolerance-c 48 --out {out}/g.npz",
     "°C options for --stimulus biovid or a CSV in °C"),
    ("generate --checkpoint {ckpt} --seconds 1 --stimulus {root}/none.csv --out {out}/g.npz", "--stimulus"),
    ("generate --checkpoint {ckpt} --seconds 1 --guidance 1e9,1,1 --out {out}/g.npz", "--guidance"),
    ("generate --checkpoint {ckpt} --seconds 1 --guidance=-1,1,1 --out {out}/g.npz", "--guidance"),
    ("generate --checkpoint {ckpt} --seconds 1 --guidance nan,1,1 --out {out}/g.npz", "--guidance"),
    ("generate --checkpoint {ckpt} --seconds 1 --expressiveness nan --out {out}/g.npz", "--expressiveness"),
    ("generate --checkpoint {ckpt} --seconds 1 --steps 100000 --out {out}/g.npz", "--steps"),
    ("generate --checkpoint {ckpt} --seconds 1 --out {out}/csvdir.npz --csv", "--csv"),
    ("generate --checkpoint {ckpt} --seconds 1 --out {root}", "--out"),
    ("generate --checkpoint {ckpt} --seconds 1 --out {out}/g.txt", ".npz"),
    ("generate --checkpoint {zero} --seconds 1 --out {out}/g.npz", "data_scale"),
    ("generate --checkpoint {root}/corrupt.safetensors --seconds 1 --out {out}/g.npz", "corrupt"),
    # render
    ("render {root}/empty.npz --out {out}/v.mp4", "empty"),
    ("render {root}/cut.npz --out {out}/v.mp4", "truncated"),
    ("render {root}/missing.npz --out {out}/v.mp4", "no such file"),
    ("render {codes} --out {out}/vdir.mp4", "is a folder"),
    ("render {codes} --out " + _proc_path("v.mp4"), "--out"),
    ("render {codes} --out {out}/v.avi", ".mp4"),
    ("render {codes} --out {out}/v.mp4 --flame {root}/nope.pkl", "--flame"),
    # export
    ("export {root}/empty.npz --to arkit-csv --out {out}/e.csv", "empty"),
    ("export {root}/cut.npz --to glb --out {out}/e.glb", "truncated"),
    ("export {codes} --to arkit-json --out {out}/vdir.mp4", "is a folder"),
    ("export {codes} --to glb --out " + _proc_path("e.glb"), "--out"),
    # serve (refused before the model loads or a port opens)
    ("serve --host 999.1.1.1", "--host"),
    ("serve --allow-origin *", "--allow-origin"),
    ("serve --allow-origin null", "--allow-origin"),
    ("serve --checkpoint {ckpt} --joint udp:1_000", "--joint"),
    ("serve --checkpoint {ckpt} --joint tcp:9000", "--joint"),
    ("serve --checkpoint {ckpt} --osc nowhere", "--osc"),
    ("serve --port 70000", "--port"),
    ("serve --checkpoint {root}/missing.safetensors", "not found"),
    # convert-biovid
    ("convert-biovid {root}/missing --labels {root}/missing --out {out}/b", "missing"),
    # evaluate
    ("evaluate --data {corpus} --checkpoint {ckpt} --fsq {root}/corrupt.safetensors --out {out}/ev", "corrupt"),
    # train-fsq
    ("train-fsq --data {corpus} --out {root}/a_file", "--out"),
    ("train-fsq --data {corpus} --out {out}/f --config {root}/binary.csv", "--config"),
    # control
    ("control --checkpoint {ckpt} --out {out}/c --seeds 1", "seeds"),
    ("control --checkpoint {ckpt} --out {out}/c --level nan", "levels"),
    # ablate
    ("ablate --checkpoint {ckpt} --data {corpus} --out {out}/a --seconds nan", "seconds"),
    ("ablate --checkpoint {ckpt} --data {corpus} --out {out}/a --windows 0", "windows"),
]


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("line,expect", CASES, ids=[c[0].split(" --out")[0][:60] for c in CASES])
def test_bad_input_is_one_line_exit_2(files, tmp_path, capsys, line, expect):
    out = tmp_path / "out"
    out.mkdir()
    (out / "csvdir.csv").mkdir()
    (out / "vdir.mp4").mkdir()
    if "state_is_a_model" in line:  # a model checkpoint copied in place of the training state
        (out / "state_is_a_model").mkdir()
        shutil.copy(files["ckpt"], out / "state_is_a_model" / "state.safetensors")
    before = _files(files["root"]) | _files(out)
    argv = [a.format(out=out, **{k: str(v) for k, v in files.items()}) for a in line.split(" ")]
    rc = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert rc == 2, (line, err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"painface {argv[0]}: error: ") and expect in lines[0], lines[0]
    left = (_files(files["root"]) | _files(out)) - before
    assert not [p for p in left if not p.name.startswith(".")], left  # nothing that looks complete
    assert not [p for p in left if p.name.startswith(".")], left  # nor temporaries


def test_cuda_on_a_cpu_install_is_a_clear_error(files, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc = main(["train", "--data", str(files["corpus"]), "--out", str(tmp_path / "r"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and "--device 'cuda'" in err and "no CUDA" in err and "Traceback" not in err


def test_generate_writes_nothing_when_the_csv_cannot_be_written(files, tmp_path):
    """Before: the .npz was written, then writing the .csv onto a folder raised a traceback."""
    (tmp_path / "g.csv").mkdir()
    assert main(["generate", "--checkpoint", str(files["ckpt"]), "--seconds", "1", "--out",
                 str(tmp_path / "g.npz"), "--csv"]) == 2
    assert not (tmp_path / "g.npz").exists()


def test_generated_head_pose_stays_in_the_documented_range(files, tmp_path):
    from painface.express import PainDiffusion
    from painface.face.code import POSE_LIMITS_DEG, POSE_NAMES

    model = PainDiffusion.load(files["ckpt"])
    face = model.decode(torch.full((1, 10, len(model.feature_names)), 1e4))
    for i, name in enumerate(POSE_NAMES):
        col = face[..., model.feature_names.index(name)]
        assert np.abs(col).max() == pytest.approx(POSE_LIMITS_DEG[name]), i
