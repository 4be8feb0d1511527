"""The UNBC-McMaster reader and protocols on fixtures written in the archive's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from painface.assess import protocol as P
from painface.assess.model import ViTConfig, ViTPain, save
from painface.assess.unbc import aam_points, crops, read_facs, read_unbc
from painface.errors import InputError


def _aam() -> np.ndarray:
    """66 plausible landmarks for a 64 x 64 frame: eyes at (22, 26) and (42, 26), nose (32, 36), mouth."""
    a = np.tile([32.0, 40.0], (66, 1))
    a[36:42] = [22, 26]
    a[42:48] = [42, 26]
    a[30] = [32, 36]
    a[48], a[54] = [25, 45], [39, 45]
    return a


def write_unbc(root: Path, subjects: int = 6, frames: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for s in range(subjects):
        subj, seq = f"{s:03d}-s{s}", f"s{s}a{s}t1aaa"
        for f in range(frames):
            name = f"{seq}{f + 1:03d}"
            for sub in ("Images", "Frame_Labels/PSPI", "Frame_Labels/FACS", "AAM_landmarks"):
                (root / sub / subj / seq).mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / "Images" / subj / seq / f"{name}.png")
            pspi = float(f * s % 5)
            (root / "Frame_Labels/PSPI" / subj / seq / f"{name}_facs.txt").write_text(f"   {pspi:.7e}\n")
            facs = "" if f == 0 else f"   4.0000000e+00   {f:.7e}   0.0000000e+00   0.0000000e+00\n" \
                                     "   1.2000000e+01   3.0000000e+00   0.0000000e+00   0.0000000e+00\n"
            (root / "Frame_Labels/FACS" / subj / seq / f"{name}_facs.txt").write_text(facs)
            np.savetxt(root / "AAM_landmarks" / subj / seq / f"{name}_aam.txt", _aam(), fmt="%.4f")
        for lab, v in (("VAS", s), ("OPR", 1)):
            (root / "Sequence_Labels" / lab / subj).mkdir(parents=True, exist_ok=True)
            (root / "Sequence_Labels" / lab / subj / f"{seq}.txt").write_text(f"{v:.7e}\n")
    return root


def test_reader_values(tmp_path):
    root = write_unbc(tmp_path / "unbc")
    df = read_unbc(root)
    assert len(df) == 18 and df.subject.nunique() == 6
    r = df[(df.subject == "002-s2") & (df.frame == "s2a2t1aaa003")].iloc[0]
    assert r.PSPI == 4.0 and r.AU4 == 2.0 and r.AU6 == 0.0 and r.VAS == 2.0 and r.OPR == 1.0 and np.isnan(r.AFF)
    assert read_facs(tmp_path / "nowhere.txt")["AU4"] == 0.0
    pts = aam_points(_aam())
    assert np.allclose(pts, [[22, 26], [42, 26], [32, 36], [25, 45], [39, 45]])
    c = crops(df.head(2), 32)
    assert c.shape == (2, 32, 32, 3) and c.dtype == np.uint8


def test_reader_errors(tmp_path):
    with pytest.raises(InputError, match="not the UNBC-McMaster layout"):
        read_unbc(tmp_path)
    root = write_unbc(tmp_path / "u", subjects=2, frames=1)
    next((root / "Frame_Labels/PSPI").rglob("*_facs.txt")).unlink()
    with pytest.raises(InputError, match="has no PSPI label"):
        read_unbc(root)
    with pytest.raises(InputError, match=r"expected \[66, 2\]"):
        aam_points(np.zeros((68, 2)))


def test_folds_are_subject_disjoint():
    subjects = [f"s{k}" for k in range(12)] * 3
    folds = P.subject_folds(subjects, 5, seed=1)
    flat = [s for f in folds for s in f]
    assert len(folds) == 5 and sorted(flat) == sorted(set(subjects)) and len(set(flat)) == 12
    assert [len(f) for f in P.loso_folds(subjects)] == [1] * 12
    tune, val = P.fold_subjects(subjects, folds[0], 2, seed=0)
    assert not set(tune) & set(folds[0]) and not set(val) & set(folds[0]) and not set(tune) & set(val)
    assert len(val) == 2 and len(tune) + len(val) + len(folds[0]) == 12
    with pytest.raises(InputError, match="need 2 <= k"):
        P.subject_folds(["a", "b"], 5)


def test_protocol_runs_without_touching_test_fold(tmp_path):
    root = write_unbc(tmp_path / "unbc")
    torch.manual_seed(0)
    pre = save(tmp_path / "pre", ViTPain(ViTConfig(size=32, dim=32, depth=1, heads=2)), {})
    cfg = P.FinetuneConfig(steps=3, batch=4, eval_every=3, val_subjects=2)
    res = P.run_protocol(root, "5fold", pre, cfg, log=lambda *_: None)
    folds = res["folds"]
    assert len(folds) == 5 and len(res["predictions"]) == 18
    for _, f in folds.iterrows():
        assert not set(f.test_subjects.split(",")) & set(f.val_subjects.split(","))
    assert {"MAE", "r", "AUROC1", "F1_1", "ICC"} <= set(res["pooled"])
    loso = P.run_protocol(root, "loso", pre, cfg, log=lambda *_: None)
    assert len(loso["folds"]) == 6
    with pytest.raises(InputError, match="protocol"):
        P.run_protocol(root, "10fold", pre, cfg)
