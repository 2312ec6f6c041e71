"""A revocation that arrives after the revoked device's later records were applied here
takes those records back out of the catalog cache (docs/design.md, "The merge model",
rule 6): the cache then equals what a device that saw the revocation first holds.

Two steps, because the second reads the providers:

1. :func:`note_late` (inside the transaction that applies the pulled records): a
   ``device_revoke`` of device X with a cut-off below X's head held here is remembered
   (``catalog.late``), in that same transaction.
2. :func:`undo_late` (after the pull, by ``VaultContext.pull``; again on every later pull
   until it succeeds): reads every chain (``JournalStore.history``: the valid records, X's
   after the cut-off refused) and X's whole chain, then in one transaction, muted (another
   device's doing: nothing is captured for sending):

   * the versions and tag additions X made after the cut-off are removed (their packs
     are left to GC: their removal waits until every active device has acknowledged the
     revocation's record, as a device that has not may still deduplicate onto them);
   * every dot X removed after the cut-off (``rm``, ``untag``) that no valid record
     removes, and no removal of this device waits to send, comes back from the valid
     record that made it (a ``put``'s rows, a ``tag``; the rows objects of a large
     ``put`` are read before the transaction, ``engine.store.rowsobjects``); a version X
     forgot (crypto-shredded) after the cut-off does not (its data is destroyed): this
     device queues a ``forget`` of it as its own op, for the devices that refused X's
     records;
   * removals waiting for X's records after the cut-off (GC) wait for the revocation's
     record instead;
   * the names touched are renumbered by the merge order and their tags recomputed.

The revoked device itself undoes nothing: it is no longer the vault's, and its catalog
keeps showing what it wrote (it can still read it back while its keys open it).

Cost: one read of every record of every chain (as ``ownvault log``), once per late
revocation; a revocation that arrives first costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ownvault.core.journal import Record
from ownvault.core.journalops import DeviceRevoke, Dot, Forget, Put, Remove, Tag, Untag
from ownvault.core.rowsobjects import is_ref
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.journalpull import Journal, Pull
from ownvault.engine.store.journalrows import decode_rows
from ownvault.errors import FormatError, VaultStateError

__all__ = ["note_late", "undo_late"]

Made = dict[Dot, tuple[Record, Put | Tag]]
RowsOf = Callable[[Record, int, Put], bytes]


def note_late(catalog: Catalog, records: Sequence[Record]) -> None:
    """Remember each revocation in ``records`` that cuts below the revoked device's head
    held here (inside the caller's transaction, before the heads move)."""
    late = catalog.late
    for record in records:
        for op in record.ops:
            if isinstance(op, DeviceRevoke) and op.last_seq < catalog.journal.head(op.device).seq:
                late.note(op.device, op.last_seq, (record.device, record.seq))


def _removed(records: Sequence[Record]) -> set[Dot]:
    out: set[Dot] = set()
    for r in records:
        for op in r.ops:
            if isinstance(op, Remove | Forget):
                out.update(op.versions)
            elif isinstance(op, Untag):
                out.update(op.adds)
    return out


def _made(records: Sequence[Record]) -> Made:
    return {
        Dot(r.device, r.seq, i): (r, op)
        for r in records
        for i, op in enumerate(r.ops)
        if isinstance(op, Put | Tag)
    }


def _restore(
    catalog: Catalog, dot: Dot, made: Made, warn: Callable[[str], None], rows_of: RowsOf
) -> str | None:
    """Put back the version or tag addition ``dot`` names; its name."""
    if dot not in made:
        warn(
            f"journal: no record makes device {dot.device.hex()[:8]} seq {dot.seq} op "
            f"{dot.index} (its removal by a revoked device stays)"
        )
        return None
    record, op = made[dot]
    if isinstance(op, Tag):
        catalog.jns.add_tag(dot, op.name, op.tag)
        return op.name
    try:
        with catalog.jns.savepoint():
            rows = decode_rows(rows_of(record, dot.index, op))
            version = catalog.jrows.insert(op.name, op.kind, op.size, op.cid, rows)
            catalog.jns.set_dot(version, dot, record.hlc)
    except (FormatError, VaultStateError) as exc:
        warn(f"journal: put of {op.name} in {record} not restored: {exc.message}")
        return None
    return op.name


def _undo(
    catalog: Catalog,
    device: bytes,
    cut: int,
    by: tuple[bytes, int],
    valid: Sequence[Record],
    chain: Sequence[Record],
    warn: Callable[[str], None],
    rows_of: RowsOf,
) -> set[str]:
    """One revocation's undo (inside the caller's transaction, muted); the names touched."""
    jns, late = catalog.jns, catalog.late
    touched = jns.remove(late.made_after(device, cut))
    # Their packs wait until every active device has seen the revocation: one that has
    # not may still deduplicate onto them. So do removals that waited for X's later
    # records, which no device holding the revocation will acknowledge.
    catalog.gc.note([(by[0], by[1], ())])
    catalog.gc.revoked(device, cut, by)
    after = [r for r in chain if r.seq > cut]
    keep_out = _removed(valid) | {r.dot for r in jns.outbox() if r.dot is not None}
    undone = sorted(
        d
        for d in _removed(after) - keep_out
        if d.device != device or d.seq <= cut  # what X made after the cut stays out
    )
    # A version X crypto-shredded after the cut is destroyed (its shares deleted, its keys
    # gone): it stays out, and this device forgets it too, so a device that refused X's
    # records (and still lists it, unreadable) drops it as well.
    shredded = {d for r in after for op in r.ops if isinstance(op, Forget) for d in op.versions}
    lost = late.gone(d for d in undone if d in shredded)
    if lost:
        late.forget_again(lost)
        warn(
            f"journal: {len(lost)} version(s) device {device.hex()[:8]} forgot after its "
            "cut-off stay forgotten: their data was destroyed (this device forgets them too)"
        )
    back = late.gone(d for d in undone if d not in shredded)
    late.unremove(back)
    made = _made(valid)
    for dot in back:
        name = _restore(catalog, dot, made, warn, rows_of)
        if name is not None:
            touched.add(name)
    late.done(device)
    return touched


async def undo_late(js: Journal) -> set[str]:
    """Undo every late revocation remembered here (module docstring); the names touched.
    ``js`` is the journal store; a failure to read leaves them for the next pull."""
    catalog = js.catalog
    pending = catalog.late.pending()
    if not pending:
        return set()
    own = js.device.id
    if own in pending:  # this device was revoked: its catalog keeps what it wrote
        with catalog.transaction():
            catalog.late.done(own)
        del pending[own]
        if not pending:
            return set()
    pull = Pull(js)
    valid = await pull.history()
    chains = {device: await pull.chain(device) for device in sorted(pending)}
    # The rows objects of the large puts an undo may restore: those X removed after its cut.
    wanted = set().union(
        *(_removed([r for r in chains[d] if r.seq > cut]) for d, (cut, _by) in pending.items())
    )
    await js.load_rows(
        [
            r
            for r in valid
            if any(
                isinstance(op, Put) and is_ref(op.rows) and Dot(r.device, r.seq, i) in wanted
                for i, op in enumerate(r.ops)
            )
        ]
    )
    try:
        return _undo_all(catalog, pending, valid, chains, js)
    finally:
        js.close_rows()


def _undo_all(
    catalog: Catalog,
    pending: dict[bytes, tuple[int, tuple[bytes, int]]],
    valid: Sequence[Record],
    chains: dict[bytes, list[Record]],
    js: Journal,
) -> set[str]:
    touched: set[str] = set()
    with catalog.transaction():
        catalog.jns.mute(True)
        try:
            for device, (cut, by) in sorted(pending.items()):
                touched |= _undo(
                    catalog, device, cut, by, valid, chains[device], js.host.warn, js.rows_of
                )
            for name in sorted(touched):
                catalog.jns.refresh(name)
        finally:
            catalog.jns.mute(False)
    return touched
