"""The journal side of a stale provider: the device chains a provider holds less of than
this device knows, and repair's copies of what it lacks (docs/design.md, "The health
verdict", "Stale providers").

Every journal record goes whole to every provider the placement policy allows
(``engine.store.journalstore``). A provider the policy gives records to *lags* on a
device's chain when the highest seq of that chain it lists is below the head this device
has written or pulled (``catalog.journal``), for a chain it lists or listed before
(``journal_marks``): it came back with an older copy of its store, or missed appends while
it was away. A provider added after a device's last record lists none of that chain and
has no mark for it: not lagging (the catalog snapshot written when it was added covers
those records). Only names are compared, one listing per provider; no record is read.

Repair copies each lagging chain's missing top, ``(held, known]``, from a provider listing
the record, each copy opened first (signed by its device, under its own name; the last
one linking to the head held here), with the rows objects of its large puts the provider
lacks before it (``engine.store.rowsobjects.copy_rows``), then raises the provider's marks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ownvault.core.journal import Record, open_record
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.journalpull import chain_tops, record_name
from ownvault.engine.store.placement import eligible
from ownvault.engine.store.rowsobjects import copy_rows
from ownvault.errors import JournalError, OwnvaultError

__all__ = ["ChainLag", "chain_lags", "copy_lagging_records"]

LIST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ChainLag:
    """A device's journal chain a provider holds only up to ``held``, where this device
    has written or pulled it up to ``known``."""

    device: str  # the device id, hex
    device_name: str
    held: int
    known: int

    def phrase(self) -> str:
        return (
            f"it holds the journal of device {self.device_name} ({self.device[:8]}) up to "
            f"seq {self.held}, this device knows seq {self.known}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_name": self.device_name,
            "held_seq": self.held,
            "known_seq": self.known,
        }


def chain_lags(
    ctx: VaultContext, tops: Mapping[int, Mapping[bytes, int]]
) -> dict[int, tuple[ChainLag, ...]]:
    """Per provider (of those listed in ``tops``: provider -> device -> the highest seq it
    lists) that the policy gives records to, the chains it lags on (module docstring)."""
    j = ctx.catalog.journal
    devices = [d for d in j.devices() if d.head.seq > 0]
    pool = {c.id for c in eligible(ctx.policy, ctx.candidates()).eligible}
    out: dict[int, tuple[ChainLag, ...]] = {}
    for pid, listed in sorted(tops.items()):
        if pid not in pool:
            continue
        marks = j.marks(pid)
        lag = tuple(
            ChainLag(d.device.hex(), d.name, listed.get(d.device, 0), d.head.seq)
            for d in devices
            if (d.device in listed or marks.get(d.device, 0) > 0)
            and listed.get(d.device, 0) < d.head.seq
        )
        if lag:
            out[pid] = lag
    return out


async def _tops(ctx: VaultContext) -> dict[int, dict[bytes, int]]:
    """Each reachable provider's chain tops (one that cannot be listed is left out)."""
    providers = ctx.store.providers

    async def one(pid: int) -> dict[bytes, int] | None:
        try:
            return await asyncio.wait_for(chain_tops(providers[pid]), LIST_TIMEOUT)
        except (OwnvaultError, TimeoutError):
            return None

    ids = sorted(providers)
    got = await asyncio.gather(*(one(pid) for pid in ids))
    return {pid: t for pid, t in zip(ids, got, strict=True) if t is not None}


async def copy_lagging_records(
    ctx: VaultContext, *, dry_run: bool = False
) -> tuple[int, list[str]]:
    """Copy to every lagging provider the records of its lagging chains; (copies written,
    or that would be in a dry run; failures, one line each)."""
    tops = await _tops(ctx)
    lags = chain_lags(ctx, tops)
    js, j = ctx.journal, ctx.catalog.journal
    copied, failures = 0, []
    for pid, chains in sorted(lags.items()):
        for lag in chains:
            device = bytes.fromhex(lag.device)
            done = lag.held
            for seq in range(lag.held + 1, lag.known + 1):
                sources = [
                    q for q, t in sorted(tops.items()) if q != pid and t.get(device, 0) >= seq
                ]
                record = None if dry_run else await _good_copy(ctx, device, seq, sources)
                if not dry_run and record is None:
                    failures.append(
                        f"journal: no good copy of device {lag.device_name} seq {seq} to write "
                        f"to {js.provider_name(pid)}"
                    )
                    break
                if record is not None:
                    try:  # its large puts' rows objects first, as an append writes them
                        await copy_rows(js, record, pid, [q for q in sorted(tops) if q != pid])
                        await ctx.store.put_share(pid, record_name(device, seq), record.raw)
                    except OwnvaultError as exc:
                        failures.append(
                            f"journal: device {lag.device_name} seq {seq} could not be written "
                            f"to {js.provider_name(pid)}: {exc.message}"
                        )
                        break
                copied += 1
                done = seq
            if not dry_run and done > lag.held:
                with ctx.catalog.transaction():
                    j.raise_marks(pid, {device: done})
    return copied, failures


async def _good_copy(
    ctx: VaultContext, device: bytes, seq: int, sources: list[int]
) -> Record | None:
    """``device``'s record ``seq`` from the first source whose copy opens
    (signed by the device, stored under its own name; at the head held here, its hash)."""
    js, j = ctx.journal, ctx.catalog.journal
    head = j.head(device)
    for pid in sources:
        try:
            data = await js.fetch(pid, record_name(device, seq))
            record = open_record(
                js.keys,
                data,
                members=j.members(),
                revoked={},
                device=device,
                seq=seq,
                provider=js.provider_name(pid),
            )
        except (OwnvaultError, JournalError):
            continue
        if seq == head.seq and record.head != head:
            continue
        return record
    return None
