"""Start-up time of the ``painface`` command: ``painface --help``, a command's ``--help``, and a bare
``python -c pass`` (the interpreter's own start, measured in the same run as the floor).

Each case runs in a fresh interpreter (``python -m painface.cli ...`` from this checkout), ``--repeats``
times; the table gives the median wall time and the ratio to the bare interpreter, with the machine and
its load average (the machine is shared: compare rows of one run, not runs of different days).

    python3 benchmarks/bench_cli.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "painface --help": [sys.executable, "-m", "painface.cli", "--help"],
    "painface export --help": [sys.executable, "-m", "painface.cli", "export", "--help"],
    "painface generate --help": [sys.executable, "-m", "painface.cli", "generate", "--help"],
    "painface serve --help": [sys.executable, "-m", "painface.cli", "serve", "--help"],
}


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"median of {args.repeats}")
    print("| command | median s | x floor |")
    print("|---|---:|---:|")
    floor = None
    for name, cmd in CASES.items():
        timed(cmd)  # warm the file cache
        med = statistics.median(timed(cmd) for _ in range(args.repeats))
        floor = floor or med
        print(f"| `{name}` | {med:.3f} | {med / floor:.1f} |")


if __name__ == "__main__":
    main()
