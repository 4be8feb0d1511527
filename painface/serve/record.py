"""Recording a live session as a face-code file (the page's *record* button, docs/live.md).

A ``{"type": "record", "action": "start"}`` message starts keeping every frame the engine makes for the
session (as generated, so a slow reader's dropped ``frames`` messages are still recorded); ``"stop"``
answers ``{"type": "record", "recording": false, "frames", "seconds", "bytes", "reason"}`` and then, when
frames were recorded, one binary WebSocket message: an ``.npz`` in the format of ``painface generate``
(``face`` ``[frames, D]`` float32, ``feature_names``, ``fps``, ``stimulus`` ``[frames]``, ``pspi``
``[frames]`` in FACS space) plus ``start`` (the session frame index of the first recorded frame),
``identity`` (the seed the page drew, -1 for the average head) and ``source``. ``painface render`` and
``painface export`` read it as they read a generated file. The server writes nothing to disk.

A recording holds at most :data:`MAX_RECORD_S` seconds (30 minutes, 45,000 frames at 25 fps: 3.6 MB of
float32 per session); at that length it stops by itself and sends the file (``reason: "limit"``).
A session that disconnects while recording loses its recording.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np

from painface.face.code import clip_aus, feature_space

MAX_RECORD_S = 1800.0
"""Longest recording (seconds of face); at this length the recording stops and is sent."""


class Recorder:
    """The frames of one session between a ``start`` and a ``stop`` (called from the event loop only)."""

    def __init__(self, fps: float, names: Sequence[str], max_s: float = MAX_RECORD_S) -> None:
        self.fps, self.names = float(fps), tuple(names)
        self.max_frames = max(1, int(round(max_s * self.fps)))
        self.active = False
        self.on_full: Callable[[], None] | None = None  # called once when the limit is reached
        self._reset(None)

    def _reset(self, identity: int | None) -> None:
        self.face: list[np.ndarray] = []
        self.stimulus: list[np.ndarray] = []
        self.pspi: list[np.ndarray] = []
        self.frames = 0
        self.start: int | None = None
        self.identity = identity

    def begin(self, identity: int | None = None) -> None:
        self._reset(identity)
        self.active = True

    def add(self, chunk) -> None:
        """Keep a chunk's frames (up to the limit) while recording."""
        if not self.active:
            return
        n = min(len(chunk), self.max_frames - self.frames)
        if n > 0:
            if self.start is None:
                self.start = int(chunk.start)
            self.face.append(np.array(chunk.face[:n], np.float32))
            self.stimulus.append(np.array(chunk.stimulus[:n], np.float64))
            if chunk.pspi is not None:
                self.pspi.append(np.array(chunk.pspi[:n], np.float64))
            self.frames += n
        if self.frames >= self.max_frames:
            self.active = False
            if self.on_full is not None:
                self.on_full()

    def finish(self) -> tuple[int, dict | None]:
        """Stop (in the event loop); the number of frames and the arguments of :func:`npz_bytes` (None when
        nothing was recorded), to be packed in a worker thread. Clears the recorder."""
        self.active = False
        n = self.frames
        parts = dict(face=self.face, stimulus=self.stimulus, pspi=self.pspi, names=self.names, fps=self.fps,
                     start=self.start or 0, identity=self.identity) if n else None
        self._reset(None)
        return n, parts


def npz_bytes(face: list[np.ndarray], stimulus: list[np.ndarray], pspi: list[np.ndarray], names: Sequence[str],
              fps: float, start: int = 0, identity: int | None = None) -> bytes:
    """A face-code npz (``painface generate``'s format, see the module docstring) of the recorded chunks."""
    code = np.concatenate(face).astype(np.float32)
    if feature_space(names) == "facs":
        code = clip_aus(code, names)
    arrays = {"face": code, "feature_names": np.asarray(names, dtype=str),
              "stimulus": np.concatenate(stimulus), "fps": np.asarray(float(fps)), "start": np.asarray(int(start)),
              "identity": np.asarray(-1 if identity is None else int(identity)),
              "source": np.asarray("painface serve")}
    if pspi and sum(len(p) for p in pspi) == code.shape[0]:
        arrays["pspi"] = np.concatenate(pspi)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()
