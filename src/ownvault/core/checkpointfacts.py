"""The facts of a merge state, one short JSON list each, as paged checkpoints store them
(:mod:`ownvault.core.checkpointpages`). Each fact has a key (its kind and the device or
dot that names it) by whose hash it is placed in a page::

    ["d", device, floor head|null, member|null, revoked|null, pending|null, seen|null]
                                                    key "d" || device
    ["a", device, head]                             key "a" || device || seq (u64 BE)
    ["v", dot, wall_ms, counter, name, kind, size, cid, packs, rows]
    ["r"|"f"|"u"|"q", dot, [dots]]                  removed, forgotten, untagged, unpublished
    ["t", dot, name, tag]   ["p", dot, name, cid]   ["g", dot, grant, name, recipient]
    ["x", dot, grant]                               key kind || device || seq (u64) || index (u32)

A head is [seq, hash, wall_ms, counter]; a member [key, name, certificate]; revoked
[last seq, revocation]; pending [seq, index, packs]; seen [seq, {device: seq}]. The pairs
of a removal (``state.removed`` and the like) are grouped by the op that made them, so an
``rm`` of many versions is one fact. Decoding is as strict as version 1's
(:func:`ownvault.core.checkpoint.state_from_json`, whose validators it uses).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

from ownvault.core.checkpoint import (
    head_json,
    need_device,
    need_head,
    need_map,
    need_tuple,
    need_version,
    version_json,
)
from ownvault.core.journal import ChainHead
from ownvault.core.journalops import (
    MAX_REFS,
    MAX_SHORT,
    MAX_U32,
    MAX_U64,
    PACK_ID_SIZE,
    Dot,
    Hlc,
    need_dot,
    need_hex,
    need_int,
    need_list,
    need_name,
    need_packs,
    need_rows,
    need_str,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.core.merge import Member, PendingReg, Revocation, SeenReg, State, Version
from ownvault.errors import FormatError

__all__ = ["Facts", "dot_key"]

SIG_SIZE = 64
_PAIRS = {"r": "removed", "f": "forgotten", "u": "untagged", "q": "unpublished"}


def dot_key(kind: str, dot: Dot) -> bytes:
    return kind.encode() + dot.device + dot.seq.to_bytes(8, "big") + dot.index.to_bytes(4, "big")


def _grouped(pairs: frozenset[tuple[Dot, Dot]]) -> dict[Dot, list[Dot]]:
    out: dict[Dot, list[Dot]] = {}
    for origin, target in pairs:
        out.setdefault(origin, []).append(target)
    return out


def _device_json(state: State, d: bytes) -> list[JSONValue]:
    floor = state.floor.get(d)
    member = state.members.get(d)
    revoked = state.revoked.get(d)
    pending = state.pending.get(d)
    seen = state.seen.get(d)
    return [
        "d",
        d.hex(),
        None if floor is None else head_json(floor),
        None if member is None else [member[0].hex(), member[1], member[2].hex()],
        None if revoked is None else [revoked[0], revoked[1].hex()],
        None if pending is None else [*pending[0], [p.hex() for p in pending[1]]],
        None if seen is None else [seen[0], {e.hex(): n for e, n in sorted(seen[1].items())}],
    ]


def _facts_of(state: State) -> Iterator[tuple[bytes, JSONValue]]:
    every = set(state.floor) | set(state.members) | set(state.revoked)
    for d in every | set(state.pending) | set(state.seen):
        yield b"d" + d, _device_json(state, d)
    for d, hs in state.applied.items():
        for seq, h in hs.items():
            yield b"a" + d + seq.to_bytes(8, "big"), ["a", d.hex(), head_json(h)]
    for dot, v in state.versions.items():
        yield dot_key("v", dot), ["v", *version_json(v)]
    for kind, attr in _PAIRS.items():
        for origin, targets in _grouped(getattr(state, attr)).items():
            yield (
                dot_key(kind, origin),
                [kind, origin.to_json(), [t.to_json() for t in sorted(targets)]],
            )
    for dot, (name, tag) in state.tag_adds.items():
        yield dot_key("t", dot), ["t", dot.to_json(), name, tag]
    for dot, (name, cid) in state.pub_adds.items():
        yield dot_key("p", dot), ["p", dot.to_json(), name, cid]
    for dot, (g, name, who) in state.grant_adds.items():
        yield dot_key("g", dot), ["g", dot.to_json(), g.hex(), name, who]
    for dot, g in state.grant_revokes:
        yield dot_key("x", dot), ["x", dot.to_json(), g.hex()]


def _packs(value: JSONValue, what: str) -> tuple[bytes, ...]:
    """``need_packs`` without a regular expression per pack (lowercase hex is checked by
    encoding back); anything else goes to ``need_packs``, which names the fault."""
    if type(value) is list and len(value) <= MAX_REFS:
        out = []
        for p in value:
            if type(p) is not str or len(p) != 2 * PACK_ID_SIZE:
                break
            try:
                b = bytes.fromhex(p)
            except ValueError:
                break
            if b.hex() != p:
                break
            out.append(b)
        else:
            packs = tuple(out)
            if len(packs) < 2 or all(a < b for a, b in pairwise(packs)):
                return packs
    return need_packs(value, f"{what} packs")


@dataclass(slots=True)
class Facts:
    """Accumulates decoded facts into the fields of a :class:`State`."""

    floor: dict[bytes, ChainHead] = field(default_factory=dict)
    applied: dict[bytes, dict[int, ChainHead]] = field(default_factory=dict)
    members: dict[bytes, Member] = field(default_factory=dict)
    revoked: dict[bytes, Revocation] = field(default_factory=dict)
    versions: dict[Dot, Version] = field(default_factory=dict)
    pairs: dict[str, set[tuple[Dot, Dot]]] = field(
        default_factory=lambda: {attr: set() for attr in _PAIRS.values()}
    )
    tag_adds: dict[Dot, tuple[str, str]] = field(default_factory=dict)
    pub_adds: dict[Dot, tuple[str, str]] = field(default_factory=dict)
    grant_adds: dict[Dot, tuple[bytes, str, str]] = field(default_factory=dict)
    grant_revokes: set[tuple[Dot, bytes]] = field(default_factory=set)
    pending: dict[bytes, PendingReg] = field(default_factory=dict)
    seen: dict[bytes, SeenReg] = field(default_factory=dict)
    ids: dict[str, bytes] = field(default_factory=dict)

    @staticmethod
    def of(state: State) -> Iterator[tuple[bytes, JSONValue]]:
        """Every fact of ``state``: (key, JSON), in no particular order."""
        return _facts_of(state)

    def state(self) -> State:
        return State(
            floor=self.floor,
            applied=self.applied,
            members=self.members,
            revoked=self.revoked,
            versions=self.versions,
            removed=frozenset(self.pairs["removed"]),
            forgotten=frozenset(self.pairs["forgotten"]),
            tag_adds=self.tag_adds,
            untagged=frozenset(self.pairs["untagged"]),
            pub_adds=self.pub_adds,
            unpublished=frozenset(self.pairs["unpublished"]),
            grant_adds=self.grant_adds,
            grant_revokes=frozenset(self.grant_revokes),
            pending=self.pending,
            seen=self.seen,
        )

    def add(self, item: JSONValue, what: str) -> bytes:
        """Decode one fact into the state; returns its key. ``FormatError`` naming ``what``."""
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise FormatError(f"{what} is not a fact")
        kind = item[0]
        if kind == "v":
            version = self._version(item, what)
            self.versions[version.dot] = version
            return dot_key("v", version.dot)
        if kind == "d":
            return self._device(item, what)
        if kind == "a":
            _a, d, h = need_tuple(item, what, 3)
            device, head = need_device(d), need_head(h, what)
            self.applied.setdefault(device, {})[head.seq] = head
            return b"a" + device + head.seq.to_bytes(8, "big")
        if kind in _PAIRS:
            _k, o, ts = need_tuple(item, what, 3)
            origin = need_dot(o, what)
            targets = [need_dot(t, what) for t in need_list(ts, what, MAX_REFS)]
            if not targets or targets != sorted(set(targets)):
                raise FormatError(f"{what}: targets empty, unsorted or repeated")
            self.pairs[_PAIRS[kind]].update((origin, t) for t in targets)
            return dot_key(kind, origin)
        return self._named(kind, item, what)

    def _dot(self, value: JSONValue, what: str) -> Dot:
        """``need_dot``, with the device ids met before looked up rather than parsed again
        (the ranges are checked by :class:`Dot` itself)."""
        if type(value) is list and len(value) == 3:
            d, seq, index = value
            device = self.ids.get(d) if type(d) is str else None
            if device is not None and type(seq) is int and type(index) is int:
                return Dot(device, seq, index)
        dot = need_dot(value, what)
        self.ids[dot.device.hex()] = dot.device
        return dot

    def _version(self, item: list[JSONValue], what: str) -> Version:
        """``need_version`` on the common shape without a call per field; anything else
        goes to ``need_version``, which names the fault."""
        if len(item) == 10:
            _v, dot, wall, counter, name, kind, size, cid, packs, rows = item
            plain = type(wall) is int and type(counter) is int and type(size) is int
            if plain and kind in ("file", "tree") and 0 <= size <= MAX_U64:  # type: ignore[operator]
                return Version(
                    Hlc(wall, counter),  # type: ignore[arg-type]
                    self._dot(dot, what),
                    need_name(name, f"{what} name"),
                    str(kind),
                    size,  # type: ignore[arg-type]
                    None if cid is None else need_str(cid, f"{what} cid", MAX_SHORT),
                    _packs(packs, what),
                    need_rows(rows),
                )
        return need_version(item[1:], what)

    def _named(self, kind: str, item: list[JSONValue], what: str) -> bytes:
        if kind in ("t", "p"):
            _k, d, name, value = need_tuple(item, what, 4)
            dot = need_dot(d, what)
            adds = self.tag_adds if kind == "t" else self.pub_adds
            adds[dot] = (need_name(name, f"{what} name"), need_name(value, f"{what} value"))
        elif kind == "g":
            _k, d, g, name, who = need_tuple(item, what, 5)
            dot = need_dot(d, what)
            self.grant_adds[dot] = (
                need_hex(g, f"{what} grant", 16),
                need_name(name, f"{what} name"),
                need_str(who, f"{what} recipient", MAX_SHORT),
            )
        elif kind == "x":
            _k, d, g = need_tuple(item, what, 3)
            dot = need_dot(d, what)
            self.grant_revokes.add((dot, need_hex(g, f"{what} grant", 16)))
        else:
            raise FormatError(f"{what}: unknown kind of fact")
        return dot_key(kind, dot)

    def _device(self, item: list[JSONValue], what: str) -> bytes:
        _d, d, floor, member, revoked, pending, seen = need_tuple(item, what, 7)
        device = need_device(d)
        if floor is member is revoked is pending is seen is None:
            raise FormatError(f"{what}: a device with no facts")
        if floor is not None:
            self.floor[device] = need_head(floor, f"{what} floor")
        if member is not None:
            key, name, sig = need_tuple(member, f"{what} member", 3)
            self.members[device] = (
                need_hex(key, "member key", 32),
                need_str(name, "member name", MAX_SHORT),
                need_hex(sig, "member certificate", SIG_SIZE),
            )
        if revoked is not None:
            last, sig = need_tuple(revoked, f"{what} revoked", 2)
            self.revoked[device] = (
                need_int(last, "revoked seq", 0, MAX_U64),
                need_hex(sig, "revocation", SIG_SIZE),
            )
        if pending is not None:
            seq, index, packs = need_tuple(pending, f"{what} pending", 3)
            self.pending[device] = (
                (
                    need_int(seq, "pending seq", 1, MAX_U64),
                    need_int(index, "pending index", 0, MAX_U32),
                ),
                need_packs(packs, f"{what} pending packs"),
            )
        if seen is not None:
            seq, vec = need_tuple(seen, f"{what} seen", 2)
            vector = {
                need_device(e): need_int(n, "seen seq", 0, MAX_U64)
                for e, n in need_map(vec, "seen vector").items()
            }
            self.seen[device] = (need_int(seq, "seen record seq", 1, MAX_U64), vector)
        return b"d" + device
