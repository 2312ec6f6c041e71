"""An `ownvault serve` app (API, UI, gateway) on 127.0.0.1 in a thread, for API tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from ownvault.engine.vault import Vault
from ownvault.server.api.state import ApiLimits
from ownvault.server.app import create_app

TOKEN = "test-token-" + "x" * 32


@dataclass
class Live:
    url: str
    token: str
    vault: Vault
    app: Any

    def client(self, auth: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serve(vault: Vault, *, limits: ApiLimits | None = None) -> Iterator[Live]:
    app = create_app(vault, token=TOKEN, limits=limits)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Live(f"http://127.0.0.1:{port}", TOKEN, vault, app)
    finally:
        server.should_exit = True
        thread.join(30)
