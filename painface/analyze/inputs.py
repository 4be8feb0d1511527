"""What the analyzer reads: image files, folders, videos, numpy arrays and PIL images, as frames.

:func:`expand` turns the user's inputs into a list of :class:`Source` (folders are listed, sorted,
keeping files whose extension is an image or video one). :func:`frames` yields ``(frame index, time
in seconds, RGB PIL image)`` for one source, or raises :class:`FrameError` with a one-line message
that names the file and what is wrong (unreadable, empty, truncated, not an image or video, a video
with no frames, an image over the size limit). Grayscale, palette, 16-bit and RGBA images are
converted to 8-bit RGB (alpha composited on black). Images larger than :data:`MAX_SIDE` on their long
side are scaled down for the models and the scale is returned so coordinates stay in original pixels.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
MAX_PIXELS = 400_000_000
"""Images with more pixels than this are refused (PIL's decompression-bomb guard is raised to it)."""
MAX_SIDE = 4096
"""Longer images are scaled down to this side before the models see them."""


class FrameError(Exception):
    """A source cannot be read; the message names it and says why."""


@dataclass(frozen=True)
class Source:
    """One input: ``name`` (the table's ``file``), ``kind`` ("image", "video" or "array"), ``obj``."""

    name: str
    kind: str
    obj: Any


def expand(inputs: Any) -> list[Source]:
    """Inputs (a path, array, PIL image or a list of them; folders are listed) -> sources."""
    if isinstance(inputs, str | Path | np.ndarray | Image.Image):
        inputs = [inputs]
    out: list[Source] = []
    for k, item in enumerate(inputs):
        if isinstance(item, Image.Image):
            out.append(Source(getattr(item, "filename", "") or f"<image {k}>", "array", item))
        elif isinstance(item, np.ndarray):
            out.append(Source(f"<array {k}>", "array", item))
        elif isinstance(item, str | Path):
            p = Path(item)
            if p.is_dir():
                files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                               and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
                out.extend(Source(str(f), _kind(f), f) for f in files)
            else:
                out.append(Source(str(p), _kind(p), p))
        else:
            out.append(Source(f"<{type(item).__name__} {k}>", "array", item))
    return out


def _kind(p: Path) -> str:
    return "video" if p.suffix.lower() in VIDEO_EXTENSIONS else "image"


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB of any PIL mode: 16-bit/float grayscale scaled by its range, alpha composited on black."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo) * 255.0
        img = Image.fromarray(np.nan_to_num(a).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return img.convert("RGB") if img.mode != "RGB" else img


def array_to_image(a: Any, name: str) -> Image.Image:
    """An array ``[H, W]``, ``[H, W, 1|3|4]`` (uint8 0..255, or float 0..1) or a PIL image -> RGB image."""
    if isinstance(a, Image.Image):
        return to_rgb(a)
    try:
        arr = np.asarray(a)
    except Exception as e:  # noqa: BLE001 - any object
        raise FrameError(f"{name}: not an image array ({e})") from None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or arr.size == 0:
        raise FrameError(f"{name}: expected an image array [H, W], [H, W, 3] or [H, W, 4], got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise FrameError(f"{name}: expected a numeric image array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise FrameError(f"{name}: image array holds NaN or inf")
        arr = np.clip(arr * 255.0 if arr.max() <= 1.0 else arr, 0, 255)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255) if arr.max() <= 255 else arr / (arr.max() / 255.0)
    arr = np.ascontiguousarray(arr.astype(np.uint8))
    return to_rgb(Image.fromarray(arr, "L" if arr.ndim == 2 else ("RGBA" if arr.shape[2] == 4 else "RGB")))


def limit_size(img: Image.Image) -> tuple[Image.Image, float]:
    """Scale an image down so that its long side is at most :data:`MAX_SIDE`; return it and the factor
    (original pixels per returned pixel, 1 if unchanged)."""
    w, h = img.size
    if max(w, h) <= MAX_SIDE:
        return img, 1.0
    f = max(w, h) / MAX_SIDE
    return img.resize((max(1, round(w / f)), max(1, round(h / f))), Image.Resampling.BOX), f


def read_image(path: Path) -> Image.Image:
    """Open an image file as RGB (EXIF orientation applied), or raise :class:`FrameError`."""
    if not path.exists():
        raise FrameError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FrameError(f"{path}: empty file (0 bytes)")
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.size[0] * im.size[1] > MAX_PIXELS:
                    raise FrameError(f"{path}: image too large ({im.size[0]} x {im.size[1]} pixels; "
                                     f"the limit is {MAX_PIXELS:,} pixels)")
                im.load()
                img = ImageOps.exif_transpose(im)
    except Image.DecompressionBombError as e:
        raise FrameError(f"{path}: image too large ({e})") from None
    except FrameError:
        raise
    except (OSError, SyntaxError, ValueError) as e:
        raise FrameError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return to_rgb(img)


def is_image_file(path: Path) -> bool:
    """Whether PIL recognises the file as an image (reads the header only)."""
    try:
        with Image.open(path):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not an image"
        return False


def video_frames(path: Path, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, float, Image.Image]]:
    """Decode a video with PyAV: ``(frame index, time s, RGB image)`` for every ``every``-th frame."""
    import av

    if not path.exists():
        raise FrameError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise FrameError(f"{path}: empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise FrameError(f"{path}: not a readable video ({e})") from None
    n = 0
    with container:
        if not container.streams.video:
            raise FrameError(f"{path}: no video frames (the file holds no video stream)")
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 25.0)
        try:
            for i, frame in enumerate(container.decode(stream)):
                if max_frames is not None and n >= max_frames:
                    break
                if i % every:
                    continue
                t = float(frame.time) if frame.time is not None else i / rate
                n += 1
                yield i, t, Image.fromarray(frame.to_ndarray(format="rgb24"))
        except (av.FFmpegError, OSError, ValueError) as e:
            raise FrameError(f"{path}: video unreadable after {n} frame(s) ({e})") from None
    if n == 0:
        raise FrameError(f"{path}: no video frames (the video stream is empty)")


def frames(src: Source, every: int = 1, max_frames: int | None = None) -> Iterator[tuple[int, float, Image.Image]]:
    """Frames of one source: ``(index, time s, RGB image)``; raises :class:`FrameError`."""
    if src.kind == "array":
        yield 0, 0.0, array_to_image(src.obj, src.name)
        return
    path = Path(src.obj)
    if src.kind == "video" or (path.exists() and path.stat().st_size and not is_image_file(path)
                               and path.suffix.lower() not in IMAGE_EXTENSIONS):
        yield from video_frames(path, every, max_frames)
        return
    yield 0, 0.0, read_image(path)


def count_frames(src: Source) -> int | None:
    """Frames in a video (from the container, may be 0 if unknown), 1 for an image."""
    if src.kind != "video":
        return 1
    try:
        import av

        with av.open(str(src.obj)) as c:
            return int(c.streams.video[0].frames) or None
    except Exception:  # noqa: BLE001 - only for the progress bar
        return None


def names_of(sources: Sequence[Source]) -> list[str]:
    return [s.name for s in sources]
