"""3DPain-style synthetic pain-face datasets: :func:`make_faces` and ``painface synth faces``.

For every identity (balanced over age group x sex x Monk skin tone by
:func:`painface.face.identity.sample_identities`) painface draws one neutral and ``expressions``
expressions (:mod:`painface.synth.expressions`: pain patterns and hard negatives) and renders each from
``views`` camera angles with the whole head. Every view of an identity has its own random light,
background, camera distance and gaze; each image its own small head-pose jitter. Images are framed by
:mod:`painface.face.align` (the same five-point crop :mod:`painface.analyze` applies to real photos).

Layout of ``DIR`` (see the datasheet ``DIR/README.md`` it writes):

* ``images/<identity>/<identity>_v<view>_e<expression>.jpg`` (or ``.png``), ``--size`` square;
* ``heatmaps/<identity>/..._e<expression>.png``: 8-bit grey, the magnitude of the 3D displacement
  between the expression and the same face with every AU at 0 (same pose), rendered from the same
  view: ``value = round(255 min(mm / 10, 1))`` (1 level = 0.039 mm; 255 = 10 mm or more); all zero
  for neutral images;
* ``metadata.csv`` (and ``metadata.parquet`` when pyarrow is installed): one row per image;
* ``landmarks.csv``: per image the crop-pixel positions of the head's named landmarks and the five
  alignment points; ``dataset.json``: config, versions, counts; ``shards/``: per-shard tables (resume).

Work is split in shards of ``shard_size`` identities, each finished by writing its table atomically;
a rerun skips finished shards and redoes the rest, so a killed run resumes with the same result (every
random draw comes from ``(seed, identity, view)``). Files are written to a temporary name and renamed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from painface.errors import InputError
from painface.face import align
from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_NAMES
from painface.io import atomic_write_bytes, atomic_write_json, clean_stale_in

HEATMAP_MAX_MM = 10.0
VIEW_YAWS = (0.0, -35.0, 35.0, -60.0, 60.0, -20.0, 20.0)
"""Camera yaw of views 0, 1, 2, ... (degrees; > 0 toward the subject's left)."""
SPLITS = ("train", "val", "test")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class SynthFacesConfig:
    """What ``painface synth faces`` makes. ``split``: train/val/test fractions of identities."""

    identities: int = 2500
    expressions: int = 10
    negatives: int = 2
    views: int = 3
    size: int = 224
    seed: int = 0
    image_format: str = "jpg"
    jpeg_quality: int = 95
    blur: bool = False
    noise: bool = False
    jpeg_artifacts: bool = False
    shard_size: int = 20
    split: tuple[float, float, float] = (0.7, 0.2, 0.1)

    def check(self) -> None:
        for name, lo, hi in (("identities", 1, 1_000_000), ("expressions", 1, 100), ("views", 1, len(VIEW_YAWS)),
                             ("size", 32, 1024), ("shard_size", 1, 10_000), ("jpeg_quality", 50, 100)):
            val = getattr(self, name)
            if not isinstance(val, int) or isinstance(val, bool) or not lo <= val <= hi:
                raise InputError(f"--{name.replace('_', '-')}: expected an integer in {lo}..{hi}, got {val!r}")
        if not isinstance(self.negatives, int) or not 0 <= self.negatives <= self.expressions:
            raise InputError(f"--negatives: expected 0..{self.expressions} (out of --expressions), "
                             f"got {self.negatives!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed!r}")
        if self.image_format not in ("jpg", "png"):
            raise InputError(f"--format: expected jpg or png, got {self.image_format!r}")
        sp = tuple(float(x) for x in self.split)
        if len(sp) != 3 or min(sp) < 0 or abs(sum(sp) - 1.0) > 1e-6:
            raise InputError(f"split: expected three fractions (train, val, test) summing to 1, got {self.split!r}")

    @property
    def n_images(self) -> int:
        return self.identities * (self.expressions + 1) * self.views

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["split"] = list(self.split)
        return d


def identity_splits(n: int, seed: int, fractions: tuple[float, float, float]) -> np.ndarray:
    """Split name per identity index: a seeded permutation cut at the fractions (identity-disjoint)."""
    order = np.random.default_rng([seed, 0x5917]).permutation(n)
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    out = np.empty(n, dtype=object)
    out[order[:n_train]] = "train"
    out[order[n_train : n_train + n_val]] = "val"
    out[order[n_train + n_val :]] = "test"
    return out


def _camera(rng: np.random.Generator, yaw: float, size_render: int, size: int):
    from painface.face.render import Camera

    distance = float(rng.uniform(650.0, 1000.0))
    # field of view that puts the eyes ~0.21 of the render apart (0.26 of the crop after alignment)
    fov = math.degrees(2 * math.atan(0.5 * 62.0 / (0.26 * size / size_render * distance)))
    return Camera(yaw=yaw + float(rng.uniform(-5, 5)), pitch=float(rng.uniform(-8, 8)), distance=distance, fov=fov,
                  target=(0.0, -32.0, 10.0))


def _encode(img: np.ndarray, fmt: str, quality: int) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpg":
        Image.fromarray(img).save(buf, format="JPEG", quality=quality, subsampling=0)
    else:
        Image.fromarray(img).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def render_identity(cfg: SynthFacesConfig, index: int, ident, split: str, root: Path
                    ) -> tuple[list[dict], list[dict]]:
    """Render and write every image of one identity; returns its metadata and landmark rows."""
    from painface.face.head import align_points, build_head, deform, frame_colors
    from painface.face.render import Lighting, random_lighting, render
    from painface.synth.expressions import identity_expressions
    from painface.synth.scene import background, composite, degrade

    head = build_head(ident)
    exprs = identity_expressions(np.random.default_rng([cfg.seed, index, 1000]), cfg.expressions, cfg.negatives)
    codes = np.stack([e.code for e in exprs])
    still = codes.copy()
    still[:, : len(AU_NAMES)] = 0.0
    size = cfg.size
    r_size = int(round(1.25 * size))
    flat = Lighting(key=0.0, fill=0.0, ambient=1.0, specular=0.0, background=(0.0, 0.0, 0.0),
                    interior=(0.0, 0.0, 0.0))
    lm_names = sorted(head.landmarks)
    rows, lm_rows = [], []
    sub = f"{index:06d}"
    for folder in (root / "images" / sub, root / "heatmaps" / sub):
        folder.mkdir(parents=True, exist_ok=True)
        clean_stale_in(folder)
    for v in range(cfg.views):
        rng = np.random.default_rng([cfg.seed, index, v])
        cam = _camera(rng, VIEW_YAWS[v], r_size, size)
        light = random_lighting(rng, background=(0.0, 0.0, 0.0))
        bg, bg_kind = background(rng, size)
        gaze = np.stack([VIEW_YAWS[v] - codes[:, FEATURE_NAMES.index("head_yaw")] + rng.normal(0, 6, len(codes)),
                         rng.normal(0, 5, len(codes))], 1)
        verts = deform(codes, head, gaze=gaze)
        imgs, alpha = render(verts, head.triangles, frame_colors(codes, head), size=r_size, camera=cam,
                             lighting=light, specular=head.specular, return_alpha=True, cull_back=True)
        rest = deform(still, head, gaze=gaze)
        disp = np.linalg.norm(verts - rest, axis=2) / HEATMAP_MAX_MM  # [F, V]
        grey = np.repeat(np.clip(disp, 0, 1)[..., None], 3, axis=2).astype(np.float32)
        heat = render(verts, head.triangles, grey, size=r_size, camera=cam, lighting=flat, cull_back=True)[..., 0]
        pts = align.project(align_points(head, verts), cam, r_size)  # [F, 5, 2]
        lm_px = align.project(verts[:, [head.landmarks[k] for k in lm_names]], cam, r_size)
        neutral_name = f"images/{sub}/{sub}_v{v}_e00.{cfg.image_format}"
        for e, ex in enumerate(exprs):
            m = align.crop_matrix(pts[e], size)
            rgba = np.dstack([imgs[e], np.round(alpha[e] * 255).astype(np.uint8)])
            w = align.warp(rgba, m, size, fill=(0, 0, 0, 0))  # colour (over black) and coverage in one warp
            crop = composite(w[..., :3], w[..., 3].astype(np.float32) / 255, bg)
            crop, deg = degrade(crop, rng, blur=cfg.blur, noise=cfg.noise, jpeg=cfg.jpeg_artifacts)
            hm = align.warp(heat[e], m, size, fill=(0, 0, 0)) if e > 0 else np.zeros((size, size), np.uint8)
            name = f"images/{sub}/{sub}_v{v}_e{e:02d}.{cfg.image_format}"
            hname = f"heatmaps/{sub}/{sub}_v{v}_e{e:02d}.png"
            data = _encode(crop, cfg.image_format, cfg.jpeg_quality)
            atomic_write_bytes(root / name, lambda fh, d=data: fh.write(d), durable=False, clean=False)
            hdata = _encode(np.ascontiguousarray(hm), "png", 0)
            atomic_write_bytes(root / hname, lambda fh, d=hdata: fh.write(d), durable=False, clean=False)
            code = ex.code
            row = {"file": name, "file_name": name, "identity": index, "identity_seed": ident.seed, "split": split,
                   "expression": e, "kind": ex.kind, "pain": ex.pain, "pattern": ex.pattern,
                   "level": round(ex.level, 4), "view": v, "view_yaw": round(cam.yaw, 3),
                   "view_pitch": round(cam.pitch, 3), "neutral_file": neutral_name, "heatmap_file": hname,
                   **{au: round(float(code[i]), 4) for i, au in enumerate(AU_NAMES)},
                   **{p: round(float(code[len(AU_NAMES) + i]), 3) for i, p in enumerate(POSE_NAMES)},
                   "PSPI": round(ex.pspi, 4), "gaze_yaw": round(float(gaze[e, 0]), 3),
                   "gaze_pitch": round(float(gaze[e, 1]), 3), "age": ident.age, "age_group": ident.age_group,
                   "sex": ident.sex, "skin_tone": ident.skin_tone, "hair_style": ident.hair_style,
                   "hair_color": ident.hair, "iris": ident.iris,
                   **{f"ancestry_{k}": round(float(a), 4)
                      for k, a in zip(("african", "asian", "caucasian"), ident.ancestry, strict=True)},
                   "camera_distance": round(cam.distance, 2), "camera_fov": round(cam.fov, 3),
                   "light_key_x": round(light.key_dir[0], 4), "light_key_y": round(light.key_dir[1], 4),
                   "light_key_z": round(light.key_dir[2], 4), "light_key": round(light.key, 4),
                   "light_fill": round(light.fill, 4), "light_ambient": round(light.ambient, 4),
                   "background": bg_kind, **deg}
            rows.append(row)
            lm_crop = np.c_[lm_px[e], np.ones(len(lm_names))] @ m.T
            p5 = np.c_[pts[e], np.ones(5)] @ m.T
            lm_row = {"file": name}
            for k, (x, y) in zip(lm_names, lm_crop, strict=True):
                lm_row[f"{k}_x"], lm_row[f"{k}_y"] = round(float(x), 2), round(float(y), 2)
            for k, (x, y) in zip(("align_eye_r", "align_eye_l", "align_nose", "align_mouth_r", "align_mouth_l"), p5,
                                 strict=True):
                lm_row[f"{k}_x"], lm_row[f"{k}_y"] = round(float(x), 2), round(float(y), 2)
            lm_rows.append(lm_row)
    return rows, lm_rows


# ---------------------------------------------------------------------------------------------- driver
def _run_shard(args: tuple) -> int:
    """Worker: render shard ``k`` (identities ``lo..hi``) and write its tables; returns images written."""
    cfg_d, k, root = args
    import numba

    from painface.face.identity import identity_plan, make_identity

    numba.set_num_threads(1)
    cfg = SynthFacesConfig(**{**cfg_d, "split": tuple(cfg_d["split"])})
    root = Path(root)
    lo, hi = k * cfg.shard_size, min(cfg.identities, (k + 1) * cfg.shard_size)
    plan = identity_plan(cfg.identities, cfg.seed, lo, hi)  # only this shard's identities are built
    splits = identity_splits(cfg.identities, cfg.seed, cfg.split)
    rows, lms = [], []
    for i, (seed, sex, age_group, tone) in zip(range(lo, hi), plan, strict=True):
        ident = make_identity(seed, sex=sex, age_group=age_group, skin_tone=tone)
        r, lm = render_identity(cfg, i, ident, str(splits[i]), root)
        rows += r
        lms += lm
    lm_csv = pd.DataFrame(lms).to_csv(index=False).encode()
    atomic_write_bytes(root / "shards" / f"shard_{k:05d}_landmarks.csv", lambda fh: fh.write(lm_csv))
    csv = pd.DataFrame(rows).to_csv(index=False).encode()
    atomic_write_bytes(root / "shards" / f"shard_{k:05d}.csv", lambda fh: fh.write(csv))  # last: marks done
    return len(rows)


def check_out_dir(root: Path, cfg) -> None:
    """``root`` must be new, empty, or hold a dataset made with the same config (``cfg.to_dict()``,
    compared with ``dataset.json``'s ``config``); makes ``root/shards``."""
    if root.exists() and not root.is_dir():
        raise InputError(f"--out {root}: exists and is not a folder")
    meta = root / "dataset.json"
    if meta.is_file():
        try:
            old = json.loads(meta.read_text()).get("config", {})
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"--out {root}: dataset.json is unreadable ({e}); choose another folder") from None
        new = cfg.to_dict()
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if diff:
            raise InputError(f"--out {root}: holds a dataset made with another config (differs in {', '.join(diff)}); "
                             "nothing was changed: choose another folder or rerun with the same options")
    elif root.is_dir() and any(root.iterdir()):
        raise InputError(f"--out {root}: folder is not empty and holds no painface dataset; nothing was changed")
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / "shards").mkdir(exist_ok=True)
        probe = root / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InputError(f"--out {root}: cannot write here ({e.strerror or e})") from None


def run_shards(fn, jobs: list, workers: int, bar) -> None:
    """Run ``fn(job)`` for every job (in this process when ``workers`` is 1, else in spawned worker
    processes); each returns how many items it made, added to the progress ``bar``."""
    if workers == 1:
        for job in jobs:
            bar.update(fn(job))
        return
    import multiprocessing

    # spawn, not fork: a parent that has already rendered holds an OpenMP runtime that fork breaks
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for n in pool.map(fn, jobs):
            bar.update(n)


def make_faces(cfg: SynthFacesConfig, root: str | Path, *, workers: int | None = None, progress: bool = True) -> dict:
    """Make (or finish) the dataset ``cfg`` in ``root``; returns the summary written to ``dataset.json``."""
    from tqdm import tqdm

    cfg.check()
    root = Path(root)
    check_out_dir(root, cfg)
    import painface

    versions = {"painface": painface.__version__, "numpy": np.__version__, "pandas": pd.__version__}
    meta = {"name": "painface synthetic pain faces", "format_version": FORMAT_VERSION, "config": cfg.to_dict(),
            "versions": versions, "complete": False}
    old = root / "dataset.json"
    if not old.is_file():
        atomic_write_json(old, meta)
    n_shards = -(-cfg.identities // cfg.shard_size)
    todo = [k for k in range(n_shards) if not (root / "shards" / f"shard_{k:05d}.csv").is_file()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=cfg.n_images, desc="synth faces", unit="img", disable=not progress)
    bar.update(cfg.n_images * (n_shards - len(todo)) // n_shards)
    run_shards(_run_shard, [(cfg.to_dict(), k, str(root)) for k in todo], workers, bar)
    bar.close()
    return finish(cfg, root, meta)


def finish(cfg: SynthFacesConfig, root: Path, meta: dict) -> dict:
    """Join the shard tables into ``metadata.csv`` (+ parquet), ``landmarks.csv``, ``dataset.json``, README."""
    from painface.synth.datasheet import datasheet

    n_shards = -(-cfg.identities // cfg.shard_size)
    tables = [pd.read_csv(root / "shards" / f"shard_{k:05d}.csv") for k in range(n_shards)]
    df = pd.concat(tables, ignore_index=True)
    lms = pd.concat([pd.read_csv(root / "shards" / f"shard_{k:05d}_landmarks.csv") for k in range(n_shards)],
                    ignore_index=True)
    csv = df.to_csv(index=False).encode()
    atomic_write_bytes(root / "metadata.csv", lambda fh: fh.write(csv))
    lm_csv = lms.to_csv(index=False).encode()
    atomic_write_bytes(root / "landmarks.csv", lambda fh: fh.write(lm_csv))
    parquet = False
    try:
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(root / "metadata.parquet", lambda fh: fh.write(buf.getvalue()))
        parquet = True
    except ImportError:
        pass
    counts = {"images": len(df), "identities": int(df.identity.nunique()),
              "by_split": {s: int((df.split == s).sum()) for s in SPLITS},
              "identities_by_split": {s: int(df[df.split == s].identity.nunique()) for s in SPLITS},
              "by_kind": {str(k): int(v) for k, v in df.kind.value_counts().items()},
              "pspi_histogram": np.histogram(df.PSPI, bins=np.arange(18) - 0.5)[0].tolist()}
    meta = {**meta, "complete": True, "counts": counts, "metadata_parquet": parquet,
            "heatmap_units": f"8-bit grey, 255 = {HEATMAP_MAX_MM:g} mm of 3D displacement or more"}
    atomic_write_json(root / "dataset.json", meta)
    text = datasheet(cfg, counts).encode()
    atomic_write_bytes(root / "README.md", lambda fh: fh.write(text))
    return meta
