"""Pulling the journal: list every reachable provider's ``journal/``, fetch each device's
records after the heads held here, check them, and refuse what a hostile provider did.

The rules are in :mod:`ownvault.engine.store.journalstore`'s docstring and docs/design.md
("The journal on the providers"); this module is its pull half.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ownvault.core.journal import GENESIS, ChainHead, JournalKeys, Record, open_record, verify_chain
from ownvault.core.journalops import DeviceAdd, DeviceRevoke, Put
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.device import DeviceIdentity
from ownvault.engine.store.shares import ShareStore
from ownvault.errors import DataUnavailableError, JournalError, ProviderError
from ownvault.providers.base import Provider

__all__ = [
    "CHECKPOINT_PREFIX",
    "PREFIX",
    "Apply",
    "Journal",
    "Listing",
    "Pull",
    "chain_tops",
    "checkpoint_name",
    "list_journal",
    "record_name",
]

PREFIX = "journal/"
CHECKPOINT_PREFIX = "journal/checkpoint/"
FETCH_CONCURRENCY = 16
_RECORD = re.compile(r"journal/([0-9a-f]{32})/([0-9a-f]{16})\Z")
_CHECKPOINT = re.compile(r"journal/checkpoint/([0-9a-f]{16})-([0-9a-f]{32})\Z")


Apply = Callable[[Sequence[Record]], None]


class _Host(Protocol):
    def warn(self, message: str) -> None: ...
    @property
    def store(self) -> ShareStore: ...


class Journal(Protocol):
    """What a pull needs of the journal store (``JournalStore`` is one)."""

    keys: JournalKeys
    faults: list[JournalError]

    @property
    def host(self) -> _Host: ...
    @property
    def catalog(self) -> Catalog: ...
    @property
    def device(self) -> DeviceIdentity: ...
    def provider_name(self, pid: int) -> str: ...
    async def fetch(self, pid: int, name: str) -> bytes: ...
    def fault(self, exc: JournalError) -> None: ...
    def note(self, records: Sequence[Record]) -> None: ...
    async def load_rows(self, records: Sequence[Record]) -> None: ...
    def rows_of(self, record: Record, index: int, op: Put) -> bytes: ...
    def close_rows(self) -> None: ...


def record_name(device: bytes, seq: int) -> str:
    return f"{PREFIX}{device.hex()}/{seq:016x}"


def checkpoint_name(total: int, signer: bytes) -> str:
    return f"{CHECKPOINT_PREFIX}{total:016x}-{signer.hex()}"


@dataclass(slots=True)
class Listing:
    """What each reachable provider lists under ``journal/``: device -> seqs."""

    chains: dict[int, dict[bytes, set[int]]] = field(default_factory=dict)
    checkpoints: dict[int, list[str]] = field(default_factory=dict)

    def holders(self, device: bytes, seq: int) -> list[int]:
        return [pid for pid, c in sorted(self.chains.items()) if seq in c.get(device, ())]

    def top(self, device: bytes) -> int:
        return max((max(c.get(device, {0}), default=0) for c in self.chains.values()), default=0)


async def list_journal(js: Journal) -> Listing:
    """List ``journal/`` on every provider; one that cannot be listed is warned about."""
    store = js.host.store
    out = Listing()

    async def one(pid: int) -> None:
        chains: dict[bytes, set[int]] = {}
        checkpoints: list[str] = []
        try:
            async for o in store.providers[pid].list(PREFIX):
                if m := _RECORD.match(o.name):
                    chains.setdefault(bytes.fromhex(m[1]), set()).add(int(m[2], 16))
                elif _CHECKPOINT.match(o.name):
                    checkpoints.append(o.name)
        except ProviderError as exc:
            js.host.warn(
                f"journal: provider {js.provider_name(pid)} cannot be listed: {exc.message}"
            )
            return
        out.chains[pid] = chains
        out.checkpoints[pid] = checkpoints

    await asyncio.gather(*(one(pid) for pid in sorted(store.providers)))
    return out


async def chain_tops(provider: Provider) -> dict[bytes, int]:
    """Device -> the highest seq of its chain ``provider`` lists (one listing, no record
    read: for the health verdict's stale check). Raises ``ProviderError``."""
    tops: dict[bytes, int] = {}
    async for o in provider.list(PREFIX):
        if m := _RECORD.match(o.name):
            device, seq = bytes.fromhex(m[1]), int(m[2], 16)
            tops[device] = max(seq, tops.get(device, 0))
    return tops


class Pull:
    """One pull (``JournalStore.pull``)."""

    def __init__(self, js: Journal) -> None:
        self.js = js

    async def _listing(self) -> Listing:
        listing = await list_journal(self.js)
        if not listing.chains:
            raise DataUnavailableError("journal: no provider could be listed")
        self._check_listing(listing)
        return listing

    async def _collect(
        self,
        listing: Listing,
        held: dict[bytes, ChainHead],
        members: dict[bytes, bytes],
        skip: bytes | None,
    ) -> list[Record]:
        revoked = self.js.catalog.journal.revoked()
        devices = sorted({d for c in listing.chains.values() for d in c} - {skip})
        prefetched = await self._prefetch(listing, devices, held, revoked)
        records: list[Record] = []
        for device in devices:
            records += await self._chain(device, listing, held, members, revoked, prefetched)
        records = self._drop_revoked(records, revoked)
        records.sort(key=lambda r: (r.hlc, r.device, r.seq))
        return records

    async def history(self) -> list[Record]:
        """Every record of every chain from its first, checked like a pull; the heads held
        here do not move (for ``log`` and revocation cut-offs)."""
        return await self._collect(await self._listing(), {}, {}, None)

    async def chain(self, device: bytes) -> list[Record]:
        """``device``'s whole chain, checked, its revocation not applied (to undo it)."""
        members = self.js.catalog.journal.members()
        return await self._chain(device, await self._listing(), {}, members, {}, {})

    async def run(self, apply: Apply | None) -> list[Record]:
        listing = await self._listing()
        j = self.js.catalog.journal
        records = await self._collect(listing, j.heads(), j.members(), self.js.device.id)
        await self.js.load_rows(records)  # the rows objects of large puts, before applying
        with self.js.catalog.transaction():
            if apply is not None:
                apply(records)
            self.js.note(records)
            now = j.heads()
            for pid, chains in listing.chains.items():
                j.raise_marks(
                    pid, {d: min(max(s), now[d].seq) for d, s in chains.items() if d in now}
                )
        self._warn_withheld(records)
        return records

    def _check_listing(self, listing: Listing) -> None:
        """Rollback: a provider lists less of a chain than before, or no provider holds
        this device's own last record."""
        j = self.js.catalog.journal
        for pid, chains in sorted(listing.chains.items()):
            for device, mark in sorted(j.marks(pid).items()):
                top = max(chains.get(device, {0}))
                if top < mark:
                    raise JournalError(
                        f"rollback: the provider listed this chain up to seq {mark} before, "
                        f"now up to {top}",
                        device=device.hex(),
                        seq=mark,
                        provider=self.js.provider_name(pid),
                    )
        own = self.js.device.id
        mine = j.head(own).seq
        if listing.chains and mine > 0 and listing.top(own) < mine:
            raise JournalError(
                f"rollback or withheld: this device wrote seq {mine}, the reachable providers "
                f"hold its chain up to seq {listing.top(own)}",
                device=own.hex(),
                seq=mine,
                provider=", ".join(self.js.provider_name(p) for p in sorted(listing.chains)),
            )
        if listing.top(own) > mine:
            raise JournalError(
                "fork: a record of this device beyond its own last one (another copy of this "
                "vault directory writes with the same device key)",
                device=own.hex(),
                seq=mine + 1,
                provider=", ".join(
                    self.js.provider_name(p) for p in listing.holders(own, mine + 1)
                ),
            )

    def _end(self, device: bytes, listing: Listing, revoked: dict[bytes, int]) -> int:
        top = listing.top(device)
        cut = revoked.get(device)
        if cut is not None and top > cut:
            self.js.fault(
                JournalError(
                    f"records {cut + 1} to {top} refused: the device was revoked after seq {cut}",
                    device=device.hex(),
                    seq=cut + 1,
                )
            )
            return cut
        return top

    async def _prefetch(
        self,
        listing: Listing,
        devices: list[bytes],
        held: dict[bytes, ChainHead],
        revoked: dict[bytes, int],
    ) -> dict[tuple[bytes, int], tuple[int, bytes]]:
        """The bytes of every wanted record from the first provider listing it."""
        wanted = [
            (d, s)
            for d in devices
            for s in range(held.get(d, GENESIS).seq + 1, self._end(d, listing, revoked) + 1)
        ]
        out: dict[tuple[bytes, int], tuple[int, bytes]] = {}
        limit = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(device: bytes, seq: int) -> None:
            holders = listing.holders(device, seq)
            if not holders:
                return
            async with limit:
                try:
                    out[device, seq] = (
                        holders[0],
                        await self.js.fetch(holders[0], record_name(device, seq)),
                    )
                except ProviderError:
                    return

        await asyncio.gather(*(one(d, s) for d, s in wanted))
        return out

    async def _chain(
        self,
        device: bytes,
        listing: Listing,
        held: dict[bytes, ChainHead],
        members: dict[bytes, bytes],
        revoked: dict[bytes, int],
        prefetched: dict[tuple[bytes, int], tuple[int, bytes]],
    ) -> list[Record]:
        """``device``'s records after the head held here, each from the first provider
        whose copy opens; ``JournalError`` if none does, on a gap, or on a fork."""
        after = held.get(device, GENESIS)
        end = min(listing.top(device), revoked.get(device, listing.top(device)))
        chain: list[Record] = []
        for seq in range(after.seq + 1, end + 1):
            holders = listing.holders(device, seq)
            if not holders:
                later = [
                    p
                    for p in listing.chains
                    if listing.chains[p].get(device, {0}) and max(listing.chains[p][device]) > seq
                ]
                raise JournalError(
                    f"withheld: seq {seq} is on no reachable provider, but the chain goes on "
                    f"to seq {end}",
                    device=device.hex(),
                    seq=seq,
                    provider=", ".join(self.js.provider_name(p) for p in sorted(later)),
                )
            prev = chain[-1].head if chain else after
            record = await self._first_good(
                device, seq, holders, prev, members, revoked, prefetched
            )
            chain.append(record)
            for op in record.ops:
                if isinstance(op, DeviceAdd):
                    members[op.device] = op.key
        verify_chain(chain, device=device, after=after)
        return chain

    async def _first_good(
        self,
        device: bytes,
        seq: int,
        holders: list[int],
        prev: ChainHead,
        members: dict[bytes, bytes],
        revoked: dict[bytes, int],
        prefetched: dict[tuple[bytes, int], tuple[int, bytes]],
    ) -> Record:
        name = record_name(device, seq)
        refused: list[JournalError] = []
        for pid in holders:
            got = prefetched.get((device, seq))
            try:
                data = (
                    got[1] if got is not None and got[0] == pid else await self.js.fetch(pid, name)
                )
            except ProviderError:
                continue
            try:
                record = open_record(
                    self.js.keys,
                    data,
                    members=members,
                    revoked=revoked,
                    device=device,
                    seq=seq,
                    provider=self.js.provider_name(pid),
                )
            except JournalError as exc:
                # Named by where it was fetched (the header may claim another place).
                said = (
                    ""
                    if (exc.device, exc.seq) == (device.hex(), seq)
                    else (f" (its header says device {exc.device} seq {exc.seq})")
                )
                refused.append(
                    JournalError(
                        exc.message + said, device=device.hex(), seq=seq, provider=exc.provider
                    )
                )
                self.js.host.store.report(pid, name, "corrupt", exc.message)
                continue
            # Signed by the device: a copy that does not link is the device's fork, not
            # a provider's doing (the header, bound to the box, names device and seq).
            verify_chain([record], device=device, after=prev, provider=self.js.provider_name(pid))
            for bad in refused:
                self.js.fault(bad)
            return record
        if refused:
            raise refused[0]
        raise JournalError(
            "no reachable provider could serve the record",
            device=device.hex(),
            seq=seq,
            provider=", ".join(self.js.provider_name(p) for p in holders),
        )

    def _drop_revoked(self, records: list[Record], revoked: dict[bytes, int]) -> list[Record]:
        """Records after a revocation's cut-off, the revocations of this pull included."""
        cuts = dict(revoked)
        while True:
            for r in records:
                for op in r.ops:
                    if isinstance(op, DeviceRevoke):
                        cuts[op.device] = min(op.last_seq, cuts.get(op.device, op.last_seq))
            keep = [r for r in records if r.device not in cuts or r.seq <= cuts[r.device]]
            if len(keep) == len(records):
                return keep
            for r in records:
                if r.device in cuts and r.seq > cuts[r.device]:
                    self.js.fault(
                        JournalError(
                            f"refused: the device was revoked after seq {cuts[r.device]}",
                            device=r.device.hex(),
                            seq=r.seq,
                        )
                    )
            records = keep

    def _warn_withheld(self, records: list[Record]) -> None:
        """Records some device says it saw that no reachable provider has (yet)."""
        have = {d: h.seq for d, h in self.js.catalog.journal.heads().items()}
        claimed: dict[bytes, int] = {}
        for r in records:
            for device, seq in r.body.seen:
                claimed[device] = max(seq, claimed.get(device, 0))
        for device, seq in sorted(claimed.items()):
            if have.get(device, 0) < seq:
                self.js.host.warn(
                    f"journal: device {device.hex()[:8]} wrote up to seq {seq} (another device "
                    f"saw it) but the reachable providers hold up to {have.get(device, 0)}"
                )
