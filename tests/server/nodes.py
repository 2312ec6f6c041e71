"""Real storage-node processes on loopback, for tests and benchmarks.

``NodeCluster`` starts ``python -m ownvault node serve`` processes on 127.0.0.1 (port 0 on
first start, the same port on restart), waits for each one's ready line and ``/healthz``,
and kills them with SIGKILL at the end (no graceful shutdown: what is acknowledged must
already be durable). Usage::

    with NodeCluster(tmp_path) as cluster:
        nodes = cluster.start_many(8, jurisdictions=["CH", "DE", ...])
        provider = NodeProvider(nodes[0].url, signer)
        cluster.kill(nodes[0])        # kill -9
        cluster.restart(nodes[0])     # same data directory, same port
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["Node", "NodeCluster"]

STARTUP_TIMEOUT = 30.0


@dataclass
class Node:
    index: int
    data: Path
    args: list[str]
    port: int = 0
    url: str = ""
    node_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    stderr: list[str] = field(default_factory=list)
    drain: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class NodeCluster:
    def __init__(self, root: Path, *, python: str = sys.executable) -> None:
        self.root = Path(root)
        self.python = python
        self.nodes: list[Node] = []

    def __enter__(self) -> NodeCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    # -- starting ----------------------------------------------------------------------------

    def add(
        self,
        *,
        jurisdiction: str | None = None,
        quota: str | None = None,
        max_object_size: str | None = None,
        allowlist: Path | None = None,
        chaos: tuple[str, ...] = (),
        window: int | None = None,
        extra: tuple[str, ...] = (),
    ) -> Node:
        """Define a node (not started yet)."""
        index = len(self.nodes)
        args: list[str] = []
        if jurisdiction:
            args += ["--jurisdiction", jurisdiction]
        if quota:
            args += ["--quota-per-account", quota]
        if max_object_size:
            args += ["--max-object-size", max_object_size]
        if allowlist is not None:
            args += ["--accounts", "allowlist", "--allowlist", str(allowlist)]
        else:
            args += ["--accounts", "open"]
        for mode in chaos:
            args += ["--chaos", mode]
        if window is not None:
            args += ["--window", str(window)]
        args += extra
        node = Node(index, self.root / f"node{index}", args)
        self.nodes.append(node)
        return node

    def _spawn(self, node: Node) -> None:
        cmd = [self.python, "-m", "ownvault", "node", "serve", "--data", str(node.data)]
        cmd += ["--listen", f"127.0.0.1:{node.port}", *node.args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        node.process = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
        )
        node.stderr = []
        node.drain = threading.Thread(target=self._drain, args=(node.process, node), daemon=True)
        node.drain.start()

    @staticmethod
    def _drain(process: subprocess.Popen[bytes], node: Node) -> None:
        assert process.stderr is not None
        try:
            for line in process.stderr:
                node.stderr.append(line.decode(errors="replace").rstrip())
                del node.stderr[:-50]
        finally:
            process.stderr.close()

    def _await_ready(self, node: Node) -> None:
        assert node.process is not None and node.process.stdout is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        line = node.process.stdout.readline()
        if not line:
            node.process.wait(5)
            raise RuntimeError(f"node {node.index} did not start: {node.stderr[-10:]}")
        doc = json.loads(line)
        node.url = str(doc["listening"])
        node.node_id = str(doc["node_id"])
        node.port = int(node.url.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            try:
                if httpx.get(node.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"node {node.index} never became healthy")

    def start(self, node: Node) -> Node:
        self._spawn(node)
        self._await_ready(node)
        return node

    def start_many(
        self, count: int, *, jurisdictions: list[str] | None = None, **kwargs: object
    ) -> list[Node]:
        """Define and start ``count`` nodes in parallel; jurisdictions cycle over the list."""
        nodes = []
        for i in range(count):
            j = jurisdictions[i % len(jurisdictions)] if jurisdictions else None
            nodes.append(self.add(jurisdiction=j, **kwargs))  # type: ignore[arg-type]
        return self.start_all(nodes)

    def start_all(self, nodes: list[Node]) -> list[Node]:
        """Start defined nodes in parallel (processes overlap their start-up)."""
        for node in nodes:
            self._spawn(node)
        for node in nodes:
            self._await_ready(node)
        return nodes

    # -- failures ----------------------------------------------------------------------------

    def kill(self, node: Node) -> None:
        """``kill -9`` the node's process and reap it."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(10)
        if node.process is not None and node.process.stdout is not None:
            node.process.stdout.close()
        if node.drain is not None:
            node.drain.join(10)

    def restart(self, node: Node) -> Node:
        """Start a killed node again on the same port and data directory."""
        self.kill(node)
        return self.start(node)

    def stop_all(self) -> None:
        for node in self.nodes:
            self.kill(node)
