"""One module per ``painface`` command (``configure(parser)`` + ``run(args)``); the convention is in
:mod:`painface.cli`. Nothing here imports a domain module at import time."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_training_options(p: argparse.ArgumentParser, *, steps_help: str, config_help: str) -> None:
    """The options every training command shares: ``--data``, ``--out`` (a run folder that resumes),
    ``--steps``, ``--config`` (JSON of the trainer's config keys), ``--threads``, ``--quiet``."""
    p.add_argument("--data", type=Path, required=True, help="corpus folder (painface simulate / convert-biovid)")
    p.add_argument("--out", type=Path, required=True, help="run folder; resumes when it holds a training state")
    p.add_argument("--steps", type=int, default=None, help=steps_help)
    p.add_argument("--config", type=Path, default=None, help=config_help)
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def read_config(args: argparse.Namespace) -> dict:
    """The ``--config`` JSON object (``{}`` without one), checked by :func:`painface.io.read_json_config`."""
    from painface.io import read_json_config

    return {} if args.config is None else read_json_config(args.config)
