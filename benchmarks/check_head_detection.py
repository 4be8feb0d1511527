"""Does a face detector trained on real photos see painface's head, and each PSPI AU on it?

1. Detection: ``--identities`` identities (balanced strata) x 3 views (camera yaw 0, +45, -45 degrees)
   x (neutral, a pain face with PSPI >= 6) rendered at ``--size`` px and read by
   :class:`painface.analyze.Detector` (MediaPipe Face Landmarker). Prints the detection rate overall,
   per view, per expression and per skin tone.
2. Visibility: each PSPI AU (AU4, AU6, AU7, AU9, AU10, AU43) alone at intensities 0..5 on
   ``--au-identities`` identities, front and 45 degrees; the detector's reading of that AU (its
   calibrated AU column, the raw ARKit blendshape behind it, and a landmark measure of the AU's
   movement: see :data:`GEOMETRY`) averaged over identities, and the Spearman correlation of each mean
   with the rendered intensity. MediaPipe's cheekSquint and noseSneer outputs stay at 0 even on real
   smiling photos, so for AU6 and AU9 the landmark measure is the detector's only response.

Usage: ``python benchmarks/check_head_detection.py [--identities 60] [--au-identities 12] [--out DIR]``
Writes ``detections.csv``, ``visibility.csv`` and ``summary.json`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from painface.analyze import Detector
from painface.face.code import FEATURE_NAMES, pspi
from painface.face.identity import sample_identities
from painface.face.video import face_frames

PAIN = dict(AU4=3.0, AU6=3.0, AU7=2.0, AU9=2.0, AU10=2.0, AU25=1.0)  # PSPI 3 + 3 + 2 = 8
RAW = {"AU4": "browDownLeft", "AU6": "cheekSquintLeft", "AU7": "eyeSquintLeft", "AU9": "noseSneerLeft",
       "AU10": "mouthUpperUpLeft", "AU43": "eyeBlinkLeft"}


GEOMETRY = {
    # AU: (landmark pairs whose mean distance, over the inter-ocular distance, shrinks as the AU acts)
    "AU4": ((107, 336), (55, 285)),          # inner brows come together
    "AU6": ((159, 145), (386, 374)),         # the raised cheek narrows the eye from below
    "AU7": ((159, 145), (386, 374)),         # the eye opening narrows
    "AU9": ((129, 133), (358, 362)),         # the nose wing rises toward the inner eye corner
    "AU10": ((0, 4), (13, 4)),               # the upper lip rises toward the nose tip
    "AU43": ((159, 145), (386, 374)),        # the eyes close
}  # fmt: skip


def geometry(row: pd.Series, au: str) -> float:
    """Minus the mean normalised distance of the AU's landmark pairs (rises as the AU acts)."""
    p = {i: np.array([row[f"x_{i}"], row[f"y_{i}"]]) for pair in GEOMETRY[au] for i in pair}
    iod = np.linalg.norm(np.array([row["x_33"], row["y_33"]]) - np.array([row["x_263"], row["y_263"]]))
    return -float(np.mean([np.linalg.norm(p[a] - p[b]) for a, b in GEOMETRY[au]])) / iod


def code_with(**aus: float) -> np.ndarray:
    c = np.zeros((1, len(FEATURE_NAMES)), np.float32)
    for k, v in aus.items():
        c[0, FEATURE_NAMES.index(k)] = v
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--identities", type=int, default=60)
    ap.add_argument("--au-identities", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results/head_detection"))
    ap.add_argument("--skip-visibility", action="store_true", help="only the detection-rate part")
    ap.add_argument("--skip-detection", action="store_true", help="only the visibility part")
    ap.add_argument("--aus", default=",".join(RAW), help="AUs of the visibility part (comma-separated)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    det = Detector()
    pain = code_with(**PAIN)
    assert pspi(pain, FEATURE_NAMES)[0] >= 6
    rows = []
    for ident in sample_identities(0 if args.skip_detection else args.identities, args.seed):
        for yaw in (0.0, 45.0, -45.0):
            for expr, c in (("neutral", code_with()), ("pain", pain)):
                img = next(face_frames(c, size=args.size, identity=ident, yaw=yaw))
                t = det.detect_image(img, progress=False)
                r = t.iloc[0]
                rows.append({"seed": ident.seed, "sex": ident.sex, "age_group": ident.age_group,
                             "skin_tone": ident.skin_tone, "hair_style": ident.hair_style, "view_yaw": yaw,
                             "expression": expr, "detected": bool(r["face_detected"]),
                             "PSPI_true": float(pspi(c, FEATURE_NAMES)[0]),
                             "PSPI_read": float(r["PSPI"]) if r["face_detected"] else np.nan})
    summary: dict = {}
    if not args.skip_detection:
        d = pd.DataFrame(rows)
        d.to_csv(args.out / "detections.csv", index=False)
        summary = {"detection_rate": float(d.detected.mean()), "n_images": len(d),
                   "by_view": d.groupby("view_yaw").detected.mean().to_dict(),
                   "by_expression": d.groupby("expression").detected.mean().to_dict(),
                   "by_skin_tone": d.groupby("skin_tone").detected.mean().to_dict()}
    vis = []
    for ident in sample_identities(0 if args.skip_visibility else args.au_identities, args.seed + 1):
        for yaw in (0.0, 45.0):
            for au in args.aus.split(","):
                for level in range(6):
                    img = next(face_frames(code_with(**{au: float(level)}), size=args.size, identity=ident, yaw=yaw))
                    r = det.detect_image(img, progress=False, landmarks=True).iloc[0]
                    ok = bool(r["face_detected"])
                    vis.append({"seed": ident.seed, "view_yaw": yaw, "AU": au, "intensity": level, "detected": ok,
                                "reading": float(r[au]) if ok else np.nan,
                                "blendshape": float(r[RAW[au]]) if ok else np.nan,
                                "geometry": geometry(r, au) if ok else np.nan})
    v = pd.DataFrame(vis, columns=["seed", "view_yaw", "AU", "intensity", "detected", "reading", "blendshape",
                                   "geometry"])
    if not args.skip_visibility:
        v.to_csv(args.out / f"visibility{'' if args.aus == ','.join(RAW) else '_' + args.aus.replace(',', '_')}.csv",
                 index=False)
    spear = {}
    for (au, yaw), g in v.groupby(["AU", "view_yaw"]):
        m = g.groupby("intensity")[["reading", "blendshape", "geometry"]].mean()
        spear[f"{au} yaw {yaw:.0f}"] = {
            "rho_reading": float(spearmanr(m.index, m["reading"]).statistic),
            "rho_blendshape": float(spearmanr(m.index, m["blendshape"]).statistic),
            "rho_geometry": float(spearmanr(m.index, m["geometry"]).statistic),
            "mean_reading_by_intensity": [round(float(x), 3) for x in m["reading"]],
            "mean_blendshape_by_intensity": [round(float(x), 3) for x in m["blendshape"]]}
    summary["visibility"] = spear
    name = "summary.json" if not (args.skip_detection or args.skip_visibility) else "summary_part.json"
    (args.out / name).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
