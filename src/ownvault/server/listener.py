"""How ``ownvault serve`` runs its app on uvicorn: the connection limits, in one place.

uvicorn has a keep-alive timeout but none for a request's head: a client that sends its
headers a byte at a time would hold its connection for ever (slowloris). :class:`Protocol`
adds one: from the moment a connection waits for a request head (when it opens, and after
each response), the head must be complete within :data:`HEAD_SECONDS`, or the connection
is closed.

=========================  ======================================================
``HEAD_SECONDS``           10: a request head must arrive within this
``timeout_keep_alive``     5 s: an idle keep-alive connection is closed
``limit_concurrency``      256 connections or requests at once; past it, 503
``h11_max_incomplete...``  64 KiB: the most a request head may take (431 or 400)
``backlog``                256 pending connections
=========================  ======================================================
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEAD_SECONDS", "MAX_CONCURRENCY", "MAX_HEAD", "Protocol", "uvicorn_config"]

HEAD_SECONDS = 10.0
MAX_CONCURRENCY = 256
MAX_HEAD = 64 * 1024
KEEP_ALIVE_SECONDS = 5


class Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head."""

    head_deadline: asyncio.TimerHandle | None = None

    def waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def arm(self) -> None:
        self.disarm()
        self.head_deadline = self.loop.call_later(HEAD_SECONDS, self.head_too_slow)

    def disarm(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def head_too_slow(self) -> None:
        self.head_deadline = None
        if self.waiting_for_head() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.waiting_for_head():
            self.disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.waiting_for_head() and not self.transport.is_closing():
            self.arm()


def uvicorn_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=Protocol,
        log_level="warning",
        lifespan="on",
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        limit_concurrency=MAX_CONCURRENCY,
        backlog=MAX_CONCURRENCY,
        h11_max_incomplete_event_size=MAX_HEAD,
    )
