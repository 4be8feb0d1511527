"""The live web app: one :class:`~painface.stream.StreamEngine` shared by every browser tab.

``create_app(model, ...)`` returns a FastAPI app: ``GET /`` (the page), ``GET /static/*`` (its JS and
CSS), ``GET /face.glb[?identity=N]`` (the whole head of identity N, default the average head, with one
morph target per AU, sent once; the browser draws the face from the streamed face code),
``GET /api/identities`` (the page's preset identities), ``GET /api/info`` and the WebSocket ``/ws``
(one patient per connection). The protocol (every message and field, the errors) is documented in docs/live.md.

Length: over ~400 lines because the WebSocket protocol (parsing, per-connection state, every error
answer) reads best in one file; what it uses lives elsewhere (the engine in :mod:`painface.stream`, origin
and rate limits in :mod:`painface.serve.guard`, live links in :mod:`painface.serve.links`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from painface.errors import InputError
from painface.face.code import AU_NAMES, EMOTIONS, FEATURE_NAMES
from painface.model.conditions import EXPRESSIVENESS_RANGE
from painface.serve.guard import OriginGuard, RateLimit
from painface.serve.heads import MAX_IDENTITY_SEED, GlbCache, parse_identity, presets
from painface.serve.record import MAX_RECORD_S, Recorder, npz_bytes
from painface.stream import GUIDANCE_MAX, STIMULUS_RANGE, Chunk, StreamEngine, check_samples

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
MAX_MESSAGE_BYTES = 4096
"""Largest accepted client message (bytes of JSON text); larger ones get a ``too_large`` error."""
MAX_SAMPLES = 250
"""Most stimulus samples in one ``stimulus`` message (10 s at 25 fps)."""
QUEUE_CHUNKS = 48
"""Chunks kept for a client that reads too slowly; older ones are dropped. The live engine hands frames out
in pieces of about 2 frames as they come due, so this is about 4 s of face."""
MAX_QUEUED_S = 30.0
"""Most stimulus a session may queue ahead of the generated frames (seconds): a ``samples`` message that
would queue more is refused (``queue_full``) and nothing of it is queued. Slider values and pain pulses
never queue: the latest value replaces what was queued ("latest wins")."""
PAIN_LIMITS = {"peak": (0.0, 1.5), "hold_s": (0.0, 10.0), "decay_s": (0.05, 30.0)}
STATS_EVERY_S = 2.0


class ProtocolError(Exception):
    """A client message that breaks the protocol: answered with ``{"type": "error", "code", "message"}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _finite(v: Any) -> float | None:
    """``v`` as a finite float, or None (not a number, bool, NaN, infinity, or an integer beyond float)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if math.isfinite(f) else None


def _show(v: Any) -> str:
    """A short, printable form of a client's value for an error message."""
    text = repr(v) if not isinstance(v, int) or abs(v) < 10**30 else f"an integer of {len(str(abs(v)))} digits"
    return text if len(text) <= 40 else text[:37] + "..."


def _number(msg: dict, key: str, lo: float, hi: float, default: float | None = None) -> float:
    v = msg.get(key, default)
    f = _finite(v)
    if f is None:
        raise ProtocolError("bad_value", f"{key}: expected a finite number in [{lo:g}, {hi:g}], got {_show(v)}")
    if not lo <= f <= hi:
        raise ProtocolError("bad_value", f"{key}: {_show(v)} out of range; expected [{lo:g}, {hi:g}]")
    return f


class Session:
    """One WebSocket client: its patient in the engine, its stimulus (slider level + decaying pulse)."""

    recorder: Recorder  # the session's recording (set by serve_client before any frame arrives)

    def __init__(self, app_state: Any, ws: WebSocket, pid: int, queue: asyncio.Queue) -> None:
        self.state, self.ws, self.pid, self.queue = app_state, ws, pid, queue
        self.level = 0.0
        self.pulse: tuple[float, float, float, float] | None = None  # (t0, peak, hold_s, decay_s)
        self.pulse_task: asyncio.Task | None = None
        self.sink_task: asyncio.Task | None = None  # live links fed from this session's frames

    def value(self, now: float) -> float:
        """The stimulus now: max(slider level, pulse: peak during hold, then exponential decay)."""
        if self.pulse is None:
            return self.level
        t0, peak, hold, decay = self.pulse
        dt = now - t0 - hold
        p = peak if dt < 0 else peak * math.exp(-dt / decay)
        if dt > 0 and p < 0.01:
            self.pulse = None
            return self.level
        return max(self.level, p)

    async def handle(self, text: str) -> dict | None:
        """Apply one client message; returns the reply (or None)."""
        engine: StreamEngine = self.state.engine
        if len(text.encode()) > MAX_MESSAGE_BYTES:
            raise ProtocolError("too_large", f"message of {len(text.encode())} bytes; at most {MAX_MESSAGE_BYTES}")
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):  # JSONDecodeError, and int-from-string digit limits
            raise ProtocolError("bad_json", "not valid JSON") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("bad_message", 'expected a JSON object with a string "type"')
        kind = msg["type"]
        if kind == "ping":
            return {"type": "pong", "t": _finite(msg.get("t"))}
        if kind == "stimulus":
            if "samples" in msg:
                samples = msg["samples"]
                if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
                    raise ProtocolError("bad_value", f"samples: expected a list of at most {MAX_SAMPLES} numbers")
                arr = self._checked(samples)
                try:
                    engine.push(self.pid, arr)
                except InputError as e:
                    raise ProtocolError("queue_full", str(e)) from None
                self.level = float(arr[-1]) if arr.size else self.level
                return None
            self.level = _number(msg, "value", *STIMULUS_RANGE)
            engine.push(self.pid, self.value(time.monotonic()), replace=True)  # latest wins
            return None
        if kind == "pain":
            peak = _number(msg, "peak", *PAIN_LIMITS["peak"], default=1.0)
            hold = _number(msg, "hold_s", *PAIN_LIMITS["hold_s"], default=1.0)
            decay = _number(msg, "decay_s", *PAIN_LIMITS["decay_s"], default=3.0)
            self.pulse = (time.monotonic(), peak, hold, decay)
            engine.push(self.pid, self.value(time.monotonic()), replace=True)
            if self.pulse_task is None or self.pulse_task.done():
                self.pulse_task = asyncio.create_task(self._pulse_loop())
            return None
        if kind == "settings":
            unknown = set(msg) - {"type", "expressiveness", "emotion", "guidance"}
            if unknown:
                raise ProtocolError("bad_message", f"settings: unknown field(s) {_show(sorted(unknown))}")
            _check_setting_numbers(msg)
            try:
                engine.configure(self.pid, expressiveness=msg.get("expressiveness"), emotion=msg.get("emotion"),
                                 guidance=msg.get("guidance"))
            except InputError as e:
                raise ProtocolError("bad_value", str(e)) from None
            return {"type": "settings", **engine.settings(self.pid)}
        if kind == "record":
            return await self._record(msg)
        raise ProtocolError("unknown_type", f"type {kind!r}; expected one of stimulus, pain, settings, record, ping")

    async def _record(self, msg: dict) -> dict | None:
        """``record`` start / stop (painface.serve.record): stop sends the reply, then the npz (binary)."""
        rec: Recorder = self.recorder
        unknown = set(msg) - {"type", "action", "identity"}
        if unknown:
            raise ProtocolError("bad_message", f"record: unknown field(s) {_show(sorted(unknown))}")
        action = msg.get("action")
        if action == "start":
            ident = msg.get("identity")
            if ident is not None and (isinstance(ident, bool) or not isinstance(ident, int)
                                      or not 0 <= ident <= MAX_IDENTITY_SEED):
                raise ProtocolError("bad_value", f"identity: expected null or a seed 0..{MAX_IDENTITY_SEED}, "
                                                 f"got {_show(ident)}")
            if rec.active:
                raise ProtocolError("bad_value", "record: already recording; send action \"stop\" first")
            rec.begin(ident)
            return {"type": "record", "recording": True, "frames": 0, "max_s": MAX_RECORD_S}
        if action == "stop":
            if not rec.active:
                raise ProtocolError("bad_value", "record: not recording; send action \"start\" first")
            await self.send_recording("stopped")
            return None
        raise ProtocolError("bad_value", f'action: expected "start" or "stop", got {_show(action)}')

    async def send_recording(self, reason: str) -> None:
        """End the recording: a ``record`` message (frames, seconds, bytes, reason), then the npz."""
        n, parts = self.recorder.finish()
        data = await asyncio.to_thread(npz_bytes, **parts) if parts else None
        await send_json(self.ws, {"type": "record", "recording": False, "frames": n,
                                  "seconds": round(n / self.recorder.fps, 3), "bytes": len(data or b""),
                                  "reason": reason})
        if data:
            await self.ws.send_bytes(data)

    @staticmethod
    def _checked(samples: list) -> np.ndarray:
        if any(_finite(s) is None for s in samples):
            raise ProtocolError("bad_value", "samples: expected finite numbers in the stimulus range")
        try:
            return check_samples(np.asarray(samples, dtype=np.float64))
        except InputError as e:
            raise ProtocolError("bad_value", str(e)) from None

    async def _pulse_loop(self) -> None:
        """While a pulse decays, push the stimulus every frame period."""
        period = 1.0 / self.state.engine.fps
        while self.pulse is not None:
            await asyncio.sleep(period)
            with contextlib.suppress(InputError):
                self.state.engine.push(self.pid, self.value(time.monotonic()), replace=True)


def _check_setting_numbers(msg: dict) -> None:
    """Every number of a ``settings`` message finite and float-sized (the engine checks the ranges)."""
    for key in ("expressiveness", "guidance", "emotion"):
        v = msg.get(key)
        values = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else [v]
        if v is None or (key == "emotion" and isinstance(v, str)):
            continue
        if len(values) > 16 or any(_finite(x) is None for x in values):
            raise ProtocolError("bad_value", f"{key}: expected finite numbers, got {_show(v)}")


async def send_json(ws: WebSocket, obj: dict) -> None:
    """Send ``obj`` as strict JSON (no bare NaN/Infinity, which browsers' JSON.parse refuses)."""
    await ws.send_text(json.dumps(obj, allow_nan=False, separators=(",", ":")))


def chunk_message(chunk: Chunk) -> dict:
    """A ``frames`` message: face codes rounded to 3 decimals."""
    return {"type": "frames", "start": chunk.start, "fps": chunk.fps,
            "face": np.round(chunk.face.astype(np.float64), 3).tolist(),
            "stimulus": np.round(chunk.stimulus.astype(np.float64), 3).tolist(),
            "pspi": None if chunk.pspi is None else np.round(chunk.pspi.astype(np.float64), 3).tolist()}


def create_app(model: Any, *, max_patients: int = 8, engine: StreamEngine | None = None, seed: int = 0,
               sinks: list[Any] | None = None, bind_host: str = "127.0.0.1", allow_origins: Sequence[str] = (),
               **engine_kw: Any) -> FastAPI:
    """The app for ``model`` (a PainDiffusion). ``engine``: use this engine (else one is made with
    ``max_patients`` and ``engine_kw``); it is started with the app and stopped with it. ``sinks``: objects
    with ``send(frame [D], pspi)`` fed every frame of the first session (live links). ``bind_host`` and
    ``allow_origins``: who may connect (:class:`~painface.serve.guard.OriginGuard`, docs/security.md)."""
    eng = engine or StreamEngine(model, max_patients=max_patients, **engine_kw)
    if eng.max_queued is None:
        eng.max_queued = int(MAX_QUEUED_S * eng.fps)
    heads = GlbCache(eng.fps)  # identity seed (None: the average head) -> glb, least recently used out

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        eng.start()
        try:
            yield
        finally:
            eng.stop()

    app = FastAPI(title="painface live", lifespan=lifespan)
    app.state.engine, app.state.sessions, app.state.seed, app.state.sinks = eng, {}, seed, sinks or []
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(OriginGuard, bind_host=bind_host, allow_origins=allow_origins)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/face.glb")
    async def face_glb(identity: str | None = None) -> Response:
        try:
            seed = parse_identity(identity)
        except InputError as e:
            return JSONResponse({"detail": str(e)}, status_code=400)
        data = await heads.get(seed)
        return Response(data, media_type="model/gltf-binary", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/identities")
    async def identities() -> JSONResponse:
        return JSONResponse({"presets": await asyncio.to_thread(presets), "max_seed": MAX_IDENTITY_SEED})

    @app.get("/api/info")
    async def info() -> JSONResponse:
        return JSONResponse(info_message(eng))

    @app.get("/api/stats")
    async def stats() -> JSONResponse:
        return JSONResponse({"sessions": len(app.state.sessions), **eng.stats(), "error": repr(eng.error)
                             if eng.error else None})

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket) -> None:
        await serve_client(app, ws)

    return app


def info_message(eng: StreamEngine) -> dict:
    return {"fps": eng.fps, "horizon": eng.config.horizon, "window": eng.config.window,
            "steps": eng.config.steps, "features": list(eng.names),
            "aus": list(AU_NAMES) if eng.facs else [], "emotions": list(EMOTIONS),
            "facs": eng.facs and tuple(eng.names) == FEATURE_NAMES,
            "limits": {"stimulus": list(STIMULUS_RANGE), "expressiveness": list(EXPRESSIVENESS_RANGE),
                       "guidance": [0.0, GUIDANCE_MAX], "message_bytes": MAX_MESSAGE_BYTES,
                       "samples": MAX_SAMPLES, **{f"pain_{k}": list(v) for k, v in PAIN_LIMITS.items()}},
            "max_patients": eng.max_patients,
            # the checkpoint's training subjects' expressiveness (the page's slider spans it); None if unrecorded
            "trained_expressiveness": _trained_expressiveness(eng)}


def _trained_expressiveness(eng: StreamEngine) -> list[float] | None:
    rng = getattr(eng.model, "trained_expressiveness", None)
    return list(rng) if rng else None


async def serve_client(app: FastAPI, ws: WebSocket) -> None:
    """One connection: accept, add a patient (or answer ``busy`` and close), then read messages and send
    frames until the client leaves; the patient is always removed."""
    eng: StreamEngine = app.state.engine
    await ws.accept()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)
    recorder = Recorder(eng.fps, eng.names)

    def deliver(chunk: Chunk) -> None:  # engine thread -> event loop
        loop.call_soon_threadsafe(_offer, queue, chunk)
        loop.call_soon_threadsafe(recorder.add, chunk)

    try:
        app.state.seed += 1
        pid = eng.add_patient(seed=app.state.seed, on_frames=deliver)
    except InputError as e:
        with contextlib.suppress(Exception):
            await ws.send_json({"type": "error", "code": "busy", "message": str(e)})
            await ws.close(code=1013)
        return
    session = Session(app.state, ws, pid, queue)
    session.recorder = recorder
    recorder.on_full = lambda: _spawn(session.send_recording("limit"))
    app.state.sessions[pid] = session
    sender = asyncio.create_task(_send_frames(app, session))
    try:
        await send_json(ws, {"type": "hello", "session": pid, **info_message(eng), "settings": eng.settings(pid)})
        limit = RateLimit()  # a flooding client is slowed down, not the others
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            await limit.wait()
            text = msg.get("text")
            try:
                if text is None:
                    raise ProtocolError("bad_message", "binary messages are not accepted; send JSON text")
                reply = await session.handle(text)
            except ProtocolError as e:
                reply = {"type": "error", "code": e.code, "message": str(e)}
            except (InputError, ArithmeticError, TypeError, ValueError) as e:  # a check missed: answer, go on
                log.warning("session %s: %s on a client message", pid, type(e).__name__)
                reply = {"type": "error", "code": "bad_value", "message": f"{type(e).__name__}: {str(e)[:120]}"}
            if reply is not None:
                await send_json(ws, reply)
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        eng.remove_patient(pid)
        app.state.sessions.pop(pid, None)
        session.pulse = None
        for task in (sender, session.pulse_task):
            if task is not None:
                task.cancel()


_BACKGROUND: set[asyncio.Task] = set()


def _spawn(coro: Any) -> None:
    """Run ``coro`` in the background (a reference kept; errors of a vanished client ignored)."""
    async def quiet() -> None:
        with contextlib.suppress(Exception):
            await coro

    task = asyncio.ensure_future(quiet())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _offer(queue: asyncio.Queue, chunk: Chunk) -> None:
    if queue.full():  # a slow reader: drop its oldest chunk rather than grow
        queue.get_nowait()
    queue.put_nowait(chunk)


async def _send_frames(app: FastAPI, session: Session) -> None:
    last_stats = time.monotonic()
    with contextlib.suppress(Exception):
        while True:
            chunk = await session.queue.get()
            await send_json(session.ws, chunk_message(chunk))
            if app.state.sinks and next(iter(app.state.sessions), None) == session.pid:
                session.sink_task = asyncio.create_task(asyncio.to_thread(_feed_sinks, app.state.sinks, chunk))
            if time.monotonic() - last_stats > STATS_EVERY_S:
                last_stats = time.monotonic()
                await send_json(session.ws, _finite_stats(app.state.engine.stats()))


def _finite_stats(stats: dict) -> dict:
    """A ``stats`` message with non-finite numbers as null (strict JSON)."""
    return {"type": "stats", **{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                for k, v in stats.items()}}


def _feed_sinks(sinks: list[Any], chunk: Chunk) -> None:
    """Send a chunk's frames to the live links at the stream's pace: each at its due time in clocked mode (so
    the pieces the engine hands out, each fed by its own thread, stay in order), else one per 1 / fps s."""
    for i in range(len(chunk)):
        due = chunk.due(i)
        if due is not None:
            time.sleep(max(due - time.monotonic(), 0.0))
        elif i:
            time.sleep(1.0 / chunk.fps)
        for sink in sinks:
            with contextlib.suppress(Exception):
                sink.send(chunk.face[i], None if chunk.pspi is None else float(chunk.pspi[i]))
