"""Videos of face codes: MP4 (H.264 through PyAV's bundled FFmpeg) and GIF, with a scrolling plot.

* :func:`write_video` ``(frames uint8 [F, H, W, 3] or an iterable of [H, W, 3], path, fps)`` writes
  ``.mp4`` (libx264, yuv420p, odd sizes padded to even) or ``.gif`` (Pillow, looping). The file is
  written to a hidden temporary file in the same folder and renamed at the end, so an interrupted
  write never leaves a complete-looking file.
* :class:`PlotStrip` draws stimulus and PSPI over time once (matplotlib Agg) as one wide image per
  120 s chunk and crops a window per frame, with a fixed cursor: the plot scrolls for free.
* :func:`render_video` renders one face code beside its plot; :func:`render_grid_video` a grid of
  several faces each with its plot (the demo's 2x2 of patients).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from painface.errors import InputError
from painface.face.identity import Identity
from painface.io import atomic_path

CHUNK_S = 120.0
PIXELS_PER_S = 24.0
WINDOW_S = 10.0
CURSOR_AT = 0.7
BG = (0.16, 0.18, 0.23)


@contextmanager
def _atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix); rename onto ``path`` on success."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"{path}: cannot write here (folder {folder} is missing or not writable)")
    with atomic_path(path, f".tmp{path.suffix}") as tmp:  # the encoder picks its format from the suffix
        yield tmp


def _check_frame(f: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    a = np.asarray(f)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"frames: expected uint8 frames [H, W, 3], got {a.dtype} {a.shape}")
    if shape is not None and a.shape != shape:
        raise InputError(f"frames: every frame must have the shape {shape}, got {a.shape}")
    return a


def write_video(frames: np.ndarray | Iterable[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write frames (uint8 ``[F, H, W, 3]`` or an iterable of ``[H, W, 3]``) to ``.mp4`` or ``.gif``
    at ``fps`` frames per second, atomically. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise InputError(f"{path}: expected a .mp4 or .gif file name")
    if not np.isfinite(fps) or not 0.1 <= fps <= 240:
        raise InputError(f"fps: expected a frame rate in 0.1..240, got {fps!r}")
    if isinstance(frames, np.ndarray) and (frames.ndim != 4 or frames.shape[0] == 0):
        raise InputError(f"frames: expected uint8 [F, H, W, 3] with F >= 1, got shape {frames.shape}")
    with _atomic_target(path) as tmp:
        n = _write_mp4(frames, tmp, fps) if suffix == ".mp4" else _write_gif(frames, tmp, fps)
        if n == 0:
            raise InputError("frames: no frames to write")
    return path


def _write_mp4(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> int:
    from fractions import Fraction

    import av

    n, shape, container, stream = 0, None, None, None
    try:
        container = av.open(str(tmp), mode="w", format="mp4")
        for f in frames:
            a = _check_frame(f, shape)
            if stream is None:
                shape = a.shape
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                stream.width, stream.height = a.shape[1] + a.shape[1] % 2, a.shape[0] + a.shape[0] % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "20", "preset": "veryfast"}
            if a.shape[0] % 2 or a.shape[1] % 2:
                a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2), (0, 0)), mode="edge")
            for pkt in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                container.mux(pkt)
            n += 1
        if stream is not None:
            for pkt in stream.encode():
                container.mux(pkt)
    finally:
        if container is not None:
            container.close()
    return n


def _write_gif(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> int:
    from PIL import Image

    shape, imgs = None, []
    for f in frames:
        a = _check_frame(f, shape)
        shape = a.shape
        imgs.append(Image.fromarray(a).quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    if imgs:
        imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], loop=0,
                     duration=max(20, int(round(1000.0 / fps))), optimize=False)
    return len(imgs)


class PlotStrip:
    """A scrolling plot of stimulus (top) and PSPI (bottom) over time, ``height`` x ``width`` pixels.

    ``stimulus`` and ``pspi`` ``[frames]`` at ``fps``; the window shows ``window_s`` seconds with the
    current time at ``CURSOR_AT`` of its width. :meth:`frame` ``(i)`` returns uint8 ``[height, width, 3]``.
    """

    def __init__(self, stimulus: np.ndarray, pspi: np.ndarray, fps: float, *, height: int, width: int,
                 window_s: float = WINDOW_S, label: str = "", stimulus_label: str = "stimulus") -> None:
        s, p = np.asarray(stimulus, np.float64).ravel(), np.asarray(pspi, np.float64).ravel()
        if s.shape != p.shape or s.size == 0:
            raise InputError(f"stimulus/pspi: expected two equal-length [frames] arrays, got {s.shape} and {p.shape}")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(p))):
            raise InputError("stimulus/pspi: NaN or inf values")
        self.s, self.p, self.fps = s, p, float(fps)
        self.height, self.width, self.window_s = int(height), int(width), float(window_s)
        self.axis_w = max(34, int(0.16 * self.width))
        self.plot_w = self.width - self.axis_w
        self.pps = self.plot_w / self.window_s
        lo, hi = float(s.min()), float(s.max())
        pad = max(0.5, 0.1 * (hi - lo))
        self.s_lim = (lo - pad, hi + pad)
        self.p_lim = (-0.5, max(4.0, float(p.max()) * 1.15))
        self.label, self.stimulus_label = label, stimulus_label
        self.axis_img = self._draw(None)
        self._chunks: dict[int, np.ndarray] = {}

    def _figure(self, width_px: int):
        from matplotlib.figure import Figure

        return Figure(figsize=(width_px / 100.0, self.height / 100.0), dpi=100.0, facecolor=BG)

    def _axes(self, fig, left: float, width: float):
        top_h, gap, bottom = 0.32, 0.08, 0.17
        a1 = fig.add_axes((left, bottom + top_h + gap, width, top_h))
        a2 = fig.add_axes((left, bottom, width, top_h))
        for a, lim in ((a1, self.s_lim), (a2, self.p_lim)):
            a.set_ylim(*lim)
            a.set_facecolor(BG)
            for sp in a.spines.values():
                sp.set_color("0.6")
            a.tick_params(colors="0.85", labelsize=7, length=2)
        return a1, a2

    def _draw(self, chunk: int | None) -> np.ndarray:
        """The fixed y-axis panel (``chunk=None``) or the plot of one time chunk (without y labels)."""
        if chunk is None:
            fig = self._figure(self.axis_w)
            a1, a2 = self._axes(fig, 0.98, 0.02)
            for a in (a1, a2):
                a.tick_params(labelbottom=False, bottom=False)
            a1.set_ylabel(self.stimulus_label, color="0.85", fontsize=7)
            a2.set_ylabel("PSPI", color="0.85", fontsize=7)
        else:
            w = int(round(CHUNK_S * self.pps))
            fig = self._figure(w + 2 * self.plot_w)
            total = w + 2 * self.plot_w
            a1, a2 = self._axes(fig, 0.0, 1.0)
            t0 = chunk * CHUNK_S - self.plot_w / self.pps
            t1 = t0 + total / self.pps
            t = np.arange(self.s.size) / self.fps
            sel = (t >= t0 - 1) & (t <= t1 + 1)
            a1.plot(t[sel], self.s[sel], color="#f4a259", lw=1.2)
            a2.plot(t[sel], self.p[sel], color="#e05a5a", lw=1.2)
            for a in (a1, a2):
                a.set_xlim(t0, t1)
                a.tick_params(labelleft=False, left=False)
            a1.tick_params(labelbottom=False)
            a2.xaxis.set_major_formatter("{x:g} s")
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()

    def frame(self, i: int) -> np.ndarray:
        """The plot at frame ``i``: uint8 ``[height, width, 3]``."""
        t = i / self.fps
        chunk = int(t // CHUNK_S)
        if chunk not in self._chunks:
            self._chunks = {chunk: self._draw(chunk)}  # keep one chunk: memory stays flat
        img = self._chunks[chunk]
        x_now = int(round((t - chunk * CHUNK_S) * self.pps)) + self.plot_w  # pixel of time t in the chunk
        x0 = x_now - int(CURSOR_AT * self.plot_w)
        out = np.empty((self.height, self.width, 3), np.uint8)
        out[:, : self.axis_w] = self.axis_img
        out[:, self.axis_w :] = img[:, x0 : x0 + self.plot_w]
        cx = self.axis_w + int(CURSOR_AT * self.plot_w)
        out[int(0.08 * self.height) : int(0.92 * self.height), cx] = (235, 235, 235)
        if self.label:
            _stamp_label(out, self.label)
        return out


def _stamp_label(img: np.ndarray, text: str) -> None:
    """Write a short label at the top left (a cached matplotlib text raster)."""
    key = (text, img.shape[1])
    if key not in _LABELS:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        h, w = 14, img.shape[1]
        fig = Figure(figsize=(w / 100, h / 100), dpi=100, facecolor=BG)
        fig.text(0.01, 0.5, text, color="white", fontsize=8, va="center")
        c = FigureCanvasAgg(fig)
        c.draw()
        _LABELS[key] = np.asarray(c.buffer_rgba())[..., :3].copy()
    lab = _LABELS[key]
    img[: lab.shape[0]] = lab


_LABELS: dict[tuple[str, int], np.ndarray] = {}


def face_frames(face: np.ndarray, *, size: int = 256, yaw: float = 0.0, pitch: float = 0.0,
                identity: Identity | None = None, batch: int = 32, model: str = "head",
                lighting=None, gaze: np.ndarray | None = None, supersample: int = 1) -> Iterator[np.ndarray]:
    """Render a FACS face code ``[F, 20]`` frame by frame (batches of ``batch``): uint8 ``[size, size, 3]``.

    ``model``: ``"head"`` (the whole head, default; eyes look at the camera unless ``gaze`` [F, 2] or
    [2] degrees is given) or ``"mask"`` (the older face mask)."""
    from painface.face.code import FEATURE_NAMES, check_face
    from painface.face.render import HEAD_LIGHTING, Camera, Lighting, render

    code = check_face(face, FEATURE_NAMES, source="face code")
    if model == "mask":
        from painface.face.identity import identity_colors, identity_rig
        from painface.face.mesh import vertex_colors
        from painface.face.rig import build_rig, deform

        rig = identity_rig(identity) if identity is not None else build_rig()
        colors = identity_colors(identity, rig.mesh) if identity is not None else vertex_colors(rig.mesh)
        cam = Camera(yaw=float(yaw), pitch=float(pitch))
        for start in range(0, code.shape[0], batch):
            verts = deform(code[start : start + batch], rig)
            yield from render(verts, rig.mesh.triangles, colors, size=size, camera=cam, lighting=lighting or Lighting(),
                              supersample=supersample)
        return
    if model != "head":
        raise InputError(f"face: expected 'head' or 'mask', got {model!r}")
    from painface.face.head import build_head, deform, frame_colors

    head = build_head(identity)
    cam = head_camera(yaw, pitch)
    eye = cam.position()
    for start in range(0, code.shape[0], batch):
        part = code[start : start + batch]
        g = None if gaze is None else (gaze if np.ndim(gaze) == 1 else np.asarray(gaze)[start : start + batch])
        verts = deform(part, head, gaze=g, look_at=None if gaze is not None else eye)
        yield from render(verts, head.triangles, frame_colors(part, head, linear=True), size=size, camera=cam,
                          lighting=lighting or HEAD_LIGHTING, specular=head.specular, supersample=supersample,
                          linear_colors=True, cull_back=True)


def head_camera(yaw: float = 0.0, pitch: float = 0.0, distance: float = 800.0):
    """The default camera on the whole head: head and upper neck fill the frame, the face centred."""
    from painface.face.render import Camera

    return Camera(yaw=float(yaw), pitch=float(pitch), distance=float(distance), fov=20.0, target=(0.0, -30.0, -20.0))


def _compose(faces: Iterator[np.ndarray], plot: PlotStrip | None) -> Iterator[np.ndarray]:
    for i, f in enumerate(faces):
        yield f if plot is None else np.concatenate([f, plot.frame(i)], axis=1)


def _plot_for(face: np.ndarray, stimulus: np.ndarray | None, pspi_: np.ndarray | None, fps: float, size: int,
              label: str, stimulus_label: str) -> PlotStrip:
    from painface.face.code import FEATURE_NAMES, pspi

    n = np.shape(face)[0]
    stim = np.zeros(n) if stimulus is None else np.asarray(stimulus, np.float64)
    ps = pspi(np.asarray(face), FEATURE_NAMES) if pspi_ is None else np.asarray(pspi_, np.float64)
    if stim.shape != (n,) or ps.shape != (n,):
        raise InputError(f"stimulus/pspi: expected [{n}] (one value per frame), got {stim.shape} / {ps.shape}")
    return PlotStrip(stim, ps, fps, height=size, width=int(1.5 * size), label=label, stimulus_label=stimulus_label)


def render_video(face: np.ndarray, path: str | Path, fps: float, *, stimulus: np.ndarray | None = None,
                 pspi: np.ndarray | None = None, size: int = 256, yaw: float = 0.0, layout: str = "plot",
                 identity: Identity | None = None, label: str = "", stimulus_label: str = "stimulus",
                 model: str = "head") -> Path:
    """Render a FACS face code ``[F, 20]`` to ``path`` (.mp4/.gif) at ``fps``.

    ``layout="plot"``: the face (``size`` px square) beside a ``size`` x ``1.5 size`` plot of
    ``stimulus`` and PSPI (``[F]`` each; PSPI computed from the code when not given) that scrolls with
    time; ``layout="face"``: the face alone.
    """
    if layout not in ("face", "plot"):
        raise InputError(f"layout: expected 'face' or 'plot', got {layout!r}")
    faces = face_frames(face, size=size, yaw=yaw, identity=identity, model=model)
    plot = _plot_for(face, stimulus, pspi, fps, size, label, stimulus_label) if layout == "plot" else None
    return write_video(_compose(faces, plot), path, fps)


def render_grid_video(codes: Sequence[np.ndarray], stimuli: Sequence[np.ndarray], pspis: Sequence[np.ndarray] | None,
                      labels: Sequence[str], path: str | Path, fps: float, *, size: int = 256, ncols: int = 2,
                      identities: Sequence[Identity | None] | None = None, yaw: float = 0.0,
                      stimulus_label: str = "stimulus") -> Path:
    """Several patients in one video: a grid (``ncols`` wide) of tiles, each a face beside its plot.

    ``codes``: FACS face codes ``[F, 20]``, all with the same F; ``stimuli`` / ``pspis``: ``[F]`` each
    (``pspis=None``: computed from the codes); ``labels``: one short caption per tile; ``identities``:
    one :class:`~painface.face.identity.Identity` (or None: the built-in face) per tile. Tiles are
    ``size`` x ``2.5 size`` pixels; empty grid cells stay background.
    """
    k = len(codes)
    if k == 0 or len(stimuli) != k or len(labels) != k or (pspis is not None and len(pspis) != k):
        raise InputError(f"render_grid_video: expected equally many codes, stimuli, labels (and pspis), got "
                         f"{k}, {len(stimuli)}, {len(labels)}" + ("" if pspis is None else f", {len(pspis)}"))
    n = {np.shape(c)[0] for c in codes}
    if len(n) != 1:
        raise InputError(f"render_grid_video: every code needs the same number of frames, got {sorted(n)}")
    idents = list(identities) if identities is not None else [None] * k
    if len(idents) != k:
        raise InputError(f"identities: expected {k}, got {len(idents)}")
    tiles = [_compose(face_frames(c, size=size, yaw=yaw, identity=i),
                      _plot_for(c, s, None if pspis is None else pspis[j], fps, size, labels[j], stimulus_label))
             for j, (c, s, i) in enumerate(zip(codes, stimuli, idents, strict=True))]
    nrows = -(-k // ncols)
    bg = (np.asarray(BG) * 255).astype(np.uint8)

    def frames() -> Iterator[np.ndarray]:
        for parts in zip(*tiles, strict=True):
            th, tw = parts[0].shape[:2]
            out = np.empty((nrows * th, ncols * tw, 3), np.uint8)
            out[:] = bg
            for j, t in enumerate(parts):
                r, c = divmod(j, ncols)
                out[r * th : (r + 1) * th, c * tw : (c + 1) * tw] = t
            yield out

    return write_video(frames(), path, fps)
