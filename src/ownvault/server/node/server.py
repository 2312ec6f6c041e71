"""Running the storage node: the listening socket, uvicorn's settings, the guards.

The connection guards are in :mod:`.transport`, the log throttle in :mod:`.logs`.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import uvicorn

from ownvault.server.node.app import NodeApp
from ownvault.server.node.config import NodeConfig
from ownvault.server.node.logs import install_log_throttle
from ownvault.server.node.transport import ConnectionLimits, guarded_protocol

__all__ = ["serve"]

MAX_REQUEST_HEAD = 16 * 1024
"""Bytes of request line and headers (h11 refuses a longer head: 431/400)."""


def serve(
    config: NodeConfig,
    host: str,
    port: int,
    *,
    ready: Callable[[dict[str, object]], None] | None = None,
) -> None:
    """Bind ``host:port`` (0 = any free port), call ``ready`` with the address, serve."""
    node = NodeApp(config)
    app = node.asgi()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it small responses wait ~40 ms for delayed ACKs (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    limits = ConnectionLimits(
        max_connections=config.max_connections,
        header_timeout=config.header_timeout,
        idle_timeout=config.idle_timeout,
        on_close=lambda reason: node.metrics.connections_closed.labels(reason).inc(),
    )
    uv_config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=int(config.idle_timeout),
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
    )
    throttle = install_log_throttle()
    node.metrics.watch_log_throttle(lambda: float(throttle.suppressed))
    server = uvicorn.Server(uv_config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and ready is not None:
            ready(
                {
                    "listening": f"http://{shown}:{bound}",
                    "node_id": node.node_id,
                    "jurisdiction": config.jurisdiction,
                    "pid": os.getpid(),
                }
            )
        await task

    asyncio.run(main())
