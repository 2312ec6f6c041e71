"""The orphan sweep: share objects no device's state names (docs/design.md, "The orphan
sweep").

Objects under ``shares/`` that no share row of this catalog names are left behind by two
devices moving one share concurrently (the loser's copy), a put killed before its record,
a repair or a completion whose copy lost. Another device's put in progress writes objects
this catalog cannot know of yet, so an object is deleted only in a later run than the one
that listed it, once:

1. it was listed and **marked** with the seq ``m`` of this device's next record (written
   right after), remembering the heads ``H`` of every chain held then;
2. this device's head is at least ``m``;
3. every active device other than this one has written a record whose ``seen`` vector
   covers ``H`` (this device's entry is ``m``), and this catalog holds every chain up to
   what that device had seen then;
4. no share row here names it, and what this catalog says of its key (``unknown``, or the
   key's last write) is what it said when it was marked.

Why that never deletes an object a record will name: a device's write block pulls first
and appends its record last, so a record seeing ``m`` comes after every record of a block
that wrote before the listing; this catalog holds it (3), so such an object is named here
(4). A device that writes after seeing ``m`` writes either new pack ids or shares of packs
it holds, never onto an object already there that its catalog does not name
(``PackWriter.put_share``: a move fails over instead of adopting or replacing a copy), and
at its acknowledgment its catalog named the same place for the share as this one (it had
merged everything this catalog held at the mark, which decided the key, and this catalog
holds everything it had merged). A vault of one device deletes in the run that marks
(after the mark record and a pull: a device joining meanwhile is then counted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ownvault.core.journalops import Pending
from ownvault.engine.store.catalog.sweep import Mark
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.errors import OwnvaultError

__all__ = ["ProviderSweep", "SweepResult", "sweep"]

_NAME = re.compile(rf"^{DATA_PREFIX}/([0-9a-f]{{2}})/([0-9a-f]{{32}})\.([0-9]{{1,3}})\Z")


@dataclass(frozen=True, slots=True)
class ProviderSweep:
    """One provider's orphans: swept (dry: sweepable now) and waiting."""

    provider: str
    objects: int
    bytes: int
    waiting: int
    waiting_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "objects": self.objects,
            "bytes": self.bytes,
            "waiting": self.waiting,
            "waiting_bytes": self.waiting_bytes,
        }


@dataclass(frozen=True, slots=True)
class SweepResult:
    dry_run: bool
    providers: tuple[ProviderSweep, ...]

    @property
    def objects(self) -> int:
        return sum(p.objects for p in self.providers)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.providers)

    @property
    def waiting(self) -> int:
        return sum(p.waiting for p in self.providers)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "objects": self.objects,
            "bytes": self.bytes,
            "waiting": self.waiting,
            "providers": [p.to_json() for p in self.providers],
        }


def parse(name: str) -> tuple[bytes, int] | None:
    """(pack id, index) of a share object's name, or None for any other name."""
    m = _NAME.match(name)
    if m is None or m.group(2)[:2] != m.group(1):
        return None
    return bytes.fromhex(m.group(2)), int(m.group(3))


async def _orphans(ctx: VaultContext) -> dict[int, dict[str, tuple[int, str]]]:
    """Provider -> name -> (size, status) of every listed share object no row names."""
    cat = ctx.catalog
    named = cat.sweep.referenced()
    out: dict[int, dict[str, tuple[int, str]]] = {}
    for pid, provider in sorted(ctx.store.providers.items()):
        found: dict[str, tuple[int, str]] = {}
        try:
            async for info in provider.list(DATA_PREFIX + "/"):
                key = parse(info.name)
                if key is None or (pid, *key) in named:
                    continue
                status = cat.sweep.status(*key)
                if status is not None:
                    found[info.name] = (info.size, status)
        except OwnvaultError as exc:
            ctx.warn(f"sweep: {ctx.store.names.get(pid, pid)} cannot be listed ({exc.message})")
            continue
        out[pid] = found
    return out


def _acknowledged(
    at: Mapping[bytes, int],
    others: list[bytes],
    acks: Mapping[bytes, Mapping[bytes, int]],
    heads: Mapping[bytes, int],
    cut: Mapping[bytes, int],
) -> bool:
    """Rule 3: every other active device's latest vector covers ``at`` and is held here
    (a revoked device's records after its cut-off count for nothing: a device that merged
    them before the revocation came keeps them in its vector, this one refuses them)."""
    for d in others:
        seen = acks.get(d, {})
        if any(seen.get(e, 0) < s for e, s in at.items()):
            return False
        if any(heads.get(e, 0) < min(s, cut.get(e, s)) for e, s in seen.items()):
            return False
    return True


def _due(ctx: VaultContext, listed: dict[int, dict[str, tuple[int, str]]]) -> list[Mark]:
    """The marks rules 2 to 4 let go now (the object still listed, unchanged)."""
    cat = ctx.catalog
    own = ctx.journal.device.id
    rows = cat.journal.devices()
    cut = {d.device: d.revoked_after for d in rows if d.revoked_after is not None}
    others = [d.device for d in rows if d.revoked_after is None and d.device != own]
    heads = {d.device: d.head.seq for d in rows}
    acks = cat.gc.acks()
    at_mark = cat.sweep.heads_at()
    out: list[Mark] = []
    for m in cat.sweep.marks():
        if heads.get(own, 0) < m.mark or listed.get(m.provider, {}).get(m.name) != (
            m.size,
            m.status,
        ):
            continue
        at = {e: min(s, cut.get(e, s)) for e, s in at_mark.get(m.mark, {}).items()}
        if _acknowledged(at, others, acks, heads, cut):
            out.append(m)
    return out


def _stale(
    ctx: VaultContext, listed: dict[int, dict[str, tuple[int, str]]]
) -> list[tuple[int, str]]:
    """Marks of objects gone, named again, or whose key changed (a listed provider only)."""
    return [
        (m.provider, m.name)
        for m in ctx.catalog.sweep.marks()
        if m.provider in listed and listed[m.provider].get(m.name) != (m.size, m.status)
    ]


async def _mark(ctx: VaultContext, listed: dict[int, dict[str, tuple[int, str]]]) -> bool:
    """Mark what is listed and not marked yet, then write the record that follows the
    listing (a failure is a warning: a later record of this device takes its place)."""
    cat = ctx.catalog
    marked = {(m.provider, m.name) for m in cat.sweep.marks()}
    new = [
        Mark(pid, name, size, 0, status)
        for pid, found in listed.items()
        for name, (size, status) in found.items()
        if (pid, name) not in marked
    ]
    owed = cat.jns.outbox() or any(kind != "born" for kind, _ in cat.jplaces.unsent())
    if not new or owed:  # an unsent place would be a key no other device has seen
        return False
    journal = ctx.journal
    own = journal.device.id
    seq = cat.journal.head(own).seq + 1
    heads = {d: h.seq for d, h in cat.journal.heads().items()}
    heads[own] = seq
    cat.sweep.add(new, seq, heads)
    try:
        await journal.enroll()
        await journal.append(journal.device, journal.body([Pending(())]))
    except OwnvaultError as exc:
        ctx.warn(f"sweep: the record after the listing could not be written ({exc.message})")
        return False
    return True


async def sweep(ctx: VaultContext, *, dry_run: bool = False) -> SweepResult:
    """Delete the share objects no device's state names (module docstring); hold
    ``ctx.write()`` unless ``dry_run``, which marks and deletes nothing and reports what a
    run would delete now and what waits."""
    cat = ctx.catalog
    listed = await _orphans(ctx)
    if not dry_run:
        cat.sweep.drop(_stale(ctx, listed))
        if await _mark(ctx, listed):
            await ctx.pull()  # a device joining meanwhile is counted now
            listed = await _orphans(ctx)
            cat.sweep.drop(_stale(ctx, listed))
    due = _due(ctx, listed)
    gone = {(m.provider, m.name) for m in due}
    if dry_run and not any(
        d.revoked_after is None and d.device != ctx.journal.device.id for d in cat.journal.devices()
    ):
        gone |= {(p, n) for p, found in listed.items() for n in found}  # a run marks and sweeps
    if not dry_run:
        deleted = [m for m in due if await ctx.store.delete_share(m.provider, m.name)]
        cat.sweep.drop((m.provider, m.name) for m in deleted)
        gone = {(m.provider, m.name) for m in deleted}
    per: list[ProviderSweep] = []
    for pid, found in sorted(listed.items()):
        if not found:
            continue
        swept = [size for n, (size, _) in found.items() if (pid, n) in gone]
        rest = [size for n, (size, _) in found.items() if (pid, n) not in gone]
        name = ctx.store.names.get(pid, str(pid))
        per.append(ProviderSweep(name, len(swept), sum(swept), len(rest), sum(rest)))
    return SweepResult(dry_run, tuple(per))
