"""A vault served by a real ``ownvault serve`` process, for the WebDAV tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import serve_process


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    token: str
    vault: Path
    env: dict[str, str]
    pid: int  # the serve process

    def peak_rss(self) -> int:
        """The serve process's peak resident memory so far (VmHWM), in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        return int(next(ln for ln in status if ln.startswith("VmHWM:")).split()[1]) * 1024

    @property
    def dav(self) -> str:
        return self.url + "/dav/"


def cli_env() -> dict[str, str]:
    return {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}


def new_vault(path: Path) -> Path:
    vault = make_vault(path, providers=3, k=2)
    run(vault.close())
    return path


@contextmanager
def served(tmp_path: Path) -> Iterator[Served]:
    vault = new_vault(tmp_path / "vault")
    env = cli_env()
    with serve_process(vault, env, tmp_path / "serve.err") as proc:
        token = str(proc.doc["ui"]).split("#token=", 1)[1]
        yield Served(proc.url, token, vault, env, proc.proc.pid)
