"""Shared helpers for engine tests: vault creation, tree generation and comparison."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from ownvault.core.crypto import Argon2Params
from ownvault.engine.vault import Vault, VaultOptions

T = TypeVar("T")
FAST_KDF = Argon2Params(1, 8192, 1)
PASS = "test passphrase"


def run(coro: Awaitable[T]) -> T:
    """Run ``coro`` to completion from synchronous test code.

    Playwright's sync API (the session-wide browser of tests/web) keeps an event loop
    running in the main thread; there ``asyncio.run`` refuses, so the coroutine runs on a
    fresh loop in a worker thread instead, and test order does not matter."""

    async def wrap() -> T:
        return await coro

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrap())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, wrap()).result()


def make_vault(path: Path, **options: object) -> Vault:
    return Vault.create(path, PASS, VaultOptions(kdf=FAST_KDF, **options))  # type: ignore[arg-type]


class Vaults:
    """The vaults a test opened, closed when the test ends (the ``vaults`` fixture).

    Replaces ``try: ... finally: run(vault.close())`` around every test body: a failing
    assertion still closes the vault (its providers' clients and the catalog)."""

    def __init__(self) -> None:
        self._open: list[Vault] = []

    def track(self, vault: Vault) -> Vault:
        """Close ``vault`` when the test ends; returns it."""
        self._open.append(vault)
        return vault

    def create(self, path: Path, **options: object) -> Vault:
        """A new vault at ``path`` (see :func:`make_vault`), closed when the test ends."""
        return self.track(make_vault(path, **options))

    def open(self, path: Path, passphrase: str = PASS) -> Vault:
        """An existing vault, closed when the test ends."""
        return self.track(Vault.open(path, passphrase))

    def close(self, vault: Vault) -> None:
        """Close ``vault`` now (to reopen it, or before its providers change under it)."""
        self._open.remove(vault)
        run(vault.close())

    def close_all(self) -> None:
        """Close every tracked vault, the last opened first; each is closed once."""
        while self._open:
            run(self._open.pop().close())


def write_random_tree(root: Path, seed: int, files: int = 20, max_size: int = 300_000) -> None:
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    dirs = [root]
    for i in range(files):
        if rnd.random() < 0.2:
            d = rnd.choice(dirs) / f"dir-{i}-é"
            d.mkdir(exist_ok=True)
            dirs.append(d)
        target = rnd.choice(dirs) / f"f{i}.bin"
        size = rnd.choice([0, 1, 100, rnd.randrange(max_size)])
        target.write_bytes(rnd.randbytes(size))
        os.chmod(target, rnd.choice([0o600, 0o644, 0o755]))
        os.utime(target, ns=(rnd.randrange(10**18), rnd.randrange(10**18)))
    (rnd.choice(dirs) / "empty-dir").mkdir(exist_ok=True)


def tree_state(root: Path) -> dict[str, tuple[str, int, int, bytes]]:
    """Everything a restore must reproduce: kind, mode, mtime (files) and bytes/targets."""
    out: dict[str, tuple[str, int, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = ("link", 0, 0, os.readlink(p).encode())
            elif p.is_dir():
                out[rel] = ("dir", st.st_mode & 0o7777, 0, b"")
            else:
                out[rel] = ("file", st.st_mode & 0o7777, st.st_mtime_ns, p.read_bytes())
    return out


def memfd_in_use(name: str) -> list[str]:
    """This process's open descriptors and mappings of the ``memfd`` called ``name`` (a
    worker's shared slots: ``ownvault-ranges``, ``ownvault-packs``): empty once freed."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if name in target:
            out.append(target)
    with open("/proc/self/maps") as maps:
        out += [line for line in maps if name in line]
    return out
