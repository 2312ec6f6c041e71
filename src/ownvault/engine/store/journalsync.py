"""The catalog cache and the journal: this device's ops out as records, other devices'
records in (docs/design.md, "Namespace ops and their capture", "Applying records").

Out: :func:`send` turns the outbox (``catalog.jns``, filled by triggers as the catalog
changes) into records, in the order the ops were made, each at most ``MAX_OPS`` ops and
``BODY_BUDGET`` bytes: a ``put`` carries its version's rows (``engine.store.journalrows``;
rows over ``INLINE_ROWS`` are written as rows objects before the record, which carries a
reference to them, ``engine.store.rowsobjects``), consecutive removals of one kind become
one op. After each append the versions and tag
additions it made get their dots.

In: :func:`apply_records` changes the cache as the merge (``core.merge``) says, record by
record in (HLC, device, seq) order, inside the caller's transaction: a ``put`` inserts its
version through the rows codec (those of a large put read from its rows objects before
the transaction) unless its dot is here or was removed; ``rm`` and
``forget`` delete exactly the versions they name (a put they did not see survives);
``tag`` adds, ``untag`` removes the additions it names (observed-remove); then every name
touched is renumbered by the merge order and its tags recomputed.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from ownvault.core import rowsobjects
from ownvault.core.journal import ChainHead, Record
from ownvault.core.journalops import (
    MAX_BODY_SIZE,
    MAX_OPS,
    Dot,
    DropPacks,
    Forget,
    MoveChunks,
    Op,
    Places,
    Put,
    Remove,
    Setting,
    Tag,
    Untag,
)
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.journalout import OutRow
from ownvault.engine.store.catalog.journalrows import RawRows
from ownvault.engine.store.journalplaces import Keyed, apply_places, born_keys, place_ops
from ownvault.engine.store.journalrevoke import note_late
from ownvault.engine.store.journalrows import RowsBlob, VersionRows, decode_rows, start_rows
from ownvault.engine.store.journalsettings import apply_setting, setting_ops
from ownvault.errors import FormatError, VaultStateError

__all__ = [
    "BODY_BUDGET",
    "Append",
    "EncodedRows",
    "apply_records",
    "collector_paused",
    "next_batch",
    "send",
    "settle_stamped",
]

BODY_BUDGET = MAX_BODY_SIZE - 256 * 1024  # room for the clock, the seen vector, JSON framing
MAX_DOTS = 100_000  # dots in one rm, forget or untag (core.journalops.MAX_REFS)
_REMOVALS: dict[str, type[Remove] | type[Forget] | type[Untag]] = {
    "rm": Remove,
    "forget": Forget,
    "untag": Untag,
}

Append = Callable[[Sequence[Op]], Awaitable[Record]]
StoreRows = Callable[[int, int, bytes], Awaitable[bytes]]  # (seq, op index, rows) -> reference
RowsOf = Callable[[Record, int, Put], bytes]  # the rows a put carries or names


def _inline_rows(_record: Record, _index: int, op: Put) -> bytes:
    return op.rows


def _cost(op: Op) -> int:
    """An upper bound of what ``op`` adds to a body's JSON."""
    match op:
        case Put():
            if len(op.rows) > rowsobjects.INLINE_ROWS:
                return BODY_BUDGET  # stored as rows objects, in a record of its own
            return 4 * len(op.rows) // 3 + 4 * len(op.name) + 40 * len(op.packs) + 300
        case Tag():
            return 4 * (len(op.name) + len(op.tag)) + 60
        case Remove() | Forget():
            return 60 * len(op.versions) + 60
        case Untag():
            return 60 * len(op.adds) + 60
        case Places():
            return 4 * sum(len(s.provider or "") for s in op.shares) + 110 * len(op.shares) + 200
        case MoveChunks():
            return sum(150 + 2 * len(c.wrapped_key) for c in op.chunks) + 100
        case DropPacks():
            return 40 * len(op.packs) + 60
        case Setting():
            return 4 * (len(op.key) + len(op.value or "")) + 100
    return 1024


@dataclass(slots=True)
class EncodedRows:
    """The rows of versions this process encoded, kept so that a put's rows are encoded
    once: a put checks they fit one record (:meth:`check`: the bytes may still be being
    compressed, on a thread of their own, when it goes on), and the record that carries
    them reuses those bytes when the catalog's queries return the same rows for the version
    (``JournalRowTables.export_raw``: cheap next to building the rows and encoding them:
    canonical JSON, zlib and the rows' check). At
    most ``keep`` versions are kept (a version refused or rolled back is never sent), the
    oldest dropped first."""

    keep: int = 16
    kept: OrderedDict[int, tuple[RawRows, VersionRows, RowsBlob]] = field(
        default_factory=OrderedDict
    )

    def check(self, catalog: Catalog, version: int) -> None:
        """Check the rows of ``version`` as the catalog holds them now encode (``FormatError``
        if not), keeping their bytes for the record."""
        self._start(catalog, version)

    def encode(self, catalog: Catalog, version: int) -> tuple[VersionRows, bytes]:
        """The rows of ``version`` as the catalog holds them now, and their bytes."""
        rows, blob = self._start(catalog, version)
        return rows, blob.result()

    def _start(self, catalog: Catalog, version: int) -> tuple[VersionRows, RowsBlob]:
        with collector_paused():  # what the queries return, rows, the doc: acyclic objects
            raw = catalog.jrows.export_raw(version)
            old = self.kept.pop(version, None)
            if old is not None and old[0] == raw:  # the same rows read: the same rows built
                rows, blob = old[1], old[2]
            else:
                rows = catalog.jrows.rows_of(raw)
                blob = start_rows(rows)
        self.kept[version] = (raw, rows, blob)
        while len(self.kept) > self.keep:
            self.kept.popitem(last=False)
        return rows, blob

    def forget(self, version: int) -> None:
        self.kept.pop(version, None)


def _put(catalog: Catalog, version: int, encoded: EncodedRows) -> Put:
    v = catalog.version_by_id(version)
    rows, blob = encoded.encode(catalog, version)
    encoded.forget(version)  # sent once; a later send (after a failure) exports again
    return Put(v.name, v.kind, v.size, v.cid, rows.pack_ids(), blob)


def next_batch(
    catalog: Catalog,
    seq: int,
    too_big: list[str] | None = None,
    device: bytes | None = None,
    encoded: EncodedRows | None = None,
) -> list[Op]:
    """The ops of the next record (``seq``) of ``device`` from the outbox, its rows stamped
    with ``seq`` and their op index; empty when nothing is owed. In order: providers and
    vault parameters, the namespace ops, the other settings, pack places. A put whose rows
    no record can carry (only a version stored before the journal: a put refuses to make
    one) leaves the outbox for the catalog snapshot, named in ``too_big``. ``encoded``:
    rows encoded earlier in this process (a put's bound check), reused if unchanged."""
    too_big = [] if too_big is None else too_big
    encoded = EncodedRows() if encoded is None else encoded
    ops: list[Op] = []
    size, done = _extra_ops(catalog, seq, ops, 0, setting_ops(catalog, device, first=True))
    if not done:
        return ops
    rows = [r for r in catalog.jns.outbox() if r.sent is None]
    stamps: list[tuple[int, int, int]] = []
    i = 0
    while i < len(rows) and len(ops) < MAX_OPS:
        row = rows[i]
        group: list[OutRow] = [row]
        if row.op in _REMOVALS:
            while (
                i + len(group) < len(rows)
                and rows[i + len(group)].op == row.op
                and len(group) < MAX_DOTS
            ):
                group.append(rows[i + len(group)])
            dots = tuple(sorted({r.dot for r in group if r.dot is not None}))
            op: Op = _REMOVALS[row.op](dots)
        elif row.op == "put":
            assert row.version is not None
            try:
                op = _put(catalog, row.version, encoded)
            except FormatError as exc:  # a version of the snapshot era too big for a record
                catalog.jns.spill(row.pos)
                too_big.append(f"{catalog.version_by_id(row.version).name}: {exc.message}")
                i += 1
                continue
        else:
            assert row.tag is not None
            op = Tag(*row.tag)
        cost = _cost(op)
        if ops and size + cost > BODY_BUDGET:
            break
        stamps += [(r.pos, seq, len(ops)) for r in group]
        ops.append(op)
        size += cost
        i += len(group)
    if stamps:
        catalog.jns.stamp(stamps)
    if i == len(rows):  # the namespace ops are all out: then settings and what moved
        size, done = _extra_ops(catalog, seq, ops, size, setting_ops(catalog, device, first=False))
        if done:
            _extra_ops(catalog, seq, ops, size, place_ops(catalog))
    if ops:  # the packs made live so far go out with this record (named by its ops)
        catalog.jplaces.stamp(born_keys(catalog), seq)
    return ops


def _extra_ops(
    catalog: Catalog, seq: int, ops: list[Op], size: int, owed: list[Keyed]
) -> tuple[int, bool]:
    """Append ``owed`` (settings, pack places) to ``ops`` while they fit, stamping their
    outbox keys with ``seq``; the body size now, and whether all of them fit."""
    keys: list[tuple[str, str, str | None]] = []
    taken = 0
    for op, carried in owed:
        cost = _cost(op)
        if len(ops) >= MAX_OPS or (ops and size + cost > BODY_BUDGET):
            break
        ops.append(op)
        keys += carried
        size += cost
        taken += 1
    if keys:
        catalog.jplaces.stamp(keys, seq)
    return size, taken == len(owed)


def settle_stamped(catalog: Catalog, device: bytes, head: ChainHead) -> None:
    """After a crash between an append and its settle: if the device's head shows the
    stamped record was written, give its ops their dots; else send them again."""
    seq = catalog.jns.stamped_seq()
    if seq is None:
        return
    if head.seq == seq:
        with catalog.transaction():
            catalog.jns.settle(device, seq, head.hlc)
            catalog.jplaces.settle(device, seq, head.hlc)
    else:
        catalog.jns.unstamp()


async def _spill(ops: list[Op], seq: int, store_rows: StoreRows | None) -> list[Op]:
    """``ops`` with the rows of each put over ``INLINE_ROWS`` written as rows objects (before
    the record) and replaced by the reference to them."""
    out: list[Op] = []
    for index, op in enumerate(ops):
        if isinstance(op, Put) and len(op.rows) > rowsobjects.INLINE_ROWS:
            if store_rows is None:
                raise VaultStateError(
                    f"the rows of {op.name} need rows objects, none can be written"
                )
            ref = await store_rows(seq, index, op.rows)
            op = Put(op.name, op.kind, op.size, op.cid, op.packs, ref)
        out.append(op)
    return out


async def send(
    catalog: Catalog,
    device: bytes,
    head: ChainHead,
    append: Append,
    warn: Callable[[str], None] = lambda _m: None,
    encoded: EncodedRows | None = None,
    store_rows: StoreRows | None = None,
) -> list[Record]:
    """Append the outbox as records (``append`` writes one and returns it); ``head``: this
    device's chain head as the journal store holds it; ``encoded``: see :func:`next_batch`;
    ``store_rows`` writes the rows objects of a large put before its record."""
    settle_stamped(catalog, device, head)
    out: list[Record] = []
    seq = head.seq
    while True:
        too_big: list[str] = []
        ops = next_batch(catalog, seq + 1, too_big, device, encoded)
        for what in too_big:
            warn(f"journal: a version travels in the catalog snapshot only ({what})")
        if not ops:
            return out
        try:
            ops = await _spill(ops, seq + 1, store_rows)
            record = await append(ops)
        except BaseException:
            catalog.jns.unstamp()
            raise
        if record.ops != tuple(ops):  # dots are (seq, index in the record): must match
            raise VaultStateError(f"journal record {record} does not hold the ops sent")
        with catalog.transaction():
            catalog.jns.settle(device, record.seq, record.hlc)
            catalog.jplaces.settle(device, record.seq, record.hlc)
        out.append(record)
        seq = record.seq


def _same(a: VersionRows, b: VersionRows) -> bool:
    """One version: same entries, contents and chunks (share places may have moved)."""
    return (a.entries, a.contents, [c.chunk_id for c in a.chunks]) == (
        b.entries,
        b.contents,
        [c.chunk_id for c in b.chunks],
    )


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, as it was after: decoding and
    inserting a put's rows makes millions of acyclic objects (JSON values, rows, tuples),
    each of whose generations made the collector walk all of them again (a quarter of the
    decode of a 50,000-file put's rows). What is freed is freed by reference counting."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _put_in(catalog: Catalog, record: Record, dot: Dot, op: Put, rows_of: RowsOf) -> str | None:
    jns = catalog.jns
    if jns.known(dot):
        return None
    with collector_paused():
        return _put_rows(catalog, record, dot, op, rows_of)


def _put_rows(catalog: Catalog, record: Record, dot: Dot, op: Put, rows_of: RowsOf) -> str:
    jns = catalog.jns
    rows = decode_rows(rows_of(record, dot.index, op))
    for candidate in jns.unsent(op.name, rows.created_at, op.size, op.cid):
        if _same(catalog.jrows.export(candidate), rows):
            jns.set_dot(candidate, dot, record.hlc)  # the writer's own put of a copied version
            return op.name
    version = catalog.jrows.insert(op.name, op.kind, op.size, op.cid, rows)
    jns.set_dot(version, dot, record.hlc)
    return op.name


def _tag_in(catalog: Catalog, dot: Dot, op: Tag) -> bool:
    jns = catalog.jns
    if jns.known(dot):
        return False
    copied = jns.unsent_tag(op.name, op.tag)
    if copied is not None:
        jns.set_tag_dot(copied, dot)
    else:
        jns.add_tag(dot, op.name, op.tag)
    return True


def apply_records(
    catalog: Catalog,
    records: Sequence[Record],
    warn: Callable[[str], None] = lambda _m: None,
    rows_of: RowsOf = _inline_rows,
) -> set[str]:
    """Change the cache by other devices' ``records`` (see the module docstring), inside
    the caller's transaction; the names whose versions or tags changed. ``rows_of`` gives
    the rows of a put (those of a large one were read from its rows objects). A put whose rows
    do not decode or name a provider this catalog does not know is left out with a
    warning naming its device and seq (a member that writes such rows is faulty; the rest
    of its record and of the pull still apply)."""
    jns = catalog.jns
    note_late(catalog, records)  # undone after the pull (engine.store.journalrevoke)
    touched: set[str] = set()
    jns.mute(True)
    try:
        for record in records:
            for index, op in enumerate(record.ops):
                dot = Dot(record.device, record.seq, index)
                match op:
                    case Put():
                        try:
                            with catalog.jns.savepoint():
                                name = _put_in(catalog, record, dot, op, rows_of)
                        except (FormatError, VaultStateError) as exc:
                            warn(f"journal: put of {op.name} in {record} left out: {exc.message}")
                            continue
                        if name is not None:
                            touched.add(name)
                    case Remove() | Forget():
                        touched |= jns.remove(op.versions)
                    case Tag():
                        if _tag_in(catalog, dot, op):
                            touched.add(op.name)
                    case Untag():
                        touched |= jns.remove(op.adds)
                    case Setting():
                        apply_setting(catalog, record, op, warn)
                    case _:
                        pass  # membership: the journal store; places below
            apply_places(catalog, record, warn)
        for name in sorted(touched):
            jns.refresh(name)
    finally:
        jns.mute(False)
    return touched
