"""The node's data directory: one :class:`LocalProvider` per account, usage and quota.

Layout::

    DATA/node.json                         {"format": "ownvault-node", "version": 1, "node_id": ...}
    DATA/accounts/<sha256(did)[:16] hex>/  a LocalProvider folder (marker, objects/, tmp/)
        account.json                       {"format": "ownvault-node-account", "version": 1, "did": ...}

Uploads stream to disk with the same steps as :class:`~ownvault.providers.local.LocalProvider`
(temp file in the account's ``tmp/``, written with ``O_DIRECT`` where the file system takes
it (:mod:`.upload`), fsync, ``link`` to the final name in a directory made durably, fsync
of the directory), so they are atomic and durable and never overwrite, and a refused or
broken upload leaves no object behind. No upload is held in memory: at most one write
buffer (:data:`WRITE_BUFFER`) per upload, the chunks received since the last hop to the
disk thread, which hashes them for the digest check and writes them. The bytes actually received, not the declared
``Content-Length``, count against the object size limit, the account's quota and the
node's :class:`UploadBudget` (bytes of uploads in flight, all accounts).

Usage and a sorted index of names are kept in memory: scanned once when the node starts,
then kept up to date by puts and deletes (a put reserves its bytes as they arrive, so
concurrent puts cannot overshoot the quota together). Listing pages are cut from the
index by bisection: O(log n + page), not a rescan of the account.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from ownvault.core import crypto
from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo, validate_name
from ownvault.providers.durable import fsync_dir, make_dirs
from ownvault.providers.local import LocalProvider
from ownvault.server.node.upload import UploadFile, upload_buffers

__all__ = [
    "Account",
    "AccountStore",
    "DigestMismatch",
    "ObjectTooLarge",
    "QuotaExceeded",
    "UploadBudget",
    "UploadBudgetExceeded",
    "load_node_id",
]

WRITE_BUFFER = 1 << 20  # bytes received before they go to the disk thread (one hop)

NODE_FORMAT = "ownvault-node"
ACCOUNT_FORMAT = "ownvault-node-account"


class QuotaExceeded(Exception):
    """The bytes received would take the account over its quota."""


class ObjectTooLarge(Exception):
    """The bytes received exceed the node's largest object."""


class UploadBudgetExceeded(Exception):
    """The node has as many upload bytes in flight as it allows; try again shortly."""


class DigestMismatch(Exception):
    """The body received does not match the request's Content-Digest."""


class UploadBudget:
    """Bytes of uploads in flight on the node, all accounts, against a fixed limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


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
    names: list[str] = field(default_factory=list)
    """Every stored object's name, sorted: the listing index."""


class AccountStore:
    def __init__(self, data: Path, quota: int | None) -> None:
        self.root = data / "accounts"
        self.quota = quota
        self._accounts: dict[str, Account] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self.direct = True  # O_DIRECT uploads, until the file system refuses one
        self._buffers = upload_buffers()

    def _open_tmp(self, tmp: Path, root: Path) -> UploadFile:
        try:
            return UploadFile(tmp, self._buffers, self.direct)
        except OSError as exc:
            raise _disk_error(exc, root) from exc

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
            account.used, account.names = _usage(entry / "objects")
            account.count = len(account.names)
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
        account.used, account.names = _usage(path / "objects")
        account.count = len(account.names)
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

    async def put_stream(
        self,
        account: Account,
        name: str,
        body: AsyncIterator[bytes],
        *,
        max_size: int,
        budget: UploadBudget,
        digest: Callable[[bytes], None],
        digest_ok: Callable[[], bool],
        declared: int = 0,
    ) -> int:
        """Store the streamed ``body`` as ``name``; return its size.

        Raises ObjectTooLarge, QuotaExceeded, UploadBudgetExceeded (checked on every chunk
        received), DigestMismatch (``digest`` sees every chunk, ``digest_ok`` decides at
        the end), ObjectExistsError, or a ProviderError of the disk. On any failure the
        temp file is removed and the account's usage restored.

        The ``declared`` length is taken from the budget up front (so that uploads that
        cannot all fit are refused before they start, not all cut off half-way); bytes
        received beyond it must find room in the budget chunk by chunk.
        """
        validate_name(name)
        if not budget.take(declared):
            raise UploadBudgetExceeded("too many upload bytes in flight; retry shortly")
        root = account.provider.root
        final = root / "objects" / name
        tmp = root / "tmp" / f"{secrets.token_hex(8)}.part"
        size = used = 0
        taken = declared
        try:
            upload = await asyncio.to_thread(self._open_tmp, tmp, root)
        except BaseException:
            budget.give(taken)
            raise
        try:
            pending: list[bytes] = []
            buffered = 0
            async for chunk in body:
                if not chunk:
                    continue
                size += len(chunk)
                if size > max_size:
                    raise ObjectTooLarge(f"objects are at most {max_size} bytes here")
                if self.quota is not None and account.used + len(chunk) > self.quota:
                    raise QuotaExceeded(
                        f"quota of {self.quota} bytes exceeded ({account.used} used)"
                    )
                if size > taken:
                    if not budget.take(size - taken):
                        raise UploadBudgetExceeded("too many upload bytes in flight; retry shortly")
                    taken = size
                used += len(chunk)
                account.used += len(chunk)
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= WRITE_BUFFER:
                    await asyncio.to_thread(_write, upload, pending, digest, root)
                    pending, buffered = [], 0
            await asyncio.to_thread(_write, upload, pending, digest, root)
            if not digest_ok():
                raise DigestMismatch("body does not match its Content-Digest")
            await asyncio.to_thread(_commit, upload, final, name, root)
        except BaseException:
            account.used -= used
            raise
        finally:
            budget.give(taken)
            if not upload.direct:
                self.direct = False  # the file system refused O_DIRECT: stop asking
            await asyncio.to_thread(_discard, upload, tmp)
        account.count += 1
        bisect.insort(account.names, name)
        return size

    def page(self, account: Account, prefix: str, after: str, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` names under ``prefix`` after ``after``, and whether more follow."""
        names = account.names
        start = (
            bisect.bisect_right(names, after)
            if after >= prefix
            else bisect.bisect_left(names, prefix)
        )
        out: list[str] = []
        for index in range(start, len(names)):
            name = names[index]
            if not name.startswith(prefix):
                break
            if len(out) == limit:
                return out, True
            out.append(name)
        return out, False

    @staticmethod
    def sizes(account: Account, names: list[str]) -> list[ObjectInfo]:
        """The listed names with their sizes (blocking: run in a thread); vanished ones skipped."""
        base = account.provider.root / "objects"
        out = []
        for name in names:
            try:
                out.append(ObjectInfo(name, os.stat(base / name).st_size))
            except FileNotFoundError:
                continue
        return out

    async def delete(self, account: Account, name: str) -> None:
        async with account.lock:
            try:
                size = (await account.provider.stat(name)).size
            except ObjectNotFoundError:
                return
            await account.provider.delete(name)
            account.used -= size
            account.count -= 1
            index = bisect.bisect_left(account.names, name)
            if index < len(account.names) and account.names[index] == name:
                del account.names[index]


def _usage(objects: Path) -> tuple[int, list[str]]:
    """Bytes used and the sorted valid names under an account's ``objects/``."""
    used = 0
    names = []
    for dirpath, _dirs, files in os.walk(objects):
        rel_dir = os.path.relpath(dirpath, objects)
        for fn in files:
            name = fn if rel_dir == "." else f"{rel_dir}/{fn}"
            try:
                validate_name(name)
                used += os.stat(os.path.join(dirpath, fn)).st_size
            except (FileNotFoundError, UsageError):
                continue
            names.append(name)
    names.sort()
    return used, names


def _write(
    upload: UploadFile, chunks: list[bytes], digest: Callable[[bytes], None], root: Path
) -> None:
    try:
        upload.write(chunks, digest)
    except OSError as exc:
        raise _disk_error(exc, root) from exc


def _commit(upload: UploadFile, final: Path, name: str, root: Path) -> None:
    """Write the rest and fsync, link to the final name (never over an existing one) in a
    directory made durably, fsync that directory."""
    try:
        upload.finish()
        make_dirs(final.parent)
        try:
            os.link(upload.path, final)
        except FileExistsError:
            raise ObjectExistsError(f"object exists: {name}", share=name) from None
        fsync_dir(final.parent)
    except OSError as exc:
        raise _disk_error(exc, root) from exc


def _discard(upload: UploadFile, tmp: Path) -> None:
    upload.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def _disk_error(exc: OSError, root: Path) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"no space left on {root}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ProviderPermanentError(f"permission denied on {root}")
    return ProviderUnavailableError(f"I/O error on {root}: {exc.strerror}")
