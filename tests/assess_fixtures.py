"""Fixtures for the assess tests: a tiny dataset in the ``painface synth faces`` layout whose images
encode PSPI (a bright block whose size grows with the AUs), so a tiny model can learn it quickly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

AUS = ("AU4", "AU6", "AU7", "AU9", "AU10", "AU43")


def write_fake_synth(root: Path, identities: int = 6, expressions: int = 4, size: int = 32, seed: int = 0) -> Path:
    """Write ``root`` in the synth-faces layout: per identity one neutral + ``expressions`` images, 1 view;
    identity ``i`` has ``identity_seed`` ``1000 seed + i``."""
    rng = np.random.default_rng(seed)
    rows = []
    splits = ["train"] * max(1, identities - 2) + ["val", "test"]
    for i in range(identities):
        for e in range(expressions + 1):
            aus = np.zeros(6) if e == 0 else rng.uniform(0, 5, 6).round(2)
            aus[5] = 0.0 if e == 0 else float(rng.random() < 0.3)
            pspi = aus[0] + max(aus[1], aus[2]) + max(aus[3], aus[4]) + aus[5]
            img = np.full((size, size, 3), 60 + 10 * i, np.uint8)
            k = int(round(pspi / 16 * size))
            img[:k, : size // 2] = 230
            hm = np.zeros((size, size), np.uint8)
            hm[:k, : size // 2] = 255 if e else 0
            f = f"images/{i:06d}/{i:06d}_v0_e{e:02d}.png"
            h = f"heatmaps/{i:06d}/{i:06d}_v0_e{e:02d}.png"
            for path, arr in ((f, img), (h, hm)):
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr).save(root / path)
            rows.append({"file": f, "identity": i, "identity_seed": 1000 * seed + i, "split": splits[i],
                         "expression": e, "view_yaw": 0.0,
                         "view_pitch": 0.0, "neutral_file": f"images/{i:06d}/{i:06d}_v0_e00.png", "heatmap_file": h,
                         **dict(zip(AUS, aus, strict=True)), "PSPI": pspi, "pain": pspi > 0, "age": 30,
                         "age_group": "adult", "sex": "female", "skin_tone": 5})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root
