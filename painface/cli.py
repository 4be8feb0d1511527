"""The ``painface`` command.

Convention (one for every command): a command ``NAME`` is the module ``painface/commands/<NAME>.py``
(dashes become underscores: ``train-fsq`` -> ``train_fsq.py``) with two functions:

* ``configure(parser)``: adds the command's options to its ``argparse`` parser;
* ``run(args) -> int``: checks the options, does the work by calling the domain packages (imported
  *inside* ``run``, never at the top of the module), prints a short summary, returns the exit status.

The module imports nothing heavy at its top (no torch, numpy, scipy, no domain module), and the root
parser configures only the command being run, so ``painface --help`` (and a typo's error) imports no
command module at all (tests/test_cli_layout.py checks ``sys.modules``; benchmarks/bench_cli.py times it).
A command with sub-commands (``painface synth faces``) adds them in its ``configure``.

To add a command: write ``painface/commands/<name>.py`` as above, and add one row to :data:`COMMANDS`:
``"name": (group, one-line help)``; the group places it in the root help.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from painface import __version__
from painface.errors import PainfaceError

GROUPS: tuple[str, ...] = ("start", "express", "show", "data", "evaluate", "assess")
"""Sections of the root help, in order (the keys of :data:`GROUP_TITLES`)."""

GROUP_TITLES = {
    "start": "Get started",
    "express": "Generate pain expressions (PainDiffusion)",
    "show": "Show and export faces",
    "data": "Data: virtual subjects and real corpora",
    "evaluate": "Evaluate (tables and figures of the paper)",
    "assess": "Read pain from faces (analysis, synthetic datasets, ViTPain)",
}

# name -> (group, one-line help). The module is painface.commands.<name with _ for ->, imported only when
# the command runs (or its --help is asked).
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("start", "four virtual patients react to the BioVid protocol: demo.mp4 and demo.png"),
    "generate": ("express", "generate pain expression sequences with PainDiffusion (npz, CSV)"),
    "serve": ("express", "the live page: a face that reacts to a stimulus slider, one patient per tab"),
    "train": ("express", "train PainDiffusion on a corpus (resumes; torchrun-ready)"),
    "distill": ("express", "distill a checkpoint's guided sampler into one network pass (2x faster; resumes)"),
    "render": ("show", "render a face-code file to a video (mp4/gif), with a scrolling plot"),
    "export": ("show", "export a face-code file as ARKit CSV/JSON or an animated glTF (.glb)"),
    "simulate": ("data", "write a corpus of virtual subjects under the BioVid heat protocol"),
    "inspect": ("data", "summarize a corpus: table, JSON and a figure of one subject"),
    "convert-biovid": ("data", "convert BioVid/EMOCA per-frame JSON features to a corpus"),
    "evaluate": ("evaluate", "Table I on the validation subjects: metrics, baselines, table and figure"),
    "control": ("evaluate", "controllability sweeps (stimulus, expressiveness, emotion) like Fig. 8"),
    "ablate": ("evaluate", "ablations like Table II: context window, uncertainty u, guidance"),
    "train-fsq": ("evaluate", "train the FSQ-VAE autoregressive baseline (tokenizer, then AR)"),
    "analyze": ("assess", "read faces in images/videos: pose, blendshapes, AU intensities, PSPI table"),
    "analyze-calibrate": ("assess", "refit the blendshape -> AU map on painface-rendered faces"),
    "synth": ("assess", "synthetic datasets: 'synth faces' (3DPain images), 'synth videos' (BioVid clips)"),
    "train-assess": ("assess", "train ViTPain (PSPI from a face) on a synth faces dataset; resumes"),
    "assess": ("assess", "read PSPI and pain AUs from faces with ViTPain: the analyze table"),
    "train-video": ("assess", "train a video pain classifier (BL1 vs PA4, 5 classes) on clips"),
    "classify-video": ("assess", "pain scores of video clips with a train-video model"),
}

DESCRIPTION = """\
painface synthesizes and assesses facial expressions of pain.

It generates how a face reacts to a pain stimulus over time (PainDiffusion: a heat protocol, or a live
slider, plus who the patient is: how expressive, which emotion), shows it (3D face videos, ARKit/glTF
exports, a live page), and reads pain from faces (PSPI from images and videos; synthetic datasets with
exact labels to train pain-assessment models). Everything runs on a CPU; a trained model ships with it."""

EPILOG_END = """\
Run 'painface COMMAND --help' for a command's options. Start with 'painface demo'.
Documentation: README.md and docs/ (docs/references.md lists the papers this follows)."""


def module_of(name: str) -> str:
    """The module that implements command ``name``."""
    return "painface.commands." + name.replace("-", "_")


def _epilog() -> str:
    width = max(map(len, COMMANDS)) + 2
    parts = []
    for group in GROUPS:
        rows = [f"  {name:<{width}}{help_text}" for name, (g, help_text) in COMMANDS.items() if g == group]
        parts.append(f"{GROUP_TITLES[group]}:\n" + "\n".join(rows))
    return "\n\n".join(parts) + "\n\n" + EPILOG_END


def _command_in(argv: list[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), if it is one."""
    for word in argv:
        if word in ("-h", "--help", "--version"):
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The root parser. Only the command named in ``argv`` (if any) gets its options, so building the
    parser for ``painface --help`` imports no command module."""
    parser = argparse.ArgumentParser(prog="painface", usage="painface [-h] [--version] COMMAND [options]",
                                     description=DESCRIPTION, epilog=_epilog(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"painface {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, help=argparse.SUPPRESS,
                                prog="painface")
    chosen = _command_in(list(sys.argv[1:] if argv is None else argv))
    for name, (_group, help_text) in COMMANDS.items():
        p = sub.add_parser(name, description=help_text)
        if name == chosen:
            importlib.import_module(module_of(name)).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(importlib.import_module(module_of(args.command)).run(args) or 0)
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
