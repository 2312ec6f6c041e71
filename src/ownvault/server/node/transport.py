"""The node's HTTP/1.1 connections: a bounded number, each on a deadline, unambiguous framing.

uvicorn's h11 protocol times out only idle keep-alive connections, and any byte received
restarts that timer; it has no deadline for a request head and no cap on connections
(``limit_concurrency`` answers 503 only once a head has arrived). So a few hundred
clients that send half a request each could hold every connection the process can open.
:func:`guarded_protocol` makes the h11 protocol class that closes a connection

* that has not delivered a complete request head ``header_timeout`` seconds after it
  opened, or ``idle_timeout`` seconds after its last response, however slowly bytes
  trickle in (a request being served is never cut: its body has its own idle deadline in
  the app);
* beyond ``max_connections``: the longest-waiting connection that is not serving a
  request is closed to make room, or the new one if all are busy.

:func:`framing_guard` refuses (400, and the connection is closed) a request whose body
length is ambiguous (RFC 9112 section 6.3): ``Content-Length`` together with
``Transfer-Encoding``, or several ``Content-Length`` values. h11 itself refuses every
transfer coding but a single ``chunked``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ownvault.providers.node.protocol import ErrorCode, encode_error

__all__ = ["ConnectionLimits", "framing_guard", "guarded_protocol"]


class ConnectionLimits:
    """Settings and counters shared by every connection of one server."""

    def __init__(
        self,
        *,
        max_connections: int,
        header_timeout: float,
        idle_timeout: float,
        on_close: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.on_close = on_close


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """An h11 protocol class (for ``uvicorn.Config(http=...)``) enforcing ``limits``."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        waiting_since: float = 0.0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= limits.max_connections and not self._evict_one():
                limits.on_close("connection_limit")
                transport.abort()
                return
            super().connection_made(transport)
            self._arm(limits.header_timeout)

        def serving(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _evict_one(self) -> bool:
            idle = [
                c for c in self.connections if isinstance(c, GuardedH11Protocol) and not c.serving()
            ]
            if not idle:
                return False
            oldest = min(idle, key=lambda c: c.waiting_since)
            limits.on_close("evicted")
            oldest.abort_connection()
            return True

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self.waiting_since = time.monotonic()
            self._deadline = self.loop.call_later(seconds, self._on_deadline)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _on_deadline(self) -> None:
            self._deadline = None
            if not self.serving():
                limits.on_close("header_timeout")
                self.abort_connection()

        def abort_connection(self) -> None:
            self._disarm()
            self.connections.discard(self)
            if not self.transport.is_closing():
                self.transport.abort()

        def handle_events(self) -> None:
            before = self.cycle
            super().handle_events()
            if self.cycle is not before:
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm(limits.idle_timeout)
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if getattr(self, "transport", None) is None:
                return  # refused in connection_made: nothing was set up
            super().connection_lost(exc)

    return GuardedH11Protocol


def framing_guard(app: ASGIApp) -> ASGIApp:
    """Refuse requests whose body framing is ambiguous (request smuggling), 400 + close."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            lengths = [v for k, v in scope["headers"] if k == b"content-length"]
            chunked = any(k == b"transfer-encoding" for k, _v in scope["headers"])
            if (lengths and chunked) or len(lengths) > 1:
                body = encode_error(
                    ErrorCode.BAD_REQUEST,
                    "ambiguous body length: Content-Length with Transfer-Encoding, or twice",
                )
                await send(
                    {
                        "type": "http.response.start",
                        "status": 400,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded
