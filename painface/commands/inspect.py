"""``painface inspect``: summarize a corpus: table, JSON and a figure of one subject."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="corpus folder (meta.json + subjects/)")
    parser.add_argument(
        "--subject", metavar="ID", default=None, help="subject to describe and draw (default: the first one)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--figure", metavar="PATH", default=None, help="figure path (default DIR/inspect_<id>.png)")
    parser.add_argument("--no-figure", action="store_true", help="do not draw the figure")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from painface.data.corpus import open_corpus
    from painface.data.inspect import format_table, plot_subject, summarize

    if args.figure and not args.no_figure:
        from painface.io import check_output

        check_output(Path(args.figure), "--figure", (".png",), make_folder=True)
    corpus = open_corpus(args.dir)
    summary = summarize(corpus, subject=args.subject)
    print(json.dumps(summary, indent=1) if args.json else format_table(summary))
    note = sys.stderr if args.json else sys.stdout
    if args.no_figure:
        return 0
    if not corpus.ids():
        print("no subjects: no figure", file=note)
        return 0
    sid = args.subject or corpus.ids()[0]
    path = Path(args.figure) if args.figure else Path(args.dir) / f"inspect_{sid}.png"
    plot_subject(corpus, sid, path)
    print(f"figure: {path}", file=note)
    return 0
