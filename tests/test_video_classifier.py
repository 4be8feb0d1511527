"""The BioVid Part A reader, train-video (synthetic / real / mixed protocols) and classify-video, on
fixtures written here in BioVid Part A's layout (the real database was never seen)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painface.cli import main
from painface.errors import InputError
from painface.face.video import write_video
from painface.video.biovid_a import CLASSES, load_clips, read_samples, subject_split
from painface.video.metrics import binary_metrics, multiclass_metrics

SHIPPED_PERSON = Path(__file__).resolve().parent.parent / "painface" / "assets" / "video_binary_person.safetensors"
SUBJECTS = ("071309_w_21", "071313_m_41", "071614_m_20", "071709_w_23", "072309_w_55", "072514_m_27")
FAST = ["--frames", "4", "--stride", "4", "--size", "16", "--width", "8", "--batch", "8", "--quiet"]


def write_biovid(root, subjects=SUBJECTS, clips=2, table=True, seed=0):
    """A BioVid-Part-A-like folder: 32 px clips of 20 frames in which a dark bar (a 'brow') grows darker
    with the class and over the clip, on noise; samples.csv as distributed (tab-separated)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s_i, subj in enumerate(subjects):
        for c, cls in enumerate(CLASSES):
            for n in range(clips):
                base = rng.uniform(90, 170)
                frames = np.clip(base + rng.normal(0, 12, (20, 32, 32, 1)), 0, 255).repeat(3, axis=3)
                ramp = np.linspace(0.3, 1.0, 20)[:, None, None, None]
                frames[:, 8:13, 6:26] -= 25 * c * ramp
                name = f"{subj}-{cls}-{n:03d}"
                (root / "video" / subj).mkdir(parents=True, exist_ok=True)
                write_video(np.clip(frames, 0, 255).astype(np.uint8), root / "video" / subj / f"{name}.mp4", 25)
                rows.append({"subject_id": s_i, "subject_name": subj, "class_id": c, "class_name": cls,
                             "sample_id": len(rows), "sample_name": name})
    if table:
        pd.DataFrame(rows).to_csv(root / "samples.csv", sep="\t", index=False)
    return root


@pytest.fixture(scope="module")
def biovid(tmp_path_factory):
    root = write_biovid(tmp_path_factory.mktemp("biovid") / "PartA")
    bad = root / "video" / SUBJECTS[0] / f"{SUBJECTS[0]}-PA2-001.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")  # a corrupt clip, listed in samples.csv
    return root


def test_reader_biovid_layout(biovid, tmp_path):
    df = read_samples(biovid)
    assert len(df) == len(SUBJECTS) * 5 * 2 and set(df.view) == {"real"}
    assert set(df.class_name) == set(CLASSES)
    xs, kept, skipped = load_clips(df, lambda c, name: c, frames=4, stride=2, size=16)
    assert len(xs) == len(df) - 1 and len(kept) == len(df) - 1
    assert len(skipped) == 1 and "PA2-001.mp4" in skipped[0] and "not a readable video" in skipped[0]
    assert xs[0].shape == (4, 16, 16, 3)
    scanned = read_samples(write_biovid(tmp_path / "noscan", subjects=SUBJECTS[:2], clips=1, table=False))
    assert len(scanned) == 10 and sorted(set(scanned.subject_name)) == sorted(SUBJECTS[:2])


def test_reader_bad_input(tmp_path):
    from painface.errors import InputError

    with pytest.raises(InputError, match="not a folder"):
        read_samples(tmp_path / "missing")
    (tmp_path / "samples.csv").write_text("a\tb\n1\t2\n")
    with pytest.raises(InputError, match="expected the columns"):
        read_samples(tmp_path)
    with pytest.raises(InputError, match="at least 2 subjects"):
        subject_split(["a", "a"], 0.3, 0)


def test_metrics_values():
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    assert m["AUROC"] == pytest.approx(0.75) and m["accuracy"] == pytest.approx(0.5)
    assert m["precision_macro"] == pytest.approx(0.5) and m["recall_macro"] == pytest.approx(0.5)
    p = np.eye(5)[[0, 1, 2, 3, 4, 0]]
    mm = multiclass_metrics([0, 1, 2, 3, 4, 4], p)
    assert mm["accuracy"] == pytest.approx(5 / 6) and mm["recall_macro"] == pytest.approx(0.9)
    assert mm["AUROC_BL1_PA4"] == pytest.approx(0.75)  # PA4 scored 4 and 0 against a BL1 at 0: 1 and a tie


def test_train_real_learns_and_classify(biovid, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train-video", "--real", str(biovid), "--protocol", "real", "--epochs", "40", "--lr", "0.01",
                 "--out", str(out), "--scores", str(tmp_path / "s.csv"), *FAST]) == 0
    text = capsys.readouterr().out
    assert "skipped 1 unreadable clip" in text
    info = json.loads(out.with_suffix(".json").read_text())
    test = info["tests"]["real"]["all"]
    assert test["AUROC"] >= 0.9  # the bar's darkness separates BL1 from PA4 on held-out subjects
    held = set(pd.read_csv(tmp_path / "s.csv").subject_name)
    assert held == subject_split(SUBJECTS, 26 / 87, 0)  # scores only for subjects never trained on
    assert main(["classify-video", str(biovid), "--model", str(out)]) == 0
    text = capsys.readouterr().out
    assert "metrics on the labelled clips" in text and "skipped:" in text
    one = biovid / "video" / SUBJECTS[1] / f"{SUBJECTS[1]}-PA4-000.mp4"
    assert main(["classify-video", str(one), "--model", str(out), "--out", str(tmp_path / "t.csv")]) == 0
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 1 and t.predicted[0] in ("BL1", "PA4")


def test_mixed_protocol_and_vit(biovid, tmp_path):
    synth = write_biovid(tmp_path / "synthlike", subjects=("vs001_w_30", "vs002_m_40", "vs003_w_50"), clips=1, seed=1)
    out = tmp_path / "mixed.safetensors"
    assert main(["train-video", "--data", str(synth), "--real", str(biovid), "--protocol", "mixed",
                 "--real-subjects", "1", "--task", "5class", "--encoder", "vit", "--epochs", "2",
                 "--out", str(out), *FAST]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    # 2 of 3 synthetic subjects (one held out) x 5 clips + 1 real subject x 10 clips (a corrupt one may be its)
    assert info["train_clips"] in (2 * 5 + 10, 2 * 5 + 9)
    assert set(info["tests"]) == {"synthetic", "real"}
    assert {"accuracy", "F1_macro", "precision_macro", "recall_macro", "AUROC"} <= set(info["tests"]["real"]["all"])
    assert len(info["vitpain_sha256"]) == 64


@pytest.mark.parametrize("argv, msg", [
    (["--protocol", "real"], "needs --real"),
    (["--protocol", "both"], "--protocol"),
    (["--encoder", "slowfast"], "--encoder"),
    (["--head", "lstm"], "--head"),
    (["--reader-folds", "0"], "--reader-folds"),
    (["--calibrate", "subject"], "--calibrate"),
    (["--task", "3class"], "--task"),
    (["--protocol", "mixed", "--real", "."], "--real-subjects"),
])
def test_train_bad_input(tmp_path, capsys, argv, msg):
    out = tmp_path / "m.safetensors"
    assert main(["train-video", "--data", str(tmp_path), "--out", str(out), *argv]) == 2
    assert msg in capsys.readouterr().err
    assert not out.exists()


def test_classify_bad_model(tmp_path, capsys):
    clip = tmp_path / "c.mp4"
    write_video(np.zeros((4, 16, 16, 3), np.uint8), clip, 25)
    (tmp_path / "m.safetensors").write_bytes(b"junk")
    (tmp_path / "m.json").write_text(json.dumps({"format": "something else"}))
    assert main(["classify-video", str(clip), "--model", str(tmp_path / "m.safetensors")]) == 2
    assert "not a painface-video-classifier" in capsys.readouterr().err


def render_pain_and_neutral(tmp_path):
    """Two 137-frame clips of one rendered person: neutral, and a pain face (AU4, 6, 7, 9, 10) rising over it."""
    from painface.face.code import FEATURE_NAMES
    from painface.face.head import build_head
    from painface.face.identity import make_identity
    from painface.face.render import HEAD_LIGHTING
    from painface.face.video import head_camera
    from painface.synth.videos import CLIP_FRAMES, render_clip

    head = build_head(make_identity(7, sex="female", age_group="middle", skin_tone=5))
    ramp = np.clip(np.linspace(-0.5, 2.0, CLIP_FRAMES), 0, 1)[:, None]
    pain = np.zeros((CLIP_FRAMES, len(FEATURE_NAMES)), np.float32)
    for au, v in (("AU4", 3.5), ("AU6", 3.5), ("AU7", 4.0), ("AU9", 2.5), ("AU10", 2.5)):
        pain[:, FEATURE_NAMES.index(au)] = v * ramp[:, 0]
    bg = np.full((96, 96, 3), 120, np.uint8)
    return [render_clip(code, head, head_camera(0.0), HEAD_LIGHTING, bg) for code in (np.zeros_like(pain), pain)]


def test_shipped_person_model_reads_pain_among_a_persons_clips(tmp_path):
    """The shipped person-calibrated model, given four neutral and four pain clips of one rendered person (their
    folder), scores every pain clip above every neutral one."""
    from painface.video.classify import classify

    model = SHIPPED_PERSON
    assert model.stat().st_size < 2_000_000
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["config"]["calibrate"] == "person" and meta["command"].startswith("painface train-video")
    neutral, pain = render_pain_and_neutral(tmp_path)
    folder = tmp_path / "video" / "p1"
    folder.mkdir(parents=True)
    paths = [write_video(f, folder / f"p1-{c}-{n:03d}.mp4", 25) for c, f in (("BL1", neutral), ("PA4", pain))
             for n in range(4)]
    table, _ = classify(Path("person"), paths)  # the shipped model by its name
    assert table.score[4:].min() > table.score[:4].max() + 0.2


def test_shipped_model_reads_pain_from_a_rendered_face(tmp_path):
    """The shipped binary model scores a rendered pain face above the same person's neutral face."""
    from painface.video.classify import SHIPPED, classify

    assert SHIPPED.stat().st_size < 2_000_000
    meta = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert meta["command"].startswith("painface train-video") and meta["config"]["task"] == "binary"
    paths = [write_video(f, tmp_path / f"{name}.mp4", 25)
             for name, f in zip(("neutral", "pain"), render_pain_and_neutral(tmp_path), strict=True)]
    table, _ = classify(SHIPPED, paths)
    assert table.score[1] > table.score[0] + 0.2


def test_clip_statistics_and_missing_frames():
    """Clip statistics by value; a frame without a face takes its neighbours' readings, a clip without any reads 0."""
    import torch

    from painface.video.model import clip_statistics, fill_missing

    nan = float("nan")
    x = torch.tensor([[[nan, 1.0], [2.0, 3.0], [nan, nan], [4.0, 3.0]]])  # [B=1, T=4, K=2]
    assert fill_missing(x)[0].tolist() == [[2.0, 1.0], [2.0, 3.0], [2.0, 3.0], [4.0, 3.0]]
    assert fill_missing(torch.full((1, 3, 1), nan)).tolist() == [[[0.0], [0.0], [0.0]]]
    f = clip_statistics(torch.tensor([[[0.0], [2.0], [0.0], [2.0]]]))[0]
    assert f.tolist() == [1.0, 2.0, 1.0, 2.0]  # mean, max, std, mean |change|


def test_stats_head_learns_a_reading_on_held_out_clips():
    """The stats head (logistic regression on clip statistics) separates clips whose AU4 reading moves more from
    clips that hold still, on clips it did not train on; its normalisation comes from the training clips."""
    from painface.assess.metrics import auroc
    from painface.video.model import FACE_FEATURES, VideoConfig
    from painface.video.train import fit, scores

    rng = np.random.default_rng(0)
    n, t = 200, 16
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 0.3, (n, t, len(FACE_FEATURES))).astype(np.float32)
    x[:, :, FACE_FEATURES.index("AU4")] += (y[:, None] * rng.uniform(0, 1.5, (n, t))).astype(np.float32)
    x[rng.random((n, t)) < 0.1] = np.nan  # frames without a face
    cfg = VideoConfig(encoder="face", head="stats")
    model = fit(cfg, x[:150], y[:150], epochs=60, lr=1e-2, batch=32, seed=0, progress=False)
    assert model.sd.min() > 0 and abs(float(model.mu[FACE_FEATURES.index("AU4")]) - np.nanmean(
        np.nan_to_num(x[:150, :, FACE_FEATURES.index("AU4")]).mean(1))) < 0.2
    assert auroc(y[150:], scores(model, cfg, x[150:])) >= 0.95


def test_face_encoder_reads_a_rendered_pain_face():
    """The face encoder (painface analyze per frame) reads more brow lowering and lid tightening on a rendered
    pain face than on the same person's neutral face, and a head turned by the code as turned."""
    from painface.face.code import FEATURE_NAMES
    from painface.face.head import build_head
    from painface.face.identity import make_identity
    from painface.face.render import HEAD_LIGHTING
    from painface.face.video import head_camera
    from painface.synth.videos import render_clip
    from painface.video.model import FACE_FEATURES, FrameEncoder, VideoConfig

    head = build_head(make_identity(3, sex="male", age_group="young", skin_tone=8))
    bg = np.full((96, 96, 3), 110, np.uint8)
    code = np.zeros((6, len(FEATURE_NAMES)), np.float32)
    for au, v in (("AU4", 3.5), ("AU6", 3.5), ("AU7", 4.0), ("AU9", 2.5), ("AU10", 2.5)):
        code[3:, FEATURE_NAMES.index(au)] = v
    code[:, FEATURE_NAMES.index("head_yaw")] = [0, 0, 0, 0, 15, -15]
    frames = render_clip(code, head, head_camera(0.0), HEAD_LIGHTING, bg)
    f = FrameEncoder(VideoConfig(encoder="face"))(frames)
    assert f.shape == (6, len(FACE_FEATURES)) and not np.isnan(f).any()
    col = {k: FACE_FEATURES.index(k) for k in FACE_FEATURES}
    assert f[3, col["AU4"]] > f[0, col["AU4"]] + 0.5 and f[3, col["AU7"]] > f[0, col["AU7"]] + 0.5
    assert abs(f[4, col["yaw"]] - f[5, col["yaw"]]) > 15


def test_code_encoder_reads_each_training_clip_with_a_reader_that_never_saw_it(monkeypatch):
    """Cross-fitting: the head learns from readings of readers fine-tuned on the other folds' subjects only."""
    import torch

    import painface.video.reader as R
    from painface.video.model import VideoConfig
    from painface.video.train import fit_code

    seen = []

    class Stub(torch.nn.Module):
        def __init__(self, subjects):
            super().__init__()
            self.subjects = subjects
            self.w = torch.nn.Parameter(torch.zeros(1))

        def read(self, x):  # marks every reading with the reader's number
            return torch.full((*x.shape[:2], 20), float(len(seen) - 1))

    def fake_train(reader, frames, codes, **kw):
        seen.append(set(np.unique(frames[:, 0, 0, 0]).tolist()))  # pixel value = subject number
        return Stub(seen[-1])

    monkeypatch.setattr(R, "train_reader", fake_train)
    monkeypatch.setattr(R, "from_vitpain", lambda path: None)
    n_sub, per = 6, 4
    groups = np.repeat([f"s{i}" for i in range(n_sub)], per)
    x = np.repeat(np.arange(n_sub, dtype=np.uint8), per)[:, None, None, None, None] * np.ones((1, 2, 4, 4, 3), np.uint8)
    codes = np.zeros((len(x), 2, 20), np.float32)
    codes[-per:] = np.nan  # the last subject has no code (real footage): read by the final reader only
    y = np.tile([0, 1], len(x) // 2)
    model, read, _ = fit_code(VideoConfig(encoder="code"), x, y, codes, groups, epochs=1, lr=1e-2, batch=8, seed=0,
                              reader_steps=1, reader_folds=2, progress=False, log=lambda *a: None)
    assert len(seen) == 3 and seen[2] == {0, 1, 2, 3, 4} and seen[0] | seen[1] == seen[2] and not seen[0] & seen[1]
    for k in range(2):  # readings of reader k (marked k) are of subjects it did not train on
        subj = {int(groups[i][1]) for i in range(len(x)) if read[i, 0, 0] == k}
        assert subj and not subj & seen[k]
    assert (read[-per:] == 2).all() and isinstance(model.head, torch.nn.Module)


@pytest.fixture(scope="module")
def synth96(tmp_path_factory):
    from painface.synth.videos import SynthVideosConfig, make_videos

    root = tmp_path_factory.mktemp("synth96") / "v"
    make_videos(SynthVideosConfig(subjects=5, views=("front",), size=96, clips=1, classes=("BL1", "PA4")), root,
                progress=False)
    return root


def test_code_encoder_trains_saves_and_classifies(synth96, tmp_path):
    """train-video --encoder code: a reader fine-tuned from ViTPain in the checkpoint (float16, < 2 MB), its
    cross-fitted error recorded; classify-video reproduces the held-out scores train-video measured from the saved
    file (the reader is rounded to float16 before it is measured)."""
    out = tmp_path / "code.safetensors"
    assert main(["train-video", "--data", str(synth96), "--encoder", "code", "--reader-steps", "3", "--frames", "4",
                 "--stride", "4", "--epochs", "5", "--out", str(out), "--scores", str(tmp_path / "s.csv"),
                 "--readings", str(tmp_path / "r.npz"), "--quiet"]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["reader"]["size"] == 96 and info["reader_folds"] == 2 and len(info["reader_out_of_fold_mae"]) == 20
    assert out.stat().st_size < 2_000_000
    held = pd.read_csv(tmp_path / "s.csv")
    from painface.video.classify import classify

    table, _ = classify(out, [synth96 / f"video/{s}/{n}.mp4" for s, n in zip(held.subject_name, held.sample_name,
                                                                             strict=True)])
    assert np.allclose(table.score.to_numpy(), held.score.to_numpy(), atol=1e-5)
    with np.load(tmp_path / "r.npz") as z:  # --readings: what the head read, training clips and held-out ones
        n = info["train_clips"]
        assert z["train/readings"].shape == (n, 4, 20) and len(z["train/subject"]) == n
        assert str(z["test0/name"]) == "synthetic" and list(z["test0/sample_name"]) == list(held.sample_name)
        from painface.video.model import load
        from painface.video.train import scores

        model, cfg, _ = load(out)
        assert np.allclose(scores(model.head, cfg, z["test0/readings"]), held.score.to_numpy(), atol=1e-5)


def test_code_encoder_needs_codes(biovid, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    assert main(["train-video", "--real", str(biovid), "--protocol", "real", "--encoder", "code", "--out", str(out),
                 *FAST]) == 2
    assert "exact face codes" in capsys.readouterr().err and not out.exists()


def test_framing_crops_a_small_face_in_a_large_frame_like_synth_videos():
    """Real footage: a face filling a fifth of a wide frame is cropped to the five-point template of the
    synthetic clips (its eyes, nose and mouth where painface's aligned crops have them), one crop per clip;
    a clip without a face is an error naming it."""
    from painface.analyze import Detector
    from painface.face import align
    from painface.face.code import FEATURE_NAMES
    from painface.face.head import build_head
    from painface.face.identity import make_identity
    from painface.face.render import HEAD_LIGHTING
    from painface.face.video import head_camera
    from painface.synth.videos import render_clip
    from painface.video.framing import frame_clip

    head = build_head(make_identity(5, sex="female", age_group="young", skin_tone=3))
    face = render_clip(np.zeros((3, len(FEATURE_NAMES)), np.float32), head, head_camera(0.0), HEAD_LIGHTING,
                       np.full((160, 160, 3), 90, np.uint8))
    wide = np.full((3, 480, 720, 3), 60, np.uint8)
    wide[:, 200:360, 420:580] = face  # off-centre, a fifth of the frame's width
    det = Detector(threads=1)
    out = frame_clip(wide, 96, det, "wide.mp4")
    assert out.shape == (3, 96, 96, 3)
    from PIL import Image

    found = det.read_faces(Image.fromarray(out[1]).resize((192, 192)))
    pts = align.mediapipe_points(found[0][1].landmarks) / 2
    assert np.abs(pts - align.TEMPLATE * 96).max() < 0.06 * 96
    with pytest.raises(InputError, match="empty.mp4: no face"):
        frame_clip(np.full((2, 120, 160, 3), 60, np.uint8), 96, det, "empty.mp4")


def test_vit_face_classify_reads_clips_as_training_did(synth96, tmp_path):
    """vit+face: classify-video builds each part as train-video did, so it reproduces the held-out scores."""
    out = tmp_path / "vf.safetensors"
    assert main(["train-video", "--data", str(synth96), "--encoder", "vit+face", "--frames", "4", "--stride", "4",
                 "--epochs", "5", "--out", str(out), "--scores", str(tmp_path / "s.csv"), "--quiet"]) == 0
    held = pd.read_csv(tmp_path / "s.csv")
    from painface.video.classify import classify

    table, _ = classify(out, [synth96 / f"video/{s}/{n}.mp4" for s, n in zip(held.subject_name, held.sample_name,
                                                                             strict=True)])
    assert np.allclose(table.score.to_numpy(), held.score.to_numpy(), atol=1e-5)


def test_stats_head_ignores_a_statistic_that_never_varied_in_training():
    import torch

    from painface.video.model import FACE_FEATURES, StatsHead, VideoConfig

    cfg = VideoConfig(encoder="face", head="stats")
    head = StatsHead(cfg)
    x = torch.randn(50, 8, len(FACE_FEATURES))
    x[..., 0] = 0.0  # an AU that read 0 on every training frame
    head.fit_norm(x)
    y = x[:3].clone()
    y2 = y.clone()
    y2[..., 0] = 0.7
    assert torch.isinf(head.sd[0]) and torch.allclose(head(y), head(y2))


@pytest.fixture(scope="module")
def synth96_other(tmp_path_factory):
    """Clips of another virtual population (--seed 1): other people, other faces."""
    from painface.synth.videos import SynthVideosConfig, make_videos

    root = tmp_path_factory.mktemp("synth96_other") / "v"
    make_videos(SynthVideosConfig(subjects=2, views=("front",), size=96, clips=1, classes=("BL1", "PA4"), seed=1,
                                  split="train"), root, progress=False)
    return root


def test_extra_data_trains_on_every_clip_of_another_population(synth96, synth96_other, tmp_path):
    """--extra-data: every clip of the other population joins the training clips (its people kept apart from
    --data's in the cross-fitting folds), and --reader-init is the checkpoint the readers started from."""
    from painface.video.model import VITPAIN, sha256

    out = tmp_path / "x.safetensors"
    assert main(["train-video", "--data", str(synth96), "--extra-data", str(synth96_other), "--encoder", "code",
                 "--reader-init", str(VITPAIN), "--reader-steps", "2", "--frames", "4", "--stride", "4", "--epochs",
                 "2", "--out", str(out), "--readings", str(tmp_path / "r.npz"), "--quiet"]) == 0
    with np.load(tmp_path / "r.npz") as z:  # the extra people's clips, named apart, with their views
        extra = np.char.startswith(z["train/subject"].astype(str), "extra1:")
        assert extra.sum() == 4 and (z["train/view"][extra] == "front").all() and str(z["task"]) == "binary"
    info = json.loads(out.with_suffix(".json").read_text())
    base = read_samples(synth96)
    n_extra = len(read_samples(synth96_other))
    assert info["train_clips"] == int((base.split == "train").sum()) + n_extra and n_extra == 4
    assert info["reader_init_sha256"] == sha256(VITPAIN) and info["extra_data"] == [str(synth96_other)]
    assert info["datasets"][str(synth96_other)]["seed"] == 1
    faces = set(read_samples(synth96_other).identity_seed) & set(base.identity_seed)
    assert not faces  # another population wears other faces


def test_extra_data_refuses_held_out_people_and_faces(synth96, synth96_other, tmp_path, capsys):
    import shutil

    out = tmp_path / "m.safetensors"
    same = tmp_path / "same"
    shutil.copytree(synth96, same)  # the same population (seed 0) under another name
    leak = tmp_path / "leak"
    shutil.copytree(synth96_other, leak)
    table = pd.read_csv(leak / "samples.csv", sep="\t")
    base = read_samples(synth96)
    table.loc[0, "identity_seed"] = int(base.identity_seed[base.split != "train"].iloc[0])  # a held-out face
    table.to_csv(leak / "samples.csv", sep="\t", index=False)
    blank = tmp_path / "blank"
    shutil.copytree(synth96_other, blank)
    pd.read_csv(blank / "samples.csv", sep="\t").drop(columns="identity_seed").to_csv(blank / "samples.csv",
                                                                                      sep="\t", index=False)
    faces = tmp_path / "faces"
    faces.mkdir()
    (faces / "dataset.json").write_text(json.dumps({"name": "painface synthetic faces", "config": {"seed": 1}}))
    for extra, more, msg in (([synth96], [], "named twice"), ([same], [], "same virtual population"),
                             ([synth96_other, synth96_other], [], "named twice"), ([leak], [], "held-out faces"),
                             ([tmp_path], [], "not a painface synth videos folder"),
                             ([faces], [], "not a painface synth videos folder"),
                             ([blank], [], "identity_seed"),
                             ([synth96_other], ["--test", str(synth96_other)], "named twice"),
                             ([synth96_other], ["--views", "side"], "views"),
                             ([synth96_other], ["--protocol", "real", "--real", str(tmp_path)], "--protocol real")):
        assert main(["train-video", "--data", str(synth96), "--extra-data", *map(str, extra), *more, "--out",
                     str(out), *FAST]) == 2
        err = capsys.readouterr().err
        assert msg in err and "--extra-data" in err and not out.exists()
    vit_json = tmp_path / "vitpain.json"
    vit_json.write_text("{}")
    for more, msg in ((["--encoder", "code", "--reader-init", str(tmp_path / "no.safetensors")], "--reader-init"),
                      (["--encoder", "code", "--reader-init", str(vit_json)], "--reader-init"),
                      (["--encoder", "code", "--reader-init", str(tmp_path / "m.json")], "--reader-init"),
                      (["--encoder", "c3d", "--reader-init", str(vit_json)], "only for --encoder code"),
                      (["--encoder", "c3d", "--readings", str(tmp_path / "r.npz")], "only the code encoder"),
                      (["--encoder", "code", "--readings", str(tmp_path / "r.csv")], "expected a .npz")):
        assert main(["train-video", "--data", str(synth96), "--out", str(out), *FAST, *more]) == 2
        assert msg in capsys.readouterr().err and not out.exists()
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    assert main(["train-video", "--data", str(synth96), "--out", str(out), *FAST, "--encoder", "code",
                 "--reader-init", str(junk)]) == 2
    assert "--reader-init" in capsys.readouterr().err and not out.exists()


def test_calibrate_person_by_value():
    from painface.video.model import MIN_PERSON_CLIPS, calibrate_person, person_keys

    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3, 2)).astype(np.float32)
    x[:4] += np.array([5.0, -2.0], np.float32)  # person a reads high on the first number, low on the second
    x[5, 1, 0] = np.nan  # a frame without a face
    keys = person_keys(["a"] * 4 + ["b"] * 4, ["front"] * 8)
    out = calibrate_person(x, keys)
    for m in (slice(0, 4), slice(4, 8)):
        assert np.allclose(np.nanmedian(out[m].reshape(-1, 2), axis=0), 0.0, atol=1e-6)
        med = np.nanmedian(x[m].reshape(-1, 2), axis=0)
        assert np.allclose(out[m], x[m] - med, equal_nan=True)
    assert np.isnan(out[5, 1, 0]) and not np.isnan(out).sum() - 1
    with pytest.raises(InputError, match=f"3 readable clip\\(s\\) of 'b'.*at least {MIN_PERSON_CLIPS}"):
        calibrate_person(x[:7], keys[:7])


def test_person_calibrated_model_trains_and_classifies_as_trained(biovid, tmp_path, capsys):
    """--calibrate person: the head reads readings minus each person's medians; classify-video groups the clips it
    is given by person (their folder) and reproduces train-video's held-out scores; one clip alone is refused."""
    out = tmp_path / "p.safetensors"
    assert main(["train-video", "--real", str(biovid), "--protocol", "real", "--encoder", "vit", "--calibrate",
                 "person", "--epochs", "20", "--out", str(out), "--scores", str(tmp_path / "s.csv"), *FAST]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["config"]["calibrate"] == "person"
    held = pd.read_csv(tmp_path / "s.csv")
    clips = [biovid / "video" / s / f"{n}.mp4" for s, n in zip(held.subject_name, held.sample_name, strict=True)]
    from painface.video.classify import classify

    table, _ = classify(out, clips)
    assert np.allclose(table.score.to_numpy(), held.score.to_numpy(), atol=1e-5)
    assert table.person.nunique() == held.subject_name.nunique()  # read together: each person's clips
    # the same clips read without their person's other clips would read otherwise: one clip alone is refused
    assert main(["classify-video", str(clips[0]), "--model", str(out)]) == 2
    assert "at least 4 clips" in capsys.readouterr().err
    assert main(["classify-video", str(clips[0]), *map(str, clips), "--model", str(out)]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["classify-video", str(clips[0]), "--model", "persn"]) == 2
    assert "binary, person, 5class" in capsys.readouterr().err
    assert main(["train-video", "--real", str(biovid), "--protocol", "real", "--encoder", "c3d", "--calibrate",
                 "person", "--out", str(tmp_path / "c.safetensors"), *FAST]) == 2
    assert "c3d has none" in capsys.readouterr().err


def test_shipped_5class_model_reads_pain_above_rest(tmp_path):
    """The shipped five-class model puts a rendered pain clip at a higher expected class (0 = BL1 .. 4 = PA4) than the
    same person's neutral clip."""
    from painface.video.classify import SHIPPED_NAMES, classify

    meta = json.loads(SHIPPED_NAMES["5class"].with_suffix(".json").read_text())
    assert meta["config"]["task"] == "5class" and meta["command"].startswith("painface train-video")
    paths = [write_video(f, tmp_path / f"{name}.mp4", 25)
             for name, f in zip(("neutral", "pain"), render_pain_and_neutral(tmp_path), strict=True)]
    table, _ = classify(Path("5class"), paths)
    expected = table[[f"p_{c}" for c in CLASSES]].to_numpy() @ np.arange(5)
    assert expected[1] > expected[0] + 0.5
