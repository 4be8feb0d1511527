"""Live links: face codes out to robot faces (OSC) and VRM avatars (VMC), a joint angle in.

:class:`OscSink` (AUs, head pose, PSPI) and :class:`VmcSink` (52 ARKit blendshapes, head bone) send one
OSC bundle per frame over UDP; :class:`JointAngleSource` maps a joint angle read from UDP or a serial
line linearly onto the stimulus, as the PainDiffusion elbow robot did (papers/001 section III-F).
Nothing blocks: sinks count failed sends, the source drains what arrived and keeps the last good
value. Address spaces and wiring: docs/links.md.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import socket
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_bundle_builder import IMMEDIATELY
from pythonosc.osc_message import OscMessage
from pythonosc.parsing import osc_types

from painface.errors import InputError
from painface.face.code import (
    ARKIT_NAMES,
    AU_MAX,
    AU_NAMES,
    FEATURE_NAMES,
    POSE_NAMES,
    check_face,
    clip_aus,
    to_arkit,
)
from painface.face.code import pspi as compute_pspi
from painface.subjects.protocols import ElbowProtocol, angle_to_stimulus

log = logging.getLogger(__name__)

VMC_PORT = 39539  # where a VMC Marionette (the avatar renderer) commonly listens (protocol.vmc.info)
_BUNDLE_HEAD = osc_types.write_string("#bundle") + osc_types.write_date(IMMEDIATELY)


@functools.lru_cache(maxsize=4096)
def _osc_head(address: str, tags: str, *strings: str) -> bytes:
    """Address, type tags and leading strings of an OSC 1.0 message, by python-osc's type writers; cached
    (only numbers change per frame; python-osc's builder re-parses each message: 2 ms per VMC frame)."""
    return b"".join(osc_types.write_string(s) for s in (address, "," + tags, *strings))


def _element(address: str, *args: str | int | float) -> bytes:
    """One bundle element (size + OSC message); string arguments come first, ints are OSC int32."""
    strings = tuple(a for a in args if isinstance(a, str))
    nums = args[len(strings) :]
    tags = "s" * len(strings) + "".join("i" if isinstance(a, int) else "f" for a in nums)
    msg = _osc_head(address, tags, *strings) + b"".join(
        struct.pack(">i", a) if isinstance(a, int) else struct.pack(">f", a) for a in nums)
    return struct.pack(">i", len(msg)) + msg


@functools.lru_cache(maxsize=4096)
def _float_prefix(address: str, *strings: str) -> bytes:
    """Fast path: size + head of a message whose arguments are ``strings`` then one float32."""
    head = _osc_head(address, "s" * len(strings) + "f", *strings)
    return struct.pack(">i", len(head) + 4) + head


def _warn(count: int, msg: str, *args: object) -> None:
    """Log the first few and then every 1000th of a repeated problem (no log flood at 25 fps)."""
    if count <= 5 or count % 1000 == 0:
        log.warning(msg, *args)


class _Closing:
    """``with`` support for anything with a ``close()``."""

    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _UdpSink(_Closing):
    """A UDP OSC sender (one bundle per frame) that never raises on a send failure: it counts them in
    ``send_errors`` and logs the first few."""

    def __init__(self, host: str, port: int) -> None:
        what = type(self).__name__
        if not isinstance(host, str) or not host:
            raise InputError(f"{what}: host must be a non-empty string, got {host!r}")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise InputError(f"{what}: port must be an integer in 1..65535, got {port!r}")
        try:
            family, _, _, _, self._target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (OSError, IndexError) as e:
            raise InputError(f"{what}: cannot resolve {host}:{port}: {e}") from None
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self.host, self.port = host, port
        self.frames_sent, self.send_errors = 0, 0

    def _send_bundle(self, elements: Sequence[bytes]) -> bool:
        """Send bundle elements as one OSC bundle (time tag: immediately); False if the send failed."""
        dgram = _BUNDLE_HEAD + b"".join(elements)
        try:
            self._sock.sendto(dgram, self._target)
        except OSError as e:  # receiver gone, buffer full: a live link must not take the stream down
            self.send_errors += 1
            _warn(self.send_errors, "%s -> %s:%d: send failed (%d so far): %s", type(self).__name__, self.host,
                  self.port, self.send_errors, e)
            return False
        self.frames_sent += 1
        return True

    def close(self) -> None:
        self._sock.close()


def _frame(frame: np.ndarray, feature_names: Sequence[str], what: str) -> np.ndarray:
    """Validate one FACS-space frame ``[features]``; return it as float32 ``[features]``."""
    arr = np.asarray(frame)
    if arr.ndim != 1:
        raise InputError(f"{what}: expected one frame [features], got shape {arr.shape}")
    if tuple(feature_names) != FEATURE_NAMES:
        raise InputError(f"{what}: needs a FACS-space face code (features {list(FEATURE_NAMES)})")
    return clip_aus(check_face(arr[None, :], feature_names, source=what), feature_names)[0]  # pose clamped


def _finite(values: Sequence[float], n: int) -> bool:
    """True when ``values`` are ``n`` finite numbers."""
    try:
        return len(values) == n and all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


class OscSink(_UdpSink):
    """Face code -> OSC over UDP, one bundle per frame (addresses: docs/links.md).

    Per frame: ``{prefix}/frame`` (int counter), ``{prefix}/au/<AU>`` (float, FACS 0-5) for each AU,
    ``{prefix}/head/pitch|yaw|roll`` (float, degrees) and ``{prefix}/pspi`` (float, 0-16).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, prefix: str = "/painface") -> None:
        if not re.fullmatch(r"(/[A-Za-z0-9_.\-]+)+", prefix or ""):
            raise InputError(f"OSC prefix {prefix!r}: expected an address like /painface (no trailing '/', "
                             "no spaces or #*,?[]{})")
        super().__init__(host, port)
        self.prefix = prefix

    def send(self, frame: np.ndarray, pspi: float | None = None,
             feature_names: Sequence[str] = FEATURE_NAMES) -> bool:
        """Send one face-code frame ``[features]`` (FACS space); PSPI is computed when not given.
        Returns False when the datagram could not be sent (counted in ``send_errors``)."""
        f = _frame(frame, feature_names, "OscSink.send")
        aus = dict(zip(AU_NAMES, np.clip(f[: len(AU_NAMES)], 0.0, AU_MAX).tolist(), strict=True))
        pose = dict(zip(POSE_NAMES, f[len(AU_NAMES) :].tolist(), strict=True))
        value = float(compute_pspi(f[None, :], feature_names)[0]) if pspi is None else pspi
        return self._send(aus, value, pose)

    def send_aus(self, aus: Mapping[str, float], pspi: float) -> bool:
        """Send AU intensities by name (any subset of AU_NAMES, FACS 0-5) and PSPI (no head pose)."""
        clean: dict[str, float] = {}
        for name, v in aus.items():
            if name not in AU_NAMES or not (_finite([v], 1) and -1e-3 <= float(v) <= AU_MAX + 1e-3):
                raise InputError(f"OscSink.send_aus: {name} = {v!r}; expected AUs from {', '.join(AU_NAMES)} "
                                 f"with intensities in 0..{AU_MAX:g}")
            clean[name] = min(max(float(v), 0.0), AU_MAX)
        return self._send(clean, pspi, {})

    def _send(self, aus: Mapping[str, float], pspi: float, pose: Mapping[str, float]) -> bool:
        if not (_finite([pspi], 1) and 0.0 <= float(pspi) <= 16.0 + 1e-3):
            raise InputError(f"OscSink: pspi = {pspi!r}, expected a number in 0..16")
        msgs = [_element(f"{self.prefix}/frame", self.frames_sent)]
        msgs += [_float_prefix(f"{self.prefix}/au/{n}") + struct.pack(">f", v) for n, v in aus.items()]
        msgs += [_float_prefix(f"{self.prefix}/head/{n[5:]}") + struct.pack(">f", v) for n, v in pose.items()]
        msgs.append(_element(f"{self.prefix}/pspi", float(pspi)))
        return self._send_bundle(msgs)


def head_quaternion(pitch_deg: float, yaw_deg: float, roll_deg: float) -> tuple[float, float, float, float]:
    """painface head pose (degrees) -> a Unity local rotation quaternion ``(x, y, z, w)``.

    Unity is left-handed, y up, and a humanoid faces +z (its right is +x). painface's pitch > 0 (head
    down) is a positive rotation about +x, yaw > 0 (face turns to the subject's left, -x) is a
    negative one about +y, roll > 0 (toward the left shoulder) a positive one about +z. Composed in
    Unity's Euler order (z, then x, then y: q = qy qx qz), as ``Quaternion.Euler`` does.
    """
    hy, hx, hz = (math.radians(a) / 2.0 for a in (-yaw_deg, pitch_deg, roll_deg))
    cy, sy, cx, sx, cz, sz = math.cos(hy), math.sin(hy), math.cos(hx), math.sin(hx), math.cos(hz), math.sin(hz)
    # Hamilton products qy * qx * qz with qy = (0, sy, 0, cy), qx = (sx, 0, 0, cx), qz = (0, 0, sz, cz)
    return (cy * sx * cz + sy * cx * sz, sy * cx * cz - cy * sx * sz,
            cy * cx * sz - sy * sx * cz, cy * cx * cz + sy * sx * sz)


class VmcSink(_UdpSink):
    """Face code -> the VMC protocol (a VRM avatar app as Marionette), one bundle per frame.

    Per frame: ``/VMC/Ext/OK 1``, ``/VMC/Ext/T <s>``, ``/VMC/Ext/Bone/Pos Head px py pz qx qy qz qw``
    (local pose; the position is ``head_position``, metres), ``/VMC/Ext/Blend/Val <name> <0..1>`` for
    each of the 52 ARKit blendshapes ("perfect sync" clip names; ``capitalize=True`` sends
    ``EyeBlinkLeft`` for models whose clips are named so) and ``/VMC/Ext/Blend/Apply``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = VMC_PORT, *, send_head: bool = True,
                 head_position: tuple[float, float, float] = (0.0, 0.0, 0.0), capitalize: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not _finite(head_position, 3):
            raise InputError(f"VmcSink: head_position must be 3 finite numbers (metres), got {head_position!r}")
        super().__init__(host, port)
        self.send_head, self.head_position = send_head, tuple(float(v) for v in head_position)
        self.names = tuple(n[0].upper() + n[1:] for n in ARKIT_NAMES) if capitalize else ARKIT_NAMES
        self._clock, self._t0 = clock, clock()

    def send(self, frame: np.ndarray, feature_names: Sequence[str] = FEATURE_NAMES) -> bool:
        """Send one FACS-space face-code frame ``[features]``; False if the datagram failed."""
        f = _frame(frame, feature_names, "VmcSink.send")
        weights = dict(zip(ARKIT_NAMES, to_arkit(f[None, :], feature_names)[0].tolist(), strict=True))
        pose = tuple(float(v) for v in f[len(AU_NAMES) : len(AU_NAMES) + 3])
        return self.send_blendshapes(weights, head_pose_deg=pose if self.send_head else None)

    def send_blendshapes(self, weights: Mapping[str, float],
                         head_pose_deg: tuple[float, float, float] | None = None) -> bool:
        """Send ARKit blendshape weights (names from ARKIT_NAMES, missing ones sent as 0, values
        clipped to 0..1) and optionally a head pose (pitch, yaw, roll) in degrees."""
        unknown = [n for n in weights if n not in ARKIT_NAMES]
        if unknown or not _finite(list(weights.values()), len(weights)):
            raise InputError(f"VmcSink: expected finite weights for ARKit blendshapes; unknown: {unknown[:5]}")
        msgs = [_element("/VMC/Ext/OK", 1), _element("/VMC/Ext/T", float(self._clock() - self._t0))]
        if head_pose_deg is not None:
            if not _finite(head_pose_deg, 3):
                raise InputError(f"VmcSink: head_pose_deg must be 3 finite angles, got {head_pose_deg!r}")
            msgs.append(_element("/VMC/Ext/Bone/Pos", "Head", *self.head_position, *head_quaternion(*head_pose_deg)))
        values = np.clip([float(weights.get(n, 0.0)) for n in ARKIT_NAMES], 0.0, 1.0).tolist()
        msgs += [_float_prefix("/VMC/Ext/Blend/Val", n) + struct.pack(">f", v)
                 for v, n in zip(values, self.names, strict=True)]
        msgs.append(_element("/VMC/Ext/Blend/Apply"))
        return self._send_bundle(msgs)


# --- link in: a joint angle -> the stimulus ------------------------------------------------------

_SPEC_HELP = ("expected 'udp:PORT', 'udp:HOST:PORT' or 'serial:DEVICE[:BAUD]' "
              "(e.g. udp:9001, serial:/dev/ttyUSB0:115200)")


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
"""A plain decimal number (no ``1_000``, ``inf``, ``nan``, hex or spaces inside)."""
_OSC_FIXED = {"i": 4, "f": 4, "c": 4, "r": 4, "m": 4, "d": 8, "h": 8, "t": 8, "T": 0, "F": 0, "N": 0, "I": 0}


def _osc_string_end(data: bytes, at: int) -> int:
    """End (4-aligned) of the OSC string starting at ``at``, or -1."""
    end = data.find(b"\x00", at)
    return -1 if end < 0 else (end // 4 + 1) * 4


def _osc_complete(data: bytes, depth: int = 0) -> bool:
    """True when ``data`` is one whole OSC 1.0 message or bundle: 4-aligned and exactly filled by its
    address, type tags and arguments (python-osc reads a truncated float as a tiny number)."""
    if len(data) % 4 or depth > 4:
        return False
    if data[:8] == b"#bundle\x00":
        at = 16
        while at < len(data):
            if at + 4 > len(data):
                return False
            size = int.from_bytes(data[at : at + 4], "big")
            if size <= 0 or at + 4 + size > len(data) or not _osc_complete(data[at + 4 : at + 4 + size], depth + 1):
                return False
            at += 4 + size
        return at == len(data) and len(data) >= 16
    at = _osc_string_end(data, 0)
    if at < 0 or data[at : at + 1] != b",":
        return False
    tags_end = _osc_string_end(data, at)
    if tags_end < 0:
        return False
    for tag in data[at + 1 : data.index(b"\x00", at)].decode("ascii", "replace"):
        if tag in _OSC_FIXED:
            tags_end += _OSC_FIXED[tag]
        elif tag in "sS":
            tags_end = _osc_string_end(data, tags_end)
        elif tag == "b":
            if tags_end + 4 > len(data):
                return False
            n = int.from_bytes(data[tags_end : tags_end + 4], "big")
            tags_end += 4 + (n + 3) // 4 * 4
        else:
            return False
        if tags_end < 0 or tags_end > len(data):
            return False
    return tags_end == len(data)


def parse_angle(data: bytes) -> float:
    """One reading -> a finite number: an OSC message or bundle (its first numeric argument; the last
    message that has one in a bundle) or ASCII text holding one number. Raises ValueError otherwise."""
    if data[:1] == b"/" or data[:8] == b"#bundle\x00":
        if not _osc_complete(data):
            raise ValueError("malformed OSC packet: truncated, or its arguments do not fill it")
        try:
            msgs = list(OscBundle(data)) if data[:1] == b"#" else [OscMessage(data)]
        except Exception as e:  # python-osc raises its own ParseErrors, IndexError, struct.error ...
            raise ValueError(f"malformed OSC packet: {e}") from None
        nums = [p for m in msgs if isinstance(m, OscMessage) for p in m.params
                if isinstance(p, int | float) and not isinstance(p, bool)]
        if not nums:
            raise ValueError("OSC packet without a numeric argument")
        value = float(nums[-1] if data[:1] == b"#" else nums[0])
    else:
        text = data.decode("ascii").strip()
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"not a plain decimal number: {text[:20]!r}")
        value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return value


class LineParser:
    """Bytes from a serial line -> complete lines (``\\n`` or ``\\r\\n`` ends one; blank lines are
    skipped). A line longer than ``max_len`` bytes comes out as ``OVERLONG`` (a bad reading)."""

    OVERLONG = b"<overlong line>"

    def __init__(self, max_len: int = 64) -> None:
        self.max_len, self._buf, self._skipping = max_len, bytearray(), False

    def feed(self, data: bytes) -> list[bytes]:
        *complete, rest = bytes(self._buf + data).split(b"\n")
        lines = []
        for line in complete:
            if self._skipping:  # the end of an overlong line
                self._skipping = False
            elif len(line.rstrip(b"\r")) > self.max_len:
                lines.append(self.OVERLONG)
            elif line.strip():
                lines.append(line.rstrip(b"\r"))
        if not self._skipping and len(rest) > self.max_len:
            lines.append(self.OVERLONG)
            self._skipping = True
        self._buf = bytearray() if self._skipping else bytearray(rest)
        return lines


class _UdpReader:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host, port))
        except (OSError, TypeError, OverflowError) as e:
            self.sock.close()
            raise InputError(f"joint-angle source udp:{host}:{port}: cannot listen: {e}") from None
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]

    def read(self) -> list[bytes]:
        out = []
        while len(out) < 10000:
            try:
                out.append(self.sock.recv(65535))
            except OSError:  # nothing more pending (BlockingIOError), or an ICMP error on some systems
                break
        return out

    def close(self) -> None:
        self.sock.close()


class _SerialReader:
    def __init__(self, device: str, baudrate: int) -> None:
        import serial  # pyserial

        self._error = serial.SerialException
        try:
            self.port = serial.serial_for_url(device, baudrate=baudrate, timeout=0)
        except (serial.SerialException, ValueError, OSError) as e:
            raise InputError(f"joint-angle source serial:{device}:{baudrate}: cannot open: {e}") from None
        self.lines, self.failed = LineParser(), False

    def read(self) -> list[bytes]:
        if self.failed:
            return []
        try:
            data = self.port.read(max(self.port.in_waiting, 1))
        except (self._error, OSError) as e:  # unplugged: keep the last value, say so once
            log.error("joint-angle serial line failed, keeping the last value: %s", e)
            self.failed = True
            return []
        return self.lines.feed(data)

    def close(self) -> None:
        self.port.close()


class JointAngleSource(_Closing):
    """A live joint angle mapped onto the normalized stimulus, as the PainDiffusion elbow robot did.

    ``angle_range`` (degrees, or whatever unit the device sends): the angle at which pain starts
    (stimulus 0) and the angle of tolerance (stimulus 1); linear between, clamped outside; a reversed
    range (start > end) means extension hurts. Default: the elbow protocol's 40..120 degrees.
    ``smoothing`` in 0..1: per reading, ``s <- smoothing * s + (1 - smoothing) * new`` (0 = none).
    Non-blocking: :meth:`latest` drains what has arrived and returns the current stimulus (0 before
    any reading). Garbage readings are counted in ``bad`` and logged, never raised.
    """

    def __init__(self, reader: _UdpReader | _SerialReader, *, angle_range: tuple[float, float] | None = None,
                 smoothing: float = 0.0, name: str = "joint angle") -> None:
        p = ElbowProtocol()
        rng = angle_range if angle_range is not None else (p.pain_onset_deg, p.pain_max_deg)
        try:
            lo, hi = (float(v) for v in rng)
            ok = math.isfinite(lo) and math.isfinite(hi) and lo != hi and 0.0 <= float(smoothing) < 1.0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            reader.close()
            raise InputError(f"{name}: expected angle_range = two different finite angles and smoothing in "
                             f"[0, 1), got angle_range={angle_range!r}, smoothing={smoothing!r}")
        self._reader, self.name = reader, name
        self.angle_range, self.smoothing = (lo, hi), float(smoothing)
        self.angle: float | None = None
        self.value, self.good, self.bad = 0.0, 0, 0

    @classmethod
    def udp(cls, port: int, host: str = "127.0.0.1", **kwargs: Any) -> JointAngleSource:
        """Listen on UDP ``host:port`` (port 0: any free port, see :attr:`address`)."""
        return cls(_UdpReader(host, port), name=f"udp:{host}:{port}", **kwargs)

    @classmethod
    def serial(cls, device: str, baudrate: int = 115200, **kwargs: Any) -> JointAngleSource:
        """Read one number per line from a serial device or pyserial URL (``loop://`` for tests)."""
        return cls(_SerialReader(device, baudrate), name=f"serial:{device}:{baudrate}", **kwargs)

    @property
    def address(self) -> tuple[str, int] | None:
        """The bound (host, port) of a UDP source, else None."""
        return getattr(self._reader, "address", None)

    def stimulus(self, angle: float | np.ndarray) -> np.ndarray:
        """Angle -> stimulus 0..1 over :attr:`angle_range`, clamped (no smoothing)."""
        lo, hi = self.angle_range
        return angle_to_stimulus(angle, lo, hi) if lo < hi else 1.0 - angle_to_stimulus(angle, hi, lo)

    def poll(self) -> int:
        """Drain pending readings without blocking; return how many arrived (good and bad)."""
        readings = self._reader.read()
        for data in readings:
            try:
                angle = parse_angle(data)
            except ValueError as e:
                self.bad += 1
                _warn(self.bad, "%s: ignored a bad reading (%d so far) %r: %s", self.name, self.bad, data[:40], e)
                continue
            self.good += 1
            self.angle = angle
            self.value = self.smoothing * self.value + (1.0 - self.smoothing) * float(self.stimulus(angle))
        return len(readings)

    def latest(self) -> float:
        """The current stimulus (0..1) after draining what has arrived."""
        self.poll()
        return self.value

    def __iter__(self) -> Iterator[float]:
        """Endless, non-blocking: each step yields :meth:`latest` (the caller paces it, e.g. 25 fps)."""
        while True:
            yield self.latest()

    def close(self) -> None:
        self._reader.close()


def parse_source(spec: str, **kwargs: Any) -> JointAngleSource:
    """A CLI spec -> a source: ``udp:PORT``, ``udp:HOST:PORT`` or ``serial:DEVICE[:BAUD]`` (baud
    115200 by default). ``kwargs`` go to :class:`JointAngleSource` (angle_range, smoothing)."""
    kind, _, rest = str(spec).partition(":")
    if kind == "udp":
        host, colon, port = rest.rpartition(":")
        if not re.fullmatch(r"\d{1,5}", port) or int(port) > 65535 or (colon and not host):
            raise InputError(f"joint-angle source {spec!r}: bad UDP port {port!r} (0..65535); {_SPEC_HELP}")
        return JointAngleSource.udp(int(port), host or "127.0.0.1", **kwargs)
    if kind == "serial" and rest:
        device, _, baud = rest.rpartition(":")
        if not (device and re.fullmatch(r"\d{3,7}", baud)):
            device, baud = rest, "115200"
        return JointAngleSource.serial(device, int(baud), **kwargs)
    raise InputError(f"joint-angle source {spec!r}: {_SPEC_HELP}")
