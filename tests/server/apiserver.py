"""`ownvault serve` for tests: the app in a thread (``serve``), or the real command as a process
on 127.0.0.1 (``serve_process``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class ServeProcess:
    """A running ``ownvault serve`` and the JSON line it printed (``listening``, ``ui``)."""

    proc: subprocess.Popen[str]
    doc: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.doc["listening"])


@contextmanager
def serve_process(vault_dir: Path, env: Mapping[str, str], log: Path) -> Iterator[ServeProcess]:
    """``ownvault --vault VAULT serve --listen 127.0.0.1:0`` as a process (stderr to ``log``),
    stopped (terminate, then kill) when the block ends."""
    with open(log, "w") as err:
        cmd = [sys.executable, "-m", "ownvault", "--vault", str(vault_dir), "serve"]
        proc = subprocess.Popen(
            [*cmd, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env),
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line, log.read_text()
            doc = json.loads(line)
            assert str(doc["listening"]).startswith("http://127.0.0.1:")
            yield ServeProcess(proc, doc)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
