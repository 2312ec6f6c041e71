"""The node's data directory: one :class:`LocalProvider` per account, usage and quota.

Layout::

    DATA/node.json                         {"format": "ownvault-node", "version": 1, "node_id": ...}
    DATA/accounts/<sha256(did)[:16] hex>/  a LocalProvider folder (marker, objects/, tmp/)
        account.json                       {"format": "ownvault-node-account", "version": 1, "did": ...}

Writes reuse :class:`~ownvault.providers.local.LocalProvider` (temp file, fsync, link,
fsync of the directory), so they are atomic and durable and never overwrite. Usage is
counted in memory: scanned once when the node starts, then kept up to date under a
per-account lock (a put reserves its bytes before writing, so concurrent puts cannot
overshoot the quota together).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ownvault.core import crypto
from ownvault.errors import ObjectNotFoundError, ProviderPermanentError
from ownvault.providers.local import LocalProvider

__all__ = ["Account", "AccountStore", "QuotaExceeded", "load_node_id"]

NODE_FORMAT = "ownvault-node"
ACCOUNT_FORMAT = "ownvault-node-account"


class QuotaExceeded(Exception):
    pass


def load_node_id(data: Path) -> str:
    """The node's id from ``DATA/node.json``, creating the file (and DATA) on first use."""
    data.mkdir(parents=True, exist_ok=True)
    path = data / "node.json"
    if path.exists():
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ProviderPermanentError(f"unreadable node file {path}") from exc
        if not isinstance(doc, dict) or doc.get("format") != NODE_FORMAT:
            raise ProviderPermanentError(f"not an ownvault node directory: {data}")
        if doc.get("version") != 1 or not isinstance(doc.get("node_id"), str):
            raise ProviderPermanentError(f"unsupported node directory version in {path}")
        return str(doc["node_id"])
    node_id = crypto.random_bytes(16).hex()
    tmp = data / f".node.json.{os.getpid()}"
    tmp.write_text(json.dumps({"format": NODE_FORMAT, "version": 1, "node_id": node_id}) + "\n")
    os.replace(tmp, path)
    return node_id


def account_dir_name(did: str) -> str:
    return crypto.sha256(did.encode()).hex()[:32]


@dataclass
class Account:
    did: str
    provider: LocalProvider
    used: int = 0
    count: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class AccountStore:
    def __init__(self, data: Path, quota: int | None) -> None:
        self.root = data / "accounts"
        self.quota = quota
        self._accounts: dict[str, Account] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def total_objects(self) -> int:
        return sum(a.count for a in self._accounts.values())

    def total_bytes(self) -> int:
        return sum(a.used for a in self._accounts.values())

    def scan(self) -> None:
        """Load every account folder and count its usage (blocking; run at start-up)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for entry in sorted(self.root.iterdir()):
            meta = entry / "account.json"
            if not meta.is_file():
                continue
            doc = json.loads(meta.read_text())
            if not isinstance(doc, dict) or doc.get("format") != ACCOUNT_FORMAT:
                continue
            did = str(doc["did"])
            account = Account(did, LocalProvider(entry, label=f"account {entry.name}"))
            account.used, account.count = _usage(entry / "objects")
            self._accounts[did] = account

    def _create_sync(self, did: str) -> Account:
        path = self.root / account_dir_name(did)
        LocalProvider.create(path)
        meta = path / "account.json"
        if not meta.exists():
            tmp = path / ".account.json.tmp"
            tmp.write_text(json.dumps({"format": ACCOUNT_FORMAT, "version": 1, "did": did}) + "\n")
            os.replace(tmp, meta)
        account = Account(did, LocalProvider(path, label=f"account {path.name}"))
        account.used, account.count = _usage(path / "objects")
        return account

    async def get(self, did: str, *, create: bool) -> Account | None:
        account = self._accounts.get(did)
        if account is not None or not create:
            return account
        lock = self._opening.setdefault(did, asyncio.Lock())
        async with lock:
            account = self._accounts.get(did)
            if account is None:
                account = await asyncio.to_thread(self._create_sync, did)
                self._accounts[did] = account
        return account

    def free_for(self, account: Account | None) -> int | None:
        if self.quota is None:
            return None
        return max(0, self.quota - (account.used if account else 0))

    async def put(self, account: Account, name: str, data: bytes) -> None:
        async with account.lock:
            if self.quota is not None and account.used + len(data) > self.quota:
                raise QuotaExceeded(
                    f"quota of {self.quota} bytes exceeded ({account.used} used, "
                    f"{len(data)} more asked)"
                )
            account.used += len(data)
        try:
            await account.provider.put(name, data)
        except BaseException:
            async with account.lock:
                account.used -= len(data)
            raise
        async with account.lock:
            account.count += 1

    async def delete(self, account: Account, name: str) -> None:
        async with account.lock:
            try:
                size = (await account.provider.stat(name)).size
            except ObjectNotFoundError:
                return
            await account.provider.delete(name)
            account.used -= size
            account.count -= 1


def _usage(objects: Path) -> tuple[int, int]:
    used = count = 0
    for dirpath, _dirs, files in os.walk(objects):
        for fn in files:
            try:
                used += os.stat(os.path.join(dirpath, fn)).st_size
            except FileNotFoundError:
                continue
            count += 1
    return used, count
