"""PSPI read back from rendered faces: the paper's render-and-detect check, closed loop.

:class:`RenderedPspi` renders FACS face codes with painface's face (one identity per window, front
camera) every ``stride`` frames, reads them with the :class:`~painface.analyze.detector.Detector`
and returns PSPI per frame, linearly interpolated between the rendered frames (frames without a
detected face are interpolated over too). The PainDiffusion authors scored generated faces the same
way with their AU detector. Results are cached per sequence, so scoring the same array twice renders
it once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from painface.errors import InputError
from painface.face.code import FEATURE_NAMES, feature_space


class RenderedPspi:
    """Callable ``face [P, L, D] or [P, K, L, D] -> PSPI [P, L] or [P, K, L]`` (window p drawn on
    identity p). ``stride``: frames between rendered frames; ``size``: pixels; ``calibration``: the
    detector's AU map ("regression" by default: the one fitted to read painface's renders)."""

    def __init__(self, names: Sequence[str], *, stride: int = 16, size: int = 256, seed: int = 0,
                 calibration: Any = "regression", threads: int = 1) -> None:
        from painface.analyze.detector import Detector

        if feature_space(names) != "facs" or tuple(names) != FEATURE_NAMES:
            raise InputError("--pspi-from rendered: needs a FACS-space corpus (its faces are rendered by "
                             "painface's rig)")
        if stride < 1 or not 64 <= size <= 1024:
            raise InputError(f"rendered PSPI: stride >= 1 and size 64..1024 expected, got {stride}, {size}")
        self.stride, self.size, self.seed = int(stride), int(size), int(seed)
        self.detector = Detector(calibration=calibration, threads=threads)
        self._people: dict[int, Any] = {}
        self._cache: dict[tuple[int, str], np.ndarray] = {}
        self.frames_rendered = 0
        self.frames_detected = 0
        self.samples: list[tuple[str, np.ndarray, np.ndarray]] = []  # (tag, exact, detected) per sequence
        self.tag = ""
        """Label stored with the next sequences' samples (e.g. the method being scored)."""

    def _person(self, p: int) -> Any:
        """The identity that draws window ``p`` (seeded, so every method's sequence of a window shares it)."""
        if p not in self._people:
            from painface.face.identity import make_identity

            self._people[p] = make_identity(self.seed * 100_003 + p)
        return self._people[p]

    def sequence(self, face: np.ndarray, p: int) -> np.ndarray:
        """PSPI ``[L]`` of one code sequence ``[L, D]`` drawn on identity ``p``."""
        from painface.analyze.aus import pspi_from_aus
        from painface.face.code import clip_aus, pspi
        from painface.face.video import face_frames

        face = clip_aus(np.asarray(face, np.float32))
        key = (p, hashlib.sha1(face.tobytes()).hexdigest())
        if key in self._cache:
            return self._cache[key]
        n = face.shape[0]
        idx = np.unique(np.r_[np.arange(0, n, self.stride), n - 1])
        images = list(face_frames(face[idx], size=self.size, identity=self._person(p)))  # the whole head
        got = np.full(len(idx), np.nan)
        for k, img in enumerate(images):
            found = self.detector.read_faces(Image.fromarray(img))
            if found:
                got[k] = float(pspi_from_aus(self.detector.aus(found[0][1].blendshapes)))
        self.frames_rendered += len(idx)
        ok = np.isfinite(got)
        self.frames_detected += int(ok.sum())
        self.samples.append((self.tag, pspi(face[idx], FEATURE_NAMES), got))
        out = np.interp(np.arange(n), idx[ok], got[ok]) if ok.any() else np.zeros(n)
        self._cache[key] = out.astype(np.float32)
        return self._cache[key]

    def __call__(self, face: np.ndarray) -> np.ndarray:
        arr = np.asarray(face, np.float32)
        if arr.ndim not in (3, 4):
            raise InputError(f"rendered PSPI: expected [P, L, D] or [P, K, L, D], got shape {arr.shape}")
        flat = arr if arr.ndim == 4 else arr[:, None]
        out = np.stack([np.stack([self.sequence(flat[p, k], p) for k in range(flat.shape[1])])
                        for p in range(flat.shape[0])])
        return out if arr.ndim == 4 else out[:, 0]

    def agreement(self, tag: str | None = None) -> dict[str, float]:
        """Pearson r and MAE between exact and detected PSPI over the rendered frames with a face (of
        the sequences scored under ``tag``; all when None)."""
        chosen = [s for s in self.samples if tag is None or s[0] == tag]
        if not chosen:
            return {}
        exact = np.concatenate([s[1] for s in chosen])
        det = np.concatenate([s[2] for s in chosen])
        ok = np.isfinite(det)
        r = float(np.corrcoef(exact[ok], det[ok])[0, 1]) if ok.sum() > 2 and exact[ok].std() > 0 else float("nan")
        return {"pearson_r": r, "mae": float(np.abs(exact[ok] - det[ok]).mean()) if ok.any() else float("nan"),
                "frames": int(len(det)), "detection_rate": float(ok.mean())}
