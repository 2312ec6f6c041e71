"""The vault core's one handle: :class:`VaultContext`, and ``async with ctx.write():``.

Every feature (files, fleet, health, keys, sharing, ipfs, nft) works on a context, never on
the :class:`~ownvault.engine.vault.Vault` facade nor on another feature's internals. The
context is frozen: what changes while a vault is open lives in the collaborators it holds
(the catalog, the open providers, the write lock), each with one job.

``async with ctx.write():`` is the only way to change a vault. It

1. waits for the other writers of this process (tasks) and takes ``VAULT/lock`` (flock) so
   no other process writes at the same time (that one is refused at once, as before);
2. pulls what other devices committed (their journal records, applied to the catalog by
   ``engine.store.journalsync``), then removes what an interrupted writer left: pending
   packs and their shares (the pack visibility rule of ``engine.store.ingest``);
3. runs the block, nested ``write()`` blocks joining the outermost one; the catalog's
   triggers queue the ops it makes: namespace (put, rm, forget, tag, untag), settings
   (providers, policy, contacts, tag policies, grants, publications, backup profiles,
   NFTs) and pack places (shares moved, packs rewritten or deleted);
4. after the outermost block, also when it failed with an error (what was committed is
   committed): appends those ops as this device's journal record(s), merged per key by
   the other devices (``engine.store.journalsync``, ``journalsettings``,
   ``journalplaces``), then writes a catalog snapshot (a checkpoint) once the journal
   written since the last one reaches a fraction of it (``snapshot_due``), or when only a
   snapshot can carry a change (a version too big for a record). A failed append or snapshot is a warning: the outbox and the mark
   stay in the catalog, and the next change sends them.

Cross-feature effects go through :class:`Events` (for example ``PacksRewritten``: sharing
grants carry share places, so sharing re-publishes its manifests), not hand-written calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ownvault.core.chunking import ChunkerParams
from ownvault.core.journal import Record
from ownvault.core.keys import VaultKeys
from ownvault.engine.store.catalog import Catalog, VersionRow
from ownvault.engine.store.domains import candidate_of
from ownvault.engine.store.journalrevoke import undo_late
from ownvault.engine.store.journalstore import JournalStore
from ownvault.engine.store.journalsync import EncodedRows, apply_records, send
from ownvault.engine.store.names import resolve_version
from ownvault.engine.store.placement import Candidate, Policy
from ownvault.engine.store.rowsobjects import rows_bytes
from ownvault.engine.store.shares import Problem, ShareStore, data_share_name
from ownvault.engine.store.snapshots import SnapshotResult, newer_snapshot, write_snapshot
from ownvault.errors import JournalError, OwnvaultError, VaultStateError
from ownvault.providers.base import Provider
from ownvault.providers.registry import open_provider

__all__ = [
    "DEFAULT_CID_PROFILE",
    "Event",
    "Events",
    "Hooks",
    "PacksRewritten",
    "ProviderSet",
    "ProvidersChanged",
    "Settings",
    "VaultContext",
    "WriteLock",
]

DEFAULT_CID_PROFILE = "kubo-v1"
# A snapshot is due once the journal records sent or applied here since the last one add
# up to 1/SNAPSHOT_SHARE of its size (at least SNAPSHOT_FLOOR; each record also counts
# RECORD_COST, what fetching one more object costs a recovery). A recovery then reads at most that
# share of records after the snapshot, and the snapshots cost at most SNAPSHOT_SHARE times
# the journal bytes (the compaction rule of a log-structured store).
SNAPSHOT_SHARE = 16
SNAPSHOT_FLOOR = 1 << 20
RECORD_COST = 4096

Warn = Callable[[str], None]
Clock = Callable[[], float]
"""Seconds since the epoch, like ``time.time`` (what expiry checks compare against)."""


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Something one feature did that others may need to follow up on."""


@dataclass(frozen=True, slots=True)
class PacksRewritten(Event):
    """Shares moved or packs were rewritten; ``grants``: the grant rows known to be affected
    (None: any active grant may be)."""

    grants: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class ProvidersChanged(Event):
    """A provider was added, removed or changed."""


E = TypeVar("E", bound=Event)


class Events:
    """A small in-process event bus: handlers run in order, awaited by the emitter."""

    def __init__(self) -> None:
        self._handlers: dict[type[Event], list[Callable[[Event], Awaitable[None]]]] = {}

    def subscribe(self, kind: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        # The handler is called only with events of ``kind`` (see emit).
        self._handlers.setdefault(kind, []).append(handler)  # type: ignore[arg-type]

    async def emit(self, event: Event) -> None:
        for handler in list(self._handlers.get(type(event), ())):
            await handler(event)


# -- the write lock ---------------------------------------------------------------------------

_HELD: ContextVar[frozenset[int]] = ContextVar("ownvault_write_locks_held", default=frozenset())


class WriteLock:
    """One writer at a time: tasks of this process wait, other processes are refused.

    Held per task (a :class:`contextvars.ContextVar`): a nested ``hold()`` in the task that
    holds it, or in a task it started, joins the outer hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._tasks: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def _mutex(self) -> asyncio.Lock:
        """This event loop's task lock (a vault may be used from successive loops)."""
        loop = asyncio.get_running_loop()
        if self._tasks is None or self._tasks[0] is not loop:
            self._tasks = (loop, asyncio.Lock())
        return self._tasks[1]

    def held(self) -> bool:
        return id(self) in _HELD.get()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        """Hold the lock; yields True for the outermost hold."""
        if self.held():
            yield False
            return
        async with self._mutex():
            fd = self._flock()
            if fd is None:
                raise VaultStateError(
                    f"the vault is in use by another ownvault process: {self.path.parent}"
                )
            async with self._holding(fd):
                yield True

    @contextlib.asynccontextmanager
    async def attempt(self) -> AsyncIterator[bool]:
        """Hold the lock unless another process holds it; yields whether this task holds
        it (False: another process is writing now, and nothing waits for it)."""
        if self.held():
            yield True
            return
        async with self._mutex():
            fd = self._flock()
            if fd is None:
                yield False
                return
            async with self._holding(fd):
                yield True

    def _flock(self) -> int | None:
        """The lock file, locked; None when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    @contextlib.asynccontextmanager
    async def _holding(self, fd: int) -> AsyncIterator[None]:
        token = _HELD.set(_HELD.get() | {id(self)})
        try:
            yield
        finally:
            _HELD.reset(token)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


# -- providers ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Hooks:
    """Where a vault reports to its host (the CLI prints, the API logs), and the clock its
    expiry checks read (tests set a fixed one instead of sleeping): set at any time."""

    warn: Warn = lambda _m: None
    on_problem: Callable[[Problem], None] | None = None
    clock: Clock = time.time


class ProviderSet:
    """The vault's providers, opened on first use; :meth:`reset` after the list changed."""

    def __init__(self, catalog: Catalog, keys: VaultKeys, root: Path, hooks: Hooks) -> None:
        self.catalog = catalog
        self.keys = keys
        self.root = root
        self.hooks = hooks
        self._store: ShareStore | None = None

    @property
    def store(self) -> ShareStore:
        if self._store is None:
            provs: dict[int, Provider] = {}
            names: dict[int, str] = {}
            for row in self.catalog.providers():
                names[row.id] = row.name
                try:
                    provs[row.id] = open_provider(
                        row.kind, row.url, row.config, self.keys, row.name, self.root
                    )
                except OwnvaultError as exc:
                    self.hooks.warn(f"provider {row.name} cannot be opened: {exc.message}")
            self._store = ShareStore(provs, names)
        self._store.on_problem = self.hooks.on_problem
        return self._store

    def candidates(self) -> list[Candidate]:
        """Every configured provider that can be opened, as a placement candidate."""
        store = self.store
        usage = self.catalog.usage.by_provider()
        return [
            candidate_of(r, self.root, usage.get(r.id, (0, 0))[1])
            for r in self.catalog.providers()
            if r.id in store.providers
        ]

    async def reset(self) -> None:
        """Close the open providers; the next use of ``store`` reopens the current list."""
        store, self._store = self._store, None
        if store is None:
            return
        for p in store.providers.values():
            with contextlib.suppress(Exception):
                await p.close()


# -- settings -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Settings:
    """The vault's stored parameters (read from the catalog, so a change is seen at once)."""

    catalog: Catalog

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
    def content_epoch(self) -> int:
        return int(self.catalog.meta("content_epoch") or "0")


# -- the context ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Journal:
    """The journal store of this vault, made on first use (mutable cell)."""

    store: JournalStore | None = None
    providers_changed: bool = False


@dataclass(frozen=True, slots=True)
class VaultContext:
    """What every feature gets: keys, catalog, providers, settings, events, the write lock."""

    path: Path
    keys: VaultKeys = field(repr=False)
    catalog: Catalog
    providers: ProviderSet
    settings: Settings
    events: Events
    lock: WriteLock
    hooks: Hooks
    _journal: _Journal = field(default_factory=_Journal, repr=False)
    encoded_rows: EncodedRows = field(default_factory=EncodedRows, repr=False)

    @classmethod
    def build(cls, path: Path, keys: VaultKeys, catalog: Catalog) -> VaultContext:
        hooks = Hooks()
        return cls(
            path,
            keys,
            catalog,
            ProviderSet(catalog, keys, path, hooks),
            Settings(catalog),
            Events(),
            WriteLock(path / "lock"),
            hooks,
        )

    def warn(self, message: str) -> None:
        self.hooks.warn(message)

    # Shorthands used by every feature.

    @property
    def store(self) -> ShareStore:
        return self.providers.store

    @property
    def policy(self) -> Policy:
        return self.settings.policy

    def candidates(self) -> list[Candidate]:
        return self.providers.candidates()

    # -- writing ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        """The only way to change a vault (see the module docstring)."""
        async with self.lock.hold() as outermost:
            if not outermost:
                yield
                return
            await self.pull()
            await self.cleanup_pending()
            try:
                yield
            finally:
                # What was committed is committed, also when the block failed.
                await self._commit()

    @property
    def journal(self) -> JournalStore:
        """This device's view of the catalog journal on the providers."""
        if self._journal.store is None:
            self._journal.store = JournalStore(self)
        return self._journal.store

    async def pull(self) -> int:
        """Apply to the catalog what other devices committed since the last pull (their
        records, ``engine.store.journalsync``); how many records. Run before every write
        block and by commands that show the namespace. Providers that cannot be reached
        are a warning (this device works on what it has); a record refused as tampered,
        rolled back or forked is an error (``JournalError``)."""
        if not self.store.providers:
            return 0
        async with self.lock.attempt() as mine:
            if not mine:
                # Another process of this device is writing: it pulls, and its append
                # would look like a fork to a pull running beside it (own record beyond
                # the head this catalog holds, until that process moves the head).
                self.warn(
                    "journal: another ownvault process is writing to this vault; this "
                    "command did not pull other devices' changes"
                )
                return 0
            return await self._pull_locked()

    async def _pull_locked(self) -> int:
        self._journal.providers_changed = False
        try:
            records = await self.journal.pull(lambda rs: self._apply(rs))
            await undo_late(self.journal)  # a revocation that came after what it cuts
        except JournalError as exc:
            if "rollback" not in exc.message or not exc.provider:
                raise
            # A provider restored from an older copy (stale): named, not fatal; the
            # others hold what it lost. Nothing is pulled until it catches up.
            self.warn(
                f"journal: provider {exc.provider} is stale ({exc.message}); this command "
                "did not pull other devices' changes"
            )
            return 0
        except OwnvaultError as exc:
            self.warn(f"journal: could not pull other devices' changes ({exc.message})")
            return 0
        if self._journal.providers_changed:  # another device added or changed one
            await self.providers.reset()
        return len(records)

    def _apply(self, records: Sequence[Record]) -> None:
        before = self.catalog.providers(include_removed=True)
        apply_records(self.catalog, records, self.warn, self.journal.rows_of)
        self._count_journal(records)  # a recovery from our next snapshot skips them too
        if self.catalog.providers(include_removed=True) != before:
            self._journal.providers_changed = True

    async def send_journal(self) -> int:
        """Append this device's unsent ops as records; how many records. A failure is a
        warning: the ops stay in the outbox and go with the next change."""
        # A pack made live here ("born") is no op of its own: it goes with the next one.
        owed = bool(self.catalog.jns.outbox()) or any(
            kind != "born" for kind, _key in self.catalog.jplaces.unsent()
        )
        if not self.store.providers or not owed:
            return 0
        journal = self.journal
        try:
            device = journal.device
            await journal.enroll()  # also settles an append a crash interrupted
            head = self.catalog.journal.head(device.id)
            records = await send(
                self.catalog,
                device.id,
                head,
                lambda ops: journal.append(device, journal.body(ops)),
                self.warn,
                self.encoded_rows,
                lambda seq, index, rows: journal.store_rows(device.id, seq, index, rows),
            )
        except OwnvaultError as exc:
            self.warn(
                f"journal: this device's changes could not be written to the providers "
                f"({exc.message}); they are kept here and sent with the next change"
            )
            return 0
        with self.catalog.transaction():
            self._count_journal(records)
        return len(records)

    def _count_journal(self, records: Sequence[Record]) -> None:
        """Add ``records`` to the journal bytes since the last snapshot (in the caller's
        transaction)."""
        since = int(self.catalog.meta("journal_since_snapshot") or "0")
        count = int(self.catalog.meta("records_since_snapshot") or "0")
        self.catalog.set_meta(
            "journal_since_snapshot",
            str(since + sum(len(r.raw) + rows_bytes(r) for r in records)),
        )
        self.catalog.set_meta("records_since_snapshot", str(count + len(records)))

    def snapshot_due(self) -> bool:
        """Whether the journal since the last snapshot is big enough to compact: at least
        ``1/SNAPSHOT_SHARE`` of that snapshot's size and ``SNAPSHOT_FLOOR``. Devices that
        apply the same records come due together; so that one writes the snapshot and the
        others count from it (``_commit``), the device whose id is the r-th of m active
        ones waits for ``r/m`` more (at most twice as much, if the first is away)."""
        since = int(self.catalog.meta("journal_since_snapshot") or "0")
        since += RECORD_COST * int(self.catalog.meta("records_since_snapshot") or "0")
        size = int(self.catalog.meta("snapshot_bytes") or "0")
        threshold = max(size // SNAPSHOT_SHARE, SNAPSHOT_FLOOR)
        active = [d.device for d in self.catalog.journal.devices() if d.revoked_after is None]
        me = self.journal.device.id
        if len(active) > 1 and me in active:  # sorted by id
            threshold += threshold * active.index(me) // len(active)
        return since >= threshold

    async def _commit(self) -> None:
        """After the outermost block: send the ops (namespace, settings, pack places), then
        a snapshot (a checkpoint) when one is due: after a settings change (recovery reads
        the newest snapshot first), when the journal since the last one is a big enough
        share of it (``snapshot_due``), or after what marks
        one (a degraded write, a version too big for a record, a share fault cleared).

        When another device wrote a newer snapshot and this catalog holds everything it
        does (``NewerSnapshot.covered_by``: its journal heads), the journal is counted from
        that one (it compacted what this device would), and this device's next snapshot is
        numbered above it; one is written now only if this device owes what only a snapshot
        carries. Otherwise that one and the records after its heads are what a recovery
        reads: it is not overwritten, and nothing is refused (the settings travel in this
        device's records)."""
        await self.send_journal()
        changed = self.catalog.jns.settings_changed()
        if not changed and not self.snapshot_due():
            return
        newer = await newer_snapshot(self.catalog, self.keys, self.store)
        heads = {device: head.seq for device, head in self.catalog.journal.heads().items()}
        if newer is not None and newer.covered_by(heads):
            with self.catalog.transaction():
                ours = int(self.catalog.meta("seq") or "0")
                self.catalog.set_meta("seq", str(max(ours, newer.seq)))
                self.catalog.set_meta("snapshot_bytes", str(newer.size))
                self.catalog.set_meta("journal_since_snapshot", "0")
                self.catalog.set_meta("records_since_snapshot", "0")
                if "places" not in changed:
                    self.catalog.jns.settings_pushed()  # in this device's records
                    return
            newer = None
        if newer is None:
            await self.push_catalog_safely()
        elif "places" in changed:
            self.warn(
                "this device owes a catalog snapshot (a degraded write, a version too big for "
                "a journal record, or a share fault cleared) and another device wrote a newer "
                "one: it is written with this device's next snapshot"
            )
        elif changed:
            with self.catalog.transaction():  # in this device's records: nothing owed
                self.catalog.jns.settings_pushed()

    async def push_catalog(self) -> SnapshotResult:
        """Write the catalog to the providers now (a snapshot: the checkpoint of settings
        and of the namespace up to the journal heads it holds); hold ``write()``."""
        async with self.write():
            result = await write_snapshot(
                self.catalog, self.keys, self.store, self.policy, self.candidates()
            )
            with self.catalog.transaction():
                self.catalog.jns.settings_pushed()
                self.catalog.set_meta("journal_since_snapshot", "0")
                self.catalog.set_meta("records_since_snapshot", "0")
                self.catalog.set_meta("snapshot_bytes", str(result.bytes))
            return result

    async def push_catalog_safely(self) -> SnapshotResult | None:
        try:
            result = await self.push_catalog()
            if result.missing:
                self.warn(
                    f"catalog snapshot {result.seq} is under-replicated ({result.missing} share(s) not placed); `ownvault repair` completes it"
                )
            return result
        except VaultStateError:
            raise
        except OwnvaultError as exc:
            self.warn(
                f"the catalog could not be written to the providers ({exc.message}); "
                "will retry on the next change"
            )
            return None

    async def cleanup_pending(self) -> None:
        """Remove what an interrupted writer left: pending packs and their shares."""
        for pack, pack_id in self.catalog.pending_packs():
            for s in self.catalog.shares_of(pack):
                await self.store.delete_share(s.provider, data_share_name(pack_id, s.idx))
            self.catalog.drop_pack(pack)

    # -- names ------------------------------------------------------------------------------

    def resolve(self, name: str, number: int | None = None) -> tuple[VersionRow, str]:
        """The version holding ``name`` and the path inside it ("" for the whole object)."""
        return resolve_version(self.catalog, name, number)

    async def close(self) -> None:
        await self.providers.reset()
        self.catalog.close()
