"""Garbage collection in a vault of several devices (docs/design.md, "GC in the engine").

A pack is deleted only when no device's committed state references it:

1. it is a pack some removed version referenced (``catalog.gc``: a trigger notes the packs
   of every version the catalog deletes); a pack no version ever referenced here (another
   device's put in progress, whose record has not come) is never collected here;
2. no content in this catalog refers to any of its chunks (every record pulled applied);
3. every active (not revoked) device has written a record whose ``seen`` vector covers each
   removal the pack waits for, and this catalog holds that device's chain up to that record
   (acknowledgments are noted only from chains pulled contiguously). A device that saw the
   removal does not deduplicate against chunks only removed versions held
   (``PackTables.live_chunk(id, referenced=True)``); every put it made before seeing it is
   in its chain before the acknowledgment, so it is applied here and protects the pack.

:func:`collect` runs inside ``ctx.write()`` (whose pull comes first): it sends this
device's outbox, writes its own acknowledgment (a record with an empty ``pending`` op) when
its last record does not cover what it waits for, then deletes the collectable packs
through :func:`~ownvault.engine.store.versions.drop_unreferenced_packs`, the path of a
vault of one device. What is still held back is reported by device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ownvault.core.journalops import Pending
from ownvault.engine.store.catalog.gc import Candidate
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.repack import drain_doomed
from ownvault.engine.store.sweep import SweepResult, sweep
from ownvault.engine.store.versions import drop_unreferenced_packs
from ownvault.errors import OwnvaultError

__all__ = ["GcResult", "HeldBack", "collect", "reclaim", "several_devices"]


@dataclass(frozen=True, slots=True)
class HeldBack:
    """A device whose acknowledgment some removed packs wait for."""

    device: str
    name: str
    packs: int
    bytes: int
    this_device: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "name": self.name,
            "packs": self.packs,
            "bytes": self.bytes,
            "this_device": self.this_device,
        }


@dataclass(frozen=True, slots=True)
class GcResult:
    """What a GC deleted (or, dry, would delete) and what devices hold back."""

    dry_run: bool
    packs: tuple[str, ...]
    """Hex ids of the packs deleted (dry: collectable now)."""
    bytes: int
    held_back: tuple[HeldBack, ...]
    acknowledged: bool
    """This run wrote this device's acknowledgment record."""
    sweep: SweepResult | None = None
    """The orphan sweep's (``engine.store.sweep``), when asked for."""

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep": None if self.sweep is None else self.sweep.to_json(),
            "dry_run": self.dry_run,
            "packs": list(self.packs),
            "packs_deleted": 0 if self.dry_run else len(self.packs),
            "bytes": self.bytes,
            "held_back": [h.to_json() for h in self.held_back],
            "acknowledged": self.acknowledged,
        }


def several_devices(ctx: VaultContext) -> bool:
    """The vault has had more than one device (revoked ones included)."""
    return len(ctx.catalog.journal.devices()) > 1


def _blockers(
    c: Candidate, active: list[bytes], acks: dict[bytes, dict[bytes, int]], own: bytes
) -> set[bytes]:
    """The active devices whose acknowledgment ``c`` still waits for."""
    out = {own} if c.unresolved else set()
    for device in active:
        seen = acks.get(device, {})
        if any(seen.get(d, 0) < s for d, s in c.waits):
            out.add(device)
    return out


def _ack_due(
    cands: list[Candidate], active: list[bytes], acks: dict[bytes, dict[bytes, int]], own: bytes
) -> bool:
    """This device's last record does not cover a removal of another device it holds, or
    one of its own that every other active device has acknowledged (acknowledging its own
    removal earlier would only cost a record: the others' acknowledgments come later)."""
    mine = acks.get(own, {})
    others = [d for d in active if d != own]
    for c in cands:
        for d, s in c.waits:
            if mine.get(d, 0) >= s:
                continue
            if d != own or all(acks.get(o, {}).get(d, 0) >= s for o in others):
                return True
    return False


async def _acknowledge(ctx: VaultContext, own: bytes, active: list[bytes]) -> bool:
    """Write this device's acknowledgment when it is due (a failure is a warning: the
    packs wait)."""
    if not _ack_due(ctx.catalog.gc.candidates(), active, ctx.catalog.gc.acks(), own):
        return False
    journal = ctx.journal
    try:
        await journal.append(journal.device, journal.body([Pending(())]))
    except OwnvaultError as exc:
        ctx.warn(f"gc: this device's acknowledgment could not be written ({exc.message})")
        return False
    return True


async def collect(ctx: VaultContext, *, dry_run: bool = False, orphans: bool = False) -> GcResult:
    """Delete the packs no device's committed state references (module docstring); hold
    ``ctx.write()`` unless ``dry_run`` (which writes no record and deletes nothing, and
    counts this device as acknowledging what it holds). ``orphans``: then sweep the share
    objects no share row names (``engine.store.sweep``: every provider is listed)."""
    result = await _collect(ctx, dry_run=dry_run)
    if not orphans:
        return result
    return replace(result, sweep=await sweep(ctx, dry_run=dry_run))


async def _collect(ctx: VaultContext, *, dry_run: bool) -> GcResult:
    cat = ctx.catalog
    if not dry_run:
        await drain_doomed(ctx)  # shares of packs an interrupted deletion dropped
    if not several_devices(ctx):  # nothing to wait for: every candidate goes
        cands = cat.gc.candidates()
        if not dry_run:
            await drop_unreferenced_packs(ctx, [c.pack for c in cands])
        return GcResult(
            dry_run, tuple(c.pack_id.hex() for c in cands), sum(c.stored for c in cands), (), False
        )
    own = ctx.journal.device.id
    acked = False
    if not dry_run:
        await ctx.send_journal()
    if not cat.jns.outbox():  # every removal made here is in a record up to the head
        with cat.transaction():
            cat.gc.resolve_local(own, cat.journal.head(own).seq)
    rows = cat.journal.devices()
    active = [d.device for d in rows if d.revoked_after is None]
    if not dry_run:
        acked = await _acknowledge(ctx, own, active)
    acks = cat.gc.acks()
    if dry_run:
        acks[own] = {d: h.seq for d, h in cat.journal.heads().items()}
    free: list[Candidate] = []
    held: dict[bytes, list[Candidate]] = {}
    for c in cat.gc.candidates():
        blockers = _blockers(c, active, acks, own)
        if not blockers:
            free.append(c)
        if blockers - {own}:  # this device acknowledges once the others have
            blockers.discard(own)
        for device in blockers:
            held.setdefault(device, []).append(c)
    names = {d.device: d.name for d in rows}
    held_back = tuple(
        HeldBack(d.hex(), names.get(d, ""), len(cs), sum(c.stored for c in cs), d == own)
        for d, cs in sorted(held.items())
    )
    if not dry_run and free:  # the path of a vault of one device
        await drop_unreferenced_packs(ctx, [c.pack for c in free])
    return GcResult(
        dry_run,
        tuple(c.pack_id.hex() for c in free),
        sum(c.stored for c in free),
        held_back,
        acked,
    )


async def reclaim(ctx: VaultContext) -> int:
    """Give back the space of removed versions (hold ``ctx.write()``): in a vault of one
    device every unreferenced pack at once (after sending the removals and pulling again,
    so a device that joined meanwhile is counted), in a vault of several what
    :func:`collect` finds collectable; how many packs were deleted."""
    if not several_devices(ctx):
        # A device joining now writes its certificate before it reads the vault: with the
        # removals on the providers, a pull either counts it or it will see them.
        await ctx.send_journal()
        await ctx.pull()
    if not several_devices(ctx):
        return await drop_unreferenced_packs(ctx)
    return len((await collect(ctx)).packs)
