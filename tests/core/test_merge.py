"""The merge model's invariants (docs/design.md, "Catalog journal and multi-device merge"),
checked over random interleavings of operations on 2-4 devices, one of which may stay
offline for most of the run and come back:

1. convergence: every replica that has every record has the same state, whatever the order
   (and grouping, and repetition) the records arrived in: join is commutative, associative
   and idempotent;
2. nothing acknowledged is lost: every put's version is live unless an rm or forget names it
   (an rm names only versions its device had seen, so a put racing an rm survives it);
3. versions of a name are ordered by (HLC, device, seq, index): a version written after
   seeing another sorts after it;
4. tags merge as an observed-remove set;
5. GC safety: a pack a fully synced device finds collectable is never referenced by a live
   version later, nor by any later put;
6. revocation: a revoked device's records after its cut-off count for nothing, on every
   replica, whenever the revocation arrives (2 and 4 are computed over the valid records).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core.journal import Record, revoke_device
from ownvault.core.journalops import (
    DeviceRevoke,
    Dot,
    Forget,
    Grant,
    GrantRevoke,
    Pending,
    Publish,
    Put,
    Remove,
    Tag,
    Unpublish,
    Untag,
)
from ownvault.core.merge import (
    EMPTY,
    State,
    compact,
    garbage_packs,
    grants,
    join,
    live_versions,
    merge,
    protected_packs,
    published,
    revocation_cut,
    tags,
    withheld,
)
from tests.core.journal_sim import Device, devices, vault_keys

NAMES = ["a", "b"]
TAGS = ["x", "y"]
KINDS = [
    "put",
    "put",
    "put",
    "rm",
    "rm_one",
    "tag",
    "untag",
    "forget",
    "publish",
    "unpublish",
    "sync",
    "sync",
    "gc",
    "revoke",
]


@dataclass
class Run:
    devices: list[Device]
    records: list[Record] = field(default_factory=list)
    gc_found: list[tuple[set[bytes], frozenset[bytes]]] = field(default_factory=list)
    packs: int = 0
    offline: int | None = None
    away: bool = False  # the offline device is away: it neither sends nor receives
    unsent: set[bytes] = field(default_factory=set)  # hashes of records it made while away

    def commit(self, d: Device, ops: list, now: int) -> None:  # type: ignore[type-arg]
        record = d.commit(ops, now)
        self.records.append(record)
        if self.away and self.is_offline(d):
            self.unsent.add(record.hash)

    def is_offline(self, d: Device) -> bool:
        return self.offline is not None and self.devices[self.offline] is d

    def visible(self) -> list[Record]:
        """The records on the providers now."""
        return [r for r in self.records if self.away is False or r.hash not in self.unsent]

    def new_pack(self) -> bytes:
        self.packs += 1
        return self.packs.to_bytes(16, "big")


def _views(state: State) -> tuple[object, ...]:
    return (
        live_versions(state),
        tags(state),
        published(state),
        grants(state),
        protected_packs(state),
    )


def _step(run: Run, step: tuple[str, int, int, int, bool], now: int) -> None:
    kind, i, n, j, reuse = step
    d = run.devices[i % len(run.devices)]
    name = NAMES[n % len(NAMES)]
    mine = live_versions(d.state).get(name, [])
    if kind == "put":
        packs = {run.new_pack()}
        every = [v for vs in live_versions(d.state).values() for v in vs]
        if reuse and every:
            packs.add(every[j % len(every)].packs[0])  # deduplicated against a version it sees
        run.commit(d, [Put(name, "file", j, None, tuple(sorted(packs)), b"")], now)
    elif kind == "rm" and mine:
        run.commit(d, [Remove(tuple(sorted(v.dot for v in mine)))], now)
    elif kind == "rm_one" and mine:
        run.commit(d, [Remove((mine[j % len(mine)].dot,))], now)
    elif kind == "forget" and mine:
        run.commit(d, [Forget((mine[-1].dot,))], now)
    elif kind == "tag":
        run.commit(d, [Tag(name, TAGS[j % len(TAGS)])], now)
    elif kind == "untag":
        tag = TAGS[j % len(TAGS)]
        adds = sorted(dot for dot, pair in d.state.tag_adds.items() if pair == (name, tag))
        if adds:
            run.commit(d, [Untag(tuple(adds))], now)
    elif kind == "publish" and mine:
        run.commit(d, [Publish(name, f"bafy{mine[-1].dot}")], now)
    elif kind == "unpublish":
        adds = sorted(dot for dot, pair in d.state.pub_adds.items() if pair[0] == name)
        if adds:
            run.commit(d, [Unpublish(tuple(adds))], now)
    elif kind == "revoke":
        other = run.devices[j % len(run.devices)]
        if other is not d and other.id not in d.state.revoked and other.id in d.state.members:
            cut = revocation_cut(d.state, other.id)  # what anyone acknowledged stays
            run.commit(d, [revoke_device(vault_keys(), other.id, cut)], now)
    elif kind == "sync":
        other = run.devices[j % len(run.devices)]
        if run.away and (run.is_offline(d) or run.is_offline(other)):
            return
        d.absorb([r for r in run.records if r.device == other.id])
    elif kind == "gc" and not (run.away and run.is_offline(d)):
        visible = run.visible()
        d.absorb(visible)  # GC runs on a device that has pulled every record it can reach
        run.commit(d, [Tag("_", "gc")], now)  # and writes its own record (its acknowledgment)
        visible = run.visible()
        every = {p for r in visible for op in r.ops if isinstance(op, Put) for p in op.packs}
        run.gc_found.append(({r.hash for r in visible}, garbage_packs(d.state, every)))


def steps(kinds: list[str]) -> st.SearchStrategy[list[tuple[str, int, int, int, bool]]]:
    step = st.tuples(
        st.sampled_from(kinds),
        st.integers(0, 3),
        st.integers(0, 2),
        st.integers(0, 7),
        st.booleans(),
    )
    return st.lists(step, min_size=1, max_size=40)


@st.composite
def runs(draw: st.DrawFn, kinds: list[str] = KINDS) -> tuple[Run, list[Record]]:
    n = draw(st.integers(2, 4))
    run = Run(devices(n), offline=draw(st.none() | st.integers(0, n - 1)))
    for t, d in enumerate(run.devices):  # each device's certificate record first
        run.commit(d, [Tag("_", "_")], 1000 + t)
    for d in run.devices:
        d.absorb(run.records)
    plan = draw(steps(kinds))
    for t, step in enumerate(plan):
        same_ms = draw(st.booleans())  # several commits in one millisecond
        run.away = len(plan) // 4 <= t < len(plan) * 3 // 4  # offline for half the run
        _step(run, step, 2000 + (t if not same_ms else 0))
    run.away = False  # it came back
    return run, list(run.records)


def _valid(records: list[Record]) -> set[tuple[bytes, int]]:
    """The records no revocation voids: seq at most the lowest cut-off of its device."""
    cut: dict[bytes, int] = {}
    for r in records:
        for op in r.ops:
            if isinstance(op, DeviceRevoke):
                cut[op.device] = min(op.last_seq, cut.get(op.device, op.last_seq))
    return {(r.device, r.seq) for r in records if r.seq <= cut.get(r.device, r.seq)}


def _expected_live(records: list[Record]) -> set[Dot]:
    valid = _valid(records)
    ok = [r for r in records if (r.device, r.seq) in valid]
    gone = {v for r in ok for op in r.ops if isinstance(op, Remove | Forget) for v in op.versions}
    made = {
        Dot(r.device, r.seq, i) for r in ok for i, op in enumerate(r.ops) if isinstance(op, Put)
    }
    return made - gone


@settings(max_examples=150, deadline=None)
@given(runs(), st.randoms(use_true_random=False))
def test_every_replica_converges_whatever_the_delivery_order(
    case: tuple[Run, list[Record]], rnd
) -> None:  # type: ignore[no-untyped-def]
    run, records = case
    reference = merge(EMPTY, records)
    for d in run.devices:
        order = list(records)
        rnd.shuffle(order)
        d.absorb(order)
        d.absorb(order[: len(order) // 2])  # repeats change nothing
        assert d.state == reference
    one_by_one = EMPTY
    for r in reversed(records):
        one_by_one = merge(one_by_one, [r])  # join of one-record states, in another order
    assert one_by_one == reference
    assert withheld(reference) == {}


@settings(max_examples=150, deadline=None)
@given(runs())
def test_nothing_acknowledged_is_lost_and_rm_keeps_a_put_it_did_not_see(
    case: tuple[Run, list[Record]],
) -> None:
    _run, records = case
    state = merge(EMPTY, records)
    live = {v.dot for vs in live_versions(state).values() for v in vs}
    assert live == _expected_live(records)


@settings(max_examples=150, deadline=None)
@given(runs())
def test_versions_are_ordered_by_clock_then_device_and_causality_holds(
    case: tuple[Run, list[Record]],
) -> None:
    _run, records = case
    state = merge(EMPTY, records)
    by_dot = {r.device + r.seq.to_bytes(8, "big"): r for r in records}
    for versions in live_versions(state).values():
        assert versions == sorted(
            versions, key=lambda v: (v.hlc, v.dot.device, v.dot.seq, v.dot.index)
        )
    for v in state.versions.values():  # a version written after seeing another sorts after it
        writer = by_dot[v.dot.device + v.dot.seq.to_bytes(8, "big")]
        for w in state.versions.values():
            if (
                w.dot.device != v.dot.device
                and dict(writer.body.seen).get(w.dot.device, 0) >= w.dot.seq
            ):
                assert w < v


@settings(max_examples=150, deadline=None)
@given(runs())
def test_tags_merge_as_an_observed_remove_set(case: tuple[Run, list[Record]]) -> None:
    _run, records = case
    valid = _valid(records)
    ok = [r for r in records if (r.device, r.seq) in valid]
    removed = {a for r in ok for op in r.ops if isinstance(op, Untag) for a in op.adds}
    expected: dict[str, set[str]] = {}
    for r in ok:
        for i, op in enumerate(r.ops):
            if isinstance(op, Tag) and Dot(r.device, r.seq, i) not in removed:
                expected.setdefault(op.name, set()).add(op.tag)
    assert tags(merge(EMPTY, records)) == {k: frozenset(v) for k, v in expected.items()}


@settings(max_examples=300, deadline=None)
@given(runs(["put", "put", "sync", "sync", "rm", "gc"]))  # the moves that race a GC
def test_gc_never_collects_a_pack_that_is_used_later(case: tuple[Run, list[Record]]) -> None:
    run, records = case
    state = merge(EMPTY, records)
    live_packs = {p for vs in live_versions(state).values() for v in vs for p in v.packs}
    for known, found in run.gc_found:
        later = {
            p
            for r in records
            if r.hash not in known
            for op in r.ops
            if isinstance(op, Put)
            for p in op.packs
        }
        assert not found & live_packs
        assert not found & later


@settings(max_examples=100, deadline=None)
@given(runs(), st.data())
def test_join_is_commutative_associative_and_idempotent(
    case: tuple[Run, list[Record]], data: st.DataObject
) -> None:
    _run, records = case
    groups = data.draw(st.lists(st.integers(0, 2), min_size=len(records), max_size=len(records)))
    a, b, c = (
        merge(EMPTY, [r for r, g in zip(records, groups, strict=True) if g == k]) for k in range(3)
    )
    assert join(a, b) == join(b, a)
    assert join(a, join(b, c)) == join(join(a, b), c)
    assert join(a, a) == a
    assert join(join(a, b), c) == merge(EMPTY, records)


@settings(max_examples=60, deadline=None)
@given(runs())
def test_a_compacted_state_shows_the_same_and_merges_the_same(
    case: tuple[Run, list[Record]],
) -> None:
    _run, records = case
    state = merge(EMPTY, records)
    small = compact(state)
    assert _views(small)[:4] == _views(state)[:4]
    assert merge(small, records) == small  # every record is below its floor now
    assert join(small, state) == small == join(state, small)  # nothing compacted comes back


# -- examples, one rule each -------------------------------------------------------------------------


def test_an_rm_that_did_not_see_a_put_keeps_it() -> None:
    a, b = devices(2)
    b.absorb([a.commit([Put("doc", "file", 1, None, (bytes(16),), b"")], 1)])
    seen_by_b = [v.dot for v in live_versions(b.state)["doc"]]
    a.commit([Put("doc", "file", 2, None, (bytes([2]) * 16,), b"")], 2)  # b does not see this one
    rm = b.commit([Remove(tuple(sorted(seen_by_b)))], 3)
    a.absorb([rm])
    assert [v.size for v in live_versions(a.state)["doc"]] == [2]


def test_forget_wins_over_a_concurrent_publication() -> None:
    a, b = devices(2)
    r = a.commit([Put("doc", "file", 1, "bafyX", (bytes(16),), b"")], 1)
    b.absorb([r])
    v = live_versions(b.state)["doc"][0].dot
    b.commit([Publish("doc", "bafyX")], 2)
    a.commit([Forget((v,))], 3)
    state = join(a.state, b.state)
    assert "doc" not in live_versions(state)
    assert published(state) == frozenset()


def test_a_revoked_grant_stays_revoked() -> None:
    a, b = devices(2)
    gid = bytes(range(16))
    a.commit([Grant(gid, "doc", "did:key:zBob")], 1)
    b.commit([GrantRevoke(gid)], 2)
    assert grants(join(a.state, b.state)) == {}
    assert grants(a.state) == {gid: ("doc", "did:key:zBob")}


def test_pending_packs_are_protected_until_the_device_commits() -> None:
    a, b = devices(2)
    pack = bytes([5]) * 16
    b.commit([Tag("_", "_")], 0)  # a device writes its certificate before it reads the vault
    b.absorb([a.commit([Pending((pack,))], 1)])
    assert pack in protected_packs(b.state)
    assert pack not in garbage_packs(b.state, [pack])
    b.absorb([a.commit([Put("doc", "file", 1, None, (pack,), b""), Pending(())], 2)])
    assert pack in protected_packs(b.state)  # now a live version holds it
    b.absorb([a.commit([Remove((live_versions(b.state)["doc"][0].dot,))], 3)])
    assert pack not in garbage_packs(b.state)  # b has not acknowledged the rm yet
    b.commit([Tag("other", "t")], 4)  # b's record after seeing the rm
    state = join(a.state, b.state)
    assert pack in garbage_packs(state)


def test_a_revoked_device_no_longer_blocks_gc_and_its_pending_set_is_void() -> None:
    a, b = devices(2)
    pack = bytes([6]) * 16
    first = b.commit([Pending((pack,))], 1)
    a.absorb([first, b.commit([Put("doc", "file", 1, None, (pack,), b"")], 2)])
    a.commit([Remove((live_versions(a.state)["doc"][0].dot,))], 3)
    assert pack not in garbage_packs(a.state)  # b has not seen the rm
    a.commit([revoke_device(vault_keys(), b.id, 2)], 4)
    assert pack in garbage_packs(a.state)


def test_a_withheld_record_shows_in_withheld() -> None:
    a, b = devices(2)
    r1 = a.commit([Tag("n", "t")], 1)
    r2 = a.commit([Tag("n", "u")], 2)
    b.absorb([r1, r2])
    rb = b.commit([Tag("m", "t")], 3)
    c_state = merge(EMPTY, [r1, rb])  # a provider withheld a's seq 2
    assert withheld(c_state) == {a.id: (1, 2)}
    assert withheld(merge(c_state, [r2])) == {}


def test_gc_waits_until_every_device_has_seen_the_rm() -> None:
    """b deduplicates against a version a removes concurrently: the pack must survive."""
    a, b = devices(2)
    pack = bytes([7]) * 16
    b.commit([Tag("_", "_")], 0)
    b.absorb([a.commit([Put("doc", "file", 1, None, (pack,), b"")], 1)])
    a.absorb(b.records)
    rm = a.commit([Remove((live_versions(a.state)["doc"][0].dot,))], 2)
    assert pack not in garbage_packs(a.state)  # b's last record did not see the rm
    w = b.commit([Put("copy", "file", 1, None, (pack,), b"")], 3)  # b reuses the pack
    a.absorb([w])
    assert pack not in garbage_packs(a.state)  # live again, through b's version
    b.absorb([rm])
    a.absorb([b.commit([Remove((live_versions(b.state)["copy"][0].dot,))], 4)])
    assert pack not in garbage_packs(a.state)  # a itself has not acknowledged b's rm
    a.commit([Tag("gc", "run")], 5)  # the GC run's own record acknowledges what a has seen
    assert pack in garbage_packs(a.state)
    late = merge(EMPTY, [*a.records, b.records[0], b.records[-1]])  # b's put withheld
    assert pack not in garbage_packs(late)  # b's vector is read only with b's chain whole


def test_a_revocation_cuts_at_what_any_device_acknowledged() -> None:
    a, b, c = devices(3)
    for _ in range(3):
        c.absorb([b.commit([Tag("n", "t")], 1)])
    c.commit([Tag("m", "t")], 2)  # c acknowledges b's three records
    a.absorb([*b.records[:1], *c.records])  # a holds only b's first
    assert revocation_cut(a.state, b.id) == 3
    assert revocation_cut(merge(EMPTY, b.records[:2]), b.id) == 2
