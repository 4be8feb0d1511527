"""The live server under a stimulus flood and a slider burst (loopback only), for docs/security.md.

Starts ``painface serve`` (the shipped checkpoint, 1 torch thread) in a subprocess from a source tree
(``--tree``, default this one; point it at an older checkout to compare), then:

* **flood**: one client sends ``--messages`` messages of 250 stimulus samples as fast as it can while a
  second client counts its frames; the server's resident memory (VmRSS, peak VmHWM) is read from /proc;
* **slider**: a fresh client sends 125 slider values (0..0.9) at once, then 1.0; the time until a
  ``frames`` message generated with 1.0 arrives, against a single move from rest to 1.0 (``--runs`` each,
  median).

Prints one table. Usage: ``python benchmarks/bench_serve_flood.py [--tree DIR] [--messages N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websockets


def _mem(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0  # MiB
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _frames_until(ws, pred, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if msg["type"] == "frames" and pred(msg):
            return time.monotonic()


async def flood(url: str, pid: int, n: int) -> dict[str, float]:
    async with websockets.connect(url, max_size=None) as fl, websockets.connect(url, max_size=None) as keeper:
        await fl.recv()
        await keeper.recv()
        await _frames_until(keeper, lambda m: True)
        before = _mem(pid)
        counts = {"frames": 0, "errors": 0, "closed": None}
        stop = asyncio.Event()

        async def keep() -> None:
            while not stop.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(keeper.recv(), 0.5))
                except TimeoutError:
                    continue
                counts["frames"] += len(msg["face"]) if msg["type"] == "frames" else 0

        async def drain() -> None:
            try:
                while True:
                    msg = json.loads(await fl.recv())
                    counts["errors"] += msg["type"] == "error"
                    if msg["type"] == "pong":
                        return
            except websockets.exceptions.ConnectionClosed as e:  # keepalive gave up on the throttled flooder
                counts["closed"] = f"{e.rcvd.code if e.rcvd else e.sent.code} after {time.monotonic() - t0:.0f} s"

        t0 = time.monotonic()
        tasks = [asyncio.create_task(keep()), asyncio.create_task(drain())]
        text = json.dumps({"type": "stimulus", "samples": [0.5] * 250})
        sent = 0
        try:
            for _ in range(n):
                await fl.send(text)
                sent += 1
            await fl.send('{"type": "ping", "t": 1}')
        except websockets.exceptions.ConnectionClosed:
            pass
        await tasks[1]
        sent_s = time.monotonic() - t0
        await asyncio.sleep(2.0)  # the engine works through what was queued
        stop.set()
        await tasks[0]
        after = _mem(pid)
        return {"rss_before": before["VmRSS"], "rss_after": after["VmRSS"], "peak": after["VmHWM"],
                "flood_s": sent_s, "keeper_fps": counts["frames"] / (time.monotonic() - t0),
                "refused": counts["errors"], "sent": sent, "closed": counts["closed"]}


async def slider(url: str, burst: int) -> float:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()
        await ws.send('{"type": "stimulus", "value": 0}')
        await _frames_until(ws, lambda m: True)
        await asyncio.sleep(1.0)
        for i in range(burst):
            await ws.send(json.dumps({"type": "stimulus", "value": (i % 10) / 10}))
        t0 = time.monotonic()
        await ws.send('{"type": "stimulus", "value": 1.0}')
        t1 = await _frames_until(ws, lambda m: max(m["stimulus"]) >= 0.999)
        return t1 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(args.tree), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "painface.cli", "serve", "--port", str(port), "--threads", "1"],
                            env=env, cwd=args.tree, stdout=subprocess.DEVNULL,
                            stderr=open(os.environ.get("BENCH_LOG", os.devnull), "w"))  # noqa: SIM115
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        url = f"ws://127.0.0.1:{port}/ws"
        single = [asyncio.run(slider(url, 0)) for _ in range(args.runs)]
        burst = [asyncio.run(slider(url, 125)) for _ in range(args.runs)]
        f = asyncio.run(flood(url, proc.pid, args.messages))
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"tree: {args.tree}")
    print("| measure | value |\n| --- | --- |")
    print(f"| slider rest -> 1.0, median of {args.runs} (s) | {statistics.median(single):.2f} |")
    print(f"| 125 slider values then 1.0, median of {args.runs} (s) | {statistics.median(burst):.2f} |")
    print(f"| flood: {args.messages:,} messages x 250 samples, sent in (s) | {f['flood_s']:.1f} |")
    print(f"| flood: messages sent before the end / refused (queue_full) | {f['sent']:,} / {f['refused']:,} |")
    print(f"| flood connection closed (code, when) | {f['closed'] or 'no'} |")
    print(f"| server RSS before / after the flood (MiB) | {f['rss_before']:.0f} / {f['rss_after']:.0f} |")
    print(f"| server peak RSS (MiB) | {f['peak']:.0f} |")
    print(f"| other client's frames per second during the flood | {f['keeper_fps']:.1f} |")


if __name__ == "__main__":
    main()
