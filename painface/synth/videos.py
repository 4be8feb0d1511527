"""BioVid-Part-A-style synthetic pain videos: :func:`make_videos` and ``painface synth videos``.

Every virtual subject of the BioVid heat protocol (:mod:`painface.subjects`; subject ``i`` is the same
person as ``vs00i`` of ``painface simulate --subjects max(N, 87) --seed S``, split included) gets one
identity of the whole head (skin tone from the balanced plan of :func:`painface.face.identity.identity_plan`,
sex and age group the subject's own) and is filmed from every requested view. Its clips are the windows
BioVid Part A cut around each stimulus (5.5 s at 25 fps = 137 frames):

* ``PA1``..``PA4``: from 1 s after the heat reaches its plateau (BioVid Part A's pain windows);
Identities come from their own stream (:data:`IDENTITY_STREAM` + seed), not the one ``painface synth faces``
draws from with the same seed: a network trained on synthetic faces (ViTPain) has never seen the faces of
the virtual subjects filmed here (format version 1 shared it: video subject ``i`` had face ``i`` of ``synth
faces --seed S``).

* ``BL1``: the last 5.5 s of the rest at baseline before a stimulus (an assumption: Part A takes its
  baseline windows from the pauses; which part is not published in a form found here).

``clips`` of the 20 windows of each class are drawn per subject (seeded), numbered ``000``.. in time
order. Motion comes from the simulator itself (``source="corpus"``) or from PainDiffusion
(``source="paindiffusion"``) conditioned on the subject's stimulus over the window plus a 4 s lead-in,
expressiveness (the subject's mean PSPI) and emotion; the lead-in is generated and dropped.

Layout of ``DIR``:

* ``video/<subject>/<subject>-<class>-<NNN>.mp4``: the first view (BioVid Part A's layout; subject names
  like BioVid's ``071309_w_21``: ``vs001_w_34`` = id, sex, age); ``video-<view>/...`` the other views;
* ``video/<subject>/<subject>-<class>-<NNN>.npz``: ``face`` [137, 20] (FACS code), ``pspi`` [137]
  (exact, Prkachin-Solomon), ``stimulus`` [137] (normalized), ``temperature`` [137] (°C): one per sample,
  shared by its views;
* ``samples.csv`` (tab-separated): ``subject_name``, ``class_id`` (0..4), ``class_name``,
  ``sample_name``, ``view``, ``view_yaw``, ``file``, ``codes_file``, ``split``, ``source``, ``trial``,
  ``start_frame``, ``pspi_mean``, ``pspi_max`` and the identity and subject fields;
* ``dataset.json`` (config, versions, counts, complete), ``shards/<subject>.csv`` (the unit of resuming).

Every file is written to a temporary name and renamed; a subject ends by writing its table, so a rerun
skips finished subjects and redoes the rest with the same draws (all come from ``(seed, subject)``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painface.errors import InputError
from painface.io import atomic_write_bytes, atomic_write_json, clean_stale_in

CLASSES = ("BL1", "PA1", "PA2", "PA3", "PA4")
VIEWS = {"front": 0.0, "side": 35.0, "left": -35.0, "half": 20.0, "profile": 60.0}
"""View name -> camera yaw in degrees (> 0: toward the subject's left)."""
SOURCES = ("corpus", "paindiffusion")
FPS = 25.0
CLIP_FRAMES = 137  # 5.5 s at 25 fps, as BioVid Part A's samples
PLATEAU_DELAY_S = 1.0
LEAD_IN_S = 4.0
POPULATION = 87
FORMAT_VERSION = 2  # 2: identities from their own stream (IDENTITY_STREAM)
IDENTITY_STREAM = 0x7E1D_0000  # added to the seed for the identity plan of the filmed subjects


@dataclass(frozen=True)
class SynthVideosConfig:
    """What ``painface synth videos`` makes. ``split``: which subjects to film (``all``, ``train`` or
    ``val``, the simulator's split); ``checkpoint``: PainDiffusion checkpoint (None: the shipped one)."""

    subjects: int = 87
    views: tuple[str, ...] = ("front", "side")
    source: str = "corpus"
    size: int = 160
    seed: int = 0
    clips: int = 20
    split: str = "all"
    checkpoint: str | None = None
    classes: tuple[str, ...] = CLASSES

    def check(self) -> None:
        for name, lo, hi in (("subjects", 1, 100_000), ("size", 32, 1024), ("clips", 1, 20)):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
                raise InputError(f"--{name}: expected an integer in {lo}..{hi}, got {val!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed!r}")
        if not self.views or len(set(self.views)) != len(self.views):
            raise InputError(f"--views: expected distinct view names from {', '.join(VIEWS)}, got {list(self.views)}")
        bad = [v for v in self.views if v not in VIEWS]
        if bad:
            raise InputError(f"--views: unknown view {bad[0]!r}; expected some of {', '.join(VIEWS)}")
        if self.source not in SOURCES:
            raise InputError(f"--source: expected one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.split not in ("all", "train", "val", "test"):
            raise InputError(f"--split: expected all, train, val or test, got {self.split!r}")
        bad = [c for c in self.classes if c not in CLASSES]
        if not self.classes or bad or len(set(self.classes)) != len(self.classes):
            raise InputError(f"--classes: expected distinct names from {', '.join(CLASSES)}, got {list(self.classes)}")

    @property
    def n_clips(self) -> int:
        return len(self.subject_indexes()) * len(self.classes) * self.clips * len(self.views)

    def subject_indexes(self) -> list[int]:
        from painface.subjects.population import split_plan

        plan = split_plan(max(self.subjects, POPULATION), self.seed)[: self.subjects]
        return [i for i, (sp, _) in enumerate(plan) if self.split in ("all", sp)]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["views"] = list(self.views)
        if set(self.classes) == set(CLASSES):
            del d["classes"]  # all five: as in the configs of folders written before --classes existed
        else:
            d["classes"] = [c for c in CLASSES if c in self.classes]
        return d


def view_folder(cfg: SynthVideosConfig, view: str) -> str:
    """``video`` for the first view, ``video-<view>`` for the others."""
    return "video" if view == cfg.views[0] else f"video-{view}"


def clip_windows(temperature: np.ndarray, level: np.ndarray, trial: np.ndarray) -> dict[str, list[tuple[int, int]]]:
    """Per class, ``(trial, first frame)`` of every 5.5 s window of a heat session (arrays ``[frames]``
    as in the corpus format): PA<k> from 1 s after the plateau of each level-k stimulus, BL1 the last
    5.5 s of baseline before each stimulus."""
    out: dict[str, list[tuple[int, int]]] = {c: [] for c in CLASSES}
    n = len(level)
    for k in range(int(trial.max()) + 1):
        on = np.flatnonzero((trial == k) & (level > 0))
        if on.size == 0:
            continue
        lvl = int(level[on[0]])
        t = temperature[on]
        plateau = on[np.flatnonzero(t >= t.max() - 1e-3)[0]]
        start = int(plateau + round(PLATEAU_DELAY_S * FPS))
        if start + CLIP_FRAMES <= n:
            out[f"PA{lvl}"].append((k, start))
        b = int(on[0]) - CLIP_FRAMES
        if b >= 0 and not np.any(level[b : on[0]]):
            out["BL1"].append((k, b))
    return out


def choose_clips(windows: dict[str, list[tuple[int, int]]], clips: int, seed: int, index: int,
                 classes: tuple[str, ...] = CLASSES) -> list[tuple[str, int, int, int]]:
    """``(class, NNN, trial, first frame)`` of the ``clips`` windows drawn per class (seeded; NNN in time order).
    Every class is drawn whichever ``classes`` are kept, so a class's windows do not depend on the others asked
    for (with ``--source paindiffusion`` the motion does: its noise is drawn for the batch of chosen windows)."""
    rng = np.random.default_rng([seed, index, 0xC11])
    out = []
    for c in CLASSES:
        cand = windows[c]
        pick = sorted(rng.permutation(len(cand))[: min(clips, len(cand))].tolist())
        if c in classes:
            out += [(c, j, *cand[i]) for j, i in enumerate(pick)]
    return out


def subject_name(sid: str, sex: str, age: int) -> str:
    """BioVid-like subject name: ``vs001_w_34`` (``w``: female, ``m``: male)."""
    return f"{sid}_{'w' if sex == 'female' else 'm'}_{int(age)}"


def _age_group(age: float) -> str:
    from painface.face.identity import AGE_GROUPS

    for g, (_, hi) in AGE_GROUPS.items():
        if age <= hi:
            return g
    return tuple(AGE_GROUPS)[-1]


def paindiffusion_motion(sub, chosen: list[tuple[str, int, int, int]], checkpoint: str | None, seed: int
                         ) -> list[np.ndarray]:
    """PainDiffusion face codes ``[137, 20]`` for the chosen windows of subject ``sub`` (a
    :class:`~painface.data.corpus.SubjectData`): each generated from a cold start over the 4 s lead-in and
    the window, conditioned on the subject's stimulus, expressiveness and emotion; the lead-in dropped."""
    import warnings

    from painface.express import ExtrapolationWarning
    from painface.face.code import FEATURE_NAMES

    pd_model = _load_pd(checkpoint)
    if tuple(pd_model.feature_names) != tuple(FEATURE_NAMES):
        raise InputError(f"--checkpoint: the model works in {len(pd_model.feature_names)} features, "
                         "not the FACS face code the head is rendered from")
    lead = int(round(LEAD_IN_S * FPS))
    stims = []
    for _, _, _, start in chosen:
        lo = max(0, start - lead)
        s = sub.stimulus[lo : start + CLIP_FRAMES]
        stims.append(np.concatenate([np.full(lead - (start - lo), s[0]), s]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        faces = pd_model.generate(np.stack(stims), float(sub.info["expressiveness"]), sub.info["emotion"], seed=seed)
    return [f[lead:] for f in faces]


_PD_CACHE: dict = {}


def _load_pd(checkpoint: str | None):
    from painface.express import PainDiffusion

    if checkpoint not in _PD_CACHE:
        _PD_CACHE[checkpoint] = PainDiffusion.load(checkpoint)
    return _PD_CACHE[checkpoint]


def render_clip(code: np.ndarray, head, cam, light, bg: np.ndarray, colors: np.ndarray | None = None) -> np.ndarray:
    """Frames uint8 ``[F, S, S, 3]`` of a FACS face code ``[F, 20]`` on ``head`` seen by ``cam`` under
    ``light``, over the background ``bg`` ``[S, S, 3]``: rendered at 1.25 S and cropped by the five-point
    alignment of the clip's mean landmarks (one steady crop: the face moves inside it); eyes on the camera."""
    from painface.face import align
    from painface.face.head import align_points, deform, frame_colors
    from painface.face.render import render
    from painface.synth.scene import composite

    size = bg.shape[0]
    r_size = int(round(1.25 * size))
    colors = frame_colors(code, head, linear=True) if colors is None else colors
    verts = deform(code, head, look_at=cam.position())
    imgs, alpha = render(verts, head.triangles, colors, size=r_size, camera=cam, lighting=light,
                         specular=head.specular, linear_colors=True, return_alpha=True, cull_back=True)
    m = align.crop_matrix(align.project(align_points(head, verts), cam, r_size).mean(0), size)
    frames = []
    for im, al in zip(imgs, alpha, strict=True):
        w = align.warp(np.dstack([im, np.round(al * 255).astype(np.uint8)]), m, size, fill=(0, 0, 0, 0))
        frames.append(composite(w[..., :3], w[..., 3].astype(np.float32) / 255, bg))
    return np.stack(frames)


def render_subject(cfg: SynthVideosConfig, index: int, root: Path) -> list[dict]:
    """Simulate subject ``index``, render and write all its clips from every view; returns its rows."""
    from painface.face.code import FEATURE_NAMES, pspi
    from painface.face.head import build_head, frame_colors
    from painface.face.identity import identity_plan, make_identity
    from painface.face.render import random_lighting
    from painface.face.video import head_camera, write_video
    from painface.subjects.population import make_subject, split_plan
    from painface.subjects.protocols import HeatProtocol
    from painface.subjects.traits import SimConfig
    from painface.synth.scene import background

    n_pop = max(cfg.subjects, POPULATION)
    sub = make_subject(cfg.seed, index, split_plan(n_pop, cfg.seed)[index], SimConfig(), HeatProtocol())
    info = sub.info
    ident_seed, _, _, tone = identity_plan(n_pop, IDENTITY_STREAM + cfg.seed, index, index + 1)[0]
    ident = make_identity(ident_seed, sex=info["sex"], age_group=_age_group(info["age"]), skin_tone=tone)
    head = build_head(ident)
    name = subject_name(info["id"], ident.sex, ident.age)
    chosen = choose_clips(clip_windows(sub.extras["temperature"], sub.extras["level"], sub.extras["trial"]),
                          cfg.clips, cfg.seed, index, cfg.classes)
    if cfg.source == "paindiffusion":
        codes = paindiffusion_motion(sub, chosen, cfg.checkpoint, seed=cfg.seed * 100_003 + index)
    else:
        codes = [sub.face[s : s + CLIP_FRAMES] for *_, s in chosen]
    size = cfg.size
    folders = {v: root / view_folder(cfg, v) / name for v in cfg.views}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
        clean_stale_in(f)
    rows = []
    base = {"subject_name": name, "subject_id": info["id"], "split": info["split"], "source": cfg.source,
            "sex": ident.sex, "age": ident.age, "age_group": ident.age_group, "skin_tone": ident.skin_tone,
            "identity_seed": ident.seed, "hair_style": ident.hair_style, "hair_color": ident.hair,
            "emotion": info["emotion"], "pattern": info["pattern"], "expressiveness": info["expressiveness"]}
    for (cls, nnn, trial, start), code in zip(chosen, codes, strict=True):
        sample = f"{name}-{cls}-{nnn:03d}"
        ps = pspi(code, FEATURE_NAMES).astype(np.float32)
        arrays = {"face": code.astype(np.float32), "pspi": ps, "feature_names": np.array(FEATURE_NAMES),
                  "stimulus": sub.stimulus[start : start + CLIP_FRAMES].astype(np.float32),
                  "temperature": sub.extras["temperature"][start : start + CLIP_FRAMES].astype(np.float32)}
        codes_file = f"video/{name}/{sample}.npz"
        atomic_write_bytes(root / codes_file, lambda fh, a=arrays: np.savez_compressed(fh, **a), durable=False,
                           clean=False)
        colors = frame_colors(code, head, linear=True)
        for v in cfg.views:
            rng = np.random.default_rng([cfg.seed, index, list(VIEWS).index(v)])  # same light/bg for a subject-view
            cam = head_camera(VIEWS[v])
            light = random_lighting(rng, background=(0.0, 0.0, 0.0))
            bg, bg_kind = background(rng, size)
            file = f"{view_folder(cfg, v)}/{name}/{sample}.mp4"
            write_video(render_clip(code, head, cam, light, bg, colors), root / file, FPS)
            rows.append({**base, "class_id": CLASSES.index(cls), "class_name": cls, "sample_name": sample,
                         "view": v, "view_yaw": VIEWS[v], "file": file, "codes_file": codes_file, "trial": trial,
                         "start_frame": start, "pspi_mean": round(float(ps.mean()), 4),
                         "pspi_max": round(float(ps.max()), 4), "background": bg_kind})
    return rows


def _run_subject(args: tuple) -> int:
    cfg_d, index, root = args
    import numba
    import torch

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    cfg = SynthVideosConfig(**{**cfg_d, "views": tuple(cfg_d["views"]),
                               "classes": tuple(cfg_d.get("classes", CLASSES))})
    root = Path(root)
    rows = render_subject(cfg, index, root)
    csv = pd.DataFrame(rows).to_csv(index=False, sep="\t").encode()
    atomic_write_bytes(root / "shards" / f"{index:05d}.csv", lambda fh: fh.write(csv))  # last: marks done
    return len(rows)


def make_videos(cfg: SynthVideosConfig, root: str | Path, *, workers: int | None = 1, progress: bool = True) -> dict:
    """Make (or finish) the clips of ``cfg`` in ``root``; returns the summary written to ``dataset.json``."""
    from tqdm import tqdm

    import painface
    from painface.synth.faces import check_out_dir, run_shards

    cfg.check()
    if cfg.source == "paindiffusion":
        _load_pd(cfg.checkpoint)  # a missing or broken checkpoint fails here, before anything is written
    indexes = cfg.subject_indexes()
    if not indexes:
        raise InputError(f"--split {cfg.split}: none of the {cfg.subjects} subjects is in that split")
    root = Path(root)
    check_out_dir(root, cfg)
    old = read_json_or_none(root / "dataset.json")
    if old is not None and old.get("format_version") != FORMAT_VERSION:
        raise InputError(f"--out {root}: holds a synth videos dataset of format version {old.get('format_version')} "
                         f"(this painface makes version {FORMAT_VERSION}: other identities); choose another folder")
    meta = {"name": "painface synthetic pain videos (BioVid Part A layout)", "format_version": FORMAT_VERSION,
            "config": cfg.to_dict(), "versions": {"painface": painface.__version__, "numpy": np.__version__},
            "complete": False}
    if not (root / "dataset.json").is_file():
        atomic_write_json(root / "dataset.json", meta)
    todo = [i for i in indexes if not (root / "shards" / f"{i:05d}.csv").is_file()]
    per = len(cfg.classes) * cfg.clips * len(cfg.views)
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=cfg.n_clips, desc="synth videos", unit="clip", disable=not progress)
    bar.update(per * (len(indexes) - len(todo)))
    run_shards(_run_subject, [(cfg.to_dict(), i, str(root)) for i in todo], workers, bar)
    bar.close()
    df = pd.concat([pd.read_csv(root / "shards" / f"{i:05d}.csv", sep="\t") for i in indexes], ignore_index=True)
    csv = df.to_csv(index=False, sep="\t").encode()
    atomic_write_bytes(root / "samples.csv", lambda fh: fh.write(csv))
    counts = {"clips": len(df), "samples": int(df.sample_name.nunique()), "subjects": int(df.subject_name.nunique()),
              "by_class": {c: int((df.class_name == c).sum()) for c in CLASSES if c in cfg.classes},
              "subjects_by_split": {s: int(df[df.split == s].subject_name.nunique()) for s in ("train", "val", "test")}}
    meta = {**meta, "complete": True, "counts": counts, "fps": FPS, "clip_frames": CLIP_FRAMES}
    atomic_write_json(root / "dataset.json", meta)
    return meta


def read_json_or_none(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_dataset_json(root: Path) -> dict:
    """``dataset.json`` of a finished ``synth videos`` folder (or an InputError)."""
    try:
        meta = json.loads((Path(root) / "dataset.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{root}: no readable dataset.json ({e})") from None
    if not meta.get("complete"):
        raise InputError(f"{root}: the dataset is not complete; rerun the same synth videos command to finish it")
    return meta
