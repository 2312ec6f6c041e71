"""The JavaScript reference oracle (``ipfs-oracle.mjs``) driven from the tests.

Installed by ``scripts/setup.d/ipfs-oracle.sh`` (``make test`` runs it). When it is not
installed the tests that need it fail with a message saying so, unless
``OWNVAULT_SKIP_ORACLE=1`` is set, in which case they are skipped.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ipfs-oracle.mjs"


class Oracle:
    """Thin wrapper: one Node process per call; use :meth:`batch` for many CIDs."""

    def __init__(self, node: str) -> None:
        self.node = node

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.node, str(SCRIPT), *args], capture_output=True, text=True, timeout=300
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"oracle {args} failed: {proc.stderr.strip()}")
        return proc

    def cid(self, path: Path | str, **opts: object) -> str:
        return str(self.batch([{"path": str(path), **opts}])[0])

    def batch(self, jobs: list[dict[str, object]]) -> list[str]:
        """CIDs for many ``{path, profile?, chunk-size?, ...}`` jobs in one Node process."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(jobs, fh)
        try:
            out = json.loads(self.run("batch", fh.name).stdout)
        finally:
            os.unlink(fh.name)
        return [item["cid"] for item in out]

    def car_ls(self, car: Path | str) -> dict[str, Any]:
        proc = self.run("car-ls", str(car), "--json", check=False)
        result: dict[str, Any] = json.loads(proc.stdout)
        result["exit"] = proc.returncode
        return result

    def gateway_fetch(self, url: str) -> dict[str, Any]:
        """Fetch ``url`` as a CAR with the reference client, verify it, unpack it."""
        proc = self.run("gateway-fetch", url, check=False)
        if proc.returncode not in (0, 1) or not proc.stdout.strip():
            raise AssertionError(f"oracle gateway-fetch failed: {proc.stderr.strip()}")
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def symlink(self, target: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run("symlink", target).stdout)
        return result


@functools.cache
def _find() -> Oracle | None:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "ipfs-unixfs-importer").is_dir():
        return None
    return Oracle(node)


def require_oracle() -> Oracle:
    """The oracle, or a test failure (skip with OWNVAULT_SKIP_ORACLE=1) when not installed."""
    found = _find()
    if found is None:
        msg = "IPFS oracle not installed: run scripts/setup.d/ipfs-oracle.sh"
        if os.environ.get("OWNVAULT_SKIP_ORACLE") == "1":
            pytest.skip(msg)
        pytest.fail(msg)
    return found
