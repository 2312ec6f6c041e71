"""Prometheus metrics of the storage node, and the ASGI middleware that records them.

Labels are bounded: ``endpoint`` is one of a fixed set (never an object name or an
account), ``status`` an HTTP status, ``code`` one of the node's stable error codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NodeMetrics", "endpoint_of"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def endpoint_of(path: str) -> str:
    if path.startswith("/v1/objects/"):
        return "object"
    return {
        "/v1/objects": "list",
        "/v1/info": "info",
        "/v1/audit": "audit",
        "/healthz": "healthz",
        "/metrics": "metrics",
    }.get(path, "other")


class NodeMetrics:
    def __init__(self, objects: Callable[[], float], stored: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ownvault_node_requests",
            "Requests answered, by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.bytes_in = Counter(
            "ownvault_node_received_bytes", "Request body bytes received.", registry=r
        )
        self.bytes_out = Counter(
            "ownvault_node_sent_bytes", "Response body bytes sent.", registry=r
        )
        self.errors = Counter(
            "ownvault_node_errors",
            "Requests refused or failed, by error code.",
            ["code"],
            registry=r,
        )
        self.latency = Histogram(
            "ownvault_node_request_duration_seconds",
            "Time from request start to the last response byte, by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=r,
        )
        self.connections_closed = Counter(
            "ownvault_node_connections_closed",
            "Connections the node closed or refused, by reason.",
            ["reason"],
            registry=r,
        )
        self._log_suppressed = Gauge(
            "ownvault_node_log_lines_suppressed",
            "Log records dropped by the throttle (one line per kind per minute).",
            registry=r,
        )
        shares = Gauge("ownvault_node_shares_stored", "Objects stored, all accounts.", registry=r)
        shares.set_function(objects)
        used = Gauge("ownvault_node_stored_bytes", "Bytes stored, all accounts.", registry=r)
        used.set_function(stored)

    def watch_log_throttle(self, suppressed: Callable[[], float]) -> None:
        self._log_suppressed.set_function(suppressed)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            endpoint = endpoint_of(scope["path"])
            start = time.perf_counter()
            status = 500

            async def counting_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    self.bytes_in.inc(len(message.get("body", b"")))
                return message

            async def counting_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                elif message["type"] == "http.response.body":
                    self.bytes_out.inc(len(message.get("body", b"")))
                await send(message)

            try:
                await app(scope, counting_receive, counting_send)
            finally:
                self.requests.labels(endpoint, scope["method"], str(status)).inc()
                self.latency.labels(endpoint).observe(time.perf_counter() - start)

        return wrapped
