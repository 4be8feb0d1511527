"""The live server against a hostile browser tab and a careless client (loopback only): Origin and Host
checks, numbers that break JSON or float conversion, the bounded stimulus queue and "latest wins"."""

import asyncio
import http.client
import json
import math
import time

import pytest
import websockets
from test_stream import SMALL, tiny_model

from painface.commands.serve import BackgroundServer
from painface.errors import InputError
from painface.serve.app import MAX_QUEUED_S, MAX_SAMPLES, Session, create_app
from painface.serve.guard import MESSAGE_BURST, MESSAGES_PER_S, OriginGuard, RateLimit, normalize_origin
from painface.stream import StreamEngine

ALLOWED = "http://lab-pc.local:8000"


@pytest.fixture(scope="module")
def server():
    app = create_app(tiny_model(), max_patients=8, threads=None, lead_s=0.05, allow_origins=[ALLOWED], **SMALL)
    with BackgroundServer(app) as url:
        yield url, app


def request(url: str, path: str, headers: dict, upgrade: bool = False) -> tuple[int, bytes]:
    """A raw HTTP/1.1 GET with exactly these Host/Origin headers (``upgrade``: a WebSocket handshake)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    if upgrade:
        headers = {**headers, "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    status, body = r.status, r.read() if r.status != 101 else b""
    conn.close()
    return status, body


@pytest.mark.parametrize("path,upgrade", [("/api/info", False), ("/ws", True), ("/", False)])
def test_foreign_origins_and_hosts_are_refused(server, path, upgrade):
    url, _ = server
    here = url.removeprefix("http://")
    port = here.split(":")[1]
    refused = [
        {"Host": here, "Origin": "http://evil.example"},
        {"Host": here, "Origin": "null"},
        {"Host": here, "Origin": "https://attacker.invalid:8443"},
        {"Host": here, "Origin": f"http://127.0.0.1:{int(port) + 1}"},  # another local port: another origin
        {"Host": f"evil.example:{port}"},  # DNS rebinding: the attacker's name resolved to 127.0.0.1
        {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
    ]
    for headers in refused:
        status, body = request(url, path, headers, upgrade)
        assert status == 403, headers
        if not upgrade:
            assert json.loads(body)["error"] == "forbidden"
    assert request(url, path, {}, upgrade)[0] in (400, 403)  # no Host at all (uvicorn answers 400 itself)
    allowed = [
        {"Host": here},  # scripts and robots send no Origin
        {"Host": here, "Origin": url},
        {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"},
        {"Host": "lab-pc.local:8000", "Origin": ALLOWED},  # --allow-origin
    ]
    for headers in allowed:
        status, _ = request(url, path, headers, upgrade)
        assert status == (101 if upgrade else 200), headers


def test_a_page_from_another_origin_gets_no_session(server):
    url, app = server

    async def go():
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            async with websockets.connect(url.replace("http", "ws") + "/ws", origin="http://evil.example"):
                pass
        assert e.value.response.status_code == 403
        async with websockets.connect(url.replace("http", "ws") + "/ws", origin=url) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"

    asyncio.run(go())


def test_origins_are_normalized_and_checked():
    assert normalize_origin("HTTP://Lab-PC.local:80/") == "http://lab-pc.local"
    assert normalize_origin("https://[::1]:8443") == "https://[::1]:8443"
    for bad in ("lab-pc:8000", "ftp://x", "http://x/path", "http://x:99999", "*", "null"):
        with pytest.raises(InputError, match="--allow-origin"):
            normalize_origin(bad)
    guard = OriginGuard(None, bind_host="0.0.0.0")
    assert guard.check({"host": "192.168.1.5:8000"}, "http") is not None  # a wildcard bind adds no names
    guard = OriginGuard(None, bind_host="192.168.1.5")
    assert guard.check({"host": "192.168.1.5:8000", "origin": "http://192.168.1.5:8000"}, "http") is None


HUGE = "9" * 400
FUZZ = [  # (message, error code or None when a normal reply or nothing is expected)
    (f'{{"type": "stimulus", "value": {HUGE}}}', "bad_value"),
    (f'{{"type": "stimulus", "value": -{HUGE}}}', "bad_value"),
    (f'{{"type": "stimulus", "samples": [0.1, {HUGE}]}}', "bad_value"),
    ('{"type": "stimulus", "samples": [0.1, 1e308]}', "bad_value"),
    ('{"type": "stimulus", "samples": [Infinity]}', "bad_value"),
    ('{"type": "stimulus", "value": 1e308}', "bad_value"),
    ('{"type": "stimulus", "value": -0.0}', None),
    (f'{{"type": "pain", "peak": {HUGE}}}', "bad_value"),
    (f'{{"type": "pain", "hold_s": {HUGE}}}', "bad_value"),
    ('{"type": "pain", "decay_s": NaN}', "bad_value"),
    (f'{{"type": "settings", "expressiveness": {HUGE}}}', "bad_value"),
    ('{"type": "settings", "expressiveness": -Infinity}', "bad_value"),
    (f'{{"type": "settings", "emotion": {{"Fear": {HUGE}}}}}', "bad_value"),
    (f'{{"type": "settings", "emotion": [{HUGE}, 0, 0, 0, 0, 0, 0, 0]}}', "bad_value"),
    ('{"type": "settings", "emotion": {"Fear": NaN}}', "bad_value"),
    ('{"type": "settings", "emotion": {"Fear": "a lot"}}', "bad_value"),
    (f'{{"type": "settings", "guidance": [{HUGE}, 1, 1]}}', "bad_value"),
    ('{"type": "settings", "guidance": [1e308, 1, 1]}', "bad_value"),
    ('{"type": "settings", "guidance": [true, 1, 1]}', "bad_value"),
    ('{"type": "settings", "guidance": "1,2,4"}', "bad_value"),
    ('{"type": "settings", "guidance": {"a": 1}}', "bad_value"),
    ('{"type": "stimulus", "value": 1' + "0" * 3000 + "}", "bad_value"),
    ('{"type": "stimulus", "value": ' + "1" * 4090 + "}", "too_large"),
]


def test_numbers_that_overflow_get_an_error_and_every_reply_is_strict_json(server):
    url, _ = server

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in a reply"))

    async def go():
        async with websockets.connect(url.replace("http", "ws") + "/ws") as ws:
            strict(await ws.recv())
            for text, code in FUZZ:
                await ws.send(text)
                await ws.send('{"type": "ping", "t": 1}')  # the marker: everything before it is answered
                replies = []
                while True:
                    msg = strict(await asyncio.wait_for(ws.recv(), 30))
                    if msg["type"] == "pong" and msg["t"] == 1:
                        break
                    if msg["type"] == "error":
                        replies.append(msg)
                assert [r["code"] for r in replies] == ([code] if code else []), (text[:50], replies)
                assert all(len(r["message"]) < 400 for r in replies)
            for t in ("NaN", "Infinity", "-Infinity", HUGE, '"x"', "1e308"):
                await ws.send(f'{{"type": "ping", "t": {t}}}')
                msg = strict(await asyncio.wait_for(ws.recv(), 30))
                while msg["type"] != "pong":
                    msg = strict(await asyncio.wait_for(ws.recv(), 30))
                assert msg["t"] == (1e308 if t == "1e308" else None), t
            await ws.send('{"type": "settings", "emotion": {"Fear": 1e308, "Anger": 1e308}}')
            while (msg := strict(await asyncio.wait_for(ws.recv(), 30)))["type"] != "settings":
                pass
            assert msg["emotion"]["Fear"] == pytest.approx(0.5) and msg["emotion"]["Anger"] == pytest.approx(0.5)

    asyncio.run(go())


def test_the_stimulus_queue_is_bounded_under_a_flood(server):
    """One client sends 1,000 messages of 250 samples as fast as it can (250,000 samples, 2.8 hours of
    stimulus): the server queues at most MAX_QUEUED_S of it, refuses the rest with ``queue_full``, and a
    second client keeps getting frames."""
    url, app = server
    n_msgs = 1000

    async def go():
        async with websockets.connect(url.replace("http", "ws") + "/ws") as flood, \
                websockets.connect(url.replace("http", "ws") + "/ws") as other:
            hello = json.loads(await flood.recv())
            json.loads(await other.recv())
            msg = json.dumps({"type": "stimulus", "samples": [0.5] * MAX_SAMPLES})
            for _ in range(n_msgs):
                await flood.send(msg)
            await flood.send('{"type": "ping", "t": 2}')
            full = 0
            while True:
                m = json.loads(await asyncio.wait_for(flood.recv(), 60))
                if m["type"] == "error":
                    assert m["code"] == "queue_full", m
                    full += 1
                if m["type"] == "pong":
                    break
            engine = app.state.engine
            with engine._lock:
                p = engine._patients[hello["session"]]
                queued = p.end - p.cursor
            other_frames = 0
            while other_frames < 2:
                other_frames += json.loads(await asyncio.wait_for(other.recv(), 60))["type"] == "frames"
            return full, queued, engine.fps

    full, queued, fps = asyncio.run(go())
    assert queued <= MAX_QUEUED_S * fps
    assert full >= n_msgs - MAX_QUEUED_S * fps / MAX_SAMPLES - 1


def test_slider_values_latest_wins(tmp_path):
    """125 quick slider values then 1.0: the next window is all 1.0 (before: 126 frames queued, 5 s)."""
    engine = StreamEngine(tiny_model(), max_patients=2, threads=None, lead_s=0.05, max_queued=750, **SMALL)
    pid = engine.add_patient(seed=1)

    class State:
        pass

    state = State()
    state.engine = engine
    session = Session(state, None, pid, None)
    engine._t0 = time.monotonic()  # clocked mode without the thread: the test steps by hand

    async def go():
        for i in range(125):
            await session.handle(json.dumps({"type": "stimulus", "value": (i % 10) / 10}))
        await session.handle('{"type": "stimulus", "value": 1.0}')

    asyncio.run(go())
    p = engine._patients[pid]
    assert p.end - max(p.cursor, int((time.monotonic() - engine._t0) * engine.fps)) <= 1
    engine.step()
    engine.step()
    engine._emit(0.0, ahead=math.inf)  # clocked mode holds frames until they are nearly due
    chunk = engine.pull(pid)
    assert chunk.stimulus[-SMALL["horizon"]:].tolist() == [1.0] * SMALL["horizon"]
    # queued samples (a recorded stimulus) still play in order, up to the bound
    engine.push(pid, [0.2] * 700)
    with pytest.raises(InputError, match="queue full"):
        engine.push(pid, [0.3] * 100)


def test_a_flooding_client_is_slowed_down():
    """The token bucket: a burst passes at once, then one message per 1 / rate seconds (a fake clock)."""
    now = {"t": 100.0}
    limit = RateLimit(clock=lambda: now["t"])
    delays = [limit.delay() for _ in range(MESSAGE_BURST)]
    assert delays == [0.0] * MESSAGE_BURST
    assert limit.delay() == pytest.approx(1 / MESSAGES_PER_S)
    assert limit.delay() == pytest.approx(2 / MESSAGES_PER_S)
    now["t"] += 10.0  # a quiet client gets its burst back, no more
    assert [limit.delay() for _ in range(MESSAGE_BURST)] == [0.0] * MESSAGE_BURST
    assert limit.delay() > 0
    slider = RateLimit(clock=lambda: now["t"])  # a slider at 60 messages a second never waits
    waits = []
    for _ in range(6000):
        now["t"] += 1 / 60
        waits.append(slider.delay())
    assert max(waits) == 0.0


def _random_message(rng) -> str:
    """A random, mostly hostile message: known types, fields of the protocol, values of every JSON kind."""
    values = ["NaN", "Infinity", "-Infinity", "9" * int(rng.integers(20, 600)), "1e308", "-1e308", "1e-320",
              "true", "null", '"x"', "[]", "{}", "[1, [2, [3]]]", '{"Fear": 1e308}', "0.5", "-0", "1.5000001",
              "[0.1, 0.2, 1e400]", '"' + "\\u0000" * 5 + '"']
    kind = rng.choice(["stimulus", "pain", "settings", "ping", "nope", 7])
    fields = rng.choice(["value", "samples", "peak", "hold_s", "decay_s", "expressiveness", "emotion",
                         "guidance", "t"], size=int(rng.integers(0, 4)))
    body = ", ".join(f'"{f}": {rng.choice(values)}' for f in fields)
    kind_text = json.dumps(kind if isinstance(kind, str) else int(kind))
    return f'{{"type": {kind_text}' + (f", {body}" if body else "") + "}"


def test_random_hostile_messages_never_drop_the_session(server):
    import numpy as np

    url, _ = server
    rng = np.random.default_rng(19)
    messages = [_random_message(rng) for _ in range(300)]

    async def go():
        async with websockets.connect(url.replace("http", "ws") + "/ws") as ws:
            json.loads(await ws.recv())
            for i, text in enumerate(messages):
                await ws.send(text)
                if i % 25 == 24:  # every 25 messages: the session still answers, every reply strict JSON
                    await ws.send(json.dumps({"type": "ping", "t": i}))
                    while True:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 30),
                                         parse_constant=lambda c: pytest.fail(f"bare {c}"))
                        if msg["type"] == "pong" and msg["t"] == i:
                            break
                        if msg["type"] == "error":
                            assert msg["code"] in ("bad_value", "bad_message", "unknown_type", "bad_json",
                                                   "queue_full"), msg

    asyncio.run(go())
