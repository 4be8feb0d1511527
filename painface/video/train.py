"""``painface train-video``: train a video pain classifier and test it on held-out subjects.

One command runs the protocol of Nasimzada et al. on what is at hand:

* ``--protocol synthetic`` (default): train on the ``train`` subjects of a ``synth videos`` folder
  (``--data``);
* ``--protocol real``: train on the training subjects of a BioVid Part A folder (``--real``);
* ``--protocol mixed``: synthetic training subjects plus ``--real-subjects N`` real training subjects.

``--extra-data`` adds every clip of more ``synth videos`` folders to the synthetic training clips: other virtual
populations (another ``--seed``), never the people or faces held out.

Held out, always: the ``val`` and ``test`` subjects of ``--data`` (the simulator's split), the test subjects of
``--real`` (a seeded ``--real-test-share`` of its subjects, never used for training) and every clip of
each ``--test`` folder (e.g. PainDiffusion-made clips of the held-out subjects). Metrics per test set
and per view (:mod:`painface.video.metrics`); F1 thresholds come from the training predictions; the
model is the one after the last epoch (nothing is picked on a test set).

Prepared inputs (grey clips, frozen ViTPain features, face readings, or frames for the code encoder's reader) are
cached per folder and encoder in ``--cache`` so that the second task or a rerun skips decoding.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from painface.errors import InputError
from painface.face.code import FEATURE_NAMES
from painface.video.biovid_a import frame_indexes, read_samples, subject_split
from painface.video.metrics import binary_metrics, multiclass_metrics
from painface.video.model import VideoConfig, build, encode_clips, join_parts, save
from painface.video.reader import CODE_FEATURES

DEFAULT_EPOCHS = {"c3d": 30, "gru": 60, "stats": 200}
DEFAULT_LR = {"c3d": 2e-3, "gru": 3e-3, "stats": 1e-2}


def prepared(root: Path, cfg: VideoConfig, *, views: tuple[str, ...] | None, cache: Path | None,
             progress: bool) -> tuple[np.ndarray, pd.DataFrame, list[str]]:
    """Every clip of ``root`` as the encoder's input ``[N, ...]``, its rows, and the clips skipped (unreadable, or
    no face in them). Cached in ``cache`` under a key of the folder's table, the encoder and how it reads."""
    if "+" in cfg.encoder:  # side by side: each part prepared (and cached) on its own, as encode_clips does
        import dataclasses

        return join_parts([prepared(root, dataclasses.replace(cfg, encoder=e), views=views, cache=cache,
                                    progress=progress) for e in cfg.encoder.split("+")])
    df = read_samples(root, views=views)
    key = None
    if cache is not None:
        table = root / "samples.csv"
        stamp = f"{table.stat().st_mtime_ns}:{table.stat().st_size}" if table.is_file() else str(len(df))
        parts = [str(root.resolve()), stamp, views, cfg.encoder, cfg.frames, cfg.stride, cfg.read_size]
        if cfg.framing != "none":
            parts += [cfg.framing, cfg.input_size]
        if cfg.encoder == "vit":
            from painface.video.model import VITPAIN, sha256

            parts.append(sha256(VITPAIN))  # features of another ViTPain are not these
        spec = json.dumps(parts)
        key = cache / f"{hashlib.sha256(spec.encode()).hexdigest()[:20]}.npz"
        if key.is_file():
            with np.load(key, allow_pickle=False) as z:
                keep = z["rows"]
                x, skipped = z["x"], [str(s) for s in z["skipped"]]
            return x, df.iloc[keep].reset_index(drop=True), skipped
    df = df.assign(_row=np.arange(len(df)))
    x, kept, skipped = encode_clips(df, cfg, progress)
    if not len(kept):
        raise InputError(f"{root}: none of its {len(df)} clips could be read")
    if key is not None:
        from painface.io import atomic_write_bytes

        arrays = {"x": x, "rows": kept._row.to_numpy(), "skipped": np.array(skipped, dtype=str)}
        atomic_write_bytes(key, lambda fh: np.savez(fh, **arrays))
    return x, kept.drop(columns="_row"), skipped


def task_rows(df: pd.DataFrame, cfg: VideoConfig) -> tuple[np.ndarray, np.ndarray]:
    """Row mask of the task's classes and their targets (binary: 0 = BL1, 1 = PA4; 5 classes: class_id)."""
    keep = df.class_name.isin(cfg.classes).to_numpy()
    y = np.array([cfg.classes.index(c) for c in df.class_name[keep]], int)
    return keep, y


def fit(cfg: VideoConfig, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, batch: int, seed: int,
        progress: bool = True, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """Train the model of ``cfg`` (or ``model``, built elsewhere) on inputs ``x`` [N, ...] and targets ``y`` [N]
    (AdamW, cosine schedule, c3d inputs flipped left-right at random)."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build(cfg) if model is None else model
    if hasattr(model, "fit_norm"):
        model.fit_norm(torch.from_numpy(x).float())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.02)
    steps = epochs * -(-len(x) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    model.train()
    bar = tqdm(total=steps, desc=f"train {cfg.encoder} {cfg.task}", unit="step", disable=not progress)
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), -(-len(x) // batch)):
            xb = xt[idx].float()
            if cfg.encoder == "c3d":
                flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
                xb[flip] = xb[flip].flip(-1)
            out = model(xb)
            if cfg.outputs == 1:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 0], yt[idx].float())
            else:
                loss = torch.nn.functional.cross_entropy(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    return model


def exact_codes(root: Path, df: pd.DataFrame, frames: int, stride: int) -> np.ndarray:
    """``[N, frames, 20]``: the exact face code (``codes_file`` beside each synthetic clip) at the frames the
    classifiers read."""
    out, seen = [], {}
    for f in df.codes_file:
        if f not in seen:
            try:
                with np.load(Path(root) / f) as z:
                    code = z["face"]
            except (OSError, KeyError, ValueError) as e:
                raise InputError(f"{Path(root) / f}: cannot read the clip's face code ({e})") from None
            seen[f] = code[frame_indexes(len(code), frames, stride)].astype(np.float32)
        out.append(seen[f])
    return np.stack(out)


def fit_code(cfg: VideoConfig, x: np.ndarray, y: np.ndarray, codes: np.ndarray, groups: np.ndarray, *,
             epochs: int, lr: float, batch: int, seed: int, reader_steps: int, reader_folds: int,
             reader_init: Path | None = None, keys: np.ndarray | None = None, progress: bool = True, log=print
             ) -> tuple[torch.nn.Module, np.ndarray, list[float]]:
    """The ``code`` encoder: fine-tune face-code readers, then the head on codes the readers read.

    ``x`` uint8 frames ``[N, T, S, S, 3]``; ``codes`` ``[N, T, 20]`` exact codes (NaN rows: clips without one,
    e.g. real footage); ``groups`` ``[N]`` subjects. The head must learn from codes read by a reader that never
    saw those clips (codes a reader read on its own training frames are cleaner than on new people), so the
    subjects with codes are cut into ``reader_folds`` folds and each fold is read by a reader fine-tuned on the
    other folds (cross-fitting); the reader kept in the model is fine-tuned on all of them and reads the clips
    without codes. Returns the model, the readings the head learned from ``[N, T, 20]`` and the readers' mean
    absolute error per number on the clips they did not train on. ``reader_init``: the ViTPain checkpoint the
    readers start from (default: the shipped one). A person-calibrated ``cfg`` needs ``keys`` (person and view of
    each clip): the head learns from the readings minus each person's medians; the readings returned are raw."""
    import copy

    from painface.video.model import VITPAIN, CodeModel, make_head
    from painface.video.reader import from_vitpain, train_reader

    labelled = np.isfinite(codes).all(axis=(1, 2))
    if not labelled.any():
        raise InputError("--encoder code: needs synthetic training clips (their exact face codes train the reader)")
    subjects = np.array(sorted(set(groups[labelled])))
    if reader_folds > 1 and len(subjects) < reader_folds:
        raise InputError(f"--reader-folds {reader_folds}: only {len(subjects)} training subjects have face codes")
    order = np.random.default_rng([seed, 0xC0DE]).permutation(len(subjects))
    fold_of = {subjects[i]: k % max(1, reader_folds) for k, i in enumerate(order)}
    fold = np.array([fold_of.get(g, -1) for g in groups])
    read = np.zeros(codes.shape, np.float32)
    torch.manual_seed(seed)  # the new head's start does not depend on what ran before
    start = from_vitpain(reader_init or VITPAIN)  # read once: every reader starts from the same weights

    def fine_tune(rows: np.ndarray, name: str):
        frames = x[rows].reshape(-1, *x.shape[2:])
        return train_reader(copy.deepcopy(start), frames, codes[rows].reshape(-1, codes.shape[-1]),
                            steps=reader_steps, batch=batch, seed=seed, progress=progress, desc=name)

    if reader_folds > 1:
        for k in range(reader_folds):
            r = fine_tune(labelled & (fold != k), f"reader {k + 1}/{reader_folds + 1}")
            read[fold == k] = r.read(x[fold == k]).numpy()
    reader = fine_tune(labelled, f"reader {reader_folds + 1}/{reader_folds + 1}" if reader_folds > 1 else "reader")
    rest = ~labelled if reader_folds > 1 else np.ones(len(x), bool)
    read[rest] = reader.read(x[rest]).numpy()
    err = np.abs(read[labelled] - codes[labelled]).mean(axis=(0, 1)).tolist() if reader_folds > 1 else []
    if err:
        log("face-code reader, out-of-fold mean absolute error per number: " + ", ".join(f"{e:.2f}" for e in err))
    head_in = read
    if cfg.calibrate == "person":
        from painface.video.model import calibrate_person

        head_in = calibrate_person(read, keys)
    torch.manual_seed(seed)
    head = fit(cfg, head_in, y, epochs=epochs, lr=lr, batch=batch, seed=seed, progress=progress,
               model=make_head(cfg))
    return CodeModel(reader, head).round_reader().eval(), read, err


@torch.no_grad()
def scores(model: torch.nn.Module, cfg: VideoConfig, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """Binary: P(PA4) ``[N]``; 5 classes: probabilities ``[N, 5]``. ``x``: the model's input (for a
    person-calibrated model use :func:`model_scores`)."""
    model.eval()
    out = torch.cat([model(torch.from_numpy(x[i : i + batch]).float()) for i in range(0, len(x), batch)])
    return torch.sigmoid(out[:, 0]).numpy() if cfg.outputs == 1 else torch.softmax(out, 1).numpy()


@torch.no_grad()
def model_scores(model: torch.nn.Module, cfg: VideoConfig, x: np.ndarray, keys: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores of clips ``x`` (the encoder's input) and, for the code encoder, the face codes read ``[N, T, 20]``
    (else None). A person-calibrated model (``cfg.calibrate == "person"``) needs each clip's ``keys``
    (:func:`painface.video.model.person_keys`): its head reads the readings minus the person's medians."""
    from painface.video.model import calibrate_person

    readings = model.reader.read(x).numpy() if cfg.encoder == "code" else None
    head_in = readings if readings is not None else x
    head = model.head if cfg.encoder == "code" else model
    if cfg.calibrate == "person":
        if keys is None:
            raise InputError("a person-calibrated model needs to know whose each clip is (subject and view)")
        head_in = calibrate_person(head_in, keys)
    return scores(head, cfg, head_in), readings


def evaluate(cfg: VideoConfig, y: np.ndarray, s: np.ndarray, views: np.ndarray, threshold: float | None
             ) -> dict[str, dict[str, float]]:
    """Metrics on all clips and per view."""
    def one(m: np.ndarray) -> dict[str, float]:
        return binary_metrics(y[m], s[m], threshold) if cfg.outputs == 1 else multiclass_metrics(y[m], s[m])

    out = {"all": one(np.ones(len(y), bool))}
    for v in sorted(set(views)):
        out[str(v)] = one(views == v)
    return out


def _dataset_config(root: Path) -> dict | None:
    """The ``synth videos`` config a folder was made with (None for other folders)."""
    try:
        return json.loads((Path(root) / "dataset.json").read_text()).get("config")
    except (OSError, json.JSONDecodeError):
        return None


def _identity_seeds(df: pd.DataFrame, what: str) -> set[int]:
    """The faces (``identity_seed``) of a synth videos table; a table without them (or with blanks) is refused,
    since then nobody can tell whether its faces are held-out ones."""
    seeds = pd.to_numeric(df.get("identity_seed", pd.Series([None] * len(df), dtype=object)), errors="coerce")
    if len(df) and seeds.isna().any():
        raise InputError(f"{what}: samples.csv lacks an integer identity_seed for some clips (needed to check that its "
                         "faces are not the held-out ones)")
    return set(seeds.astype(int).tolist())


def _check_extra(extra: list[Path], others: list[Path], held: list[pd.DataFrame], *, views: tuple[str, ...] | None,
                 codes: bool) -> list[Path]:
    """The ``--extra-data`` folders: each a complete ``synth videos`` folder of another virtual population (another
    seed) than ``others`` (``--data``, ``--test``) and than each other, none of whose faces (``identity_seed``) is a
    held-out clip's (``held``), with the ``views`` asked for and, for the code encoder, the clips' face codes; refused
    otherwise, before anything is decoded."""
    from painface.synth.videos import FORMAT_VERSION

    seen = {Path(r).resolve(): "--data/--test" for r in others}
    seeds = {c.get("seed"): f"{r}" for r in others if (c := _dataset_config(r))}
    faces = set()
    for df in held:
        if "identity_seed" in df.columns:
            faces |= set(pd.to_numeric(df.identity_seed, errors="coerce").dropna().astype(int).tolist())
    for root in extra:
        what = f"--extra-data {root}"
        try:
            meta = json.loads((Path(root) / "dataset.json").read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        if not str(meta.get("name", "")).startswith("painface synthetic pain videos") or "config" not in meta:
            raise InputError(f"{what}: not a painface synth videos folder (its dataset.json is missing or another "
                             "dataset's)")
        if meta.get("format_version") != FORMAT_VERSION or not meta.get("complete"):
            raise InputError(f"{what}: an unfinished dataset or one of another format (version "
                             f"{meta.get('format_version')}, complete {meta.get('complete')}; this painface makes "
                             f"version {FORMAT_VERSION}); finish it with the same synth videos command or film anew")
        if Path(root).resolve() in seen:
            raise InputError(f"{what}: named twice, or also --data or --test")
        seen[Path(root).resolve()] = what
        seed = meta["config"].get("seed")
        if seed in seeds:
            raise InputError(f"{what}: the same virtual population (--seed {seed}) as {seeds[seed]}: the same people "
                             "would train and be held out, or train twice; film another --seed")
        seeds[seed] = str(root)
        try:
            df = read_samples(root, views=views)
        except InputError as e:
            raise InputError(f"{what}: {e}") from None
        if codes and "codes_file" not in df.columns:
            raise InputError(f"{what}: samples.csv has no codes_file column (the code encoder trains on face codes)")
        shared = faces & _identity_seeds(df, what)
        if shared:
            raise InputError(f"{what}: {len(shared)} of its faces (identity_seed) are held-out faces "
                             f"of --data or --test (e.g. {sorted(shared)[:3]})")
    return list(extra)


def _check(args: argparse.Namespace) -> None:
    if args.protocol not in ("synthetic", "real", "mixed"):
        raise InputError(f"--protocol: expected synthetic, real or mixed, got {args.protocol!r}")
    if args.protocol in ("synthetic", "mixed") and args.data is None:
        raise InputError(f"--protocol {args.protocol}: needs --data (a synth videos folder)")
    if args.protocol in ("real", "mixed") and args.real is None:
        raise InputError(f"--protocol {args.protocol}: needs --real (a BioVid Part A folder)")
    if args.protocol == "mixed" and args.real_subjects < 1:
        raise InputError(f"--real-subjects: expected >= 1 for --protocol mixed, got {args.real_subjects}")
    if not 0 < args.real_test_share < 1:
        raise InputError(f"--real-test-share: expected a share in (0, 1), got {args.real_test_share}")
    for name, lo, hi in (("epochs", 1, 10_000), ("batch", 1, 4096), ("threads", 1, 256), ("reader_steps", 1, 10**6),
                         ("reader_folds", 1, 10)):
        if getattr(args, name) is not None and not lo <= getattr(args, name) <= hi:
            raise InputError(f"--{name.replace('_', '-')}: expected {lo}..{hi}, got {getattr(args, name)}")
    if args.lr is not None and not (np.isfinite(args.lr) and 0 < args.lr < 1):
        raise InputError(f"--lr: expected a learning rate in (0, 1), got {args.lr}")
    if args.encoder == "code" and args.protocol == "real":
        raise InputError("--encoder code: needs synthetic training clips (their exact face codes train the reader); "
                         "use --protocol synthetic or mixed")
    if args.extra_data and args.protocol == "real":
        raise InputError("--extra-data: synthetic training clips; not with --protocol real")
    if args.readings is not None and args.encoder != "code":
        raise InputError(f"--readings: only the code encoder reads face codes (got --encoder {args.encoder})")
    if args.readings is not None and args.readings.suffix != ".npz":
        raise InputError(f"--readings {args.readings}: expected a .npz file name")
    if args.reader_init is not None:
        if args.encoder != "code":
            raise InputError(f"--reader-init: only for --encoder code (got --encoder {args.encoder})")
        if args.reader_init.suffix != ".safetensors" or not args.reader_init.is_file():
            raise InputError(f"--reader-init {args.reader_init}: expected a ViTPain .safetensors file")
        from painface.assess.model import load as load_vitpain

        try:
            vit, _ = load_vitpain(args.reader_init)
        except InputError as e:
            raise InputError(f"--reader-init {e}") from None
        if vit.config.size != 96:
            raise InputError(f"--reader-init {args.reader_init}: a ViTPain of {vit.config.size} px; the code "
                             "encoder reads 96 px frames")
    if args.out.suffix != ".safetensors":
        raise InputError(f"--out {args.out}: expected a .safetensors file name")


def train_from_args(args: argparse.Namespace) -> int:
    """``painface train-video`` with its parsed options (painface/commands/train_video.py)."""
    _check(args)
    torch.set_num_threads(args.threads)
    cfg = VideoConfig(encoder=args.encoder, task=args.task, frames=args.frames, stride=args.stride, size=args.size,
                      width=args.width, head=args.head, framing=args.framing, calibrate=args.calibrate)
    cfg.check()
    kind = "c3d" if cfg.encoder == "c3d" else cfg.head
    args.epochs = args.epochs or DEFAULT_EPOCHS[kind]
    args.lr = args.lr or DEFAULT_LR[kind]
    views = tuple(args.views.split(",")) if args.views else None
    progress = not args.quiet
    train_x, train_y, train_groups, train_codes, tests, skipped = [], [], [], [], {}, {}
    train_views = []
    t0 = time.time()

    def split_of(df: pd.DataFrame, real: bool) -> np.ndarray:
        if not real and "split" in df.columns:
            return (df.split != "train").to_numpy()  # held out: the simulator's val and test subjects
        held = subject_split(df.subject_name, args.real_test_share, args.seed)
        return df.subject_name.isin(held).to_numpy()

    extra_roots = []
    if args.extra_data:  # checked before anything is decoded
        others = [r for r in (args.data, *args.test) if r is not None]
        held = [read_samples(r) for r in args.test]
        if args.data is not None:
            d = read_samples(args.data)
            held.append(d[d.split != "train"] if "split" in d.columns else d)
        extra_roots = _check_extra(args.extra_data, others, held, views=views, codes=cfg.encoder == "code")
    sources = []
    if args.data is not None:
        sources.append(("synthetic", args.data, False, views))
    if args.real is not None:
        sources.append(("real", args.real, True, None))
    for name, root, real, vw in sources:
        x, df, sk = prepared(root, cfg, views=vw, cache=args.cache, progress=progress)
        skipped[name] = sk
        keep, y = task_rows(df, cfg)
        x, df = x[keep], df[keep].reset_index(drop=True)
        test = split_of(df, real)
        tests[name] = (x[test], y[test], df[test].reset_index(drop=True))
        use = args.protocol == "mixed" or args.protocol == name
        if use:
            tr = ~test
            if real and args.protocol == "mixed":
                subs = sorted(set(df.subject_name[tr]))
                if args.real_subjects > len(subs):
                    raise InputError(f"--real-subjects {args.real_subjects}: only {len(subs)} real training subjects")
                pick = set(np.random.default_rng([args.seed, 7]).permutation(subs)[: args.real_subjects].tolist())
                tr &= df.subject_name.isin(pick).to_numpy()
            train_x.append(x[tr])
            train_y.append(y[tr])
            train_groups.append(df.subject_name[tr].to_numpy().astype(str) if not real else
                                np.array([f"real:{s}" for s in df.subject_name[tr]], dtype=str))
            train_views.append(df.view[tr].to_numpy().astype(str))
            if cfg.encoder == "code":
                has = not real and "codes_file" in df.columns
                train_codes.append(exact_codes(root, df[tr], cfg.frames, cfg.stride) if has else
                                   np.full((int(tr.sum()), cfg.frames, CODE_FEATURES), np.nan))
    for root in args.test:
        x, df, sk = prepared(root, cfg, views=views, cache=args.cache, progress=progress)
        skipped[str(root)] = sk
        keep, y = task_rows(df, cfg)
        tests[str(root)] = (x[keep], y, df[keep].reset_index(drop=True))
    for k, root in enumerate(extra_roots):
        x, df, sk = prepared(root, cfg, views=views, cache=args.cache, progress=progress)
        skipped[str(root)] = sk
        keep, y = task_rows(df, cfg)
        x, df = x[keep], df[keep].reset_index(drop=True)
        train_x.append(x)
        train_y.append(y)
        # another population's vs001 is another person: keep the subjects apart (cross-fitting folds)
        train_groups.append(np.array([f"extra{k + 1}:{s}" for s in df.subject_name], dtype=str))
        train_views.append(df.view.to_numpy().astype(str))
        if cfg.encoder == "code":
            train_codes.append(exact_codes(root, df, cfg.frames, cfg.stride))
    x_tr, y_tr = np.concatenate(train_x), np.concatenate(train_y)
    if len(set(y_tr.tolist())) < len(cfg.classes):
        raise InputError(f"training clips hold only the classes {sorted(set(y_tr.tolist()))} of {cfg.classes}")
    t_load = time.time() - t0
    extra: dict = {}
    from painface.video.model import calibrate_person, check_person_clips, person_keys

    keys_tr = person_keys(np.concatenate(train_groups), np.concatenate(train_views))
    if cfg.calibrate == "person":  # every person needs enough clips: checked before any training
        for name, keys in [("training clips", keys_tr)] + [(n, person_keys(t[2].subject_name, t[2].view))
                                                            for n, t in tests.items() if len(t[1])]:
            try:
                check_person_clips(keys)
            except InputError as e:
                raise InputError(f"--calibrate person, {name}: {e}") from None
    if cfg.encoder == "code":
        from painface.video.model import VITPAIN, sha256

        init = args.reader_init or VITPAIN
        init_sha = sha256(init)  # the file the readers are about to start from
        model, readings, err = fit_code(cfg, x_tr, y_tr, np.concatenate(train_codes), np.concatenate(train_groups),
                                        epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed,
                                        reader_steps=args.reader_steps, reader_folds=args.reader_folds,
                                        reader_init=args.reader_init, keys=keys_tr, progress=progress)
        head_in = calibrate_person(readings, keys_tr) if cfg.calibrate == "person" else readings
        s_tr = scores(model.head, cfg, head_in)  # the threshold from the readings the head learned from
        extra = {"reader_steps": args.reader_steps, "reader_folds": args.reader_folds,
                 "reader_init": "shipped ViTPain" if args.reader_init is None else str(init),
                 "reader_init_sha256": init_sha,
                 "reader_out_of_fold_mae": dict(zip(FEATURE_NAMES, (round(e, 4) for e in err), strict=False))}
    else:
        x_in = calibrate_person(x_tr, keys_tr) if cfg.calibrate == "person" else x_tr
        model = fit(cfg, x_in, y_tr, epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed,
                    progress=progress)
        s_tr = scores(model, cfg, x_in)
    t_train = time.time() - t0 - t_load
    from painface.assess.metrics import tune_threshold

    threshold = tune_threshold(y_tr, s_tr) if cfg.outputs == 1 else None
    report, rows = {}, []
    saved = {"train/readings": readings, "train/y": y_tr, "train/subject": np.concatenate(train_groups),
             "train/view": np.concatenate(train_views)} if cfg.encoder == "code" else {}
    for k, (name, (x, y, df)) in enumerate(tests.items()):
        if not len(y):
            continue
        s, r = model_scores(model, cfg, x, person_keys(df.subject_name, df.view))
        if r is not None:  # the code encoder's readings, kept for --readings
            saved.update({f"test{k}/readings": r, f"test{k}/y": y, f"test{k}/name": np.array(name),
                          **{f"test{k}/{c}": df[c].to_numpy().astype(str)
                             for c in ("subject_name", "sample_name", "view")}})
        report[name] = evaluate(cfg, y, s, df.view.to_numpy(), threshold)
        cols = {"score": s} if cfg.outputs == 1 else {f"p_{c}": s[:, k] for k, c in enumerate(cfg.classes)}
        rows.append(df[["subject_name", "sample_name", "class_name", "view"]].assign(test=name, **cols))
    info = {"task_classes": list(cfg.classes), "protocol": args.protocol, "threshold": threshold,
            "train_clips": int(len(y_tr)), "epochs": args.epochs, "lr": args.lr, "batch": args.batch,
            "seed": args.seed, "threads": args.threads, "load_seconds": round(t_load, 1),
            "train_seconds": round(t_train, 1), "params": sum(p.numel() for p in model.parameters()),
            "data": str(args.data) if args.data else None,
            "extra_data": [str(r) for r in args.extra_data], "real": str(args.real) if args.real else None,
            "real_subjects": args.real_subjects if args.protocol == "mixed" else None,
            "tests": report, "skipped": {k: v for k, v in skipped.items() if v},
            "command": "painface " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "datasets": {str(r): _dataset_config(r) for r in [args.data, *args.extra_data, *args.test]
                         if r is not None}, **extra}
    from painface.io import atomic_write_bytes

    if args.readings is not None:
        saved.update({"task": np.array(cfg.task), "reader_folds": np.array(args.reader_folds)})
        atomic_write_bytes(args.readings, lambda fh: np.savez_compressed(fh, **saved))
    if args.scores is not None and rows:
        csv = pd.concat(rows).to_csv(index=False).encode()
        atomic_write_bytes(args.scores, lambda fh: fh.write(csv))
    save(args.out, model, cfg, info)  # last: a model file means its scores and readings were written
    for k, v in info["skipped"].items():
        print(f"skipped {len(v)} unreadable clip(s) of {k}: " + "; ".join(v[:5]) + (" ..." if len(v) > 5 else ""))
    for name, per in report.items():
        for view, m in per.items():
            print(f"{name} [{view}]: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in m.items()))
    print(f"wrote {args.out} ({info['params']} parameters; {len(y_tr)} training clips, {t_train:.0f} s training)")
    return 0
