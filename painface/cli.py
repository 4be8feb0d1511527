"""The ``painface`` command. Thin: each subcommand lives in a module that exposes
``configure(parser)`` (adds its options) and ``run(args) -> int`` (does the work)."""

from __future__ import annotations

import argparse
import importlib
import sys

from painface import __version__
from painface.errors import PainfaceError

# name -> (module, one-line help). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("painface.demo", "four virtual patients react to the BioVid protocol: demo.mp4 and demo.png"),
    "simulate": ("painface.subjects.cli", "write a corpus of virtual subjects under the BioVid heat protocol"),
    "inspect": ("painface.data.inspect", "summarize a corpus: table, JSON and a figure of one subject"),
    "train": ("painface.train", "train PainDiffusion on a corpus (resumes; torchrun-ready)"),
    "generate": ("painface.express", "generate pain expression sequences with PainDiffusion"),
    "render": ("painface.face.cli", "render a face-code file to a video (mp4/gif), with a scrolling plot"),
    "export": ("painface.face.export", "export a face-code file as ARKit CSV/JSON or an animated glTF (.glb)"),
    "serve": ("painface.serve.cli", "the live page: a face that reacts to a stimulus slider, one patient per tab"),
    "convert-biovid": ("painface.data.biovid", "convert BioVid/EMOCA per-frame JSON features to a corpus"),
    "evaluate": ("painface.evaluate.run", "Table I on the validation subjects: metrics, baselines, table and figure"),
    "train-fsq": ("painface.evaluate.fsq_train", "train the FSQ-VAE autoregressive baseline (tokenizer, then AR)"),
    "control": ("painface.evaluate.control", "controllability sweeps (stimulus, expressiveness, emotion) like Fig. 8"),
    "ablate": ("painface.evaluate.ablation", "ablations like Table II: context window, uncertainty u, guidance"),
    "analyze": ("painface.analyze.cli", "read faces in images/videos: pose, blendshapes, AU intensities, PSPI table"),
    "analyze-calibrate": ("painface.analyze.calibrate", "refit the blendshape -> AU map on painface-rendered faces"),
    "synth": ("painface.synth.cli", "synthetic datasets: 'synth faces' (3DPain images), 'synth videos' (BioVid clips)"),
    "train-assess": ("painface.assess.train", "train ViTPain (PSPI from a face) on a synth faces dataset; resumes"),
    "assess": ("painface.assess.cli", "read PSPI and pain AUs from faces with ViTPain: the analyze table"),
    "train-video": ("painface.video.train", "train a video pain classifier (BL1 vs PA4, 5 classes) on clips"),
    "classify-video": ("painface.video.cli", "pain scores of video clips with a train-video model"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="painface", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"painface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except PainfaceError as e:
        print(f"painface {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"painface {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # disk full, a folder vanished...: one line, not a traceback (inputs are checked first)
        print(f"painface {args.command}: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
