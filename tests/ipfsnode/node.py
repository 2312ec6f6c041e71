"""Start and stop the loopback Helia node (``helia-node.mjs``) from the tests.

Installed by ``scripts/setup.d/helia.sh`` (``make test`` runs it). When it is not installed
the tests that need it fail with a message saying so, unless ``OWNVAULT_SKIP_IPFS_NODE=1``
is set, in which case they are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "helia-node.mjs"
PIN_TOKEN = "test-pinning-token"


def _require() -> str:
    node = shutil.which("node")
    ok = node is not None and (HERE / "node_modules" / "helia").is_dir()
    if not ok:
        msg = "the Helia test node is not installed: run scripts/setup.d/helia.sh"
        if os.environ.get("OWNVAULT_SKIP_IPFS_NODE") == "1":
            pytest.skip(msg)
        raise AssertionError(msg)
    assert node is not None
    return node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class HeliaNode:
    """One node process on a repo directory; ``kill()`` / ``start()`` again on the same port."""

    def __init__(self, repo: Path, *, pinning: bool = False) -> None:
        self.repo = repo
        self.port = free_port()
        self.pinning_port = free_port() if pinning else None
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.pinning_url = (
            f"http://127.0.0.1:{self.pinning_port}" if self.pinning_port is not None else None
        )

    def start(self, timeout: float = 30.0) -> HeliaNode:
        node = _require()
        cmd = [node, str(SCRIPT), "--port", str(self.port), "--repo", str(self.repo)]
        if self.pinning_port is not None:
            cmd += ["--pinning-port", str(self.pinning_port), "--pinning-token", PIN_TOKEN]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            if line.startswith("{") and "listening" in line:
                json.loads(line)
                return self
        self.kill()
        raise AssertionError(f"helia node did not start: {line!r}")

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def chaos(self, **settings: object) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.url}/debug/chaos", data=json.dumps(settings).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            out: dict[str, Any] = json.loads(resp.read())
            return out

    def rpc(self, command: str, **params: str) -> bytes:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        req = urllib.request.Request(f"{self.url}/api/v0/{command}?{query}", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: bytes = resp.read()
            return body
