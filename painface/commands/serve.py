"""``painface serve``: the live page and WebSocket server (FastAPI + uvicorn), 127.0.0.1 unless asked."""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path
from typing import Any

from painface.errors import InputError

WS_MAX_BYTES = 1 << 20
"""uvicorn's protocol-level frame limit: larger frames close the connection (code 1009); frames up to it
reach the app, which answers the ones over its own 4 KiB limit with a ``too_large`` error."""


def _address(text: str, option: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{option} {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9000")
    return host, int(port)


def configure(p: argparse.ArgumentParser) -> None:
    from painface.stream import LIVE_DEFAULTS  # the engine's defaults (imports torch: only for this command)

    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--checkpoint", type=Path, default=None, help="model.safetensors (default: the shipped one)")
    p.add_argument("--max-patients", type=int, default=8, help="browser tabs served at once (default 8)")
    p.add_argument("--horizon", type=int, default=LIVE_DEFAULTS["horizon"],
                   help=f"new frames per window: the latency setting (default {LIVE_DEFAULTS['horizon']})")
    p.add_argument("--window", type=int, default=LIVE_DEFAULTS["window"], help="frames per window (context + horizon)")
    p.add_argument("--steps", type=int, default=LIVE_DEFAULTS["steps"], help="solver steps per window")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the engine (default 1)")
    p.add_argument("--osc", default=None, metavar="HOST:PORT", help="send AUs and PSPI of the first tab by OSC/UDP")
    p.add_argument("--vmc", default=None, metavar="HOST:PORT", help="send ARKit blendshapes of the first tab by VMC")
    p.add_argument("--joint", default=None, metavar="udp:[HOST:]PORT",
                   help="a joint angle over UDP (or serial:DEVICE[:BAUD]) drives the stimulus of the first tab "
                        "(elbow robot; docs/links.md)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept pages and Host names of this origin, e.g. http://192.168.1.20:8000 "
                        "(repeatable; default: only the served origin on this machine; docs/security.md)")


class _VmcFeed:
    """Adapts a VmcSink to the app's ``send(frame, pspi)`` sinks."""

    def __init__(self, sink: Any, names: tuple[str, ...]) -> None:
        self.sink, self.names = sink, names

    def send(self, frame: Any, pspi: float | None) -> None:
        self.sink.send(frame, self.names)

    def close(self) -> None:
        self.sink.close()


def build(args: argparse.Namespace) -> tuple[Any, list[Any], Any]:
    """(app, sinks, joint source) for the parsed options."""
    from painface.express import PainDiffusion
    from painface.serve.app import create_app
    from painface.serve.guard import normalize_origin

    if not 0 <= args.port < 65536:
        raise InputError(f"--port {args.port}: expected 0..65535")
    if args.max_patients < 1 or args.threads < 1:
        raise InputError("--max-patients and --threads: expected >= 1")
    _check_host(args.host)
    for origin in args.allow_origin:
        normalize_origin(origin)
    model = PainDiffusion.load(args.checkpoint)
    sinks: list[Any] = []
    joint = None
    if args.osc or args.vmc or args.joint:
        from painface.serve import links

        if args.osc:
            sinks.append(links.OscSink(*_address(args.osc, "--osc")))
        if args.vmc:
            sinks.append(_VmcFeed(links.VmcSink(*_address(args.vmc, "--vmc")), model.feature_names))
        if args.joint:
            try:
                joint = links.parse_source(args.joint)
            except InputError as e:
                raise InputError(f"--joint: {e}") from None
    app = create_app(model, max_patients=args.max_patients, threads=args.threads, sinks=sinks,
                     horizon=args.horizon, window=args.window, steps=args.steps, bind_host=args.host,
                     allow_origins=args.allow_origin)
    return app, sinks, joint


def _check_host(host: str) -> None:
    """``--host`` must be an address of this machine's interfaces or a name that resolves."""
    import socket

    try:
        socket.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise InputError(f"--host {host!r}: not an IP address or resolvable host name ({e}); expected e.g. "
                         "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None


def _joint_loop(app: Any, joint: Any, stop: threading.Event) -> None:
    """Feed the joint angle (as stimulus) to the first session, 25 times a second."""
    while not stop.wait(0.04):
        sessions = list(app.state.sessions.values())
        if sessions:
            with contextlib.suppress(InputError):
                app.state.engine.push(sessions[0].pid, joint.latest(), replace=True)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    app, sinks, joint = build(args)
    stop = threading.Event()
    if joint is not None:
        threading.Thread(target=_joint_loop, args=(app, joint, stop), daemon=True).start()
    print(f"painface serve: http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    if args.host.strip("[]") in ("0.0.0.0", "::") and not args.allow_origin:
        print("painface serve: listening on every interface, but only loopback names are accepted as Host; "
              "add --allow-origin http://THIS-MACHINE:PORT for other machines (docs/security.md)")
    try:
        uvicorn.run(app, host=args.host, port=args.port, ws_max_size=WS_MAX_BYTES, log_level="warning")
    except OSError as e:
        raise InputError(f"--host {args.host} --port {args.port}: cannot listen: {e.strerror or e}") from None
    finally:
        stop.set()
        for s in [*sinks, joint]:
            if s is not None and hasattr(s, "close"):
                with contextlib.suppress(Exception):
                    s.close()
    return 0


class BackgroundServer:
    """Run ``app`` with uvicorn in a thread on ``host`` and a free port (tests, benchmarks):
    ``with BackgroundServer(app) as url: ...``; ``url`` is ``http://host:port``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", timeout_s: float = 60.0) -> None:
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.port, self.host, self.timeout_s = self.sock.getsockname()[1], host, timeout_s
        config = uvicorn.Config(app, ws_max_size=WS_MAX_BYTES, log_level="warning", backlog=512)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        import time

        self.thread.start()
        deadline = time.monotonic() + self.timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return f"http://{self.host}:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(self.timeout_s)
        self.sock.close()
