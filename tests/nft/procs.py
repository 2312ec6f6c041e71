"""Loopback processes for the NFT tests: the Helia IPFS node, the ganache chain (both from
tests/nft/node_modules, installed by scripts/setup.d/nft.sh) and ``ownvault serve``.

Each prints one JSON line when ready; :class:`Proc` reads it and stops the process (by
its own pid) at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

NFT_DIR = Path(__file__).resolve().parent
__all__ = ["NFT_DIR", "Proc", "contracts", "require_tools"]


def require_tools() -> None:
    if (
        not (NFT_DIR / "node_modules" / ".ownvault-lock-sha256").exists()
        or not (NFT_DIR / "build" / "contracts.json").exists()
    ):
        pytest.fail(
            "the NFT test tools are not installed: run `bash scripts/setup.d/nft.sh` (make test does)"
        )


def contracts() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((NFT_DIR / "build" / "contracts.json").read_text())
    return doc


class Proc:
    def __init__(
        self,
        args: list[str],
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log = log
        self._err = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
        )
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError(f"{args[:3]} did not start: {log.read_text()[-2000:]}")
        self.info: dict[str, Any] = json.loads(line)

    @property
    def url(self) -> str:
        return str(self.info.get("listening") or self.info["rpc"])

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.p.stdout is not None:
            self.p.stdout.close()
        self._err.close()

    @classmethod
    def helia(cls, tmp: Path, name: str) -> Proc:
        return cls(
            ["node", str(NFT_DIR / "helia-node.mjs"), "--mem", "--port", "0"], tmp / f"{name}.log"
        )

    @classmethod
    def chain(cls, tmp: Path, plan: dict[str, Any]) -> Proc:
        (tmp / "plan.json").write_text(json.dumps(plan))
        return cls(["node", str(NFT_DIR / "chain.mjs"), str(tmp / "plan.json")], tmp / "chain.log")

    @classmethod
    def serve(cls, tmp: Path, vault: Path, passphrase: str, *extra: str) -> Proc:
        return cls(
            [
                sys.executable,
                "-m",
                "ownvault",
                "--vault",
                str(vault),
                "serve",
                "--listen",
                "127.0.0.1:0",
                *extra,
            ],
            tmp / "serve.log",
            env={"OWNVAULT_PASSPHRASE": passphrase},
        )
