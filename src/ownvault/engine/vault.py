"""The vault: create/open, and the operations the CLI, the HTTP API and Python callers use.

Vault directory::

    VAULT/ownvault.json    {"format": "ownvault-vault", "version": 1, "vault_id": "…"}
    VAULT/keystore.json    the entropy sealed under the passphrase (core.keystore)
    VAULT/catalog.db       the catalog (engine.store.catalog), SQLite in WAL mode
    VAULT/providers/…      the embedded default providers (local folders)
    VAULT/lock             held (flock) by the one writer at a time

All I/O methods are coroutines; run them with ``asyncio.run`` at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ownvault.core import crypto
from ownvault.core.chunking import DEFAULT_CHUNKER, ChunkerParams
from ownvault.core.cid import CID
from ownvault.core.crypto import Argon2Params
from ownvault.core.keys import VaultKeys, new_entropy
from ownvault.core.keystore import Keystore
from ownvault.core.unixfs import PROFILES
from ownvault.engine.fleet.rebalance import RebalanceReport, rebalance
from ownvault.engine.ipfs.dag import TreeItem, build_tree
from ownvault.engine.registry import kind_of_url, local_path_of, open_provider
from ownvault.engine.store.catalog import Catalog, EntryRow, VersionRow
from ownvault.engine.store.ingest import FileRecord, Ingestor, TreeEntry, scan_path
from ownvault.engine.store.placement import Candidate, Policy, check_placement
from ownvault.engine.store.restore import PackReader, write_file, write_tree
from ownvault.engine.store.shares import DATA_PREFIX, Problem, ShareStore
from ownvault.engine.store.snapshots import SnapshotResult, write_snapshot
from ownvault.errors import (
    NotFoundError,
    OwnvaultError,
    PolicyError,
    UsageError,
    VaultStateError,
)
from ownvault.providers.base import Provider
from ownvault.providers.local import LocalProvider

if TYPE_CHECKING:
    from ownvault.engine.health.audit import AuditReport, AuditSample
    from ownvault.engine.health.repair import RepairReport

__all__ = ["DEFAULT_CID_PROFILE", "PutResult", "Vault", "validate_object_name", "validate_tag"]

VAULT_FORMAT = "ownvault-vault"
VAULT_VERSION = 1
DEFAULT_CID_PROFILE = "kubo-v1"
MAX_OBJECT_NAME = 1024
_PROVIDER_NAME = __import__("re").compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def validate_object_name(name: str) -> str:
    """A vault name: a relative "/"-separated path of non-empty segments, no "." or ".."."""
    name = name.strip("/")
    if not name or len(name) > MAX_OBJECT_NAME or "\0" in name:
        raise UsageError(f"invalid name: {name!r:.80}")
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        raise UsageError(f"invalid name (empty, '.' or '..' segment): {name!r:.80}")
    return name


def validate_tag(tag: str) -> str:
    """A tag: 1 to 64 characters, no whitespace."""
    if not tag or len(tag) > 64 or any(c.isspace() for c in tag):
        raise UsageError(f"invalid tag {tag!r}")
    return tag


@dataclass(frozen=True, slots=True)
class PutResult:
    name: str
    version: int
    kind: str
    size: int
    files: int
    cid: str | None
    new_bytes: int
    new_chunks: int
    packs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "kind": self.kind, "size": self.size,
            "files": self.files, "cid": self.cid, "new_bytes": self.new_bytes,
            "new_chunks": self.new_chunks, "packs": self.packs,
        }


def version_json(v: VersionRow, tags: list[str] | None = None, versions: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name, "version": v.number, "kind": v.kind, "size": v.size,
        "files": v.file_count, "created": v.created_at, "cid": v.cid, "cid_profile": v.cid_profile,
    }
    if tags is not None:
        out["tags"] = tags
    if versions is not None:
        out["versions"] = versions
    return out


def entry_json(e: EntryRow) -> dict[str, Any]:
    return {
        "path": e.path, "kind": e.kind, "mode": oct(e.mode), "mtime_ns": e.mtime_ns,
        "size": e.size, "cid": e.cid, "target": e.target,
    }


@dataclass
class Vault:
    """An open vault. Use :meth:`create` or :meth:`open` (or ``ownvault.open_vault``)."""

    path: Path
    keys: VaultKeys = field(repr=False)
    catalog: Catalog
    on_problem: Callable[[Problem], None] | None = None
    warn: Callable[[str], None] = lambda _m: None
    _providers: dict[int, Provider] = field(default_factory=dict)
    _store: ShareStore | None = None
    _lock_fd: int | None = None

    # -- creation and opening -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        passphrase: str,
        *,
        providers: int = 6,
        k: int = 3,
        n: int | None = None,
        entropy: bytes | None = None,
        kdf: Argon2Params | None = None,
        chunker: ChunkerParams = DEFAULT_CHUNKER,
        cid_profile: str = DEFAULT_CID_PROFILE,
    ) -> Vault:
        """Make a new vault with ``providers`` embedded local-folder providers."""
        root = Path(path).absolute()
        n = providers if n is None and providers else n
        if n is None and providers == 0:
            n = 6
        assert n is not None
        policy = Policy(k, n)
        if 0 < providers < n:
            raise UsageError(
                f"--providers ({providers}) must be at least n ({n}), or 0 to add providers later"
            )
        if not passphrase:
            raise UsageError("the passphrase must not be empty")
        if cid_profile not in PROFILES:
            raise UsageError(f"unknown CID import profile {cid_profile!r}")
        if (root / "ownvault.json").exists() or (root / "catalog.db").exists():
            raise VaultStateError(f"a vault exists already at {root}")
        if root.exists() and any(root.iterdir()):
            raise VaultStateError(f"directory is not empty: {root}")
        root.mkdir(parents=True, exist_ok=True)
        entropy = entropy or new_entropy()
        keys = VaultKeys(entropy)
        vault_id = crypto.random_bytes(16)
        store = Keystore.create(entropy, passphrase, vault_id, keys.did, kdf or Argon2Params())
        _atomic_write(root / "keystore.json", store.to_json().encode())
        catalog = Catalog.create(
            root / "catalog.db",
            {
                "vault_id": vault_id.hex(),
                "chunker": json.dumps(chunker.to_json(), sort_keys=True),
                "cid_profile": cid_profile,
                "policy": policy.to_json(),
                "did": keys.did,
            },
        )
        with catalog.transaction():
            for i in range(1, providers + 1):
                LocalProvider.create(root / "providers" / f"local-{i}")
                catalog.add_provider(
                    f"local-{i}", "local", f"file:providers/local-{i}", None, {"embedded": "true"}
                )
        _atomic_write(
            root / "ownvault.json",
            json.dumps({"format": VAULT_FORMAT, "version": VAULT_VERSION, "vault_id": vault_id.hex()}).encode(),
        )
        return cls(root, keys, catalog)

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Vault:
        root = Path(path).absolute()
        marker = root / "ownvault.json"
        if not marker.exists():
            raise VaultStateError(f"no vault at {root} (run `ownvault init` first)")
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise VaultStateError(f"vault marker unreadable: {marker}: {exc}") from None
        if info.get("format") != VAULT_FORMAT or info.get("version") != VAULT_VERSION:
            raise VaultStateError(f"unsupported vault format in {marker}")
        try:
            store = Keystore.from_json((root / "keystore.json").read_bytes())
        except FileNotFoundError:
            raise VaultStateError(f"keystore missing: {root / 'keystore.json'}") from None
        keys = VaultKeys(store.unlock(passphrase))
        catalog = Catalog.open(root / "catalog.db")
        return cls(root, keys, catalog)

    # -- plumbing -----------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return Policy.from_json(self.catalog.meta("policy") or "")

    @property
    def chunker(self) -> ChunkerParams:
        return ChunkerParams.from_json(self.catalog.meta_json("chunker"))

    @property
    def cid_profile(self) -> str:
        return self.catalog.meta("cid_profile") or DEFAULT_CID_PROFILE

    @property
    def did(self) -> str:
        return self.keys.did

    def candidates(self) -> list[Candidate]:
        """Every configured provider that can be opened, as a placement candidate."""
        store = self.store
        usage = self.catalog.provider_usage()
        return [
            Candidate(r.id, r.name, r.jurisdiction, usage.get(r.id, (0, 0))[1], r.state == "active")
            for r in self.catalog.providers()
            if r.id in store.providers
        ]

    @property
    def store(self) -> ShareStore:
        if self._store is None:
            provs: dict[int, Provider] = {}
            names: dict[int, str] = {}
            for row in self.catalog.providers():
                names[row.id] = row.name
                try:
                    provs[row.id] = open_provider(
                        row.kind, row.url, row.config, self.keys, row.name, self.path
                    )
                except OwnvaultError as exc:
                    self.warn(f"provider {row.name} cannot be opened: {exc.message}")
            self._providers = provs
            self._store = ShareStore(provs, names)
        self._store.on_problem = self.on_problem
        return self._store

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """The single-writer lock (flock on VAULT/lock)."""
        if self._lock_fd is not None:
            yield
            return
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VaultStateError(f"the vault is in use by another ownvault process: {self.path}") from None
        self._lock_fd = fd
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._lock_fd = None

    async def _cleanup_pending(self) -> None:
        """Remove what an interrupted put left: pending packs and their shares."""
        for pack, pack_id in self.catalog.pending_packs():
            for s in self.catalog.shares_of(pack):
                from ownvault.core.pack import share_name

                await self.store.delete_share(s.provider, share_name(DATA_PREFIX, pack_id, s.idx))
            self.catalog.drop_pack(pack)

    async def _reset_store(self) -> None:
        """Close the open providers; the next use of ``store`` reopens the current list."""
        for p in self._providers.values():
            with contextlib.suppress(Exception):
                await p.close()
        self._providers = {}
        self._store = None

    async def close(self) -> None:
        await self._reset_store()
        self.catalog.close()

    async def __aenter__(self) -> Vault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- put ----------------------------------------------------------------------------

    async def put(
        self,
        paths: list[str | os.PathLike[str]],
        *,
        name: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> list[PutResult]:
        """Store files or directory trees; each path becomes a new version of its name."""
        if not paths:
            raise UsageError("nothing to put")
        if name is not None and len(paths) != 1:
            raise UsageError("--as NAME needs exactly one path")
        for t in tags:
            validate_tag(t)
        plans: list[tuple[str, list[TreeEntry]]] = []
        for p in paths:
            path = Path(p)
            entries = scan_path(path, self.warn)
            obj_name = validate_object_name(name if name is not None else path.absolute().name)
            plans.append((obj_name, entries))
        if on_total is not None:
            on_total(sum(e.size for _n, es in plans for e in es if e.kind == "file"))
        results: list[PutResult] = []
        with self._writer():
            await self._cleanup_pending()
            for obj_name, entries in plans:
                results.append(await self._put_one(obj_name, entries, list(tags), progress))
            await self.snapshot_safely()
        return results

    async def _put_one(
        self, obj_name: str, entries: list[TreeEntry], tags: list[str], progress: Callable[[int], None] | None
    ) -> PutResult:
        ing = Ingestor(
            self.catalog, self.keys, self.store, self.policy, self.chunker,
            PROFILES[self.cid_profile], self.candidates(), progress,
        )
        records: dict[str, FileRecord] = {}
        try:
            for e in entries:
                if e.kind == "file":
                    records[e.path] = await ing.ingest_file(e.source)
            await ing.flush()
        except BaseException:
            await ing.abort()
            raise
        finally:
            ing.close()
        kind = "tree" if entries[0].kind == "dir" else "file"
        total = sum(r.size for r in records.values())
        with self.catalog.transaction():
            contents: dict[str, int] = {}
            for path, rec in records.items():
                contents[path] = self.catalog.add_content(
                    rec.size, rec.cid, rec.cid_profile, rec.tsize,
                    ing.chunk_rows(rec.chunk_ids), rec.chunk_lens,
                )
            obj = self.catalog.object_id(obj_name, create=True)
            assert obj is not None
            cid = records[""].cid if kind == "file" else self._tree_cid(entries, records)
            version, number = self.catalog.add_version(
                obj, kind, total, len(records), cid, self.cid_profile if cid else None
            )
            self.catalog.add_entries(
                version,
                [
                    (e.path, e.kind, e.mode, e.mtime_ns, e.size, contents.get(e.path), e.target)
                    for e in entries
                ],
            )
            self.catalog.add_tags(obj, tags)
        return PutResult(
            obj_name, number, kind, total, len(records), cid, ing.new_bytes, ing.new_chunks, ing.packs_written
        )

    def _tree_cid(self, entries: list[TreeEntry], records: dict[str, FileRecord]) -> str | None:
        """The tree's directory CID from its files' CIDs (``ipfs add -r --hidden``)."""
        items = [
            TreeItem(e.path, e.kind, CID.parse(records[e.path].cid) if e.kind == "file" else None,
                     records[e.path].tsize if e.kind == "file" else 0, e.target)
            for e in entries
        ]
        try:
            return str(build_tree(items, PROFILES[self.cid_profile]).cid)
        except OwnvaultError as exc:  # e.g. a name that is not UTF-8: stored, but no CID
            self.warn(f"no IPFS CID for this tree: {exc.message}")
            return None

    async def snapshot(self) -> SnapshotResult:
        """Write the catalog to the providers now."""
        with self._writer():
            return await write_snapshot(self.catalog, self.keys, self.store, self.policy)

    async def snapshot_safely(self) -> SnapshotResult | None:
        try:
            return await self.snapshot()
        except OwnvaultError as exc:
            self.warn(f"the catalog could not be written to the providers ({exc.message}); will retry on the next change")
            return None

    # -- providers and policy ---------------------------------------------------------

    async def add_provider(
        self,
        name: str,
        url: str,
        *,
        jurisdiction: str | None = None,
        labels: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        create: bool = False,
    ) -> dict[str, Any]:
        """Add a provider by URL (``file:///path`` creates the folder); it must be reachable.

        ``create`` asks a provider that can (an S3 bucket) to create its container first."""
        if not _PROVIDER_NAME.match(name):
            raise UsageError(f"invalid provider name {name!r} (lower-case letters, digits, . _ -)")
        if any(r.name == name for r in self.catalog.providers(include_removed=True)):
            raise UsageError(f"a provider named {name!r} exists already")
        if jurisdiction is not None:
            jurisdiction = jurisdiction.strip().upper()
            Policy(1, 2, (jurisdiction,))  # validates the code
        kind = kind_of_url(url)
        if kind == "local":
            LocalProvider.create(local_path_of(url))
        provider = open_provider(kind, url, config or {}, self.keys, name, self.path)
        try:
            maker = getattr(provider, "create_bucket", None)
            if create and maker is not None:
                await maker()
            elif create:
                raise UsageError(f"a {kind} provider has nothing to create")
            info = await asyncio.wait_for(provider.info(), 30)
        finally:
            await provider.close()
        with self._writer():
            with self.catalog.transaction():
                self.catalog.add_provider(name, kind, url, jurisdiction, labels or {}, config or {})
            await self._reset_store()
            await self.snapshot_safely()
        return {"name": name, "kind": kind, "url": url, "jurisdiction": jurisdiction,
                "labels": labels or {}, "location": info.location, "free_bytes": info.free_bytes}

    async def remove_provider(
        self, name: str, *, force: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Any]:
        """Move a provider's shares elsewhere, then remove it (``force``: remove at once)."""
        row = next((r for r in self.catalog.providers() if r.name == name), None)
        if row is None:
            raise NotFoundError(f"no such provider: {name}", provider=name)
        with self._writer():
            held = self.catalog.provider_usage().get(row.id, (0, 0))[0]
            if force:
                at_risk = self._at_risk_without(row.id)
                with self.catalog.transaction() as c:
                    c.execute("UPDATE providers SET state = 'removed' WHERE id = ?", (row.id,))
                await self._reset_store()
                await self.snapshot_safely()
                return {"name": name, "removed": True, "shares_abandoned": held, **at_risk}
            with self.catalog.transaction() as c:
                c.execute("UPDATE providers SET state = 'draining' WHERE id = ?", (row.id,))
            report = await rebalance(self, progress=progress)
            if report.packs_changed:
                await self._refresh_grants()
            left = self.catalog.provider_usage().get(row.id, (0, 0))[0]
            if left:
                await self.snapshot_safely()
                raise PolicyError(
                    f"{name} still holds {left} share(s) that could not be moved "
                    f"({'; '.join(report.failures[:3]) or 'no eligible provider'}); it stays draining. "
                    "Fix the cause and run `ownvault provider rm` again, or use --force."
                )
            with self.catalog.transaction() as c:
                c.execute("UPDATE providers SET state = 'removed' WHERE id = ?", (row.id,))
            await self._reset_store()
            await self.snapshot_safely()
        return {"name": name, "removed": True, "shares_moved": report.shares_moved,
                "shares_regenerated": report.shares_regenerated}

    def _at_risk_without(self, provider: int) -> dict[str, Any]:
        """Which names become degraded or unreadable if ``provider``'s shares vanish."""
        degraded: list[str] = []
        unreadable: list[str] = []
        for v in self.catalog.latest_versions(""):
            worst = None
            for pack in self._packs_of(v.id):
                _pid, _size, k, n = self.catalog.pack_info(pack)
                left = sum(1 for s in self.catalog.shares_of(pack) if s.provider != provider)
                worst = (left, k, n) if worst is None or left < worst[0] else worst
            if worst is None:
                continue
            if worst[0] < worst[1]:
                unreadable.append(v.name)
            elif worst[0] < worst[2]:
                degraded.append(v.name)
        return {"degraded": degraded, "unreadable": unreadable}

    def _packs_of(self, version: int) -> set[int]:
        packs: set[int] = set()
        for e in self.catalog.entries(version):
            if e.content is not None:
                packs.update(r.pack for r in self.catalog.content_chunks(e.content))
        return packs

    async def set_policy(self, policy: Policy) -> dict[str, Any]:
        """Store a new placement policy; say how many stored pieces it leaves out of line."""
        from ownvault.engine.store.placement import place

        place(policy, self.candidates())  # refuse a policy no piece could ever meet
        with self._writer():
            with self.catalog.transaction():
                self.catalog.set_meta("policy", policy.to_json())
            await self.snapshot_safely()
        plan = await rebalance(self, policy=policy, dry_run=True)
        return {"policy": policy.to_dict(), "describe": policy.describe(),
                "packs_out_of_policy": plan.packs_changed}

    async def rebalance(
        self, *, progress: Callable[[int, int], None] | None = None, dry_run: bool = False
    ) -> RebalanceReport:
        with self._writer():
            await self._cleanup_pending()
            report = await rebalance(self, progress=progress, dry_run=dry_run)
            if not dry_run and report.packs_changed:
                await self._refresh_grants()
                await self.snapshot_safely()
        return report

    async def _refresh_grants(self) -> None:
        """Sharing grants carry share places: after shares moved, publish new manifests."""
        from ownvault.engine.sharing.grants import refresh_grants

        await refresh_grants(self)

    # -- get ----------------------------------------------------------------------------

    def _resolve(self, name: str, number: int | None) -> tuple[VersionRow, str]:
        """The version holding ``name`` and the path inside it ("" for the whole object)."""
        name = validate_object_name(name)
        try:
            return self.catalog.version(name, number), ""
        except NotFoundError:
            parts = name.split("/")
            for cut in range(len(parts) - 1, 0, -1):
                head = "/".join(parts[:cut])
                if self.catalog.object_id(head) is None:
                    continue
                v = self.catalog.version(head, number)
                if v.kind == "tree":
                    return v, "/".join(parts[cut:])
            raise

    async def get(
        self,
        name: str,
        out: str | os.PathLike[str] | None = None,
        *,
        version: int | None = None,
        byte_range: tuple[int, int | None] | None = None,
        progress: Callable[[int], None] | None = None,
        on_total: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Restore a file or tree (or a path inside a tree) to ``out``."""
        v, inner = self._resolve(name, version)
        entries = self.catalog.entries(v.id)
        if inner:
            chosen = [e for e in entries if e.path == inner or e.path.startswith(inner + "/")]
            if not chosen:
                raise NotFoundError(f"no such path in {v.name}: {inner}", name=name)
        else:
            chosen = entries
        top = chosen[0]
        base_name = (inner or v.name).rsplit("/", 1)[-1]
        dest = Path(out) if out is not None else Path(base_name)
        reader = PackReader(self.catalog, self.keys, self.store)
        try:
            if top.kind == "file" and len(chosen) == 1:
                if top.content is None:
                    raise NotFoundError(f"{name} has no content")
                start, end = (0, None) if byte_range is None else byte_range
                if byte_range is not None and (start < 0 or (end is not None and end < start)):
                    raise UsageError("invalid --range")
                if dest.is_dir():
                    dest = dest / base_name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if on_total is not None:
                    stop = top.size if end is None else min(end, top.size)
                    on_total(max(0, stop - start))
                written = await write_file(
                    reader, self.catalog.content_chunks(top.content), dest,
                    top if byte_range is None else None, progress, start, end,
                )
                return {"name": v.name, "version": v.number, "path": str(dest), "files": 1, "bytes": written}
            if byte_range is not None:
                raise UsageError("--range applies to a single file, not a tree")
            if on_total is not None:
                on_total(sum(e.size for e in chosen if e.kind == "file"))
            files, written = await write_tree(reader, self.catalog, chosen, dest, inner, progress)
            return {"name": v.name, "version": v.number, "path": str(dest), "files": files, "bytes": written}
        finally:
            await reader.close()

    async def read(
        self, name: str, *, version: int | None = None, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the bytes of a stored file (or a file inside a stored tree)."""
        v, inner = self._resolve(name, version)
        matches = [e for e in self.catalog.entries(v.id) if e.path == inner]
        if not matches or matches[0].kind != "file" or matches[0].content is None:
            raise UsageError(f"{name} is not a file")
        reader = PackReader(self.catalog, self.keys, self.store)
        try:
            async for piece in reader.read(self.catalog.content_chunks(matches[0].content), start, end):
                yield piece
        finally:
            await reader.close()

    # -- listing --------------------------------------------------------------------------

    async def ls(self, prefix: str = "") -> dict[str, Any]:
        """Objects whose name starts with ``prefix``, or the entries of a tree path."""
        clean = prefix.strip("/")
        if clean:
            try:
                v, inner = self._resolve(clean, None)
            except (NotFoundError, UsageError):
                v = None
                inner = ""
            if v is not None and v.kind == "tree":
                sub = inner + "/" if inner else ""
                entries = [
                    e for e in self.catalog.entries(v.id, sub)
                    if e.path != inner and "/" not in e.path[len(sub):]
                ]
                return {"tree": v.name, "version": v.number, "path": inner, "entries": [entry_json(e) for e in entries]}
        counts = self.catalog.version_counts()
        rows = self.catalog.latest_versions(prefix)
        out = []
        for v in rows:
            obj = self.catalog.object_id(v.name)
            out.append(version_json(v, self.catalog.tags(obj) if obj else [], counts.get(v.name)))
        return {"objects": out}

    async def versions(self, name: str) -> list[dict[str, Any]]:
        return [version_json(v) for v in self.catalog.versions(validate_object_name(name))]

    async def stat(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        """One stored name, or a path inside a stored tree: its version and its entry."""
        v, inner = self._resolve(name, version)
        match = next((e for e in self.catalog.entries(v.id, inner) if e.path == inner), None)
        if match is None:
            raise NotFoundError(f"no such path in {v.name}: {inner}", name=name)
        return {"name": v.name, "version": v.number, "created": v.created_at, **entry_json(match)}

    async def set_tags(
        self, name: str, *, add: list[str] | tuple[str, ...] = (), remove: list[str] | tuple[str, ...] = ()
    ) -> list[str]:
        """Add and remove tags of a stored name; return its tags."""
        for t in (*add, *remove):
            validate_tag(t)
        with self._writer():
            obj = self.catalog.object_id(validate_object_name(name))
            if obj is None:
                raise NotFoundError(f"no such file in the vault: {name}", name=name)
            with self.catalog.transaction():
                self.catalog.add_tags(obj, add)
                self.catalog.remove_tags(obj, remove)
            await self.snapshot_safely()
            return self.catalog.tags(obj)

    async def restore_version(self, name: str, version: int) -> PutResult:
        """A new (latest) version of ``name`` with the content of an older one.

        Nothing is read or stored again: the new version refers to the same contents.
        """
        with self._writer():
            v = self.catalog.version(validate_object_name(name), version)
            obj = self.catalog.object_id(v.name)
            assert obj is not None
            entries = self.catalog.entries(v.id)
            with self.catalog.transaction():
                new, number = self.catalog.add_version(obj, v.kind, v.size, v.file_count, v.cid, v.cid_profile)
                self.catalog.add_entries(
                    new, [(e.path, e.kind, e.mode, e.mtime_ns, e.size, e.content, e.target) for e in entries]
                )
            await self.snapshot_safely()
        return PutResult(v.name, number, v.kind, v.size, v.file_count, v.cid, 0, 0, 0)

    async def rm(self, name: str, *, version: int | None = None) -> dict[str, Any]:
        """Remove a name (or one version); shares no longer needed are deleted."""
        with self._writer():
            removed = self.catalog.delete_versions(validate_object_name(name), version)
            freed = await self._prune_packs()
            await self.snapshot_safely()
        return {"name": name, "versions_removed": removed, "packs_deleted": freed}

    async def _prune_packs(self) -> int:
        packs = self.catalog.unreferenced_packs()
        from ownvault.core.pack import share_name

        for pack in packs:
            pack_id, _size, _k, _n = self.catalog.pack_info(pack)
            shares = self.catalog.shares_of(pack)
            self.catalog.drop_chunks_of_packs([pack])
            for s in shares:
                await self.store.delete_share(s.provider, share_name(DATA_PREFIX, pack_id, s.idx))
        return len(packs)

    async def du(self) -> dict[str, Any]:
        u: dict[str, Any] = dict(self.catalog.usage())
        logical = u["logical_bytes"]
        unique = u["unique_bytes"]
        u["dedup_ratio"] = round(logical / unique, 4) if unique else 1.0
        u["expansion"] = round(u["stored_bytes"] / u["packed_bytes"], 4) if u["packed_bytes"] else 0.0
        p = self.policy
        u["policy"] = {"k": p.k, "n": p.n}
        return u

    async def provider_status(self) -> list[dict[str, Any]]:
        usage = self.catalog.provider_usage()
        rows = self.catalog.providers()
        store = self.store

        async def one(row: Any) -> dict[str, Any]:
            shares, used = usage.get(row.id, (0, 0))
            out: dict[str, Any] = {
                "name": row.name, "kind": row.kind, "url": row.url,
                "location": store.providers[row.id].location if row.id in store.providers else row.url,
                "jurisdiction": row.jurisdiction, "labels": row.labels, "state": row.state,
                "shares": shares, "bytes": used, "reachable": False, "free_bytes": None, "error": None,
                "latency_ms": None,
            }
            p = store.providers.get(row.id)
            if p is None:
                out["error"] = "cannot be opened"
                return out
            try:
                t0 = asyncio.get_running_loop().time()
                info = await asyncio.wait_for(p.info(), 10)
                out["latency_ms"] = round((asyncio.get_running_loop().time() - t0) * 1000, 1)
                out["reachable"] = True
                out["free_bytes"] = info.free_bytes
            except (OwnvaultError, TimeoutError) as exc:
                out["error"] = getattr(exc, "message", "timed out")
            return out

        return list(await asyncio.gather(*(one(r) for r in rows)))

    async def check(self, name: str | None = None) -> dict[str, Any]:
        """Per file: shares present / needed, healthy or not, which provider misses what."""
        if name is not None:
            v, _inner = self._resolve(name, None)
            versions = [v]
        else:
            versions = self.catalog.latest_versions("")
        store = self.store
        present: dict[tuple[int, int], bool] = {}
        problems: dict[tuple[int, int], str] = {}

        async def stat_share(pack: int, pack_id: bytes, idx: int, provider: int, size: int) -> None:
            from ownvault.core.pack import share_name

            sname = share_name(DATA_PREFIX, pack_id, idx)
            p = store.providers.get(provider)
            ok = False
            why = "provider cannot be opened"
            if p is not None:
                try:
                    info = await asyncio.wait_for(p.stat(sname), 30)
                    ok = info.size == size
                    why = "" if ok else f"wrong size {info.size} (expected {size})"
                except (OwnvaultError, TimeoutError) as exc:
                    why = getattr(exc, "message", "timed out")
            present[(pack, idx)] = ok
            if not ok:
                problems[(pack, idx)] = why

        files_out = []
        policy = self.policy
        cands = {c.id: c for c in self.candidates()}
        rows_all = {r.id: r for r in self.catalog.providers(include_removed=True)}
        sem = asyncio.Semaphore(16)
        names = {r.id: r.name for r in self.catalog.providers(include_removed=True)}
        for v in versions:
            packs: set[int] = set()
            for e in self.catalog.entries(v.id):
                if e.content is not None:
                    packs.update(r.pack for r in self.catalog.content_chunks(e.content))
            todo = []
            for pack in packs:
                pack_id, _size, _k, _n = self.catalog.pack_info(pack)
                for s in self.catalog.shares_of(pack):
                    if (pack, s.idx) not in present:
                        async def run(pack: int = pack, pack_id: bytes = pack_id, s: Any = s) -> None:
                            async with sem:
                                await stat_share(pack, pack_id, s.idx, s.provider, s.size)
                        todo.append(run())
            await asyncio.gather(*todo)
            worst_present = None
            needed = self.policy.k
            total = self.policy.n
            missing: list[dict[str, Any]] = []
            for pack in sorted(packs):
                _pid, _size, k, n = self.catalog.pack_info(pack)
                shares = self.catalog.shares_of(pack)
                count = sum(1 for s in shares if present.get((pack, s.idx)))
                if worst_present is None or count < worst_present:
                    worst_present, needed, total = count, k, n
                for s in shares:
                    if not present.get((pack, s.idx)):
                        missing.append({"provider": names.get(s.provider, str(s.provider)), "pack": _pid.hex(), "share": s.idx, "reason": problems.get((pack, s.idx), "")})
            worst = total if worst_present is None else worst_present
            violations: list[str] = []
            for pack in sorted(packs):
                _pid, _size, k, n = self.catalog.pack_info(pack)
                holders = [cands.get(s.provider) or _gone(rows_all, s.provider) for s in self.catalog.shares_of(pack)]
                for why in check_placement(policy, k, n, holders):
                    if why not in violations:
                        violations.append(why)
            files_out.append(
                {
                    "name": v.name, "version": v.number, "packs": len(packs),
                    "shares_present": worst, "shares_total": total, "shares_needed": needed,
                    "healthy": worst == total, "readable": worst >= needed, "missing": missing,
                    "policy_ok": not violations, "policy_violations": violations,
                }
            )
        return {
            "files": files_out,
            "healthy": all(f["healthy"] for f in files_out),
            "readable": all(f["readable"] for f in files_out),
            "policy_ok": all(f["policy_ok"] for f in files_out),
            "policy": policy.describe(),
        }

    # -- health: audits, deep check, repair, status (issue 6) ----------------------------

    async def audit(
        self, *, providers: list[str] | None = None, sample: AuditSample | None = None
    ) -> AuditReport:
        """Challenge providers on random blocks of their shares (``engine.health.audit``)."""
        from ownvault.engine.health.audit import audit

        return await audit(self, providers=providers, sample=sample)

    async def deep_check(self, name: str | None = None) -> dict[str, Any]:
        """``check``, plus every share read whole and verified (``engine.health.deepcheck``)."""
        from ownvault.engine.health.deepcheck import deep_check

        return await deep_check(self, name)

    async def repair(
        self,
        *,
        dry_run: bool = False,
        unreachable_grace: float | None = None,
        max_bytes: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RepairReport:
        """Regenerate missing and corrupt shares from k good ones (``engine.health.repair``)."""
        from ownvault.engine.health.repair import repair

        with self._writer():
            await self._cleanup_pending()
            report = await repair(
                self, dry_run=dry_run, unreachable_grace=unreachable_grace,
                max_bytes=max_bytes, progress=progress,
            )
            if report.shares_moved:
                await self._refresh_grants()
            if report.shares_regenerated:
                await self.snapshot_safely()
        return report

    async def status(self) -> dict[str, Any]:
        """Healthy or not, what is at risk, what to do (``engine.health.status``)."""
        from ownvault.engine.health.status import vault_status

        return await vault_status(self)


def _gone(rows: dict[int, Any], provider: int) -> Candidate | None:
    """A placement candidate for a provider that is no longer usable (or None if unknown)."""
    r = rows.get(provider)
    return None if r is None else Candidate(r.id, r.name, r.jurisdiction, 0, False)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
