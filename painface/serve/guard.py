"""Who may talk to the live server: Host and Origin checks against the served origin (docs/security.md).

Browsers let any page open a WebSocket to ``127.0.0.1`` and, by DNS rebinding, send plain requests to it
under a name the attacker controls. :class:`OriginGuard` (ASGI middleware, every HTTP request and
WebSocket handshake) therefore refuses:

* a ``Host`` header whose host name is not a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``),
  the address the server was bound to (unless a wildcard such as ``0.0.0.0``) or the host of an origin
  in the allow-list: answered ``403`` (a rebinding attack's requests carry the attacker's name);
* an ``Origin`` header (sent by browsers with every WebSocket handshake and cross-site request) that is
  neither the served origin (``http://`` + the request's own, accepted ``Host``) nor in the allow-list
  (``--allow-origin``, exact ``scheme://host[:port]`` strings): ``403`` for HTTP, the handshake refused
  (HTTP 403) for WebSockets. ``Origin: null`` (sandboxed frames, ``file://`` pages) is refused.

Requests without an ``Origin`` (scripts, robots, curl) are let through: browsers always send one on a
WebSocket handshake, so a web page cannot pass for them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from painface.errors import InputError

MESSAGES_PER_S = 200.0
"""Client messages handled per second and session, after a burst of :data:`MESSAGE_BURST` (a slider sends
at most one per displayed frame, ~60 a second); beyond it the server stops reading that session's
messages for a while (TCP pushes back on the sender), so a flooding client slows itself, not the others."""
MESSAGE_BURST = 400

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` lower-cased, default ports dropped; InputError when ``text`` is not one."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username:
        raise InputError(f"--allow-origin {text!r}: expected an origin like http://192.168.1.20:8000 "
                         "(scheme, host and port only)")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _host_name(host_header: str) -> str | None:
    """The host name of a ``Host`` header (lower case, IPv6 without brackets), None when malformed."""
    parts = urlsplit(f"http://{host_header.strip()}")
    try:
        _ = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.path or parts.query or parts.username:
        return None
    return parts.hostname.lower()


class OriginGuard:
    """ASGI middleware: refuse requests whose Host or Origin is not allowed (see the module docstring).
    ``bind_host``: the address the server listens on; ``allow_origins``: extra allowed origins."""

    def __init__(self, app: Any, *, bind_host: str = "127.0.0.1", allow_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.origins = frozenset(normalize_origin(o) for o in allow_origins)
        names = set(LOOPBACK_NAMES) | {urlsplit(o).hostname or "" for o in self.origins}
        bind = bind_host.strip("[]").lower()
        if bind not in WILDCARDS:
            names.add(bind)
        self.hosts = frozenset(n for n in names if n)
        self.refused = 0

    def check(self, headers: dict[str, str], scheme: str) -> str | None:
        """None when the request may pass, else why not."""
        host = headers.get("host")
        name = _host_name(host) if host else None
        if name is None or name not in self.hosts:
            return f"Host {host!r} is not served here; expected one of {sorted(self.hosts)} (or --allow-origin)"
        origin = headers.get("origin")
        if origin is None:
            return None
        try:
            norm = normalize_origin(origin)
        except InputError:
            return f"Origin {origin[:80]!r} refused"
        served = {normalize_origin(f"{s}://{host}") for s in ("http", "https") if s == scheme}
        if norm in served or norm in self.origins:
            return None
        return f"Origin {origin[:80]!r} refused; allowed: the served origin and {sorted(self.origins)}"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
        why = self.check(headers, scheme)
        if why is None:
            return await self.app(scope, receive, send)
        self.refused += 1
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": "origin refused"})
            return
        body = json.dumps({"error": "forbidden", "message": why}).encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class RateLimit:
    """A token bucket: ``rate`` messages a second after a burst of ``burst``. ``await wait()`` before each
    message sleeps while the bucket is empty; ``waited_s`` adds up the sleeps."""

    def __init__(self, rate: float = MESSAGES_PER_S, burst: int = MESSAGE_BURST, clock=time.monotonic) -> None:
        self.rate, self.burst, self.clock = float(rate), float(burst), clock
        self.tokens, self.t, self.waited_s = float(burst), clock(), 0.0

    def delay(self) -> float:
        """Take one token; the seconds to wait before the message may be handled (0 within the budget)."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate) - 1.0
        self.t = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    async def wait(self) -> None:
        d = self.delay()
        if d > 0:
            self.waited_s += d
            await asyncio.sleep(d)


def is_ip(text: str) -> bool:
    """True when ``text`` is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True
