"""The live server over real sockets (uvicorn in a thread, tiny model): page and assets, the WebSocket
protocol and its errors, the pain pulse, disconnects mid-stream, and 100 clients at once."""

import asyncio
import io
import json
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import websockets
from test_stream import SMALL, tiny_model

from painface.cli import main
from painface.commands.serve import BackgroundServer, build, configure
from painface.face.code import AU_NAMES
from painface.model.checkpoint import save_model
from painface.serve.app import MAX_MESSAGE_BYTES, create_app

CAPACITY = 40


@pytest.fixture(scope="module")
def server():
    app = create_app(tiny_model(), max_patients=CAPACITY, threads=None, lead_s=0.05, **SMALL)
    with BackgroundServer(app) as url:
        yield url, app


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/ws"


async def recv_type(ws, kind: str, timeout: float = 30.0) -> dict:
    """The next message of a type (others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        if msg["type"] == kind:
            return msg


def test_page_assets_and_info(server):
    url, _ = server
    status, page = get(url + "/")
    assert status == 200 and b'id="stimulus"' in page and b'id="pain"' in page and b"/static/app.js" in page
    for asset in ("app.js", "face.js", "style.css"):
        assert get(f"{url}/static/{asset}")[0] == 200
    status, glb = get(url + "/face.glb")
    assert glb[:4] == b"glTF"
    doc = json.loads(glb[20:20 + int.from_bytes(glb[12:16], "little")])
    assert doc["meshes"][0]["extras"]["targetNames"] == list(AU_NAMES)
    info = json.loads(get(url + "/api/info")[1])
    assert info["fps"] == 25.0 and info["horizon"] == 8 and info["max_patients"] == CAPACITY and info["facs"]
    assert info["trained_expressiveness"] is None  # the tiny model records no training range


def test_identity_heads_and_bad_identities(server):
    """``/face.glb?identity=N``: that identity's head (the same morph targets, another shape and colours);
    the same bytes again (cached); a bad seed is a 400 naming it, never a 500."""
    url, _ = server
    default = get(url + "/face.glb")[1]
    three = get(url + "/face.glb?identity=3")[1]
    assert three[:4] == b"glTF" and three != default and get(url + "/face.glb?identity=3")[1] == three
    docs = [json.loads(g[20:20 + int.from_bytes(g[12:16], "little")]) for g in (default, three)]
    assert docs[0]["meshes"][0]["extras"]["targetNames"] == docs[1]["meshes"][0]["extras"]["targetNames"]
    pos = [d["accessors"][d["meshes"][0]["primitives"][0]["attributes"]["POSITION"]] for d in docs]
    assert pos[0]["count"] > 5000 and pos[1]["count"] > 5000 and pos[0]["max"] != pos[1]["max"]  # hair may add vertices
    for bad in ("-1", "abc", "1.5", str(2**31), "", "1e3", "%203"):
        with pytest.raises(urllib.error.HTTPError) as e:
            get(f"{url}/face.glb?identity={bad}")
        assert e.value.code == 400 and b"identity: expected the seed" in e.value.read()
    ids = json.loads(get(url + "/api/identities")[1])
    assert len(ids["presets"]) == 12 and {p["skin_tone"] for p in ids["presets"]} == set(range(1, 11))
    assert {p["sex"] for p in ids["presets"]} == {"female", "male"} and ids["max_seed"] == 2**31 - 1


def test_record_round_trip_loads_and_renders(server, tmp_path):
    """record start -> frames -> stop: the npz sent back holds exactly the frames streamed since the start
    (face, stimulus, pspi, fps), ``load_codes`` reads it and ``painface render`` draws it."""
    from painface.face.codes import load_codes

    url, _ = server

    async def go():
        async with websockets.connect(ws_url(url)) as ws:
            await recv_type(ws, "hello")
            await ws.send('{"type": "stimulus", "value": 0.6}')
            await ws.send('{"type": "record", "action": "start", "identity": 3}')
            ack = await recv_type(ws, "record")
            assert ack["recording"] is True and ack["max_s"] == 1800
            streamed = []
            while sum(len(m["face"]) for m in streamed) < 4 * 8:  # pieces as they come due
                streamed.append(await recv_type(ws, "frames"))
            await ws.send('{"type": "record", "action": "stop"}')
            done = await recv_type(ws, "record")
            while isinstance(data := await asyncio.wait_for(ws.recv(), 30), str):  # frames may come between
                if (msg := json.loads(data))["type"] == "frames":
                    streamed.append(msg)
            return done, data, streamed

    done, data, streamed = asyncio.run(go())
    assert done["recording"] is False and done["reason"] == "stopped" and done["frames"] >= 3 * 8
    assert done["bytes"] == len(data) and done["seconds"] == pytest.approx(done["frames"] / 25.0)
    path = tmp_path / "session.npz"
    path.write_bytes(data)
    codes = load_codes(path)
    assert codes.face.shape == (done["frames"], 20) and codes.fps == 25.0
    with np.load(path) as z:
        start, ident = int(z["start"]), int(z["identity"])
    assert ident == 3
    by_frame = {m["start"] + i: (f, m["stimulus"][i], m["pspi"][i]) for m in streamed for i, f in enumerate(m["face"])}
    seen = [k for k in range(start, start + done["frames"]) if k in by_frame]
    assert len(seen) >= 3 * 8  # the streamed frames of the recorded span are the recorded ones
    for k in seen:
        face, stim, ps = by_frame[k]
        assert np.allclose(codes.face[k - start], face, atol=2e-3)
        assert codes.stimulus[k - start] == pytest.approx(stim, abs=2e-3) and codes.pspi[k - start] == pytest.approx(
            ps, abs=2e-3)
    assert main(["render", str(path), "--out", str(tmp_path / "session.gif"), "--size", "32", "--layout", "face"]) == 0
    assert (tmp_path / "session.gif").stat().st_size > 0


def test_record_bad_messages_and_the_length_limit(server, monkeypatch):
    import painface.serve.app as app_mod
    from painface.serve.record import Recorder

    url, _ = server
    monkeypatch.setattr(app_mod, "Recorder", lambda fps, names: Recorder(fps, names, max_s=20 / fps))

    async def go():
        async with websockets.connect(ws_url(url)) as ws:
            await recv_type(ws, "hello")
            for text, code in [('{"type": "record", "action": "stop"}', "bad_value"),
                               ('{"type": "record", "action": "pause"}', "bad_value"),
                               ('{"type": "record"}', "bad_value"),
                               ('{"type": "record", "action": "start", "identity": "x"}', "bad_value"),
                               ('{"type": "record", "action": "start", "identity": -2}', "bad_value"),
                               ('{"type": "record", "action": "start", "file": "/etc/passwd"}', "bad_message")]:
                await ws.send(text)
                assert (await recv_type(ws, "error"))["code"] == code, text
            await ws.send('{"type": "record", "action": "start"}')
            await recv_type(ws, "record")
            await ws.send('{"type": "record", "action": "start"}')
            assert "already recording" in (await recv_type(ws, "error"))["message"]
            done = await recv_type(ws, "record")  # stops by itself at the limit
            while isinstance(data := await asyncio.wait_for(ws.recv(), 30), str):
                pass
            await ws.send('{"type": "record", "action": "stop"}')
            assert "not recording" in (await recv_type(ws, "error"))["message"]
            return done, data

    done, data = asyncio.run(go())
    assert done["reason"] == "limit" and done["frames"] == 20 and done["recording"] is False
    with np.load(io.BytesIO(data)) as z:
        assert z["face"].shape == (20, 20) and int(z["identity"]) == -1 and float(z["fps"]) == 25.0


BAD = [
    ("not json", "bad_json"), ("[1, 2]", "bad_message"), ('{"value": 1}', "bad_message"),
    ('{"type": "dance"}', "unknown_type"), ('{"type": "stimulus", "value": 7}', "bad_value"),
    ('{"type": "stimulus", "value": "high"}', "bad_value"), ('{"type": "stimulus", "value": NaN}', "bad_value"),
    ('{"type": "stimulus", "samples": [0.1, null]}', "bad_value"),
    ('{"type": "stimulus", "samples": [0.1, -3]}', "bad_value"),
    (json.dumps({"type": "stimulus", "samples": [0.1] * 300}), "bad_value"),
    ('{"type": "settings", "expressiveness": 99}', "bad_value"),
    ('{"type": "settings", "emotion": "Joy"}', "bad_value"),
    ('{"type": "settings", "guidance": [1, 2]}', "bad_value"), ('{"type": "settings", "colour": 1}', "bad_message"),
    ('{"type": "pain", "decay_s": 0}', "bad_value"), ('{"type": "pain", "peak": true}', "bad_value"),
    ("x" * (MAX_MESSAGE_BYTES + 1), "too_large"), ("[" * 3000 + "]" * 1000, "bad_json"),
    (b"\x00\x01binary", "bad_message"),
]


def test_every_bad_message_gets_an_error_and_the_session_goes_on(server):
    url, _ = server

    async def go():
        async with websockets.connect(ws_url(url)) as ws:
            hello = await recv_type(ws, "hello")
            assert hello["settings"]["guidance"] == [1.0, 2.0, 4.0] and "emotion" in hello["settings"]
            for text, code in BAD:
                await ws.send(text)
                err = await recv_type(ws, "error")
                assert err["code"] == code, (text[:40], err)
                assert err["message"]
            await ws.send('{"type": "ping", "t": 5}')
            assert (await recv_type(ws, "pong"))["t"] == 5
            await ws.send('{"type": "settings", "expressiveness": 3, "emotion": "Fear", "guidance": [0, 1, 4]}')
            ack = await recv_type(ws, "settings")
            assert ack["expressiveness"] == 3 and ack["emotion"]["Fear"] == 1 and ack["guidance"] == [0, 1, 4]
            await ws.send('{"type": "stimulus", "value": 0.8}')
            for _ in range(20):
                frames = await recv_type(ws, "frames")
                if frames["stimulus"][-1] == pytest.approx(0.8):
                    break
            assert frames["stimulus"][-1] == pytest.approx(0.8)
            n = len(frames["face"])
            assert 1 <= n <= 8 and np.asarray(frames["face"]).shape == (n, 20) and len(frames["pspi"]) == n

    asyncio.run(go())


def test_apply_pain_rises_then_decays_to_the_slider_level(server):
    url, _ = server

    async def go():
        async with websockets.connect(ws_url(url)) as ws:
            await recv_type(ws, "hello")
            await ws.send('{"type": "stimulus", "value": 0.1}')
            await ws.send('{"type": "pain", "peak": 1.0, "hold_s": 0.3, "decay_s": 0.2}')
            seen: list[float] = []
            while len(seen) < 25 * 4:
                seen += (await recv_type(ws, "frames"))["stimulus"]
            return np.asarray(seen)

    stim = asyncio.run(go())
    assert stim.max() == pytest.approx(1.0, abs=0.02)
    peak = int(np.argmax(stim))
    assert stim[-1] == pytest.approx(0.1, abs=0.02) and np.all(stim[peak:] >= 0.1 - 1e-3)


def test_a_client_that_vanishes_mid_stream_leaves_the_others_running(server):
    url, app = server

    async def go():
        async with websockets.connect(ws_url(url)) as keeper:
            await recv_type(keeper, "hello")
            first = await recv_type(keeper, "frames")
            gone = await websockets.connect(ws_url(url))
            await recv_type(gone, "hello")
            await gone.send('{"type": "pain"}')
            await recv_type(gone, "frames")
            gone.transport.abort()  # no close handshake
            got = [first]
            while got[-1]["start"] < first["start"] + 6 * 8:
                got.append(await recv_type(keeper, "frames"))
            return got

    got = asyncio.run(go())
    # every frame of the keeper, in order (handed out in pieces as they come due)
    assert all(b["start"] == a["start"] + len(a["face"]) for a, b in zip(got, got[1:], strict=False))
    deadline = time.monotonic() + 20
    while app.state.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not app.state.sessions and app.state.engine.patients == [] and app.state.engine.error is None


def test_a_hundred_clients_at_once(server):
    url, app = server

    async def client(i: int):
        try:
            async with websockets.connect(ws_url(url), open_timeout=60) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if first["type"] == "error":
                    return first["code"]
                await ws.send('{"type": "stimulus", "value": 5}')
                err = await recv_type(ws, "error", 60)
                await recv_type(ws, "frames", 60)
                return "served" if err["code"] == "bad_value" else err["code"]
        except Exception as e:  # noqa: BLE001 - reported in the assertion
            return repr(e)

    async def go():
        async with websockets.connect(ws_url(url)) as keeper:
            await recv_type(keeper, "hello")
            before = await recv_type(keeper, "frames")
            results = await asyncio.gather(*(client(i) for i in range(100)))
            after = [await recv_type(keeper, "frames") for _ in range(3)]
            return results, before["start"], after

    results, before, after = asyncio.run(go())
    counts = {r: results.count(r) for r in set(results)}
    assert counts.get("served", 0) + counts.get("busy", 0) == 100, counts
    assert counts["served"] >= CAPACITY - 1 - 5 and counts["busy"] >= 100 - CAPACITY + 1
    assert after[0]["start"] > before  # the keeper's stream went on, in order
    assert all(b["start"] == a["start"] + len(a["face"]) for a, b in zip(after, after[1:], strict=False))
    deadline = time.monotonic() + 20
    while app.state.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not app.state.sessions and app.state.engine.error is None
    assert json.loads(get(url + "/api/stats")[1])["sessions"] == 0


def test_serve_command_options(tmp_path, capsys):
    import argparse

    p = argparse.ArgumentParser()
    configure(p)
    args = p.parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8000  # loopback unless asked
    ckpt = save_model(tmp_path / "tiny", tiny_model().denoiser, {"normalizer": tiny_model().normalizer.to_dict(),
                                                                  "data_scale": 0.5, "corpus": {"fps": 25.0}})
    app, sinks, joint = build(p.parse_args(["--checkpoint", str(ckpt), "--horizon", "8", "--window", "16"]))
    assert app.state.engine.config.horizon == 8 and sinks == [] and joint is None
    assert main(["serve", "--checkpoint", str(tmp_path / "missing.safetensors")]) == 2
    assert main(["serve", "--checkpoint", str(ckpt), "--osc", "nowhere"]) == 2
    assert main(["serve", "--checkpoint", str(ckpt), "--horizon", "7"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_osc_link_gets_the_first_sessions_frames(tmp_path):
    """``painface serve --osc HOST:PORT``: every frame of the first tab goes out as an OSC bundle."""
    import argparse
    import socket

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(30)
    ckpt = save_model(tmp_path / "tiny", tiny_model().denoiser, {"normalizer": tiny_model().normalizer.to_dict(),
                                                                  "data_scale": 0.5, "corpus": {"fps": 25.0}})
    p = argparse.ArgumentParser()
    configure(p)
    args = p.parse_args(["--checkpoint", str(ckpt), "--horizon", "8", "--window", "16", "--steps", "3",
                         "--osc", f"127.0.0.1:{rx.getsockname()[1]}"])
    app, sinks, _ = build(args)
    assert len(sinks) == 1

    async def go():
        async with websockets.connect(ws_url(url)) as ws:
            await recv_type(ws, "hello")
            await recv_type(ws, "frames")
            return await asyncio.to_thread(rx.recv, 65536)

    with BackgroundServer(app) as url:
        packet = asyncio.run(go())
    rx.close()
    assert packet.startswith(b"#bundle") and b"/painface/au/AU4" in packet and b"/painface/pspi" in packet
