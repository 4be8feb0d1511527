"""``painface assess PATH... --out table.csv``: PSPI and the pain AUs from faces, read by ViTPain.

The table has the columns of ``painface analyze`` (see :mod:`painface.assess.predict`), so the two can
be compared row for row. ``--model`` takes a ``train-assess`` checkpoint (default: the shipped
``painface/assets/vitpain.safetensors``); ``--neutral`` a neutral photo of the person for a variant-c
model; ``--attention DIR`` saves, per image face, the aligned crop with the model's last-layer
class-token attention over the patches.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from painface.errors import InputError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image or video files, or folders of them")
    parser.add_argument("--out", required=True, help="the table to write: .csv or .parquet")
    parser.add_argument("--model", default=None, help="a ViTPain checkpoint (default: the shipped model)")
    parser.add_argument("--neutral", default=None, help="neutral photo of the same person (variant-c models)")
    parser.add_argument("--every", type=int, default=1, help="assess every n-th video frame (default 1)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop each video after this many frames")
    parser.add_argument("--threads", type=int, default=1, help="torch and interpreter threads (default 1)")
    parser.add_argument("--attention", default=None, metavar="DIR", help="save attention overlays of images here")
    parser.add_argument("--quiet", action="store_true", help="no summary line")


def attention_figure(assessor, image_path: str, out: Path) -> Path | None:
    """Save the aligned crop of the first face in ``image_path`` beside it with the class-token attention
    (last block, heads averaged, upsampled from the patch grid); None when no face."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    crops = assessor.crops(image_path)
    if not crops:
        return None
    x = torch.from_numpy(np.array(crops[0])).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        _, attn = assessor.model.encode(x, attention=True)
    g = assessor.size // 16
    a = attn[0].reshape(g, g).numpy()
    pred = assessor.predict_crops(crops[0][None])
    fig, ax = plt.subplots(1, 2, figsize=(5, 2.6))
    ax[0].imshow(crops[0])
    ax[1].imshow(crops[0])
    ax[1].imshow(np.kron(a / a.max(), np.ones((16, 16))), cmap="inferno", alpha=0.55)
    fig.suptitle(f"{Path(image_path).name}: PSPI {pred['pspi'][0]:.2f}", fontsize=8)
    for x_ in ax:
        x_.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from painface.analyze.detector import write_table
    from painface.analyze.inputs import IMAGE_EXTENSIONS
    from painface.assess.predict import Assessor

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputError(f"--out: expected a .csv or .parquet file name, got {args.out!r}")
    for name in ("every", "threads"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name}: expected an integer >= 1, got {getattr(args, name)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames: expected an integer >= 1, got {args.max_frames}")
    if args.model is not None and not Path(args.model).with_suffix(".safetensors").is_file():
        raise InputError(f"--model: {args.model} not found")
    torch.set_num_threads(args.threads)
    assessor = Assessor(args.model, neutral=args.neutral, threads=args.threads)
    df = assessor.assess(args.paths, every=args.every, max_frames=args.max_frames)
    write_table(df, out)
    if args.attention:
        for f in df.loc[df.face_detected, "file"].unique():
            if Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                attention_figure(assessor, f, Path(args.attention) / (Path(f).stem + "_attention.png"))
    if not args.quiet:
        print(f"{len(df)} rows from {df['file'].nunique()} file(s), a face in {int(df.face_detected.sum())}; "
              f"mean PSPI {df.PSPI.mean():.2f} -> {out}")
    return 0
