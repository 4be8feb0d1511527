"""Live engine speed and latency: real-time factor per number of patients, reaction latency, and what the
browser is sent (face codes vs rendered frames).

1. Step mode, every patient count in ``--patients``: median compute per window over ``--windows``
   windows (after one warm-up), real-time factor = (horizon / fps) / compute; the most patients kept in
   real time (factor >= 1) for each sampler setting in ``--settings`` (horizon/window/steps).
2. Clocked mode at the live defaults (``--latency-patients``, default 1 and 8): stimulus steps 0 -> 0.9 pushed at random
   moments (seeded); medians of the engine's own measurements: pipeline latency (step pushed -> due time
   of the first frame generated with it) and reaction latency (-> first frame whose PSPI departs by 1
   from rest), plus overruns.
3. Face in the browser vs frames streamed: bytes per frame of a ``frames`` message against a 256 px JPEG
   and the server CPU time to render + encode one frame.

Usage: ``python3 benchmarks/bench_stream.py [--checkpoint PATH] [--threads 1] [--inference torch,auto]``
(``NAME+distilled``: that backend with the distilled guided network, painface.model.distill; plain names run the
four guided passes).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
import warnings

import numpy as np
import torch

from painface.express import ExtrapolationWarning, PainDiffusion
from painface.stream import LIVE_DEFAULTS, StreamEngine


def window_seconds(model: PainDiffusion, patients: int, windows: int, **sampler) -> float:
    eng = StreamEngine(model, max_patients=max(patients, 1), threads=None, **sampler)
    rng = np.random.default_rng(0)
    pids = [eng.add_patient(expressiveness=float(rng.uniform(0.5, 3)), seed=i) for i in range(patients)]
    times = []
    for w in range(windows + 1):
        for p in pids:
            eng.push(p, np.full(eng.config.horizon, 0.9 if w % 4 >= 2 else 0.0))
        t = time.perf_counter()
        eng.step()
        times.append(time.perf_counter() - t)
    return float(np.median(times[1:]))


def latencies(model: PainDiffusion, patients: int, trials: int, seed: int, lead_s: float = 0.25,
              redo: bool = True, stagger: bool = False, **sampler) -> dict:
    """Clocked engine, ``trials`` stimulus steps 0 -> 0.9 per patient; all patients at one random moment, or with
    ``stagger`` each at its own (spread over one window period: news arriving independently)."""
    eng = StreamEngine(model, max_patients=patients, threads=None, lead_s=lead_s, redo=redo, **sampler)
    pids = [eng.add_patient(expressiveness=2.0, seed=i) for i in range(patients)]
    rng = np.random.default_rng(seed)
    period = eng.config.horizon / eng.fps
    eng.start()
    try:
        for _ in range(trials):
            for p in pids:
                eng.push(p, 0.0)
            time.sleep(3.0 + rng.uniform(0, period))  # rest, then a random phase
            at = np.sort(rng.uniform(0, period, len(pids))) if stagger else np.zeros(len(pids))
            t0 = time.monotonic()
            for p, t in zip(rng.permutation(pids), at, strict=True):
                time.sleep(max(t0 + t - time.monotonic(), 0.0))
                eng.push(int(p), 0.9)
            time.sleep(5.0)
            for p in pids:
                eng.pull(p)
        return eng.stats()
    finally:
        eng.stop()


def transport(model: PainDiffusion) -> dict:
    from PIL import Image

    from painface.face.code import neutral_face
    from painface.face.mesh import vertex_colors
    from painface.face.render import render
    from painface.face.rig import build_rig, deform
    from painface.serve.app import chunk_message
    from painface.stream import Chunk

    eng = StreamEngine(model, threads=None)
    pid = eng.add_patient()
    eng.push(pid, np.full(48, 0.9))
    for _ in range(4):
        eng.step()
    chunk = eng.pull(pid)
    msg = json.dumps(chunk_message(Chunk(chunk.start, chunk.face, chunk.stimulus, chunk.pspi, chunk.fps)))
    rig = build_rig()
    colors = vertex_colors(rig.mesh)
    face = chunk.face if chunk.face.shape[1] == 20 else neutral_face(len(chunk))
    render(deform(face[:1], rig), rig.mesh.triangles, colors)  # compile
    t = time.perf_counter()
    imgs = render(deform(face, rig), rig.mesh.triangles, colors)
    jpeg = []
    for im in imgs:
        buf = io.BytesIO()
        Image.fromarray(im).save(buf, format="JPEG", quality=85)
        jpeg.append(len(buf.getvalue()))
    per_frame_ms = (time.perf_counter() - t) / len(imgs) * 1e3
    return {"code_bytes": len(msg) / len(chunk), "jpeg_bytes": float(np.mean(jpeg)), "render_ms": per_frame_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model.safetensors (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: see docs/model.md on contention)")
    ap.add_argument("--patients", default="1,2,4,8,12,16")
    ap.add_argument("--settings", default="12/32/8,12/32/10,8/32/8,12/32/15,16/32/8",
                    help="horizon/window/steps triples, the first is the live default")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--trials", type=int, default=4, help="stimulus steps per latency run")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-transport", action="store_true")
    ap.add_argument("--latency-patients", default="1,8", help="patient counts of the clocked-mode latency runs")
    ap.add_argument("--lead", type=float, default=0.25, help="StreamEngine lead_s of the latency runs (default 0.25)")
    ap.add_argument("--latency-sampler", default="{}", help='JSON of sampler overrides for the latency runs, e.g. '
                    '\'{"horizon": 8}\'')
    ap.add_argument("--redo", default="on", help="latency runs with the engine's redo on news: on, off or on,off")
    ap.add_argument("--stagger", action="store_true",
                    help="latency runs: each patient's step at its own moment within a window period (else all at one)")
    ap.add_argument("--inference", default="auto",
                    help="inference backends (painface.model.inference), each a row per setting; the latency runs "
                         "use the last")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=ExtrapolationWarning)  # patients above the trained range: timing only
    torch.set_num_threads(args.threads)
    backends = args.inference.split(",")
    models = {b: PainDiffusion.load(args.checkpoint, inference=b.removesuffix("+distilled"),
                                    distilled=b.endswith("+distilled")) for b in backends}
    model = models[backends[-1]]
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), load average {open('/proc/loadavg').read().split()[:3]}")
    print(f"live defaults: {LIVE_DEFAULTS}; fps {model.fps}")
    counts = [int(v) for v in args.patients.split(",")]
    print("\n| horizon/window/steps | backend | " + " | ".join(f"{p} pt" for p in counts) + " | most in real time |")
    print("|---" * (len(counts) + 3) + "|")
    for spec in args.settings.split(","):
        h, w, s = (int(v) for v in spec.split("/"))
        rtf: dict[str, list[float]] = {b: [] for b in backends}
        for p in counts:
            for b in backends:  # interleaved: the backends of one patient count share the machine's load
                sec = window_seconds(models[b], p, args.windows, horizon=h, window=w, steps=s)
                rtf[b].append((h / model.fps) / sec)
        for b in backends:
            best = max([p for p, r in zip(counts, rtf[b], strict=True) if r >= 1.0], default=0)
            print(f"| {h}/{w}/{s} | {b} | " + " | ".join(f"{r:.2f}x" for r in rtf[b]) + f" | {best} |", flush=True)
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    if not args.skip_transport:
        t = transport(model)
        print(f"\nbrowser draws the face: {t['code_bytes']:.0f} bytes/frame of face code (JSON); streaming frames "
              f"instead: {t['jpeg_bytes']:.0f} bytes/frame (256 px JPEG) and {t['render_ms']:.1f} ms of server "
              "CPU per frame (render + encode)")
    if args.skip_latency:
        return
    print(f"\nsteps {'staggered over a window period' if args.stagger else 'all patients at once'}, lead {args.lead} s")
    print("\n| patients | redo | pipeline latency (s) | reaction latency (s) | reaction, stream time (s) "
          "| steps measured | real-time factor | overruns | redos | redo ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in (int(v) for v in args.latency_patients.split(",")):
        for redo in args.redo.split(","):
            st = latencies(model, p, args.trials, seed=p, lead_s=args.lead, redo=redo == "on", stagger=args.stagger,
                           **json.loads(args.latency_sampler))
            fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
            print(f"| {p} | {redo} | {fmt(st['pipeline_s'])} | {fmt(st['reaction_s'])} | "
                  f"{fmt(st['reaction_stream_s'])} | {st['reactions']} | {fmt(st['real_time_factor'])} | "
                  f"{st['overruns']} | {st['redos']} | {fmt(st['redo_ms'])} |", flush=True)


if __name__ == "__main__":
    main()
