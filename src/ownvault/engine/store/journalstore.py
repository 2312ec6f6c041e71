"""The catalog journal on the providers: appending this device's records, pulling every
device's, and checkpoints.

Names (docs/design.md, "The journal on the providers")::

    journal/<device id, 32 hex>/<seq, 16 hex>          one record (core.journal)
    journal/checkpoint/<sum of heads, 16 hex>-<signer>  one checkpoint (core.checkpoint)

Placement: a record is small, sealed and signed, so it is written **whole to every
provider the placement policy allows** (its jurisdiction rules and exclusions; draining
providers take none), not erasure-coded: any one provider holding it is enough to read
it, and one reachable provider is enough to pull every chain. An append fails
(``DataUnavailableError``) when fewer copies than the policy's minimum could be written:
``happy - k + 1``, the losses data survives after a degraded write, capped at the number of
eligible providers.

Crash safety of an append: the catalog marks the own seq as pending before any provider
write, and moves the own head (and clears the mark) in one transaction after. A crash in
between leaves the mark; the next append or pull looks for that record on the providers
and adopts it (it is this device's, signed by its key and linking to its head) or, if none
holds it, drops the mark. A record of this device beyond its head without the mark was
written by another copy of this device (a cloned vault directory): refused as a fork.

Pull: list ``journal/`` on every reachable provider, fetch each device's records after
the head held here (from any provider that lists them, falling back to the next on a bad
copy), open and check them (``open_record``, ``verify_chain``) and hand them to the
caller's ``apply`` in the same catalog transaction that moves the heads. Refused with a
``JournalError`` naming device, seq and provider: a tampered, truncated, renamed, replayed
or reordered record when no provider has a good copy; a gap (a later record listed, an
earlier one nowhere); a provider listing less of a chain than it listed before (rollback);
no provider holding this device's own last record (rollback or withheld); a fork.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ownvault.core.checkpoint import (
    MAX_CHECKPOINT_SIZE,
    Checkpoint,
    decode_checkpoint,
    encode_checkpoint,
)
from ownvault.core.journal import (
    MAX_RECORD_SIZE,
    JournalKeys,
    Record,
    certify_device,
    encode_record,
    open_record,
    verify_chain,
)
from ownvault.core.journalops import Body, DeviceAdd, DeviceRevoke, Op, Put
from ownvault.core.keys import VaultKeys
from ownvault.core.merge import State, heads
from ownvault.core.rowsobjects import RowsPart, RowsRef, encode_ref, pieces, seal_part
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.device import DeviceIdentity, device_identity
from ownvault.engine.store.journalpull import (
    CHECKPOINT_PREFIX,
    PREFIX,
    Apply,
    Pull,
    checkpoint_name,
    list_journal,
    record_name,
)
from ownvault.engine.store.placement import Candidate, Policy, eligible
from ownvault.engine.store.rowsobjects import (
    RowsSpool,
    load_rows,
    rows_object_name,
    rows_seq_prefix,
)
from ownvault.engine.store.shares import ShareStore
from ownvault.errors import DataUnavailableError, JournalError, OwnvaultError, ProviderError

__all__ = [
    "CHECKPOINT_PREFIX",
    "PREFIX",
    "JournalHost",
    "JournalStore",
    "checkpoint_name",
    "record_name",
]


class JournalHost(Protocol):
    """What the journal store needs of a vault (``VaultContext`` is one)."""

    @property
    def path(self) -> Path: ...
    @property
    def keys(self) -> VaultKeys: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def store(self) -> ShareStore: ...
    @property
    def policy(self) -> Policy: ...
    def candidates(self) -> list[Candidate]: ...
    def warn(self, message: str) -> None: ...


class JournalStore:
    """This device's view of the journal on the providers (see the module docstring)."""

    def __init__(self, host: JournalHost, device: DeviceIdentity | None = None) -> None:
        self.host = host
        self.keys = JournalKeys.of(host.keys)
        self._device = device
        self.faults: list[JournalError] = []  # refused copies and records of the last pull
        self.spool = RowsSpool()  # the rows objects of the pull being applied

    @property
    def device(self) -> DeviceIdentity:
        """This device (enrolled in the keystore on first use)."""
        if self._device is None:
            self._device = device_identity(self.host.path, self.host.keys)
        return self._device

    @property
    def catalog(self) -> Catalog:
        return self.host.catalog

    def provider_name(self, pid: int) -> str:
        return self.host.store.names.get(pid, str(pid))

    # -- bodies and placement -----------------------------------------------------------------

    def body(self, ops: Sequence[Op], now_ms: int | None = None) -> Body:
        """A body for this device's next record: its clock ticked past everything it wrote
        or merged, and its version vector (each chain's head held here)."""
        j = self.catalog.journal
        own = j.head(self.device.id)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        hlc = max(j.hlc(), own.hlc).tick(now)
        seen = tuple(sorted((d, h.seq) for d, h in j.heads().items() if h.seq > 0))
        return Body(hlc, tuple(ops), seen)

    def _targets(self) -> tuple[list[int], int]:
        """Providers that take a copy (every one the policy allows), and the minimum."""
        store, policy = self.host.store, self.host.policy
        cands = [c for c in self.host.candidates() if c.id in store.providers]
        pool = eligible(policy, cands).eligible
        if not pool:
            raise DataUnavailableError(
                f"no provider the placement policy allows can hold the journal ({policy.describe()})"
            )
        need = min(len(pool), max(1, policy.happy_shares - policy.k + 1))
        return [c.id for c in pool], need

    async def _write_copies(self, targets: list[int], name: str, data: bytes) -> list[int]:
        store = self.host.store
        written: list[int] = []

        async def put(pid: int) -> None:
            try:
                await store.put_share(pid, name, data)
                written.append(pid)
            except OwnvaultError as exc:
                store.report(pid, name, "unavailable", f"journal write failed: {exc.message}")

        await asyncio.gather(*(put(pid) for pid in targets))
        return sorted(written)

    # -- appending ------------------------------------------------------------------------------

    async def append(self, device: DeviceIdentity, body: Body) -> Record:
        """Write ``body`` as ``device``'s next record to every provider the policy allows,
        then move the device's head in the catalog (durably, before returning)."""
        cat = self.catalog
        await self._settle_pending(device)
        head = cat.journal.head(device.id)
        cut = cat.journal.revoked().get(device.id)
        if cut is not None and head.seq >= cut:
            raise JournalError(
                f"this device was revoked after seq {cut}; it cannot write to this vault",
                device=device.id.hex(),
                seq=head.seq + 1,
            )
        first = body.ops[0]
        if head.seq == 0 and not (isinstance(first, DeviceAdd) and first.device == device.id):
            raise JournalError(
                "a device's first record must carry its own certificate (enroll first)",
                device=device.id.hex(),
                seq=1,
            )
        raw, record = encode_record(self.keys, device.key, head, body)
        targets, need = self._targets()
        with cat.transaction():
            cat.journal.set_pending((device.id, record.seq))
        name = record_name(device.id, record.seq)
        written = await self._write_copies(targets, name, raw)
        if len(written) < need:
            down = ", ".join(self.provider_name(p) for p in targets if p not in written) or "none"
            raise DataUnavailableError(
                f"journal record {record}: {len(written)} of {len(targets)} copies written, "
                f"{need} needed; providers down or failing: {down}"
            )
        with cat.transaction():
            self.note([record])
            cat.journal.raise_marks_all(written, {device.id: record.seq})
            cat.journal.set_pending(None)
        return record

    async def enroll(self) -> Record | None:
        """Write this device's first record (its certificate), unless it has one: a device
        writes it before it reads the vault (docs/design.md, GC safety)."""
        device = self.device
        await self._settle_pending(device)
        if self.catalog.journal.head(device.id).seq > 0:
            return None
        cert = certify_device(self.keys, device.key.public, device.name)
        return await self.append(device, self.body([cert]))

    def note(self, records: Sequence[Record]) -> None:
        """Record verified records in the catalog (inside the caller's transaction):
        members, revocations, heads, the clock, and what each device acknowledged (GC)."""
        j = self.catalog.journal
        self._note_members(records)
        for r in sorted(records, key=lambda r: (r.device, r.seq)):
            j.set_head(r.device, r.head)
        j.witness(r.hlc for r in records)
        self.catalog.gc.note([(r.device, r.seq, r.body.seen) for r in records])

    def _note_members(self, records: Sequence[Record]) -> None:
        j = self.catalog.journal
        for r in records:
            for op in r.ops:
                if isinstance(op, DeviceAdd):
                    j.add_device(op.device, op.key, op.name, op.sig)
                elif isinstance(op, DeviceRevoke):
                    j.revoke(op.device, op.last_seq, op.sig)

    async def fetch(self, pid: int, name: str, limit: int = MAX_RECORD_SIZE) -> bytes:
        """An object as a provider serves it, read to at most ``limit + 1`` bytes: a hostile
        provider serving a huge object costs that much memory, not the object's size, and
        the decoder refuses the over-long answer with an error naming the device, the seq
        and the provider (``open_record``, ``decode_checkpoint`` check the size first)."""
        return await self.host.store.providers[pid].get(name, 0, limit + 1)

    async def _settle_pending(self, device: DeviceIdentity) -> None:
        """Adopt or drop an own record whose write was interrupted (module docstring)."""
        j = self.catalog.journal
        pending = j.pending()
        if pending is None:
            return
        dev, seq = pending
        head = j.head(dev)
        if dev != device.id or head.seq >= seq:
            with self.catalog.transaction():
                j.set_pending(None)
            return
        name = record_name(dev, seq)
        found: list[Record] = []
        reached: list[int] = []
        for pid in sorted(self.host.store.providers):
            try:
                data = await self.fetch(pid, name)
            except ProviderError:
                continue
            members = {**j.members(), dev: device.key.public}
            r = open_record(
                self.keys,
                data,
                members=members,
                revoked={},
                device=dev,
                seq=seq,
                provider=self.provider_name(pid),
            )
            verify_chain([r], device=dev, after=head, provider=self.provider_name(pid))
            found.append(r)
            reached.append(pid)
        with self.catalog.transaction():
            if found:
                self.note(found[:1])
                j.raise_marks_all(reached, {dev: seq})
            j.set_pending(None)
        if found:
            targets, _need = self._targets()
            await self._write_copies([t for t in targets if t not in reached], name, found[0].raw)

    # -- pulling --------------------------------------------------------------------------------

    async def pull(self, apply: Apply | None = None) -> list[Record]:
        """Every record of every device after the heads held here, verified; ``apply`` is
        called with them inside the catalog transaction that moves the heads (so a crash
        never records a head whose records were not applied). Returns them oldest first
        by (HLC, device, seq), each chain in order: what ``merge`` and the cache take.

        This device enrolls first (its certificate record), so it is counted before it
        reads. ``faults`` lists what was refused on the way (bad copies another provider
        had good, records of revoked devices after their cut-off); each is also warned."""
        self.faults = []
        await self.enroll()
        try:
            return await Pull(self).run(apply)
        finally:
            self.close_rows()

    async def load_rows(self, records: Sequence[Record]) -> None:
        """Read the rows objects of ``records``' large puts (``engine.store.rowsobjects``);
        :meth:`rows_of` gives them while the pull applies them."""
        self.spool.close()
        self.spool = await load_rows(self, records)

    def close_rows(self) -> None:
        """Close (and so delete) the temporary files of the rows objects last read."""
        self.spool.close()

    def rows_of(self, record: Record, index: int, op: Put) -> bytes:
        """The rows of ``op`` (op ``index`` of ``record``): its own, or its objects'."""
        return self.spool.rows_of(record, index, op)

    async def _drop_rows_of(self, targets: list[int], device: bytes, seq: int) -> None:
        """Delete the rows objects an interrupted send of record ``seq`` left (no record
        ``seq`` of ``device`` exists when it is sent); best effort."""
        prefix = rows_seq_prefix(device, seq)
        for pid in targets:
            provider = self.host.store.providers[pid]
            try:
                for name in [o.name async for o in provider.list(prefix)]:
                    await provider.delete(name)
            except ProviderError:
                continue

    async def store_rows(self, device: bytes, seq: int, index: int, blob: bytes) -> bytes:
        """Write ``blob`` (rows over ``INLINE_ROWS``) as the rows objects of op ``index`` of
        ``device``'s record ``seq``, whole to every provider the policy allows, before that
        record; the reference the ``put`` carries instead (``core.rowsobjects``). Fails
        (``DataUnavailableError``) like an append when too few copies could be written."""
        targets, need = self._targets()
        cut = pieces(blob)
        await self._drop_rows_of(targets, device, seq)
        parts: list[RowsPart] = []
        for part, piece in enumerate(cut):
            data, named = await asyncio.to_thread(
                seal_part, self.keys.journal, piece,
                device=device, seq=seq, index=index, part=part, count=len(cut),
            )  # fmt: skip
            name = rows_object_name(device, seq, index, part, named.sha256)
            written = await self._write_copies(targets, name, data)
            if len(written) < need:
                raise DataUnavailableError(
                    f"rows object {name}: {len(written)} of {len(targets)} copies written, "
                    f"{need} needed"
                )
            parts.append(named)
        return encode_ref(RowsRef(len(blob), tuple(parts)))

    async def history(self) -> list[Record]:
        """Every record of every chain from its first, verified like a pull, oldest first;
        the heads held here do not move (``log``, ``devices``, revocation cut-offs)."""
        self.faults = []
        await self._settle_pending(self.device)
        records = await Pull(self).history()
        with self.catalog.transaction():
            self._note_members(records)  # certificates and revocations: this device's too
        return records

    def fault(self, exc: JournalError) -> None:
        """Note (and warn about) something refused that did not stop the pull."""
        self.faults.append(exc)
        where = f" at provider {exc.provider}" if exc.provider else ""
        device = (exc.device or "?")[:8]
        self.host.warn(f"journal: device {device} seq {exc.seq}{where}: {exc.message}")

    # -- checkpoints ------------------------------------------------------------------------------

    async def write_checkpoint(self, state: State) -> str:
        """Write a checkpoint of ``state`` (compacted, signed by this device) whole to every
        provider the policy allows; its name."""
        device = self.device
        data = await asyncio.to_thread(encode_checkpoint, self.keys, device.key, state)
        total = sum(h.seq for h in heads(state).values())
        name = checkpoint_name(total, device.id)
        targets, need = self._targets()
        written = await self._write_copies(targets, name, data)
        if len(written) < need:
            raise DataUnavailableError(
                f"journal checkpoint: {len(written)} of {len(targets)} copies written, {need} needed"
            )
        return name

    async def latest_checkpoint(self) -> Checkpoint | None:
        """The checkpoint covering the most records that opens and verifies (a bad one is
        warned about and the next tried); None if no provider holds one. The caller checks
        ``checkpoint.still_valid`` against the records it merges after it."""
        self.faults = []
        listing = await list_journal(self)
        names = sorted(
            {(n, pid) for pid, ns in listing.checkpoints.items() for n in ns}, reverse=True
        )
        for name, pid in names:
            try:
                data = await self.fetch(pid, name, MAX_CHECKPOINT_SIZE)
                return await asyncio.to_thread(
                    decode_checkpoint, self.keys, data, provider=self.provider_name(pid)
                )
            except JournalError as exc:
                self.fault(exc)
            except ProviderError:
                continue
        return None
