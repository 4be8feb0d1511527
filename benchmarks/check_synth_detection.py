"""Does a detector trained on real faces read a ``painface synth faces`` dataset?

Runs :class:`painface.analyze.Detector` on up to ``--n`` images of a dataset folder and reports the
detection rate and the Pearson r between the detected PSPI and the exact label, overall and per view,
for the calibrated maps (``regression``, the map for painface's renders, and ``offset``, the default).
Usage: ``python benchmarks/check_synth_detection.py DIR [--n 3000] [--out summary.json]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from painface.analyze import Detector


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    meta = pd.read_csv(args.root / "metadata.csv")
    sample = meta.sample(min(args.n, len(meta)), random_state=args.seed).reset_index(drop=True)
    paths = [str(args.root / f) for f in sample.file]
    summary: dict = {"images": len(sample)}
    for cal in ("regression", "offset"):
        t = Detector(calibration=cal).detect(paths, progress=True)
        got = t.set_index("file").reindex(paths)
        det = got.face_detected.fillna(False).to_numpy(bool)
        read = got.PSPI.to_numpy(float)
        res = {"detection_rate": float(det.mean())}
        for view, idx in sample.groupby("view").groups.items():
            m = np.zeros(len(sample), bool)
            m[list(idx)] = True
            ok = m & det
            res[f"view {view} (yaw {sample.view_yaw[m].mean():+.0f})"] = {
                "detection_rate": float(det[m].mean()),
                "pearson_r": float(np.corrcoef(read[ok], sample.PSPI[ok])[0, 1])}
        res["pearson_r"] = float(np.corrcoef(read[det], sample.PSPI[det])[0, 1])
        res["mae"] = float(np.abs(read[det] - sample.PSPI[det]).mean())
        for kind in ("pain", "neutral"):
            k = det & (sample.kind == kind).to_numpy()
            res[f"mean PSPI read on {kind}"] = float(read[k].mean())
        summary[cal] = res
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
