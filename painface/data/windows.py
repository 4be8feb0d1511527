"""Windows of a corpus for training and validation, and the per-feature normalizer.

Training windows (default 64 frames) lie around the stimulus change points (the first frame of every
rise and fall, found from the stimulus alone, see :func:`painface.data.trials.stimulus_changes`), as
PainDiffusion trains "near stimulus onsets": the change point lands at a seeded random offset within
the window (``min_before..max_before`` frames after the window's start). An optional share of windows
starts at random positions so that rest is seen too. Validation windows (default 640 frames) start a
quarter of the window (160 frames) before each change point, deterministically.

Every subject's arrays are loaded once and kept in memory (features already normalized when a
:class:`FeatureNormalizer` is given). Items are dicts of tensors; see :meth:`WindowDataset.__getitem__`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from painface.data.corpus import SPLITS, Corpus, atomic_write_json
from painface.data.trials import stimulus_changes
from painface.errors import InputError
from painface.face.code import EMOTIONS, emotion_index
from painface.stimulus import stimulus_memory

TRAIN_LENGTH = 64
VAL_LENGTH = 640
MODES = ("train", "val")


# --- normalizer --------------------------------------------------------------------------------
class FeatureNormalizer:
    """Per-feature affine map to unit scale: ``(face - mean) / std`` over ``[..., features]``.

    mean, std: ``[features]`` float32 in the features' own units; a feature whose std is below
    ``min_std`` (constant in the data) keeps std 1 so it is only centred.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], feature_names: Sequence[str]):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        self.feature_names = tuple(str(n) for n in feature_names)
        d = len(self.feature_names)
        if self.mean.shape != (d,) or self.std.shape != (d,):
            raise InputError(
                f"normalizer: mean {self.mean.shape} and std {self.std.shape} must both have "
                f"{d} values (one per feature)"
            )
        if not (np.all(np.isfinite(self.mean)) and np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise InputError("normalizer: mean must be finite and std finite and > 0")

    @classmethod
    def fit(
        cls, corpus: Corpus, split: str = "train", *, min_std: float = 1e-6, progress: bool = False
    ) -> FeatureNormalizer:
        """Mean and std of every feature over all frames of ``split``'s subjects (float64 sums)."""
        ids = corpus.ids(split)
        if not ids:
            raise InputError(f"split {split!r}: no subjects to fit the normalizer on")
        d = len(corpus.feature_names)
        n, s1, s2 = 0, np.zeros(d), np.zeros(d)
        for sid in tqdm(ids, desc="normalizer", unit="subject", disable=not progress):
            f = corpus.subject(sid).face.astype(np.float64)
            n += f.shape[0]
            s1 += f.sum(axis=0)
            s2 += np.square(f).sum(axis=0)
        if n == 0:
            raise InputError(f"split {split!r}: subjects hold no frames")
        mean = s1 / n
        std = np.sqrt(np.maximum(s2 / n - np.square(mean), 0.0))
        std = np.where(std < min_std, 1.0, std)
        return cls(mean, std, corpus.feature_names)

    def _params(self, x: Any) -> tuple[Any, Any]:
        if x.shape[-1] != self.mean.shape[0]:
            raise InputError(f"normalizer: input has {x.shape[-1]} features, expected {self.mean.shape[0]}")
        if isinstance(x, torch.Tensor):
            return (
                torch.as_tensor(self.mean, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.std, dtype=x.dtype, device=x.device),
            )
        return self.mean, self.std

    def normalize(self, face: Any) -> Any:
        """``[..., features]`` (numpy or torch) in feature units -> unit scale."""
        mean, std = self._params(face)
        return (face - mean) / std

    def denormalize(self, face: Any) -> Any:
        """Inverse of :meth:`normalize`."""
        mean, std = self._params(face)
        return face * std + mean

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``feature_names``, ``mean``, ``std`` (lists of floats)."""
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(x) for x in self.mean],
            "std": [float(x) for x in self.std],
        }

    @classmethod
    def from_dict(cls, d: Any) -> FeatureNormalizer:
        if not isinstance(d, dict) or any(k not in d for k in ("feature_names", "mean", "std")):
            raise InputError("normalizer: expected a dict with keys 'feature_names', 'mean', 'std'")
        return cls(d["mean"], d["std"], d["feature_names"])

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> FeatureNormalizer:
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{p}: cannot read the normalizer: {e}") from None


def subject_emotion(info: dict[str, Any]) -> np.ndarray:
    """A corpus subject's emotion condition ``[8]`` float32, read from its meta: the mean ``emotion_score``
    when the meta holds one (as recorded, not renormalized), else a one-hot of ``emotion``. (What a user
    asks for, a name, blend or vector, is parsed by :func:`painface.model.conditions.emotion_vector`.)"""
    score = info.get("emotion_score")
    if score is not None:
        v = np.asarray(score, dtype=np.float32)
        if v.shape != (len(EMOTIONS),) or not np.all(np.isfinite(v)):
            raise InputError(f"subject {info.get('id')!r}: emotion_score must be {len(EMOTIONS)} finite numbers")
        return v
    v = np.zeros(len(EMOTIONS), dtype=np.float32)
    v[emotion_index(info["emotion"])] = 1.0
    return v


# --- dataset -----------------------------------------------------------------------------------
class WindowDataset(Dataset):
    """Fixed-length windows of one split of a corpus.

    mode "train": around change points with a seeded jitter, plus ``random_share`` random windows;
    redraw them for a new epoch with :meth:`set_epoch`. mode "val": one window per change point starting
    ``lead`` frames before it (default a quarter of the window), deterministic. Windows that would
    cross a recording's end are shifted inside it (the change point stays inside the window).

    Args:
        corpus: the corpus; split: "train" or "val"; mode: "train" or "val";
        length: frames per window (default 64 in train mode, 640 in val mode);
        min_before, max_before: train mode: the change point lands ``min_before..max_before`` frames
            after the window start (default 0..length-1);
        per_change: train mode: windows drawn per change point; random_share: train mode: share (0-1)
            of all windows placed at random; lead: val mode: frames before the change point;
        kinds: change points used: "both" (rises and falls), "rise" or "fall";
        seed: seed of the training windows; normalizer: applied to the face features once at load;
        memory: time constants (frames) of the stimulus memory (:func:`painface.stimulus.stimulus_memory`)
            computed over each whole recording, so a window's memory carries what came before it; items then
            hold ``memory`` ``[T, K]``.
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str = "train",
        *,
        mode: str = "train",
        length: int | None = None,
        min_before: int = 0,
        max_before: int | None = None,
        per_change: int = 1,
        random_share: float = 0.1,
        lead: int | None = None,
        kinds: str = "both",
        seed: int = 0,
        normalizer: FeatureNormalizer | None = None,
        memory: tuple[float, ...] = (),
        progress: bool = False,
    ):
        if split not in SPLITS:
            raise InputError(f"split: {split!r}, expected one of {SPLITS}")
        if mode not in MODES:
            raise InputError(f"mode: {mode!r}, expected one of {MODES}")
        if kinds not in ("both", "rise", "fall"):
            raise InputError(f"kinds: {kinds!r}, expected 'both', 'rise' or 'fall'")
        self.length = int(length if length is not None else (TRAIN_LENGTH if mode == "train" else VAL_LENGTH))
        if self.length < 1:
            raise InputError(f"length: must be >= 1 frame, got {self.length}")
        self.max_before = self.length - 1 if max_before is None else int(max_before)
        self.min_before = int(min_before)
        if not 0 <= self.min_before <= self.max_before < self.length:
            raise InputError(
                f"min_before/max_before: need 0 <= min_before <= max_before < length ({self.length}), "
                f"got {self.min_before}/{self.max_before}"
            )
        self.lead = self.length // 4 if lead is None else int(lead)
        if not 0 <= self.lead < self.length:
            raise InputError(f"lead: need 0 <= lead < length ({self.length}), got {self.lead}")
        if per_change < 1:
            raise InputError(f"per_change: must be >= 1, got {per_change}")
        if not 0.0 <= random_share < 1.0:
            raise InputError(f"random_share: must lie in [0, 1), got {random_share!r}")
        if normalizer is not None and normalizer.feature_names != corpus.feature_names:
            raise InputError("normalizer: its feature names differ from the corpus's")
        self.split, self.mode, self.kinds, self.seed = split, mode, kinds, int(seed)
        self.per_change, self.random_share = int(per_change), float(random_share)
        self.feature_names = corpus.feature_names
        self.normalizer = normalizer
        self.subject_ids = corpus.ids(split)
        if not self.subject_ids:
            raise InputError(f"split {split!r}: the corpus has no subjects in it")
        self._face: list[np.ndarray] = []
        self._stim: list[np.ndarray] = []
        self._mem: list[np.ndarray] = []
        self.memory = tuple(float(t) for t in memory)
        self._pspi: list[np.ndarray] = []
        self._expr = np.zeros(len(self.subject_ids), dtype=np.float32)
        self._emo = np.zeros((len(self.subject_ids), len(EMOTIONS)), dtype=np.float32)
        self.changes: list[np.ndarray] = []
        for i, sid in enumerate(tqdm(self.subject_ids, desc=f"load {split}", unit="subject", disable=not progress)):
            sub = corpus.subject(sid)
            if sub.frames < self.length:
                raise InputError(f"subject {sid!r}: {sub.frames} frames, shorter than the window of {self.length}")
            face = sub.face if normalizer is None else normalizer.normalize(sub.face).astype(np.float32)
            self._face.append(np.ascontiguousarray(face, dtype=np.float32))
            self._stim.append(np.asarray(sub.stimulus, dtype=np.float32))
            if self.memory:
                self._mem.append(stimulus_memory(self._stim[-1], self.memory)[0])
            self._pspi.append(np.asarray(sub.pspi, dtype=np.float32))
            self._expr[i] = float(sub.info["expressiveness"])
            self._emo[i] = subject_emotion(sub.info)
            self.changes.append(stimulus_changes(sub.stimulus, kinds=kinds))
        self.epoch = 0
        self.windows = self._draw(0)

    # --- windows -----------------------------------------------------------------------------
    def _clip(self, sub: int, start: np.ndarray) -> np.ndarray:
        return np.clip(start, 0, self._face[sub].shape[0] - self.length)

    def _draw(self, epoch: int) -> np.ndarray:
        """``[windows, 3]`` int64 rows (subject index, start frame, change frame or -1)."""
        rows: list[np.ndarray] = []
        if self.mode == "val":
            for s, ch in enumerate(self.changes):
                rows.append(np.stack([np.full(ch.size, s), self._clip(s, ch - self.lead), ch], axis=1))
        else:
            rng = np.random.default_rng([self.seed, epoch])
            for s, ch in enumerate(self.changes):
                cp = np.repeat(ch, self.per_change)
                off = rng.integers(self.min_before, self.max_before + 1, size=cp.size)
                rows.append(np.stack([np.full(cp.size, s), self._clip(s, cp - off), cp], axis=1))
            n_change = sum(r.shape[0] for r in rows)
            n_random = int(round(self.random_share * n_change / (1.0 - self.random_share)))
            if n_change == 0 and self.random_share > 0:
                n_random = max(1, sum(f.shape[0] for f in self._face) // self.length)
            if n_random:
                spans = np.array([f.shape[0] - self.length + 1 for f in self._face], dtype=np.float64)
                subs = rng.choice(len(spans), size=n_random, p=spans / spans.sum())
                starts = (rng.random(n_random) * spans[subs]).astype(np.int64)
                rows.append(np.stack([subs, starts, np.full(n_random, -1)], axis=1))
        out = np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 3), np.int64)
        if out.shape[0] == 0:
            raise InputError(
                f"split {self.split!r}: no stimulus change points found and no random windows "
                f"asked for (random_share=0); nothing to draw windows from"
            )
        return out

    def set_epoch(self, epoch: int) -> None:
        """Redraw the training windows for ``epoch`` (deterministic in seed and epoch; no-op in val mode or
        when ``epoch`` is the current one, so a training loop may call it every step)."""
        if int(epoch) == self.epoch:
            return
        self.epoch = int(epoch)
        if self.mode == "train":
            self.windows = self._draw(self.epoch)

    def describe(self) -> dict[str, Any]:
        """The settings that made these windows (JSON-able), to save next to what they produced."""
        return {
            "split": self.split,
            "mode": self.mode,
            "length": self.length,
            "min_before": self.min_before,
            "max_before": self.max_before,
            "per_change": self.per_change,
            "random_share": self.random_share,
            "lead": self.lead,
            "kinds": self.kinds,
            "seed": self.seed,
            "windows": len(self),
            "subjects": len(self.subject_ids),
            "normalized": self.normalizer is not None,
        }

    # --- items -------------------------------------------------------------------------------
    @property
    def subject_expressiveness(self) -> np.ndarray:
        """Expressiveness (mean PSPI) of each subject of the split ``[S]`` (a copy)."""
        return self._expr.copy()

    def __len__(self) -> int:
        return int(self.windows.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """One window: ``face`` [T, D] float32 (normalized if a normalizer was given), ``stimulus`` [T]
        float32 (corpus units), ``pspi`` [T] float32, ``expressiveness`` [] float32 (mean PSPI of the
        subject), ``emotion`` [8] float32, ``subject`` [] int64 (index into ``subject_ids``), ``start``
        [] int64 (first frame), ``change`` [] int64 (the change point's frame, -1 for random windows);
        with ``memory`` set also ``memory`` [T, K] float32."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range ({len(self)} windows)")
        s, start, change = (int(x) for x in self.windows[i])
        sl = slice(start, start + self.length)
        item = {
            "face": torch.from_numpy(self._face[s][sl].copy()),
            "stimulus": torch.from_numpy(self._stim[s][sl].copy()),
            "pspi": torch.from_numpy(self._pspi[s][sl].copy()),
            "expressiveness": torch.tensor(self._expr[s], dtype=torch.float32),
            "emotion": torch.from_numpy(self._emo[s].copy()),
            "subject": torch.tensor(s, dtype=torch.int64),
            "start": torch.tensor(start, dtype=torch.int64),
            "change": torch.tensor(change, dtype=torch.int64),
        }
        if self.memory:
            item["memory"] = torch.from_numpy(self._mem[s][sl].copy())
        return item
