"""Live link in: a joint angle read from UDP or a serial line -> the stimulus (:class:`JointAngleSource`),
as the PainDiffusion elbow robot did ([PainDiffusion, §III-F]). Nothing blocks: the source drains what
arrived and keeps the last good value; malformed readings (truncated OSC packets, text that is not a plain
decimal number) are counted and ignored. Specs and wiring: docs/links.md. Re-exported by
:mod:`painface.serve.links`.
"""

from __future__ import annotations

import logging
import math
import re
import socket
from collections.abc import Iterator
from typing import Any

import numpy as np
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from painface.errors import InputError
from painface.subjects.protocols import ElbowProtocol, angle_to_stimulus

log = logging.getLogger("painface.serve.links")  # one logger for every live link


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
