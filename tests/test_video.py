"""Videos: mp4 decoded back with PyAV, gif, atomic writes, the scrolling plot, grid, and painface render."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from painface.cli import main
from painface.errors import InputError
from painface.face.code import FEATURE_NAMES
from painface.face.identity import make_identity
from painface.face.video import PlotStrip, render_grid_video, render_video, write_video


def decode(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def moving_code(n: int = 12) -> np.ndarray:
    c = np.zeros((n, len(FEATURE_NAMES)), np.float32)
    c[n // 2 :, FEATURE_NAMES.index("AU27")] = 5.0  # mouth opens half-way
    return c


def test_write_mp4_and_gif_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (5, 1, 1, 3), dtype=np.uint8), 1, 0) * np.ones((1, 33, 47, 1), np.uint8)
    write_video(frames, tmp_path / "a.mp4", 10)
    back = decode(tmp_path / "a.mp4")
    assert back.shape == (5, 34, 48, 3)  # odd sizes padded to even for yuv420p
    assert np.abs(back[:, :33, :47].astype(int) - frames).mean() < 6
    write_video(iter(frames), tmp_path / "a.gif", 10)
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 5 and gif.size == (47, 33) and gif.info["duration"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]  # no temporary files left


def test_failed_write_leaves_nothing(tmp_path):
    def frames():
        yield np.zeros((16, 16, 3), np.uint8)
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):  # the frame source's own error, passed through
        write_video(frames(), tmp_path / "x.mp4", 25)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="shape"):
        write_video([np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], tmp_path / "y.mp4", 25)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="not writable|missing"):
        write_video(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "no" / "z.mp4", 25)
    with pytest.raises(InputError, match=".mp4 or .gif"):
        write_video(np.zeros((1, 8, 8, 3), np.uint8), tmp_path / "z.avi", 25)


def test_plot_strip_scrolls_with_time():
    n, fps = 400, 10.0
    stim = np.where((np.arange(n) // 50) % 2 == 1, 45.0, 32.0)
    strip = PlotStrip(stim, np.zeros(n), fps, height=128, width=192)
    a, b, c = strip.frame(100), strip.frame(105), strip.frame(100)
    assert a.shape == (128, 192, 3) and np.array_equal(a, c)
    plot = slice(strip.axis_w, None)
    assert not np.array_equal(a[:, plot], b[:, plot])
    # 5 frames = 0.5 s later the picture has moved left by 0.5 s worth of pixels
    shift = int(round(0.5 * strip.pps))
    cursor = strip.axis_w + int(0.7 * strip.plot_w)
    a2, b2 = a.astype(int), b.astype(int)
    a2[:, cursor], b2[:, cursor] = 0, 0
    moved = np.abs(a2[:, strip.axis_w + shift :] - b2[:, strip.axis_w : a.shape[1] - shift])
    moved[:, cursor - strip.axis_w - shift - 1 : cursor - strip.axis_w + 1] = 0
    assert moved.mean() < 0.3 * np.abs(a2[:, plot] - b2[:, plot]).mean()
    assert np.array_equal(a[:, : strip.axis_w], b[:, : strip.axis_w])  # the y axis stays
    strip.frame(n - 1)  # past the first 120 s chunk: renders the next one
    with pytest.raises(InputError, match="equal-length"):
        PlotStrip(stim, np.zeros(3), fps, height=64, width=96)


def test_render_video_frames_differ_where_the_face_moves(tmp_path):
    code = moving_code()
    render_video(code, tmp_path / "f.mp4", 25, size=64, layout="face")
    v = decode(tmp_path / "f.mp4").astype(int)
    assert v.shape == (12, 64, 64, 3)
    mouth = v[:, 38:52, 24:40]
    assert np.abs(mouth[1] - mouth[0]).mean() < 2 and np.abs(mouth[-1] - mouth[0]).mean() > 8
    forehead = v[:, 8:16, 24:40]
    assert np.abs(forehead[-1] - forehead[0]).mean() < 3
    render_video(code, tmp_path / "p.mp4", 25, size=64, stimulus=np.linspace(32, 45, 12), identity=make_identity(1))
    assert decode(tmp_path / "p.mp4").shape == (12, 64, 160, 3)


def test_grid_video(tmp_path):
    codes = [moving_code(6), np.zeros((6, len(FEATURE_NAMES)), np.float32), moving_code(6)]
    stim = [np.full(6, 40.0)] * 3
    render_grid_video(codes, stim, None, ["a", "b", "c"], tmp_path / "g.mp4", 25, size=48, ncols=2)
    assert decode(tmp_path / "g.mp4").shape == (6, 96, 240, 3)
    with pytest.raises(InputError, match="same number of frames"):
        render_grid_video([moving_code(6), moving_code(5)], stim[:2], None, ["a", "b"], tmp_path / "h.mp4", 25)


def test_render_command(tmp_path, capsys):
    npz = tmp_path / "c.npz"
    np.savez(npz, face=moving_code(8), feature_names=np.array(FEATURE_NAMES), stimulus=np.full(8, 40.0),
             pspi=np.zeros(8), fps=np.float32(20))
    assert main(["render", str(npz), "--out", str(tmp_path / "c.gif"), "--size", "48", "--identity", "2"]) == 0
    gif = Image.open(tmp_path / "c.gif")  # Pillow merges identical neighbours: count the time instead
    total = 0
    for k in range(gif.n_frames):
        gif.seek(k)
        total += gif.info["duration"]
    assert total == 8 * 50
    for face, names, msg in ((moving_code(8)[:, :5], FEATURE_NAMES, "columns"),
                             (moving_code(8), [*FEATURE_NAMES[:-1], "hat"], "unknown"),
                             (np.full((8, 20), np.nan, np.float32), FEATURE_NAMES, "NaN"),
                             (moving_code(8) + 6, FEATURE_NAMES, "0..5")):
        np.savez(npz, face=face, feature_names=np.array(names), fps=np.float32(20))
        assert main(["render", str(npz), "--out", str(tmp_path / "bad.mp4")]) == 2
        assert msg in capsys.readouterr().err
    np.savez(npz, face=moving_code(8), feature_names=np.array(FEATURE_NAMES), fps=np.float32(20))
    assert main(["render", str(npz), "--out", str(tmp_path / "nodir" / "x.mp4")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert not (tmp_path / "bad.mp4").exists()
