"""Video pain classifiers small enough to train on 2 CPU cores.

Encoders, compared in docs/videos.md:

* ``c3d``: a small 3D CNN on grayscale clips ``[B, 1, T, S, S]`` (four strided 3x3x3 convolutions with
  batch norm, global average pooling): learns space and time together from the pixels.
* ``vit``: the shipped ViTPain (painface/assets/vitpain.safetensors, frozen) reads every frame
  ``[T, 3, 96, 96]``; its class token (128) and its AU (6) and PSPI (1) outputs make a per-frame feature
  ``[T, 135]``, computed once per clip.
* ``face``: ``painface analyze``'s reading of every frame (MediaPipe Face Landmarker: 15 calibrated AU
  intensities and head pitch, yaw, roll; ``[T, 18]``, NaN where no face was found). Frames under 192 px are
  upscaled to 192 first; real footage is read at its own size, the face found by the detector.
* ``vit+face``: both per-frame features side by side ``[T, 153]``.
* ``code``: a face-code reader (:mod:`painface.video.reader`: ViTPain's network with a head for all 17 AUs and
  the three head angles, fine-tuned on the training clips' frames against their exact codes) reads every frame
  ``[T, 96, 96, 3]`` into ``[T, 20]``; the reader is part of the checkpoint.

Per-frame encoders end in a trainable temporal head (``head``):

* ``stats`` (``train-video``'s default; checkpoints without a ``head`` field are ``gru``): the readings
  (ViTPain's AU and PSPI outputs, not its class token; every ``face`` and ``code`` number) summarised over the
  clip by their mean, maximum, standard deviation and mean absolute frame-to-frame change, standardised with the
  training clips' statistics, into a linear layer (logistic regression); frames without a face take their
  neighbours' values.
* ``gru``: a 1-D convolution over time, a GRU and attention pooling over the frames, on every feature.

All end in ``classes`` logits (1 for the binary BL1 vs PA4 task, 5 for BL1, PA1..PA4). Checkpoints:
safetensors + JSON (:func:`save`, :func:`load`); a ``vit`` checkpoint holds the temporal head only and
records the SHA-256 of the ViTPain file it was trained on, checked on load; a ``code`` checkpoint holds its
reader too (float16; the network config in the JSON's ``reader``) and the head (float32). ``framing="face"``
crops every clip to its face before the encoder reads it (:mod:`painface.video.framing`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from painface.errors import InputError
from painface.video.reader import CODE_FEATURES, CodeReader

ENCODERS = ("c3d", "vit", "face", "vit+face", "code")
HEADS = ("stats", "gru")
FRAMINGS = ("none", "face")
CALIBRATIONS = ("none", "person")
MIN_PERSON_CLIPS = 4  # clips of one person and view a person-calibrated model needs to read any of them
TASKS = {"binary": ("BL1", "PA4"), "5class": ("BL1", "PA1", "PA2", "PA3", "PA4")}
VIT_FEATURES = 135
VIT_READINGS = tuple(range(128, 135))  # ViTPain's 6 AU and PSPI outputs
FACE_FEATURES = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU17", "AU20", "AU25",
                 "AU26", "AU43", "pitch", "yaw", "roll")
FORMAT = "painface-video-classifier"
VERSION = 1
VITPAIN = Path(__file__).resolve().parent.parent / "assets" / "vitpain.safetensors"


@dataclass(frozen=True)
class VideoConfig:
    """``frames`` sampled ``stride`` apart from the middle of each clip; ``size``: c3d input side (px)."""

    encoder: str = "c3d"
    task: str = "binary"
    frames: int = 16
    stride: int = 8
    size: int = 48
    width: int = 16
    head: str = "gru"  # checkpoints written before --head existed were all gru; train-video defaults to stats
    framing: str = "none"  # "face": crop every clip to its face first (painface.video.framing), for real footage
    calibrate: str = "none"  # "person": per-frame readings minus their median over the person's clips (same view)

    def check(self) -> None:
        if self.encoder not in ENCODERS:
            raise InputError(f"--encoder: expected one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.head not in HEADS:
            raise InputError(f"--head: expected one of {', '.join(HEADS)}, got {self.head!r}")
        if self.framing not in FRAMINGS:
            raise InputError(f"--framing: expected one of {', '.join(FRAMINGS)}, got {self.framing!r}")
        if self.calibrate not in CALIBRATIONS:
            raise InputError(f"--calibrate: expected one of {', '.join(CALIBRATIONS)}, got {self.calibrate!r}")
        if self.calibrate != "none" and self.encoder == "c3d":
            raise InputError("--calibrate person: calibrates per-frame readings; c3d has none (use --encoder code, "
                             "face, vit or vit+face)")
        if self.task not in TASKS:
            raise InputError(f"--task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        for name, lo, hi in (("frames", 4, 128), ("stride", 1, 32), ("size", 16, 256), ("width", 4, 256)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise InputError(f"--{name}: expected an integer in {lo}..{hi}, got {v!r}")

    @property
    def classes(self) -> tuple[str, ...]:
        return TASKS[self.task]

    @property
    def outputs(self) -> int:
        return 1 if self.task == "binary" else len(self.classes)

    @property
    def input_size(self) -> int | None:
        """Side of the frames the encoder reads: 96 (ViTPain's input), ``size`` (c3d) or None (the face reader
        finds the face in frames of any size)."""
        return {"c3d": self.size, "vit": 96, "code": 96}.get(self.encoder)

    @property
    def read_size(self) -> int | None:
        """Side of the frames read from the clips: the encoder's, or their own size when they are framed first."""
        return None if self.framing == "face" else self.input_size

    @property
    def features(self) -> int:
        """Per-frame features of a per-frame encoder."""
        return {"vit": VIT_FEATURES, "face": len(FACE_FEATURES), "vit+face": VIT_FEATURES + len(FACE_FEATURES),
                "code": CODE_FEATURES}.get(self.encoder, 0)

    @property
    def readings(self) -> tuple[int, ...]:
        """Columns of the per-frame features the ``stats`` head reads."""
        face = tuple(range(len(FACE_FEATURES)))
        return {"vit": VIT_READINGS, "face": face, "vit+face": VIT_READINGS + tuple(VIT_FEATURES + k for k in face),
                "code": tuple(range(CODE_FEATURES))}.get(self.encoder, ())


def _block(cin: int, cout: int, stride: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(inplace=True))


class Clip3DCNN(nn.Module):
    """uint8-range grayscale clips ``[B, 1, T, S, S]`` (0..1) -> logits ``[B, outputs]``."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        w = cfg.width
        self.body = nn.Sequential(_block(1, w // 2, (1, 2, 2)), _block(w // 2, w, (2, 2, 2)),
                                  _block(w, 2 * w, (2, 2, 2)), _block(2 * w, 2 * w, (2, 2, 2)))
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(2 * w, cfg.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body((x - 0.5) / 0.25).mean(dim=(2, 3, 4))
        return self.fc(self.drop(h))


def fill_missing(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, K]`` with NaN where a frame had no reading -> the nearest earlier frame's value, else the nearest
    later one's, else 0."""
    x = x.clone()
    for order in (range(1, x.shape[1]), range(x.shape[1] - 2, -1, -1)):
        for t in order:
            prev = t - 1 if order.step == 1 else t + 1
            x[:, t] = torch.where(torch.isnan(x[:, t]), x[:, prev], x[:, t])
    return torch.nan_to_num(x, nan=0.0)


def calibrate_person(x: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Per-frame readings ``[N, T, F]`` minus, per reading, its median over every frame of the clips that share a key
    (a person and a view; NaN, a frame without a face, is left out of the median and stays NaN). A label-free,
    transductive calibration: how this person's face reads at rest and in pain, from their own clips. Each key needs
    :data:`MIN_PERSON_CLIPS` clips."""
    import warnings

    keys = check_person_clips(keys)
    if len(keys) != len(x):
        raise InputError(f"person calibration: {len(keys)} person keys for {len(x)} clips")
    out = np.array(x, dtype=np.float32, copy=True)
    for key in np.unique(keys):
        m = keys == key
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a reading never seen for this person: NaN median
            med = np.nanmedian(out[m].reshape(-1, out.shape[-1]), axis=0)
        out[m] -= np.nan_to_num(med, nan=0.0)
    return out


def check_person_clips(keys) -> np.ndarray:
    """``keys`` as strings, refused when a person and view has fewer than :data:`MIN_PERSON_CLIPS` clips."""
    keys = np.asarray(keys).astype(str)
    names, counts = np.unique(keys, return_counts=True)
    for key, n in zip(names, counts, strict=True):
        if n < MIN_PERSON_CLIPS:
            person, _, where = key.partition("|")
            raise InputError(f"person calibration: {n} readable clip(s) of {person!r} ({where}); a person-"
                             f"calibrated model needs at least {MIN_PERSON_CLIPS} clips of each person and view")
    return keys


def person_keys(subjects, views) -> np.ndarray:
    """``subject|view`` per clip: the groups of :func:`calibrate_person`."""
    return np.array([f"{s}|{v}" for s, v in zip(subjects, views, strict=True)], dtype=str)


def clip_statistics(x: torch.Tensor) -> torch.Tensor:
    """``[B, T, K]`` -> ``[B, 4K]``: mean, maximum, standard deviation and mean absolute change over time."""
    x = fill_missing(x)
    change = (x[:, 1:] - x[:, :-1]).abs().mean(1) if x.shape[1] > 1 else torch.zeros_like(x[:, 0])
    return torch.cat([x.mean(1), x.amax(1), x.std(1, unbiased=False), change], 1)


class StatsHead(nn.Module):
    """Per-frame features ``[B, T, F]`` -> logits ``[B, outputs]``: the clip statistics of the reading columns
    (:func:`clip_statistics`), standardised with the training clips' (:meth:`fit_norm`; a statistic that hardly varied
    over the training clips is left out: its spread is stored as infinite), into a linear layer.
    ``columns``: other reading columns than the encoder's (e.g. every column of an exact face code)."""

    def __init__(self, cfg: VideoConfig, columns: tuple[int, ...] | None = None) -> None:
        super().__init__()
        columns = cfg.readings if columns is None else tuple(columns)
        k = 4 * len(columns)
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.int64))
        self.register_buffer("mu", torch.zeros(k))
        self.register_buffer("sd", torch.ones(k))
        self.fc = nn.Linear(k, cfg.outputs)

    def statistics(self, x: torch.Tensor) -> torch.Tensor:
        return clip_statistics(x[..., self.columns])

    @torch.no_grad()
    def fit_norm(self, x: torch.Tensor) -> None:
        f = self.statistics(x)
        self.mu.copy_(f.mean(0))
        sd = f.std(0, unbiased=False)
        self.sd.copy_(torch.where(sd < 1e-3, torch.full_like(sd, float("inf")), sd))  # still in training: ignored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((self.statistics(x) - self.mu) / self.sd)


class TemporalHead(nn.Module):
    """Per-frame features ``[B, T, F]`` -> logits ``[B, outputs]``: normalisation, a 1-D convolution
    over time, a GRU, attention pooling over the frames (missing readings filled as in :func:`fill_missing`)."""

    def __init__(self, cfg: VideoConfig) -> None:
        super().__init__()
        w = cfg.width
        self.norm = nn.LayerNorm(cfg.features)
        self.conv = nn.Conv1d(cfg.features, w, 3, padding=1)
        self.gru = nn.GRU(w, w, batch_first=True)
        self.att = nn.Linear(w, 1)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(w, cfg.outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(self.norm(fill_missing(x)).transpose(1, 2))).transpose(1, 2)
        h, _ = self.gru(h)
        a = torch.softmax(self.att(h), dim=1)
        return self.fc(self.drop((a * h).sum(1)))


def make_head(cfg: VideoConfig) -> nn.Module:
    """The temporal head of a per-frame encoder."""
    return StatsHead(cfg) if cfg.head == "stats" else TemporalHead(cfg)


class CodeModel(nn.Module):
    """The ``code`` encoder's model: frames ``[B, T, S, S, 3]`` -> the reader's codes ``[B, T, 20]`` -> the head."""

    def __init__(self, reader: CodeReader, head: nn.Module) -> None:
        super().__init__()
        self.reader, self.head = reader, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.reader.read(x))

    @torch.no_grad()
    def round_reader(self) -> CodeModel:
        """Round the reader's weights to float16, as :func:`save` stores them, so that what is measured before
        saving is what the file holds."""
        for t in self.reader.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())
        return self


def build(cfg: VideoConfig, reader: dict[str, Any] | None = None) -> nn.Module:
    """The model of ``cfg``; ``code`` needs ``reader``, the ViTPain network config of its reader."""
    cfg.check()
    if cfg.encoder == "c3d":
        return Clip3DCNN(cfg)
    head = make_head(cfg)
    if cfg.encoder == "code":
        from painface.assess.model import ViTConfig

        if reader is None:
            raise InputError("the code encoder's checkpoint has no reader config")
        return CodeModel(CodeReader(ViTConfig.from_dict(reader)), head)
    return head


class FrameEncoder:
    """Turns a clip uint8 ``[T, H, W, 3]`` (read at ``cfg.read_size``) into the model's input for one clip:
    c3d: float16 ``[1, T, S, S]`` grey 0..1; code: the frames uint8 ``[T, 96, 96, 3]``; vit, face: float32
    ``[T, cfg.features]`` (see the module docstring). One encoder: ``vit+face`` is two (:func:`encode_clips`)."""

    def __init__(self, cfg: VideoConfig) -> None:
        self.cfg = cfg
        if "+" in cfg.encoder:
            raise InputError(f"FrameEncoder reads one encoder's input; {cfg.encoder!r} is built by encode_clips")
        self.vit = self.detector = None
        if cfg.encoder == "vit":
            from painface.assess.model import load as load_vit

            self.vit, _ = load_vit(VITPAIN)
            self.vit.eval()
        if cfg.encoder == "face" or cfg.framing == "face":
            from painface.analyze import Detector

            self.detector = Detector(calibration="offset", threads=1)

    def _vit(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        if x.shape[-2:] != (96, 96):
            x = torch.nn.functional.interpolate(x, size=(96, 96), mode="bilinear", antialias=True, align_corners=False)
        with torch.no_grad():
            out = self.vit(x)
        return torch.cat([out["tokens"][:, 0], out["aus"], out["pspi"][:, None]], 1)

    def _face(self, clip: np.ndarray, name: str) -> torch.Tensor:
        from painface.video.framing import for_detection

        out = torch.full((len(clip), len(FACE_FEATURES)), float("nan"))
        previous = None
        for t, frame in enumerate(clip):
            found = self.detector.read_faces(for_detection(frame)[0], previous)
            previous = [found[0][1].landmarks] if found else None
            if found:
                r = found[0][1]
                aus = self.detector.aus(r.blendshapes)
                out[t] = torch.tensor([float(aus[a]) for a in FACE_FEATURES[:-3]] + list(r.pose))
        if torch.isnan(out).all():
            raise InputError(f"{name}: no face found in any of its {len(clip)} frames")
        return out

    def __call__(self, clip: np.ndarray, name: str = "clip") -> np.ndarray:
        if self.cfg.framing == "face":
            from painface.video.framing import MIN_SIDE, frame_clip

            clip = frame_clip(clip, self.cfg.input_size or MIN_SIDE, self.detector, name)
        if self.cfg.encoder == "code":
            return np.ascontiguousarray(clip, dtype=np.uint8)  # the reader inside the model reads the frames
        x = torch.from_numpy(np.ascontiguousarray(clip)).float().div_(255.0)  # [T, H, W, 3]
        if self.cfg.encoder == "c3d":
            grey = x @ torch.tensor([0.299, 0.587, 0.114])
            return grey[None].numpy().astype(np.float16)
        feat = self._vit(x) if self.cfg.encoder == "vit" else self._face(clip, name)
        return feat.numpy().astype(np.float32)


def encode_clips(df: Any, cfg: VideoConfig, progress: bool = False) -> tuple[np.ndarray, Any, list[str]]:
    """Every clip of ``df`` (a clip table with ``path``) as the model's input ``[N, ...]``, the rows read and the
    clips skipped (unreadable, or no face). ``vit+face``: each part read as on its own, side by side, for the
    clips both could read."""
    from painface.video.biovid_a import load_clips

    if "+" in cfg.encoder:
        parts = [encode_clips(df, dataclasses.replace(cfg, encoder=e), progress) for e in cfg.encoder.split("+")]
        return join_parts(parts)
    xs, kept, skipped = load_clips(df, FrameEncoder(cfg), frames=cfg.frames, stride=cfg.stride, size=cfg.read_size,
                                   progress=progress)
    return (np.stack(xs) if xs else np.zeros((0,))), kept, skipped


def join_parts(parts: list[tuple[np.ndarray, Any, list[str]]]) -> tuple[np.ndarray, Any, list[str]]:
    """Per-frame features of several encoders, side by side, for the clips (``path``) every part read."""
    both = set.intersection(*(set(p[1].path) for p in parts))
    xs = [x[df.path.isin(both).to_numpy()] for x, df, _ in parts]
    df = parts[0][1][parts[0][1].path.isin(both)].reset_index(drop=True)
    return np.concatenate(xs, axis=-1), df, sorted(set().union(*(p[2] for p in parts)))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save(path: str | Path, model: nn.Module, cfg: VideoConfig, info: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors) and its JSON (config, info) atomically."""
    from safetensors.torch import save as st_save

    from painface.io import atomic_write_bytes, atomic_write_json

    path = Path(path)
    meta = {"format": FORMAT, "version": VERSION, "config": dataclasses.asdict(cfg), **info}
    if "vit" in cfg.encoder.split("+"):
        meta["vitpain_sha256"] = sha256(VITPAIN)
    if cfg.encoder == "code":
        meta["reader"] = model.reader.config.to_dict()
        meta.setdefault("reader_init_sha256", sha256(VITPAIN))  # the ViTPain the readers were fine-tuned from

    def stored(k: str, v: torch.Tensor) -> torch.Tensor:  # the reader's weights in float16: half the file
        return v.half() if k.startswith("reader.") and v.is_floating_point() else v

    data = st_save({k: stored(k, v).detach().contiguous() for k, v in model.state_dict().items()})
    atomic_write_bytes(path, lambda fh: fh.write(data))
    atomic_write_json(path.with_suffix(".json"), meta)
    return path


def load(path: str | Path) -> tuple[nn.Module, VideoConfig, dict[str, Any]]:
    """Load a checkpoint written by :func:`save`; checks format, config, tensors and the ViTPain file."""
    from safetensors.torch import load_file

    path = Path(path)
    js = path.with_suffix(".json")
    if not path.is_file() or not js.is_file():
        raise InputError(f"--model {path}: expected {path.name} and {js.name} (a train-video checkpoint)")
    try:
        meta = json.loads(js.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{js}: unreadable ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise InputError(f"{js}: not a {FORMAT} v{VERSION} checkpoint (format {meta.get('format')!r}, "
                         f"version {meta.get('version')!r})")
    from painface.io import config_from_dict

    cfg = config_from_dict(VideoConfig, meta.get("config"), str(js))
    cfg.check()
    if "vit" in cfg.encoder.split("+") and meta.get("vitpain_sha256") != sha256(VITPAIN):
        raise InputError(f"{js}: trained on another ViTPain ({str(meta.get('vitpain_sha256'))[:12]}...) than "
                         f"{VITPAIN.name} here; retrain it with painface train-video")
    try:
        model = build(cfg, meta.get("reader"))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()})
    except (RuntimeError, OSError) as e:
        raise InputError(f"{path}: tensors do not fit the config in {js.name} ({str(e)[:200]})") from None
    model.eval()
    return model, cfg, meta
