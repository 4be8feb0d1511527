"""Live links: OSC and VMC out over real UDP sockets on 127.0.0.1, joint angles in (UDP, pyserial loop://)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from scipy.spatial.transform import Rotation

from painface.errors import InputError
from painface.face.code import ARKIT_NAMES, AU_NAMES, FEATURE_NAMES, FLAME_NAMES, pspi, to_arkit
from painface.serve.links import (
    JointAngleSource,
    LineParser,
    OscSink,
    VmcSink,
    head_quaternion,
    parse_angle,
    parse_source,
)


@pytest.fixture
def receiver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    yield sock
    sock.close()


def receive(sock: socket.socket) -> list[tuple[str, list]]:
    """One datagram -> [(address, params)] of the bundle's messages, in order."""
    return [(m.address, m.params) for m in OscBundle(sock.recv(65535))]


def face(**values: float) -> np.ndarray:
    f = np.zeros(len(FEATURE_NAMES), dtype=np.float32)
    for name, v in values.items():
        f[FEATURE_NAMES.index(name)] = v
    return f


def f32(x: float) -> float:
    return float(np.float32(x))


# --- OSC ----------------------------------------------------------------------------------------


def test_osc_sink_sends_every_au_head_pose_and_pspi(receiver):
    frame = face(**{n: (i % 6) * 0.8 for i, n in enumerate(AU_NAMES)}, head_pitch=12.5, head_yaw=-7.0, head_roll=3.25)
    with OscSink(port=receiver.getsockname()[1]) as sink:
        assert sink.send(frame)
        msgs = receive(receiver)
        expected = (["/painface/frame"] + [f"/painface/au/{n}" for n in AU_NAMES]
                    + ["/painface/head/pitch", "/painface/head/yaw", "/painface/head/roll", "/painface/pspi"])
        assert [a for a, _ in msgs] == expected
        values = dict(msgs)
        assert values["/painface/frame"] == [0]
        for i, n in enumerate(AU_NAMES):
            assert values[f"/painface/au/{n}"] == [f32(frame[i])]
        assert values["/painface/head/pitch"] == [12.5] and values["/painface/head/yaw"] == [-7.0]
        assert values["/painface/head/roll"] == [3.25]
        assert values["/painface/pspi"] == [f32(pspi(frame[None])[0])]
        # a given PSPI is sent as is; the frame counter advances
        assert sink.send(frame, pspi=7.5)
        values = dict(receive(receiver))
        assert values["/painface/pspi"] == [7.5] and values["/painface/frame"] == [1]
        assert sink.frames_sent == 2 and sink.send_errors == 0


def test_osc_sink_send_aus_and_custom_prefix(receiver):
    with OscSink(port=receiver.getsockname()[1], prefix="/robot/face") as sink:
        sink.send_aus({"AU4": 2.0, "AU43": 5.0}, 3.0)
        assert receive(receiver) == [("/robot/face/frame", [0]), ("/robot/face/au/AU4", [2.0]),
                                     ("/robot/face/au/AU43", [5.0]), ("/robot/face/pspi", [3.0])]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.send_aus({"AU99": 1.0}, 0.0),
        lambda s: s.send_aus({"AU4": 6.0}, 0.0),
        lambda s: s.send_aus({"AU4": float("nan")}, 0.0),
        lambda s: s.send_aus({"AU4": 1.0}, 17.0),
        lambda s: s.send_aus({"AU4": "x"}, 1.0),
        lambda s: s.send(np.zeros((2, len(FEATURE_NAMES)), np.float32)),
        lambda s: s.send(face(AU4=9.0)),
        lambda s: s.send(np.zeros(len(FLAME_NAMES), np.float32), feature_names=FLAME_NAMES),
    ],
)
def test_osc_sink_bad_input_is_a_clear_error(receiver, call):
    with OscSink(port=receiver.getsockname()[1]) as sink, pytest.raises(InputError):
        call(sink)


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"port": 70000}, {"host": ""}, {"prefix": "painface"},
                                    {"prefix": "/pain face"}, {"prefix": "/painface/"}])
def test_osc_sink_bad_settings(kwargs):
    with pytest.raises(InputError):
        OscSink(**kwargs)


def test_a_failed_send_is_counted_not_raised(receiver):
    sink = OscSink(port=receiver.getsockname()[1])
    sink.close()  # the socket is gone: sendto raises OSError inside
    assert sink.send(face(AU4=1.0)) is False
    assert sink.send_errors == 1 and sink.frames_sent == 0


# --- VMC ----------------------------------------------------------------------------------------


def test_vmc_sink_sends_52_arkit_blendshapes_then_apply(receiver):
    clock = iter([100.0, 102.5])
    frame = face(AU4=5.0, AU6=2.5, AU45=1.0, AU26=5.0, head_pitch=20.0, head_yaw=-10.0, head_roll=5.0)
    with VmcSink(port=receiver.getsockname()[1], clock=lambda: next(clock)) as sink:
        assert sink.send(frame)
        msgs = receive(receiver)
    assert [a for a, _ in msgs] == (["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Bone/Pos"]
                                    + ["/VMC/Ext/Blend/Val"] * 52 + ["/VMC/Ext/Blend/Apply"])
    assert msgs[0][1] == [1] and msgs[1][1] == [2.5] and msgs[-1][1] == []
    blends = msgs[3:-1]
    assert [p[0] for _, p in blends] == list(ARKIT_NAMES)
    weights = dict(p for _, p in blends)
    expected = to_arkit(frame[None])[0]
    assert [weights[n] for n in ARKIT_NAMES] == [f32(v) for v in expected]
    assert weights["browDownLeft"] == 1.0 and weights["cheekSquintRight"] == 0.5 and weights["eyeBlinkLeft"] == f32(0.2)
    assert weights["jawOpen"] == pytest.approx(0.6, abs=1e-6) and weights["mouthSmileLeft"] == 0.0
    bone = msgs[2][1]
    assert bone[0] == "Head" and bone[1:4] == [0.0, 0.0, 0.0]
    assert np.allclose(bone[4:], head_quaternion(20.0, -10.0, 5.0), atol=1e-6)


def test_vmc_options_capitalized_names_no_head_and_bad_input(receiver):
    with VmcSink(port=receiver.getsockname()[1], capitalize=True, send_head=False) as sink:
        sink.send(face(AU43=5.0))
        msgs = receive(receiver)
        assert "/VMC/Ext/Bone/Pos" not in [a for a, _ in msgs]
        weights = {p[0]: p[1] for a, p in msgs if a == "/VMC/Ext/Blend/Val"}
        assert weights["EyeBlinkLeft"] == 1.0 and weights["BrowDownLeft"] == 0.0 and len(weights) == 52
        sink.send_blendshapes({"jawOpen": 1.7})  # clipped to 1, the rest 0
        weights = {p[0]: p[1] for a, p in receive(receiver) if a == "/VMC/Ext/Blend/Val"}
        assert weights["JawOpen"] == 1.0 and sum(weights.values()) == 1.0
        for bad in ({"jawOpn": 0.5}, {"jawOpen": float("inf")}):
            with pytest.raises(InputError):
                sink.send_blendshapes(bad)
        with pytest.raises(InputError):
            sink.send_blendshapes({}, head_pose_deg=(1.0, 2.0))
    with pytest.raises(InputError):
        VmcSink(port=receiver.getsockname()[1], head_position=(0.0, float("nan"), 0.0))


def test_head_quaternion_follows_painface_signs_in_unity_axes():
    """Unity: x right of the avatar, y up, z forward (the avatar faces +z)."""

    def rotate(q, v):
        return Rotation.from_quat(q).apply(v)

    assert np.allclose(head_quaternion(0, 0, 0), (0, 0, 0, 1))
    assert np.allclose(rotate(head_quaternion(90, 0, 0), [0, 0, 1]), [0, -1, 0], atol=1e-9)  # pitch>0: face down
    assert np.allclose(rotate(head_quaternion(0, 90, 0), [0, 0, 1]), [-1, 0, 0], atol=1e-9)  # yaw>0: to its left
    assert np.allclose(rotate(head_quaternion(0, 0, 90), [0, 1, 0]), [-1, 0, 0], atol=1e-9)  # roll>0: left shoulder
    q = head_quaternion(30, 40, 50)
    assert np.isclose(np.linalg.norm(q), 1.0)
    # Unity's Euler order: z first, then x, then y
    expected = (Rotation.from_euler("y", -40, degrees=True) * Rotation.from_euler("x", 30, degrees=True)
                * Rotation.from_euler("z", 50, degrees=True))
    assert np.allclose(Rotation.from_quat(q).as_matrix(), expected.as_matrix())


# --- joint angle in -----------------------------------------------------------------------------


def drain(src: JointAngleSource, expected: int) -> None:
    """Poll until ``expected`` readings arrived (loopback UDP is quick; the deadline only guards a hang)."""
    deadline = time.monotonic() + 5.0
    while src.good + src.bad < expected and time.monotonic() < deadline:
        src.poll()
        time.sleep(0.001)
    assert src.good + src.bad == expected


def osc_message(address: str, *args) -> bytes:
    b = OscMessageBuilder(address=address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def test_default_mapping_is_the_elbow_protocols_range():
    with JointAngleSource.udp(0) as src:
        assert src.angle_range == (40.0, 120.0)
        angles = np.array([-30.0, 0.0, 40.0, 60.0, 80.0, 120.0, 121.0, 400.0])
        assert np.allclose(src.stimulus(angles), [0, 0, 0, 0.25, 0.5, 1, 1, 1])


def test_custom_and_reversed_ranges():
    with JointAngleSource.udp(0, angle_range=(0.0, 4095.0)) as src:  # raw MX-64 encoder counts
        assert np.allclose(src.stimulus([0, 4095 / 2, 4095, 5000]), [0, 0.5, 1, 1])
    with JointAngleSource.udp(0, angle_range=(150.0, 30.0)) as src:  # extension hurts
        assert np.allclose(src.stimulus([160, 150, 120, 90, 30, 0]), [0, 0, 0.25, 0.5, 1, 1])


@pytest.mark.parametrize("kwargs", [{"angle_range": (40.0, 40.0)}, {"angle_range": (0.0, float("nan"))},
                                    {"smoothing": 1.0}, {"smoothing": -0.1}])
def test_bad_mapping_settings(kwargs):
    with pytest.raises(InputError):
        JointAngleSource.udp(0, **kwargs)


def test_udp_source_reads_text_and_osc_and_survives_garbage():
    with JointAngleSource.udp(0) as src:
        assert src.latest() == 0.0 and src.angle is None  # rest before any reading
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = src.address
        tx.sendto(b" 80\r\n", addr)
        drain(src, 1)
        assert src.latest() == 0.5 and src.angle == 80.0
        tx.sendto(osc_message("/elbow/angle", 100.0), addr)
        drain(src, 2)
        assert src.latest() == pytest.approx(0.75) and src.angle == pytest.approx(100.0)
        garbage = [b"", b"abc", b"nan", b"inf", b"\xff\xfe\x00", b"/bad", b"#bundle\x00",
                   osc_message("/elbow/angle", "ninety"), osc_message("/elbow/angle", True), b"1e999"]
        for g in garbage:
            tx.sendto(g, addr)
        drain(src, 2 + len(garbage))
        assert src.bad == len(garbage) and src.good == 2
        assert src.latest() == pytest.approx(0.75)  # the last good value stays
        bundle = OscBundleBuilder(IMMEDIATELY)
        for a in (60.0, 120):  # the last message of a bundle wins; an int argument is fine
            bundle.add_content(_msg("/elbow/angle", a))
        tx.sendto(bundle.build().dgram, addr)
        drain(src, 3 + len(garbage))
        assert next(iter(src)) == 1.0 and src.angle == 120.0
        tx.close()


def _msg(address, value):
    b = OscMessageBuilder(address=address)
    b.add_arg(value)
    return b.build()


def test_smoothing_is_an_exponential_average_per_reading():
    with JointAngleSource.udp(0, smoothing=0.5) as src:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for k in range(3):
            tx.sendto(b"120", src.address)
            drain(src, k + 1)
        assert src.latest() == pytest.approx(0.875)  # 0.5, 0.75, 0.875 from rest
        tx.close()


def test_parse_angle():
    assert parse_angle(b"  42.5\n") == 42.5
    assert parse_angle(osc_message("/a", 7)) == 7.0
    assert parse_angle(osc_message("/a", "x", 3.5, 9.0)) == 3.5  # first numeric argument
    for bad in (b"forty", b"-inf", osc_message("/a"), osc_message("/a", False), b"/\x00\x00"):
        with pytest.raises(ValueError):
            parse_angle(bad)


def test_line_parser_splits_lines_across_chunks_and_drops_overlong_ones():
    p = LineParser(max_len=8)
    assert p.feed(b"12\r\n3") == [b"12"]
    assert p.feed(b"4\n\n  \n") == [b"34"]  # blank lines skipped
    assert p.feed(b"123456789\n5\n") == [LineParser.OVERLONG, b"5"]  # overlong inside one chunk
    assert p.feed(b"12345") == [] and p.feed(b"67890") == [LineParser.OVERLONG]  # overlong across chunks
    assert p.feed(b"999999\n7\n") == [b"7"]  # the rest of the overlong line is dropped, then it recovers


def test_serial_source_over_pyserial_loopback():
    with JointAngleSource.serial("loop://", 115200) as src:
        port = src._reader.port
        port.write(b"40\r\n12")
        assert src.latest() == 0.0 and src.good == 1  # 40 degrees: pain starts, stimulus 0
        port.write(b"0\nnot a number\n" + b"9" * 100 + b"\n80\n")
        assert src.latest() == 0.5 and src.good == 3 and src.bad == 2
        port.close()  # unplugged: logged once, the last value stays, nothing raises
        assert src.latest() == 0.5 and src._reader.failed


def test_parse_source_specs():
    with parse_source("udp:0") as src:
        assert src.address[0] == "127.0.0.1" and src.address[1] > 0
    with parse_source("udp:127.0.0.1:0", angle_range=(0.0, 90.0), smoothing=0.2) as src:
        assert src.angle_range == (0.0, 90.0) and src.smoothing == 0.2
    with parse_source("serial:loop://") as src:
        assert src._reader.port.baudrate == 115200
    with parse_source("serial:loop://:9600") as src:
        assert src._reader.port.baudrate == 9600
    for bad in ["", "udp", "udp:", "udp:abc", "udp:70000", "udp::9000", "tcp:9000", "serial:", "9001"]:
        with pytest.raises(InputError, match="udp:PORT"):
            parse_source(bad)
    with pytest.raises(InputError, match="cannot open"):
        parse_source("serial:/dev/painface-no-such-device:115200")


@pytest.mark.parametrize("kwargs", [{"angle_range": (0.0,)}, {"angle_range": ("a", "b")}, {"smoothing": "x"}])
def test_malformed_mapping_settings(kwargs):
    with pytest.raises(InputError, match="angle_range"):
        JointAngleSource.udp(0, **kwargs)


def test_vmc_non_numeric_values_are_clear_errors(receiver):
    with VmcSink(port=receiver.getsockname()[1]) as sink:
        for call in (lambda: sink.send_blendshapes({"jawOpen": "wide"}),
                     lambda: sink.send_blendshapes({}, head_pose_deg=("a", 0, 0))):
            with pytest.raises(InputError):
                call()


def test_python_osc_server_dispatches_our_bundles():
    """The receiver snippet in docs/links.md: python-osc's own server accepts the bundles."""
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    got: dict[str, float] = {}
    d = Dispatcher()
    d.map("/painface/au/*", lambda address, value: got.__setitem__(address.rsplit("/", 1)[1], value))
    d.map("/painface/pspi", lambda address, value: got.__setitem__("PSPI", value))
    server = BlockingOSCUDPServer(("127.0.0.1", 0), d)
    server.timeout = 5.0
    try:
        with OscSink(port=server.server_address[1]) as sink:
            sink.send(face(AU4=4.0, AU7=2.0))
            server.handle_request()
    finally:
        server.server_close()
    assert got["AU4"] == 4.0 and got["AU7"] == 2.0 and got["AU1"] == 0.0 and len(got) == len(AU_NAMES) + 1
    assert got["PSPI"] == 6.0
