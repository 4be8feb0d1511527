"""A population of virtual subjects written as a corpus (``painface simulate``).

Subject ``i`` of a corpus with seed ``s`` draws everything from ``numpy.random.default_rng([s, i])``, so
a corpus is deterministic for its seed, subjects can be made in any order or in parallel, and a
rerun after a kill regenerates only what is missing: each subject file records the hash of what
made it, and meta.json, written last, is what marks the corpus complete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.data.corpus import (
    FORMAT_VERSION,
    CorpusError,
    SubjectData,
    atomic_write_json,
    make_meta,
    read_npz,
    write_subject,
)
from painface.errors import InputError
from painface.face.code import FEATURE_NAMES
from painface.subjects.protocols import HeatProtocol, Stimulus, biovid_heat, normalized_to_celsius
from painface.subjects.simulate import simulate_face
from painface.subjects.sustained import BLOCK_KINDS, MixedProtocol, mixed_blocks
from painface.subjects.traits import SimConfig, sample_traits

GENERATOR = "painface.subjects"
GENERATOR_VERSION = 2  # 2: sustained stimuli (MixedProtocol), adaptation and display bursts, a test split
PAPER_SPLIT = (61, 26)  # PainDiffusion: 61 training / 26 held-out subjects of BioVid's 87


def split_plan(n_subjects: int, seed: int) -> list[tuple[str, str | None]]:
    """(split, fixed sex or None) per subject: the paper's held-out share (26 of 87), chosen by the seed and
    balanced by sex as the paper's validation set was, divided into ``val`` (choosing settings: guidance,
    checkpoints, ablations) and ``test`` (reporting, touched once), each half women, half men."""
    if n_subjects < 1:
        raise InputError(f"subjects: need at least 1, got {n_subjects}")
    n_held = int(round(n_subjects * PAPER_SPLIT[1] / sum(PAPER_SPLIT))) if n_subjects > 1 else 0
    rng = np.random.default_rng([seed, 2**31 - 1])
    held = rng.permutation(n_subjects)[:n_held]
    plan: list[tuple[str, str | None]] = [("train", None)] * n_subjects
    for rank, i in enumerate(sorted(held)):  # ranks 0,1 -> val (f, m); 2,3 -> test (f, m); ...
        plan[i] = ("val" if rank % 4 < 2 else "test", "female" if rank % 2 == 0 else "male")
    return plan


def subject_id(i: int) -> str:
    return f"vs{i + 1:03d}"


def recipe_hash(seed: int, index: int, split: tuple[str, str | None], cfg: SimConfig, protocol: HeatProtocol,
                mixed: MixedProtocol | None = None) -> str:
    """A short hash of everything that determines subject ``index``'s arrays."""
    recipe = {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "format": FORMAT_VERSION,
        "seed": seed,
        "index": index,
        "split": split,
        "config": cfg.to_dict(),
        "protocol": dataclasses.asdict(protocol),
        "mixed": None if mixed is None else dataclasses.asdict(mixed),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def session(traits: Any, rng: np.random.Generator, protocol: HeatProtocol,
            mixed: MixedProtocol | None = None) -> tuple[Stimulus, np.ndarray]:
    """The subject's stimulus: a BioVid heat session, then (with ``mixed``) the sustained and movement blocks
    of :class:`MixedProtocol` (level 0, trial -1 there). Returns (stimulus, block code per frame)."""
    stim = biovid_heat(traits.threshold_c, traits.tolerance_c, rng, protocol)
    block = np.full(stim.frames, BLOCK_KINDS.index("biovid"), np.int8)
    if mixed is None:
        return stim, block
    if mixed.fps != protocol.fps:
        raise InputError(f"mixed protocol fps {mixed.fps} differs from the heat protocol's {protocol.fps}")
    extra, code = mixed_blocks(rng, mixed)
    temp = normalized_to_celsius(extra, protocol.baseline_c, traits.tolerance_c)
    assert stim.temperature is not None and stim.level is not None and stim.trial is not None
    return Stimulus(
        fps=stim.fps,
        normalized=np.concatenate([stim.normalized, extra]),
        temperature=np.concatenate([stim.temperature, temp]),
        level=np.concatenate([stim.level, np.zeros(extra.size, np.int8)]),
        trial=np.concatenate([stim.trial, np.full(extra.size, -1, np.int16)]),
        onsets=stim.onsets,
        trial_levels=stim.trial_levels,
    ), np.concatenate([block, code])


def make_subject(
    seed: int, index: int, split: tuple[str, str | None], cfg: SimConfig, protocol: HeatProtocol,
    mixed: MixedProtocol | None = None,
) -> SubjectData:
    """Generate subject ``index`` (traits, session, face) in memory. ``expressiveness`` is the mean PSPI over
    the BioVid heat session alone, so it means the same whatever else the session holds."""
    rng = np.random.default_rng([seed, index])
    traits = sample_traits(rng, cfg, sex=split[1])
    stim, block = session(traits, rng, protocol, mixed)
    face, ps = simulate_face(traits, stim, cfg, rng, protocol.baseline_c)
    heat = block == BLOCK_KINDS.index("biovid")
    info = {
        "id": subject_id(index),
        "split": split[0],
        "expressiveness": round(float(ps[heat].mean()), 4),
        "emotion": traits.emotion,
        "pattern": traits.pattern,
        "frames": int(face.shape[0]),
        "heat_frames": int(heat.sum()),
        "baseline_c": protocol.baseline_c,
        "levels_c": [round(float(t), 3) for t in np.linspace(traits.threshold_c, traits.tolerance_c, protocol.levels)],
        **traits.to_dict(),
    }
    extras = {"temperature": stim.temperature, "level": stim.level, "trial": stim.trial, "block": block}
    return SubjectData(info=info, face=face, stimulus=stim.normalized, pspi=ps, extras=extras)


def _build_one(job: tuple[Path, int, int, tuple[str, str | None], dict, dict, dict | None]) -> dict[str, Any]:
    """Make (or reuse) one subject file; return its meta.json entry."""
    out, seed, index, split, cfg_d, proto_d, mixed_d = job
    cfg, protocol = SimConfig.from_dict(cfg_d), HeatProtocol(**proto_d)
    mixed = None if mixed_d is None else MixedProtocol(**{**mixed_d, "elbow_speeds": tuple(mixed_d["elbow_speeds"])})
    path = out / "subjects" / f"{subject_id(index)}.npz"
    want = recipe_hash(seed, index, split, cfg, protocol, mixed)
    if path.is_file():
        try:
            old = read_npz(path)
            if str(old.get("recipe_hash")) == want and "info_json" in old:
                return json.loads(str(old["info_json"]))
        except CorpusError:
            pass  # unreadable (e.g. from an older, killed writer): regenerate below
    sub = make_subject(seed, index, split, cfg, protocol, mixed)
    write_subject(path, sub, FEATURE_NAMES, recipe_hash=want, info_json=json.dumps(sub.info))
    return sub.info


def simulate_corpus(
    out: str | os.PathLike,
    *,
    n_subjects: int = 87,
    seed: int = 0,
    cfg: SimConfig | None = None,
    protocol: HeatProtocol | None = None,
    mixed: MixedProtocol | None | str = "default",
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a corpus of ``n_subjects`` virtual subjects to ``out``; returns the folder. Each session is the
    BioVid heat protocol followed by ``mixed`` (default: :class:`MixedProtocol`'s defaults; None: BioVid only).

    Existing subject files made by the same recipe are kept (a rerun completes a killed run);
    meta.json is removed first and written last, so a folder with meta.json is complete.
    """
    cfg = cfg or SimConfig()
    cfg.validate()
    protocol = protocol or HeatProtocol()
    protocol.validate()
    if isinstance(mixed, str):
        if mixed != "default":
            raise InputError(f"mixed: {mixed!r}; expected a MixedProtocol, None or 'default'")
        mixed = MixedProtocol(fps=protocol.fps)
    if mixed is not None:
        mixed.validate()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    try:
        (out / "subjects").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create the folder: {e}") from None
    (out / "meta.json").unlink(missing_ok=True)
    for stale in (out / "subjects").glob(".*.part"):
        stale.unlink(missing_ok=True)

    plan = split_plan(n_subjects, seed)
    mixed_d = None if mixed is None else dataclasses.asdict(mixed)
    jobs = [(out, seed, i, plan[i], cfg.to_dict(), dataclasses.asdict(protocol), mixed_d) for i in range(n_subjects)]
    workers = max(1, min(workers or (os.cpu_count() or 1), n_subjects))
    bar = tqdm(total=n_subjects, desc="simulate", unit="subject", disable=not progress)
    entries: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            entries.append(_build_one(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for entry in pool.map(_build_one, jobs):
                entries.append(entry)
                bar.update()
    bar.close()

    meta = make_meta(
        fps=protocol.fps,
        feature_names=FEATURE_NAMES,
        stimulus_units="normalized",
        stimulus_description="0 = baseline (protocol.baseline_c), 1 = the subject's tolerance_c; "
        "temperature (°C) = baseline_c + s * (tolerance_c - baseline_c)",
        generator={
            "name": GENERATOR,
            "version": GENERATOR_VERSION,
            "seed": seed,
            "n_subjects": n_subjects,
            "config": cfg.to_dict(),
        },
        protocol={"name": "biovid_heat" if mixed is None else "biovid_heat+mixed", **dataclasses.asdict(protocol),
                  "mixed": mixed_d},
        split={sp: sum(e["split"] == sp for e in entries) for sp in ("train", "val", "test")},
        subjects=entries,
    )
    atomic_write_json(out / "meta.json", meta)
    return out
