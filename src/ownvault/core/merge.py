"""The merge model of the catalog journal: a state-based CRDT over records' operations.

A :class:`State` is a join-semilattice: every field is a grow-only set or map of facts,
each fact tagged with the :class:`Dot` of the operation that made it, plus a few registers
joined by a maximum or minimum. :func:`join` is the least upper bound, so it is
commutative, associative and idempotent, and :func:`merge` (the fold of records into a
state) gives the same state whatever order, grouping or repetition the records arrive
in. What a user sees is computed from the state by pure views:

* versions: every ``put`` makes a version named by its dot; the versions of a name are
  ordered by (HLC, device, seq, index), so two devices writing in one millisecond both
  keep theirs, in the same order everywhere;
* ``rm`` removes exactly the versions it names (observed-remove): a put it did not see
  survives it (add wins);
* tags and publications are observed-remove sets; a grant is live until revoked;
* ``forget`` removes the versions it names, for good, and any publication of their CIDs;
* a revoked device's facts after its last accepted seq count for nothing;
* packs: see :func:`protected_packs`.

Models: the OR-set and causal stability of Shapiro, Preguiça, Baquero and Zawirski, "A
comprehensive study of Convergent and Commutative Replicated Data Types" (INRIA RR-7506,
2011); docs/design.md, "Catalog journal and multi-device merge", lists the invariants
the tests check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ownvault.core.journal import ChainHead, Record
from ownvault.core.journalops import (
    DeviceAdd,
    DeviceRevoke,
    Dot,
    Forget,
    Grant,
    GrantRevoke,
    Hlc,
    Op,
    Pending,
    Publish,
    Put,
    Remove,
    Tag,
    Unpublish,
    Untag,
)
from ownvault.errors import JournalError

__all__ = [
    "EMPTY",
    "State",
    "Version",
    "compact",
    "devices",
    "garbage_packs",
    "grants",
    "heads",
    "join",
    "live_versions",
    "membership",
    "merge",
    "protected_packs",
    "published",
    "revocation_cut",
    "state_of",
    "tags",
    "withheld",
]

Pair = tuple[Dot, Dot]  # (the op that removes, what it removes)
PendingReg = tuple[tuple[int, int], tuple[bytes, ...]]  # ((seq, index) of the op, packs)
SeenReg = tuple[int, Mapping[bytes, int]]  # (seq of the record, its version vector)
Member = tuple[bytes, str, bytes]  # (public key, name, certificate signature)
Revocation = tuple[int, bytes]  # (last accepted seq, revocation signature)


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """One stored version, ordered by (HLC, dot): the order every replica shows."""

    hlc: Hlc
    dot: Dot
    name: str = field(compare=False)
    kind: str = field(compare=False)
    size: int = field(compare=False)
    cid: str | None = field(compare=False)
    packs: tuple[bytes, ...] = field(compare=False)
    rows: bytes = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class State:
    """The join-semilattice. Treat the containers as immutable: :func:`join` builds new ones.

    ``floor`` is each device's chain head at the last :func:`compact` (a checkpoint): the
    records up to it are folded in and no longer listed in ``applied``."""

    floor: Mapping[bytes, ChainHead] = field(default_factory=dict)
    applied: Mapping[bytes, Mapping[int, ChainHead]] = field(default_factory=dict)
    members: Mapping[bytes, Member] = field(default_factory=dict)
    revoked: Mapping[bytes, Revocation] = field(default_factory=dict)
    versions: Mapping[Dot, Version] = field(default_factory=dict)
    removed: frozenset[Pair] = frozenset()
    forgotten: frozenset[Pair] = frozenset()
    tag_adds: Mapping[Dot, tuple[str, str]] = field(default_factory=dict)
    untagged: frozenset[Pair] = frozenset()
    pub_adds: Mapping[Dot, tuple[str, str]] = field(default_factory=dict)
    unpublished: frozenset[Pair] = frozenset()
    grant_adds: Mapping[Dot, tuple[bytes, str, str]] = field(default_factory=dict)
    grant_revokes: frozenset[tuple[Dot, bytes]] = frozenset()
    pending: Mapping[bytes, PendingReg] = field(default_factory=dict)
    seen: Mapping[bytes, SeenReg] = field(default_factory=dict)


EMPTY = State()


@dataclass(slots=True)
class _Facts:
    """Mutable accumulators while records are folded in one pass (frozen at the end)."""

    applied: dict[bytes, dict[int, ChainHead]] = field(default_factory=dict)
    members: dict[bytes, Member] = field(default_factory=dict)
    revoked: dict[bytes, Revocation] = field(default_factory=dict)
    versions: dict[Dot, Version] = field(default_factory=dict)
    removed: set[Pair] = field(default_factory=set)
    forgotten: set[Pair] = field(default_factory=set)
    tag_adds: dict[Dot, tuple[str, str]] = field(default_factory=dict)
    untagged: set[Pair] = field(default_factory=set)
    pub_adds: dict[Dot, tuple[str, str]] = field(default_factory=dict)
    unpublished: set[Pair] = field(default_factory=set)
    grant_adds: dict[Dot, tuple[bytes, str, str]] = field(default_factory=dict)
    grant_revokes: set[tuple[Dot, bytes]] = field(default_factory=set)
    pending: dict[bytes, PendingReg] = field(default_factory=dict)
    seen: dict[bytes, SeenReg] = field(default_factory=dict)

    def add(self, record: Record) -> None:
        d, s = record.device, record.seq
        have = self.applied.setdefault(d, {}).setdefault(s, record.head)
        if have != record.head:
            raise _fork(d, s)
        for i, op in enumerate(record.ops):
            self._op(record, Dot(d, s, i), op)
        vector = dict(record.body.seen)
        vector[d] = max(s, vector.get(d, 0))
        if d not in self.seen or s > self.seen[d][0]:
            self.seen[d] = (s, vector)

    def _op(self, record: Record, dot: Dot, op: Op) -> None:
        match op:
            case Put():
                self.versions[dot] = Version(
                    record.hlc, dot, op.name, op.kind, op.size, op.cid, op.packs, op.rows
                )
            case Remove():
                self.removed.update((dot, v) for v in op.versions)
            case Forget():
                self.forgotten.update((dot, v) for v in op.versions)
            case Tag():
                self.tag_adds[dot] = (op.name, op.tag)
            case Untag():
                self.untagged.update((dot, a) for a in op.adds)
            case Publish():
                self.pub_adds[dot] = (op.name, op.cid)
            case Unpublish():
                self.unpublished.update((dot, a) for a in op.adds)
            case Grant():
                self.grant_adds[dot] = (op.grant, op.name, op.recipient)
            case GrantRevoke():
                self.grant_revokes.add((dot, op.grant))
            case Pending():
                version = (dot.seq, dot.index)
                if dot.device not in self.pending or version > self.pending[dot.device][0]:
                    self.pending[dot.device] = (version, op.packs)
            case DeviceAdd():
                self.members[op.device] = (op.key, op.name, op.sig)
            case DeviceRevoke():
                cut = (op.last_seq, op.sig)
                self.revoked[op.device] = min(cut, self.revoked.get(op.device, cut))

    def frozen(self) -> State:
        return State(
            applied=self.applied,
            members=self.members,
            revoked=self.revoked,
            versions=self.versions,
            removed=frozenset(self.removed),
            forgotten=frozenset(self.forgotten),
            tag_adds=self.tag_adds,
            untagged=frozenset(self.untagged),
            pub_adds=self.pub_adds,
            unpublished=frozenset(self.unpublished),
            grant_adds=self.grant_adds,
            grant_revokes=frozenset(self.grant_revokes),
            pending=self.pending,
            seen=self.seen,
        )


def state_of(records: Iterable[Record]) -> State:
    """The facts verified records contribute, folded in one pass (equal to the join of
    each record's own state; a fork among them raises ``JournalError``)."""
    facts = _Facts()
    for r in records:
        facts.add(r)
    return facts.frozen()


def _fork(device: bytes, seq: int) -> JournalError:
    return JournalError(
        "fork: two different records with one sequence number", device=device.hex(), seq=seq
    )


def _floor(a: Mapping[bytes, ChainHead], b: Mapping[bytes, ChainHead]) -> dict[bytes, ChainHead]:
    out = dict(a)
    for device, head in b.items():
        have = out.setdefault(device, head)
        if have.seq == head.seq and have != head:
            raise _fork(device, head.seq)
        out[device] = max(have, head)
    return out


def _applied(
    floor: Mapping[bytes, ChainHead],
    a: Mapping[bytes, Mapping[int, ChainHead]],
    b: Mapping[bytes, Mapping[int, ChainHead]],
) -> dict[bytes, Mapping[int, ChainHead]]:
    """The union of both maps above ``floor`` (entries at or below it are folded in)."""
    merged: dict[bytes, dict[int, ChainHead]] = {}
    for source in (a, b):
        for device, heads in source.items():
            low = floor.get(device)
            mine = merged.setdefault(device, {})
            for seq, head in heads.items():
                if low is not None and seq <= low.seq:
                    if seq == low.seq and head != low:
                        raise _fork(device, seq)
                    continue
                if mine.setdefault(seq, head) != head:
                    raise _fork(device, seq)
    return {d: heads for d, heads in merged.items() if heads}


def _pending(
    a: Mapping[bytes, PendingReg], b: Mapping[bytes, PendingReg]
) -> dict[bytes, PendingReg]:
    """Per device, the pending set of its later operation (a register versioned by (seq, index))."""
    out = dict(a)
    for k, v in b.items():
        if k not in out or v[0] > out[k][0]:
            out[k] = v
    return out


def _seen(a: Mapping[bytes, SeenReg], b: Mapping[bytes, SeenReg]) -> dict[bytes, SeenReg]:
    """Per device, the version vector of its later record."""
    out = dict(a)
    for k, v in b.items():
        if k not in out or v[0] > out[k][0]:
            out[k] = v
    return out


def _covered(floor: Mapping[bytes, ChainHead], dot: Dot) -> bool:
    head = floor.get(dot.device)
    return head is not None and dot.seq <= head.seq


def _compacted_away(a: State, b: State) -> set[Dot]:
    """Versions one side holds that the other has compacted away: it applied their record
    (its floor covers it) and no longer has them, so their removal was stable."""
    return {d for d in b.versions.keys() - a.versions.keys() if _covered(a.floor, d)} | {
        d for d in a.versions.keys() - b.versions.keys() if _covered(b.floor, d)
    }


def join(a: State, b: State) -> State:
    """The least upper bound of two states; ``JournalError`` on a fork."""
    dropped = _compacted_away(a, b)
    versions = {d: v for d, v in {**a.versions, **b.versions}.items() if d not in dropped}
    revoked = dict(a.revoked)
    for device, last in b.revoked.items():
        revoked[device] = min(last, revoked.get(device, last))  # the earliest cut-off wins
    floor = _floor(a.floor, b.floor)
    return State(
        floor=floor,
        applied=_applied(floor, a.applied, b.applied),
        members={**a.members, **b.members},  # an id is the hash of its key: no conflict
        revoked=revoked,
        versions=versions,  # one dot, one op: equal values on both sides
        removed=frozenset(p for p in a.removed | b.removed if p[1] not in dropped),
        forgotten=a.forgotten | b.forgotten,
        tag_adds={**a.tag_adds, **b.tag_adds},
        untagged=a.untagged | b.untagged,
        pub_adds={**a.pub_adds, **b.pub_adds},
        unpublished=a.unpublished | b.unpublished,
        grant_adds={**a.grant_adds, **b.grant_adds},
        grant_revokes=a.grant_revokes | b.grant_revokes,
        pending=_pending(a.pending, b.pending),
        seen=_seen(a.seen, b.seen),
    )


def merge(state: State, records: Iterable[Record]) -> State:
    """``state`` with ``records`` folded in (any order; repeats change nothing). Records
    at or below the state's floor are already in it and are skipped: the caller reads the
    records after a checkpoint's heads, each chain checked by ``journal.verify_chain``."""

    def fresh(r: Record) -> bool:
        low = state.floor.get(r.device)
        return low is None or r.seq > low.seq

    return join(state, state_of(r for r in records if fresh(r)))


def _contiguous(state: State, device: bytes) -> ChainHead | None:
    head = state.floor.get(device)
    heads = state.applied.get(device, {})
    seq = head.seq if head else 0
    while seq + 1 in heads:
        seq += 1
        head = heads[seq]
    return head


def heads(state: State) -> dict[bytes, ChainHead]:
    """The version vector: each device's head of the contiguous prefix of its chain held."""
    out = {}
    for device in sorted(set(state.floor) | set(state.applied)):
        head = _contiguous(state, device)
        if head is not None:
            out[device] = head
    return out


def compact(state: State) -> State:
    """The state a checkpoint stores: ``floor`` raised to :func:`heads`, and the versions
    dropped whose removal is causally stable and whose record is below the new floor
    (no copy of that record can come back: :func:`merge` skips records below the floor),
    with the removals naming them. Forgotten versions stay (their CIDs stay unpublished)."""
    floor = heads(state)
    applied = {
        d: {s: h for s, h in hs.items() if s > floor[d].seq if d in floor}
        for d, hs in state.applied.items()
    }
    stable_gone = {
        target
        for origin, target in state.removed
        if _valid(state, origin) and _stable(state, origin)
    } - _gone(state, state.forgotten)
    drop = {
        dot
        for dot in stable_gone
        if dot in state.versions and dot.device in floor and dot.seq <= floor[dot.device].seq
    }
    return State(
        floor=floor,
        applied={d: hs for d, hs in applied.items() if hs},
        members=state.members,
        revoked=state.revoked,
        versions={d: v for d, v in state.versions.items() if d not in drop},
        removed=frozenset(p for p in state.removed if p[1] not in drop),
        forgotten=state.forgotten,
        tag_adds=state.tag_adds,
        untagged=state.untagged,
        pub_adds=state.pub_adds,
        unpublished=state.unpublished,
        grant_adds=state.grant_adds,
        grant_revokes=state.grant_revokes,
        pending=state.pending,
        seen=state.seen,
    )


# -- views -------------------------------------------------------------------------------------


def _valid(state: State, dot: Dot) -> bool:
    """Made by a device that is a member and, if revoked, before its last accepted seq."""
    last = state.revoked.get(dot.device)
    return dot.device in state.members and (last is None or dot.seq <= last[0])


def _gone(state: State, pairs: frozenset[Pair]) -> set[Dot]:
    return {target for origin, target in pairs if _valid(state, origin)}


def live_versions(state: State) -> dict[str, list[Version]]:
    """Every name's live versions, oldest first (the same on every replica)."""
    gone = _gone(state, state.removed) | _gone(state, state.forgotten)
    out: dict[str, list[Version]] = {}
    for dot, v in state.versions.items():
        if dot not in gone and _valid(state, dot):
            out.setdefault(v.name, []).append(v)
    for versions in out.values():
        versions.sort()
    return dict(sorted(out.items()))


def tags(state: State) -> dict[str, frozenset[str]]:
    """Tags per name: additions not removed by an untag that observed them."""
    gone = _gone(state, state.untagged)
    out: dict[str, set[str]] = {}
    for dot, (name, tag) in state.tag_adds.items():
        if dot not in gone and _valid(state, dot):
            out.setdefault(name, set()).add(tag)
    return {name: frozenset(t) for name, t in sorted(out.items())}


def published(state: State) -> frozenset[tuple[str, str]]:
    """(name, CID) publications; a forgotten version's CID is never published."""
    gone = _gone(state, state.unpublished)
    forgotten = _gone(state, state.forgotten)
    shredded = {v.cid for d, v in state.versions.items() if d in forgotten and v.cid}
    return frozenset(
        pair
        for dot, pair in state.pub_adds.items()
        if dot not in gone and _valid(state, dot) and pair[1] not in shredded
    )


def grants(state: State) -> dict[bytes, tuple[str, str]]:
    """Live grants: grant id -> (name, recipient did). A revocation wins."""
    revoked = {g for origin, g in state.grant_revokes if _valid(state, origin)}
    return {
        g: (name, recipient)
        for dot, (g, name, recipient) in sorted(state.grant_adds.items())
        if g not in revoked and _valid(state, dot)
    }


def devices(state: State) -> dict[bytes, tuple[str, int | None]]:
    """Members: device id -> (name, last accepted seq if revoked, else None)."""
    out: dict[bytes, tuple[str, int | None]] = {}
    for device, (_key, name, _sig) in sorted(state.members.items()):
        cut = state.revoked.get(device)
        out[device] = (name, None if cut is None else cut[0])
    return out


def _active(state: State) -> list[bytes]:
    return [d for d in state.members if d not in state.revoked]


def _stable(state: State, origin: Dot) -> bool:
    """Causally stable: every active device has written a record after seeing ``origin``,
    and this state holds that device's chain up to that record (a vector read from a
    record whose predecessors are missing could hide a put made before it)."""
    for device in _active(state):
        seq, vector = state.seen.get(device, (0, {}))
        head = _contiguous(state, device)
        if vector.get(origin.device, 0) < origin.seq or head is None or head.seq < seq:
            return False
    return True


def protected_packs(state: State) -> frozenset[bytes]:
    """Packs that must not be deleted: those of live versions; those of removed or
    forgotten versions until every active device has acknowledged the removal (until
    then a device that has not seen it may commit a version reusing their chunks);
    and every active device's pending packs (being written, not yet committed)."""
    live = {dot for vs in live_versions(state).values() for dot in (v.dot for v in vs)}
    removals: dict[Dot, list[Dot]] = {}
    for origin, target in state.removed | state.forgotten:
        if _valid(state, origin):
            removals.setdefault(target, []).append(origin)
    out: set[bytes] = set()
    for dot, v in state.versions.items():
        if not _valid(state, dot):
            continue  # a void record: nothing valid refers to what it wrote
        if dot in live or not any(_stable(state, o) for o in removals.get(dot, [])):
            out.update(v.packs)
    for device in _active(state):
        if device in state.pending:
            out.update(state.pending[device][1])
    return frozenset(out)


def garbage_packs(state: State, known: Iterable[bytes] = ()) -> frozenset[bytes]:
    """Packs that nothing protects: of those any version referenced, plus ``known`` (packs
    listed on the providers). Safe to delete only on a state that has pulled every record
    written so far (see docs/design.md, "GC safety")."""
    every = {p for v in state.versions.values() for p in v.packs} | set(known)
    return frozenset(every - protected_packs(state))


def withheld(state: State) -> dict[bytes, tuple[int, int]]:
    """Devices whose records are missing: device -> (contiguous seq held, highest seq some
    record says was seen). A provider that withholds or rolls back a chain shows here."""
    claimed: dict[bytes, int] = {}
    for _seq, vector in state.seen.values():
        for device, seq in vector.items():
            claimed[device] = max(seq, claimed.get(device, 0))
    out: dict[bytes, tuple[int, int]] = {}
    for device, seq in sorted(claimed.items()):
        head = _contiguous(state, device)
        have = head.seq if head else 0
        if have < seq:
            out[device] = (have, seq)
    return out


def membership(state: State) -> tuple[dict[bytes, bytes], dict[bytes, int]]:
    """What ``journal.open_record`` judges a record by: device -> public key, and revoked
    device -> last accepted seq."""
    members = {d: key for d, (key, _name, _sig) in state.members.items()}
    return members, {d: last for d, (last, _sig) in state.revoked.items()}


def revocation_cut(state: State, device: bytes) -> int:
    """The ``last_seq`` to revoke ``device`` at: the highest of its records that any device
    has acknowledged (in a ``seen`` vector) or this state holds. A lower cut-off would undo
    work others already built on (a removal made stable, packs collected, a checkpoint)."""
    head = _contiguous(state, device)
    acked = [vector.get(device, 0) for _seq, vector in state.seen.values()]
    return max([head.seq if head else 0, *acked])
