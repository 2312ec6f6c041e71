"""Journal checkpoints: a signed, sealed, compacted merge state, so that recovery reads
one checkpoint and the records after its heads instead of every record ever written::

    header     := "OVJK" || 0x01 || signer device (16)                           21 bytes
    box        := seal(journal key, plain, AD = "ownvault/v1/journal-checkpoint" || header)
    signed     := header || len(box) (u32 BE) || box
    checkpoint := signed || Ed25519(signer key, "ownvault/v1/journal-checkpoint" || 0x00 || signed)
    plain      := canonical JSON {"heads": H, "state": S, "state_hash": hex(SHA-256(C(S)))}

``H`` (the version vector: device -> [seq, record hash, wall_ms, counter]) must equal the
heads of ``S``, which must be compacted (``merge.compact``). Every member and revocation
in ``S`` carries its membership-key signature and is checked, and the signer must be a
certified member that is not revoked: a revoked device cannot make a checkpoint others
accept. ``S`` is encoded by :func:`state_json` (docs/design.md, "Catalog journal and
multi-device merge", lists its fields).
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass

from ownvault.core import crypto
from ownvault.core.journal import (
    ChainHead,
    DeviceKey,
    JournalKeys,
    verify_device_add,
    verify_device_revoke,
)
from ownvault.core.journalops import (
    DEVICE_ID_SIZE,
    MAX_SHORT,
    MAX_U32,
    MAX_U64,
    DeviceAdd,
    DeviceRevoke,
    Dot,
    Hlc,
    canonical,
    need_dot,
    need_hex,
    need_int,
    need_list,
    need_name,
    need_obj,
    need_packs,
    need_rows,
    need_str,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.core.merge import State, Version, compact, heads
from ownvault.errors import FormatError, IntegrityError, JournalError

__all__ = [
    "MAX_CHECKPOINT_SIZE",
    "Checkpoint",
    "check_membership",
    "decode_checkpoint",
    "encode_checkpoint",
    "head_json",
    "need_device",
    "need_head",
    "need_map",
    "need_tuple",
    "need_version",
    "state_from_json",
    "state_json",
    "still_valid",
    "version_json",
]

MAGIC = b"OVJK"
VERSION = 1
CHECKPOINT_AD = b"ownvault/v1/journal-checkpoint"
HEADER_SIZE = len(MAGIC) + 1 + DEVICE_ID_SIZE
SIG_SIZE = 64
MAX_CHECKPOINT_SIZE = 1024 * 1024 * 1024
MAX_ITEMS = 50_000_000


@dataclass(frozen=True, slots=True)
class Checkpoint:
    signer: bytes
    state: State
    state_hash: bytes


# -- the state as canonical JSON ------------------------------------------------------------------


def head_json(h: ChainHead) -> list[JSONValue]:
    return [h.seq, h.hash.hex(), h.hlc.wall_ms, h.hlc.counter]


def _pairs(pairs: frozenset[tuple[Dot, Dot]]) -> list[JSONValue]:
    return [[a.to_json(), b.to_json()] for a, b in sorted(pairs)]


def version_json(v: Version) -> list[JSONValue]:
    """A version as [dot, wall_ms, counter, name, kind, size, cid, packs, rows]."""
    return [
        v.dot.to_json(),
        v.hlc.wall_ms,
        v.hlc.counter,
        v.name,
        v.kind,
        v.size,
        v.cid,
        [p.hex() for p in v.packs],
        _b64(v.rows),
    ]


def state_json(state: State) -> dict[str, JSONValue]:
    """A state as JSON whose canonical encoding is one per state (sorted everywhere)."""
    return {
        "floor": {d.hex(): head_json(h) for d, h in sorted(state.floor.items())},
        "applied": {
            d.hex(): [head_json(h) for _s, h in sorted(hs.items())]
            for d, hs in sorted(state.applied.items())
        },
        "members": {
            d.hex(): [k.hex(), n, s.hex()] for d, (k, n, s) in sorted(state.members.items())
        },
        "revoked": {d.hex(): [n, s.hex()] for d, (n, s) in sorted(state.revoked.items())},
        "versions": [version_json(v) for _dot, v in sorted(state.versions.items())],
        "removed": _pairs(state.removed),
        "forgotten": _pairs(state.forgotten),
        "tags": [[d.to_json(), n, t] for d, (n, t) in sorted(state.tag_adds.items())],
        "untagged": _pairs(state.untagged),
        "published": [[d.to_json(), n, c] for d, (n, c) in sorted(state.pub_adds.items())],
        "unpublished": _pairs(state.unpublished),
        "grants": [
            [d.to_json(), g.hex(), n, r] for d, (g, n, r) in sorted(state.grant_adds.items())
        ],
        "grant_revokes": [[d.to_json(), g.hex()] for d, g in sorted(state.grant_revokes)],
        "pending": {
            d.hex(): [s, i, [p.hex() for p in packs]]
            for d, ((s, i), packs) in sorted(state.pending.items())
        },
        "seen": {
            d.hex(): [s, {e.hex(): n for e, n in sorted(vec.items())}]
            for d, (s, vec) in sorted(state.seen.items())
        },
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_FIELDS = frozenset(state_json(State()))


def need_tuple(value: JSONValue, what: str, n: int) -> list[JSONValue]:
    items = need_list(value, what, n)
    if len(items) != n:
        raise FormatError(f"{what} does not have {n} items")
    return items


def need_device(key: JSONValue) -> bytes:
    return need_hex(key, "device id", DEVICE_ID_SIZE)


def need_map(value: JSONValue, what: str) -> dict[str, JSONValue]:
    if not isinstance(value, dict) or len(value) > MAX_ITEMS:
        raise FormatError(f"{what} is not an object")
    return value


def need_head(value: JSONValue, what: str) -> ChainHead:
    seq, h, wall, counter = need_tuple(value, what, 4)
    return ChainHead(
        need_int(seq, f"{what} seq", 1, MAX_U64),
        need_hex(h, f"{what} hash", 32),
        Hlc(
            need_int(wall, f"{what} wall_ms", 0, MAX_U64),
            need_int(counter, f"{what} counter", 0, MAX_U32),
        ),
    )


def _dot_pairs(value: JSONValue, what: str) -> frozenset[tuple[Dot, Dot]]:
    out = set()
    for i, item in enumerate(need_list(value, what, MAX_ITEMS)):
        a, b = need_tuple(item, f"{what}[{i}]", 2)
        out.add((need_dot(a, f"{what}[{i}]"), need_dot(b, f"{what}[{i}]")))
    return frozenset(out)


def need_version(item: JSONValue, what: str) -> Version:
    dot, wall, counter, name, kind, size, cid, packs, rows = need_tuple(item, what, 9)
    if kind not in ("file", "tree"):
        raise FormatError(f"{what} kind is not file or tree")
    return Version(
        Hlc(
            need_int(wall, f"{what} wall_ms", 0, MAX_U64),
            need_int(counter, f"{what} counter", 0, MAX_U32),
        ),
        need_dot(dot, f"{what} dot"),
        need_name(name, f"{what} name"),
        str(kind),
        need_int(size, f"{what} size", 0, MAX_U64),
        None if cid is None else need_str(cid, f"{what} cid", MAX_SHORT),
        need_packs(packs, f"{what} packs"),
        need_rows(rows),
    )


def state_from_json(value: JSONValue) -> State:
    """The inverse of :func:`state_json`; ``FormatError`` naming the first fault.

    Long: one short block per field of the state, in the order of the format."""
    v = need_obj(value, "checkpoint state", _FIELDS)
    floor = {
        need_device(k): need_head(h, f"floor[{k}]")
        for k, h in need_map(v["floor"], "floor").items()
    }
    applied = {}
    for k, hs in need_map(v["applied"], "applied").items():
        chain = [need_head(h, f"applied[{k}]") for h in need_list(hs, f"applied[{k}]", MAX_ITEMS)]
        applied[need_device(k)] = {h.seq: h for h in chain}
    members = {}
    for k, m in need_map(v["members"], "members").items():
        key, name, sig = need_tuple(m, f"members[{k}]", 3)
        members[need_device(k)] = (
            need_hex(key, "member key", 32),
            need_str(name, "member name", MAX_SHORT),
            need_hex(sig, "member certificate", SIG_SIZE),
        )
    revoked = {}
    for k, r in need_map(v["revoked"], "revoked").items():
        last, sig = need_tuple(r, f"revoked[{k}]", 2)
        revoked[need_device(k)] = (
            need_int(last, "revoked seq", 0, MAX_U64),
            need_hex(sig, "revocation", SIG_SIZE),
        )
    versions = {}
    for i, item in enumerate(need_list(v["versions"], "versions", MAX_ITEMS)):
        version = need_version(item, f"versions[{i}]")
        versions[version.dot] = version
    tag_adds = {}
    for i, item in enumerate(need_list(v["tags"], "tags", MAX_ITEMS)):
        dot, name, tag = need_tuple(item, f"tags[{i}]", 3)
        tag_adds[need_dot(dot, "tag dot")] = (need_name(name, "tag name"), need_name(tag, "tag"))
    pub_adds = {}
    for i, item in enumerate(need_list(v["published"], "published", MAX_ITEMS)):
        dot, name, cid = need_tuple(item, f"published[{i}]", 3)
        pub_adds[need_dot(dot, "publish dot")] = (
            need_name(name, "published name"),
            need_name(cid, "cid"),
        )
    grant_adds = {}
    for i, item in enumerate(need_list(v["grants"], "grants", MAX_ITEMS)):
        dot, g, name, who = need_tuple(item, f"grants[{i}]", 4)
        grant_adds[need_dot(dot, "grant dot")] = (
            need_hex(g, "grant id", 16),
            need_name(name, "grant name"),
            need_str(who, "grant recipient", MAX_SHORT),
        )
    grant_revokes = set()
    for i, item in enumerate(need_list(v["grant_revokes"], "grant_revokes", MAX_ITEMS)):
        dot, g = need_tuple(item, f"grant_revokes[{i}]", 2)
        grant_revokes.add((need_dot(dot, "grant revoke dot"), need_hex(g, "grant id", 16)))
    pending = {}
    for k, p in need_map(v["pending"], "pending").items():
        seq, index, packs = need_tuple(p, f"pending[{k}]", 3)
        pending[need_device(k)] = (
            (
                need_int(seq, "pending seq", 1, MAX_U64),
                need_int(index, "pending index", 0, MAX_U32),
            ),
            need_packs(packs, f"pending[{k}] packs"),
        )
    seen = {}
    for k, item in need_map(v["seen"], "seen").items():
        seq, vec = need_tuple(item, f"seen[{k}]", 2)
        vector = {
            need_device(e): need_int(n, "seen seq", 0, MAX_U64)
            for e, n in need_map(vec, "seen vector").items()
        }
        seen[need_device(k)] = (need_int(seq, "seen record seq", 1, MAX_U64), vector)
    return State(
        floor=floor,
        applied=applied,
        members=members,
        revoked=revoked,
        versions=versions,
        removed=_dot_pairs(v["removed"], "removed"),
        forgotten=_dot_pairs(v["forgotten"], "forgotten"),
        tag_adds=tag_adds,
        untagged=_dot_pairs(v["untagged"], "untagged"),
        pub_adds=pub_adds,
        unpublished=_dot_pairs(v["unpublished"], "unpublished"),
        grant_adds=grant_adds,
        grant_revokes=frozenset(grant_revokes),
        pending=pending,
        seen=seen,
    )


# -- the checkpoint object ------------------------------------------------------------------------


def check_membership(keys: JournalKeys, state: State, signer: bytes) -> None:
    for device, (key, name, sig) in state.members.items():
        if not verify_device_add(keys.membership_public, DeviceAdd(device, key, name, sig)):
            raise IntegrityError(f"member {device.hex()} has no valid certificate")
    for device, (last, sig) in state.revoked.items():
        if not verify_device_revoke(keys.membership_public, DeviceRevoke(device, last, sig)):
            raise IntegrityError(f"revocation of {device.hex()} does not verify")
    if signer not in state.members:
        raise IntegrityError("signed by a device that is not a member")
    if signer in state.revoked:
        raise IntegrityError("signed by a revoked device")
    if signer not in state.floor:
        raise IntegrityError("signed by a device with no record in it")


def encode_checkpoint(keys: JournalKeys, signer: DeviceKey, state: State) -> bytes:
    """A checkpoint of ``state`` (compacted here) signed by ``signer``, a member."""
    state = compact(state)
    check_membership(keys, state, signer.id)
    s = canonical(state_json(state))
    plain = canonical(
        {
            "heads": {d.hex(): head_json(h) for d, h in heads(state).items()},
            "state": json.loads(s),
            "state_hash": crypto.sha256(s).hex(),
        }
    )
    header = MAGIC + bytes((VERSION,)) + signer.id
    box = crypto.seal(keys.journal, plain, CHECKPOINT_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    return signed + crypto.ed25519_sign(signer.seed, CHECKPOINT_AD + b"\x00" + signed)


def decode_checkpoint(keys: JournalKeys, data: bytes, *, provider: str | None = None) -> Checkpoint:
    """Open and verify a checkpoint; ``JournalError`` (naming the signer) if anything is wrong."""
    if len(data) > MAX_CHECKPOINT_SIZE or len(data) < HEADER_SIZE + 4 + SIG_SIZE:
        raise JournalError("checkpoint size out of bounds", provider=provider)
    if data[:4] != MAGIC or data[4] != VERSION:
        raise JournalError("not a version 1 journal checkpoint", provider=provider)
    signer = data[5:HEADER_SIZE]
    try:
        return _decode(keys, data, signer)
    except IntegrityError as exc:  # FormatError included
        raise JournalError(
            f"checkpoint refused: {exc.message}", device=signer.hex(), provider=provider
        ) from None


def _decode(keys: JournalKeys, data: bytes, signer: bytes) -> Checkpoint:
    (box_len,) = struct.unpack_from(">I", data, HEADER_SIZE)
    end = HEADER_SIZE + 4 + box_len
    if len(data) != end + SIG_SIZE:
        raise FormatError(f"{len(data)} bytes where the header announces {end + SIG_SIZE}")
    plain = crypto.open_box(
        keys.journal, data[HEADER_SIZE + 4 : end], CHECKPOINT_AD + data[:HEADER_SIZE]
    )
    try:
        value: JSONValue = json.loads(plain)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"checkpoint is not JSON: {str(exc)[:80]}") from None
    if canonical(value) != plain:
        raise FormatError("checkpoint is not in canonical form")
    body = need_obj(value, "checkpoint", frozenset({"heads", "state", "state_hash"}))
    state = state_from_json(body["state"])
    if canonical(state_json(state)) != canonical(body["state"]):
        raise FormatError("checkpoint state is not in canonical order (or repeats an item)")
    state_hash = crypto.sha256(canonical(body["state"]))
    if need_hex(body["state_hash"], "state_hash", 32) != state_hash:
        raise IntegrityError("state hash does not match the state")
    if compact(state) != state:
        raise FormatError("checkpoint state is not compacted")
    vector = {
        need_device(k): need_head(h, f"heads[{k}]")
        for k, h in need_map(body["heads"], "heads").items()
    }
    if vector != heads(state):
        raise IntegrityError("heads do not match the state")
    check_membership(keys, state, signer)
    public = state.members[signer][0]
    if not crypto.ed25519_verify(public, data[end:], CHECKPOINT_AD + b"\x00" + data[:end]):
        raise IntegrityError("signature does not verify")
    return Checkpoint(signer, state, state_hash)


def still_valid(checkpoint: Checkpoint, state: State) -> bool:
    """Whether ``checkpoint`` still counts once the records after it are merged into
    ``state``: not if its signer has since been revoked with a cut-off before the record
    its chain stood at when it signed (a revoked device's later checkpoints are void)."""
    cut = state.revoked.get(checkpoint.signer)
    return cut is None or checkpoint.state.floor[checkpoint.signer].seq <= cut[0]
