"""Live links against malformed input: truncated OSC packets and non-decimal text are ignored, the serve
command takes every documented joint spec, and out-going head pose is clamped."""

import argparse
import socket
import struct

import numpy as np
import pytest
from test_links import drain, osc_message
from test_stream import tiny_model

from painface.commands.serve import build, configure
from painface.errors import InputError
from painface.face.code import AU_NAMES, FEATURE_NAMES, POSE_LIMITS_DEG, neutral_face
from painface.model.checkpoint import save_model
from painface.serve.links import JointAngleSource, OscSink, parse_angle


def test_truncated_osc_packets_are_ignored_not_read_as_tiny_angles():
    whole = osc_message("/elbow/angle", 90.0)
    assert parse_angle(whole) == 90.0
    with JointAngleSource.udp(0) as src:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.sendto(whole, src.address)
        drain(src, 1)
        assert src.latest() == pytest.approx(0.625)
        cut = [whole[:-k] for k in range(1, 8)] + [whole + b"\x00" * 4, whole[:-4] + b"\x00\x01"]
        for packet in cut:
            tx.sendto(packet, src.address)
        drain(src, 1 + len(cut))
        assert src.bad == len(cut) and src.angle == 90.0 and src.latest() == pytest.approx(0.625)
        tx.close()


@pytest.mark.parametrize("text", [b"1_000", b"0x10", b"inf", b"-inf", b"nan", b"1e", b"1.2.3", b"+", b"\xd9\xa3"])
def test_only_plain_decimal_text_is_a_reading(text):
    with pytest.raises(ValueError):
        parse_angle(text)


@pytest.mark.parametrize("text,value", [(b"87.5", 87.5), (b" -3\r\n", -3.0), (b"1e2", 100.0), (b".5", 0.5)])
def test_plain_decimals_are_read(text, value):
    assert parse_angle(text) == value


def test_serve_takes_every_documented_joint_spec(tmp_path):
    model = tiny_model()
    ckpt = save_model(tmp_path / "tiny", model.denoiser, {"normalizer": model.normalizer.to_dict(),
                                                           "data_scale": 0.5, "corpus": {"fps": 25.0}})
    p = argparse.ArgumentParser()
    configure(p)
    for spec in ("udp:0", "udp:127.0.0.1:0"):
        _, _, joint = build(p.parse_args(["--checkpoint", str(ckpt), "--horizon", "8", "--window", "16",
                                          "--joint", spec]))
        assert joint.address[0] == "127.0.0.1"
        joint.close()
    with pytest.raises(InputError, match="--joint"):
        build(p.parse_args(["--checkpoint", str(ckpt), "--joint", "udp:1_000"]))


def test_osc_sink_clamps_head_pose(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    frame = neutral_face(1)[0].copy()
    frame[len(AU_NAMES):] = [90.0, -109.0, 53.0]  # pitch, yaw, roll beyond a neck's range
    with OscSink("127.0.0.1", rx.getsockname()[1]) as sink:
        sink.send(frame)
        packet = rx.recv(65536)
    rx.close()
    got = {}
    for name in ("pitch", "yaw", "roll"):
        key = f"/painface/head/{name}".encode()
        at = packet.index(key)
        end = at + (len(key) // 4 + 1) * 4 + 4  # address, padded, then ",f\0\0"
        got[name] = struct.unpack(">f", packet[end:end + 4])[0]
    assert got == {"pitch": 45.0, "yaw": -60.0, "roll": 40.0}
    assert list(POSE_LIMITS_DEG) == list(FEATURE_NAMES[len(AU_NAMES):])
    assert np.isfinite(list(got.values())).all()
