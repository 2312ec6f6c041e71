"""One ``httpx.AsyncClient`` per running event loop, for the HTTP adapters.

Providers may be used from several ``asyncio.run`` calls in turn (the CLI, the tests). A
client belongs to the loop that made it: a watcher task on that loop, cancelled when the
loop shuts down, closes it; clients of loops already closed are forgotten on the next use.
"""

from __future__ import annotations

import asyncio

import httpx

__all__ = ["LoopClients"]


class LoopClients:
    """The ``httpx.AsyncClient`` of each running event loop (redirects never followed)."""

    def __init__(self, timeout: httpx.Timeout) -> None:
        self._timeout = timeout
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._watchers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def get(self) -> httpx.AsyncClient:
        """The running loop's client, made on first use."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [old for old in self._clients if old.is_closed()]:
                self._clients.pop(old, None)
                self._watchers.pop(old, None)
            client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
            self._clients[loop] = client
            self._watchers[loop] = loop.create_task(self._watch(client))
        return client

    @staticmethod
    async def _watch(client: httpx.AsyncClient) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        """Close the running loop's client now; other loops' clients close with their loop."""
        loop = asyncio.get_running_loop()
        for other in list(self._clients):
            client = self._clients.pop(other)
            watcher = self._watchers.pop(other, None)
            if other is loop:
                if watcher is not None:
                    watcher.cancel()
                await client.aclose()
