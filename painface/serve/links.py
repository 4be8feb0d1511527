"""Live links: face codes out to robot faces (OSC) and VRM avatars (VMC), a joint angle in.

:class:`OscSink` (AUs, head pose, PSPI) and :class:`VmcSink` (52 ARKit blendshapes, head bone) send one
OSC bundle per frame over UDP; :class:`JointAngleSource` maps a joint angle read from UDP or a serial
line linearly onto the stimulus, as the PainDiffusion elbow robot did ([PainDiffusion, §III-F]).
Nothing blocks: sinks count failed sends, the source drains what arrived and keeps the last good
value. Address spaces and wiring: docs/links.md. The joint angle in lives in :mod:`painface.serve.joint`
(re-exported here).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pythonosc.osc_bundle_builder import IMMEDIATELY
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
from painface.serve.joint import (  # the joint angle in; re-exported: the public names of docs/links.md
    JointAngleSource,  # noqa: F401
    LineParser,  # noqa: F401
    _Closing,
    _warn,
    parse_angle,  # noqa: F401
    parse_source,  # noqa: F401
)

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
