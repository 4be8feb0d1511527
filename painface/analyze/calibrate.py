"""``painface analyze-calibrate``: fit the blendshape -> AU map on painface-rendered faces.

Faces whose AU intensities are known exactly are rendered through painface's public face API
(identities from :func:`painface.face.identity.sample_identities`, the rig, the renderer) under
random views (camera yaw/pitch), head poses and lights, then read by the :class:`Detector` (which
gives the 52 blendshape scores). Identities are split: ``holdout`` of them are never used for
fitting. Two maps are fitted on the training identities (:mod:`painface.analyze.aus`): **offset**
(each AU's region blendshape less its median on the neutral renders, rescaled) and **regression**
(per AU a ridge regression on all :data:`~painface.analyze.aus.FEATURES`); the held-out identities give
Pearson r and MAE per AU and for PSPI of both and of the uncalibrated map (blendshape x 5), in one
table. ``--real DIR`` adds the three maps' readings of real ``*_neutral`` / ``*_smiling`` photos.

Whatever ``painface.face`` renders today is what it is fitted on: rerun this command when the face
changes (docs/analyze.md). Writes into ``--out``: ``metrics.json``, ``table.md``, ``samples.npz``
(blendshapes, true codes, identity, view), ``calibration.png``, ``config.json``; and the fitted maps
into ``--save-maps`` (default: the package's ``painface/analyze/assets``, files ``au_map_offset.json``
and ``au_map_regression.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from painface.analyze.aus import DETECTED_AUS, FEATURES, UNCALIBRATED, Calibration, features
from painface.errors import InputError
from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_NAMES, pspi

ASSETS = Path(__file__).resolve().parent / "assets"
COMMAND = (
    "painface analyze-calibrate --out runs/analyze-calibrate --figure docs/figures/analyze_calibration.png "
    "--real ../shared/realfaces/london-dev"
)


@dataclass
class CalibrationConfig:
    """Settings (saved as config.json). identities: virtual people; per_identity: images each;
    holdout: share of identities kept out of the fit; size: image pixels; p_active: chance an AU is
    on in a sample; max_camera_yaw / max_camera_pitch / max_head_pose: degrees (uniform +-);
    ridge: L2 penalty of the fit (features are 0..1 scores)."""

    identities: int = 160
    per_identity: int = 24
    holdout: float = 0.25
    seed: int = 0
    size: int = 256
    p_active: float = 0.35
    max_camera_yaw: float = 20.0
    max_camera_pitch: float = 10.0
    max_head_pose: float = 8.0
    ridge: float = 0.3
    threads: int = 1


def sample_codes(rng: np.random.Generator, n: int, p_active: float, max_pose: float) -> np.ndarray:
    """``n`` FACS face codes ``[n, 20]``: every reported AU on with probability ``p_active`` at an
    intensity uniform in 0.5..5 (AU43 with half that chance), one in five samples neutral; AU27 and
    AU45 stay 0; head pitch/yaw/roll uniform in +-``max_pose`` degrees."""
    codes = np.zeros((n, len(FEATURE_NAMES)), np.float32)
    for au in DETECTED_AUS:
        p = p_active / 2 if au == "AU43" else p_active
        on = rng.random(n) < p
        codes[:, AU_NAMES.index(au)] = on * rng.uniform(0.5, 5.0, n)
    codes[rng.random(n) < 0.2, : len(AU_NAMES)] = 0.0
    for name in POSE_NAMES:
        codes[:, FEATURE_NAMES.index(name)] = rng.uniform(-max_pose, max_pose, n)
    return codes


def random_lighting(rng: np.random.Generator) -> Any:
    """A random :class:`painface.face.render.Lighting` (key, fill, ambient, highlight, wrap, rim) over a
    random grey-to-colour background: :func:`painface.face.render.random_lighting`."""
    from painface.face.render import random_lighting as draw

    return draw(rng)


def render_identity(identity: Any, codes: np.ndarray, cameras: list[Any], lighting: Any, size: int) -> np.ndarray:
    """Images ``[n, size, size, 3]`` uint8 of ``codes`` on ``identity`` through painface.face's API.

    The only place that touches the renderer: adapt it here if painface.face's API changes."""
    from painface.face.head import build_head, deform, frame_colors
    from painface.face.render import render

    head = build_head(identity)
    # the eyes look at the camera (yaw and pitch of the view, less the head's own yaw)
    gaze = np.array([[c.yaw - float(code[FEATURE_NAMES.index("head_yaw")]), c.pitch] for c, code in
                     zip(cameras, codes, strict=True)])
    return render(deform(codes, head, gaze=gaze), head.triangles, frame_colors(codes, head), size=size,
                  camera=cameras, lighting=lighting, specular=head.specular, cull_back=True)


def expected_pose(code: np.ndarray, camera: Any) -> tuple[float, float, float]:
    """The head pose the camera sees: view rotation x head rotation, as face-code angles (degrees)."""
    from painface.analyze.landmarks import rotation_to_pose
    from painface.face.rig import head_rotation

    p, y, r = (float(code[FEATURE_NAMES.index(n)]) for n in POSE_NAMES)
    return rotation_to_pose(camera.view()[:, :3] @ head_rotation(p, y, r))


def collect(cfg: CalibrationConfig, progress: bool = True) -> dict[str, np.ndarray]:
    """Render and read every sample: blendshapes ``[n, 52]`` (NaN where no face), codes ``[n, 20]``,
    identity ``[n]``, detected ``[n]`` bool, pose true/detected ``[n, 3]``, camera yaw/pitch ``[n, 2]``."""
    from painface.analyze.detector import Detector
    from painface.face.identity import sample_identities
    from painface.face.video import head_camera

    rng = np.random.default_rng(cfg.seed)
    det = Detector(calibration=None, threads=cfg.threads)
    people = sample_identities(cfg.identities, seed=cfg.seed)
    out: dict[str, list] = {k: [] for k in ("blend", "code", "ident", "found", "pose_true", "pose_det", "view")}
    for i, person in enumerate(tqdm(people, desc="render+read", unit="identity", disable=not progress)):
        codes = sample_codes(rng, cfg.per_identity, cfg.p_active, cfg.max_head_pose)
        cams = [head_camera(float(rng.uniform(-cfg.max_camera_yaw, cfg.max_camera_yaw)),
                            float(rng.uniform(-cfg.max_camera_pitch, cfg.max_camera_pitch))) for _ in codes]
        groups = np.array_split(np.arange(len(codes)), 3)  # three lights per identity
        images = np.concatenate([render_identity(person, codes[g], [cams[j] for j in g], random_lighting(rng),
                                                 cfg.size) for g in groups if len(g)])
        for k, img in enumerate(images):
            found = det.read_faces(_pil(img))
            out["found"].append(bool(found))
            out["blend"].append(found[0][1].blendshapes if found else np.full(52, np.nan))
            out["pose_det"].append(found[0][1].pose if found else (np.nan,) * 3)
            out["pose_true"].append(expected_pose(codes[k], cams[k]))
            out["view"].append((cams[k].yaw, cams[k].pitch))
        out["code"].extend(codes)
        out["ident"].extend([i] * len(codes))
    return {k: np.asarray(v) for k, v in out.items()}


def _pil(img: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(img)


def fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """Ridge regression ``y ~ x w + b`` (intercept unpenalised): returns (w ``[d]``, b)."""
    mx, my = x.mean(0), y.mean()
    xc = x - mx
    w = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ (y - my))
    return w, float(my - mx @ w)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def score(pred: dict[str, np.ndarray], truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Per AU and PSPI: Pearson r and MAE of ``pred`` against the true codes ``[n, 20]``."""
    out = {}
    for au in DETECTED_AUS:
        t = truth[:, AU_NAMES.index(au)]
        out[au] = {"r": pearson(pred[au], t), "mae": float(np.abs(pred[au] - t).mean())}
    from painface.analyze.aus import pspi_from_aus

    p, t = pspi_from_aus(pred), pspi(truth, FEATURE_NAMES)
    out["PSPI"] = {"r": pearson(p, t), "mae": float(np.abs(p - t).mean())}
    return out


def fit_offset(f: np.ndarray, codes: np.ndarray) -> Calibration:
    """The offset map from features ``[n, 31]`` of neutral faces (all AUs 0): per AU its region
    feature's median resting score b0 is subtracted and the rest rescaled, ``5 (x - b0) / (1 - b0) / w``."""
    if not np.all(codes[:, : len(AU_NAMES)] == 0) or len(f) == 0:
        raise InputError("fit_offset: needs neutral faces (every AU 0)")
    weights, bias = {}, {}
    for au in DETECTED_AUS:
        shapes, w = UNCALIBRATED[au]
        k = FEATURES.index(shapes[0].removesuffix("Left").removesuffix("Right"))
        b0 = float(np.clip(np.median(f[:, k]), 0.0, 0.9))
        scale = 5.0 / w / (1.0 - b0)
        weights[au] = np.zeros(len(FEATURES))
        weights[au][k] = scale
        bias[au] = -scale * b0
    return Calibration(weights, bias)


def calibrate(cfg: CalibrationConfig, data: dict[str, np.ndarray]) -> tuple[dict[str, Calibration], dict[str, Any]]:
    """Fit both maps on the training identities, score them and the uncalibrated map on the held-out ones."""
    from painface.analyze.aus import uncalibrated_aus

    n_id = int(data["ident"].max()) + 1
    rng = np.random.default_rng(cfg.seed + 1)
    held = set(rng.permutation(n_id)[: max(1, round(cfg.holdout * n_id))].tolist())
    is_held = np.isin(data["ident"], sorted(held))
    ok = data["found"]
    train, test = ok & ~is_held, ok & is_held
    neutral = train & (data["code"][:, : len(AU_NAMES)].max(axis=1) == 0)
    if train.sum() < len(FEATURES) + 2 or test.sum() < 2 or neutral.sum() < 1:
        raise InputError(f"calibration: too few detected faces (train {train.sum()}, of them neutral "
                         f"{neutral.sum()}, held-out {test.sum()}); raise --identities / --per-identity")
    f = features(data["blend"])
    weights, bias = {}, {}
    for au in DETECTED_AUS:
        weights[au], bias[au] = fit_ridge(f[train], data["code"][train, AU_NAMES.index(au)], cfg.ridge)
    maps = {"offset": fit_offset(f[neutral], data["code"][neutral]), "regression": Calibration(weights, bias)}
    truth = data["code"][test]
    pose_err = np.abs(data["pose_det"][test] - data["pose_true"][test])
    metrics: dict[str, Any] = {name: score(m(data["blend"][test]), truth) for name, m in maps.items()}
    metrics["uncalibrated"] = score(uncalibrated_aus(data["blend"][test]), truth)
    metrics.update({
        "detection_rate": float(ok.mean()), "n_images": int(len(ok)), "n_train": int(train.sum()),
        "n_neutral_train": int(neutral.sum()), "n_heldout": int(test.sum()),
        "heldout_identities": sorted(int(h) for h in held),
        "pose_mae_deg": dict(zip(("pitch", "yaw", "roll"), pose_err.mean(0).round(2).tolist(), strict=True)),
    })
    for name, m in maps.items():
        m.meta = {"map": name, "fitted_on": "painface-rendered faces (painface.face as of this fit)",
                  "command": COMMAND, "config": asdict(cfg), "detection_rate": metrics["detection_rate"],
                  "heldout": {k: {q: round(v, 4) for q, v in d.items()} for k, d in metrics[name].items()}}
    return maps, metrics
