"""The operations a catalog journal record carries, and their bounded JSON codec.

A record's body (sealed inside the record, see :mod:`ownvault.core.journal`) is canonical
JSON (keys sorted, no spaces, UTF-8)::

    body := {"hlc": [wall_ms, counter], "ops": [op, ...], "seen": {device hex: seq, ...}}

Every operation is an object with an ``"op"`` field; the fields of each are listed in
:data:`OP_FIELDS` and in docs/design.md ("Catalog journal and multi-device merge"). A
version, a tag and a publication are named by the :class:`Dot` of the operation that
made them: (device, seq, index of the op in its record), unique in the vault because a
device never signs two records with one sequence number (a second one is a fork).

Decoding is strict: exact field sets, integers only (no floats, no booleans as numbers),
every string, list and map bounded, and the text must be the canonical encoding of what it
decodes to (so one body has one encoding, and a re-encoded record hashes the same).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TypeAlias

from ownvault.core.journalclock import GENESIS, ChainHead, Dot, Hlc
from ownvault.core.journalfields import (
    DEVICE_ID_SIZE,
    HASH_SIZE,
    MAX_BODY_SIZE,
    MAX_DEVICES,
    MAX_NAME,
    MAX_OPS,
    MAX_REFS,
    MAX_ROWS,
    MAX_SHORT,
    MAX_U32,
    MAX_U64,
    PACK_ID_SIZE,
    canonical,
    need_hex,
    need_int,
    need_list,
    need_name,
    need_obj,
    need_packs,
    need_rows,
    need_str,
)
from ownvault.core.journalplaces import (
    EXTRA_FIELDS,
    ChunkPlace,
    DropPacks,
    MoveChunks,
    Places,
    Setting,
    SharePlace,
    extra_json,
    extra_op,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError

__all__ = [
    "DEVICE_ID_SIZE",
    "GENESIS",
    "HASH_SIZE",
    "MAX_BODY_SIZE",
    "MAX_DEVICES",
    "MAX_NAME",
    "MAX_OPS",
    "MAX_REFS",
    "MAX_ROWS",
    "MAX_SHORT",
    "MAX_U32",
    "MAX_U64",
    "OP_FIELDS",
    "PACK_ID_SIZE",
    "Body",
    "ChainHead",
    "ChunkPlace",
    "DeviceAdd",
    "DeviceRevoke",
    "Dot",
    "DropPacks",
    "Forget",
    "Grant",
    "GrantRevoke",
    "Hlc",
    "MoveChunks",
    "Op",
    "Pending",
    "Places",
    "Publish",
    "Put",
    "Remove",
    "Setting",
    "SharePlace",
    "Tag",
    "Unpublish",
    "Untag",
    "canonical",
    "decode_body",
    "encode_body",
    "need_dot",
    "need_hex",
    "need_int",
    "need_list",
    "need_name",
    "need_obj",
    "need_packs",
    "need_rows",
    "need_str",
]


@dataclass(frozen=True, slots=True)
class Put:
    """A new version of ``name``. ``packs`` are the packs its chunks live in (for GC);
    ``rows`` is the engine's encoding of its entries and contents (merge never reads it)."""

    name: str
    kind: str
    size: int
    cid: str | None
    packs: tuple[bytes, ...]
    rows: bytes


@dataclass(frozen=True, slots=True)
class Remove:
    """``rm``: removes exactly the versions it names (those its device had observed)."""

    versions: tuple[Dot, ...]


@dataclass(frozen=True, slots=True)
class Forget:
    """Crypto-shredding: the versions it names are gone for good, whatever else says."""

    versions: tuple[Dot, ...]


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    tag: str


@dataclass(frozen=True, slots=True)
class Untag:
    """Removes the tag additions it names (observed-remove)."""

    adds: tuple[Dot, ...]


@dataclass(frozen=True, slots=True)
class Publish:
    name: str
    cid: str


@dataclass(frozen=True, slots=True)
class Unpublish:
    adds: tuple[Dot, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    grant: bytes
    name: str
    recipient: str


@dataclass(frozen=True, slots=True)
class GrantRevoke:
    grant: bytes


@dataclass(frozen=True, slots=True)
class Pending:
    """The packs this device is writing and has not yet committed (replaces its last set)."""

    packs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class DeviceAdd:
    """A device certificate: the membership key's signature over (device, key, name)."""

    device: bytes
    key: bytes
    name: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class DeviceRevoke:
    """The membership key's statement that ``device``'s records after ``last_seq`` are void."""

    device: bytes
    last_seq: int
    sig: bytes


Op: TypeAlias = (
    Put
    | Remove
    | Forget
    | Tag
    | Untag
    | Publish
    | Unpublish
    | Grant
    | GrantRevoke
    | Pending
    | DeviceAdd
    | DeviceRevoke
    | Places
    | MoveChunks
    | DropPacks
    | Setting
)

OP_FIELDS: dict[str, frozenset[str]] = {
    "put": frozenset({"op", "name", "kind", "size", "cid", "packs", "rows"}),
    "rm": frozenset({"op", "versions"}),
    "forget": frozenset({"op", "versions"}),
    "tag": frozenset({"op", "name", "tag"}),
    "untag": frozenset({"op", "adds"}),
    "publish": frozenset({"op", "name", "cid"}),
    "unpublish": frozenset({"op", "adds"}),
    "grant": frozenset({"op", "grant", "name", "recipient"}),
    "grant_revoke": frozenset({"op", "grant"}),
    "pending": frozenset({"op", "packs"}),
    "device_add": frozenset({"op", "device", "key", "name", "sig"}),
    "device_revoke": frozenset({"op", "device", "last_seq", "sig"}),
    **EXTRA_FIELDS,
}


@dataclass(frozen=True, slots=True)
class Body:
    """What a record says: its clock reading, its operations, and the device's version
    vector when it wrote them (``seen``: device id -> highest seq applied, itself included
    up to the previous record)."""

    hlc: Hlc
    ops: tuple[Op, ...]
    seen: tuple[tuple[bytes, int], ...]

    def __post_init__(self) -> None:
        if not 0 < len(self.ops) <= MAX_OPS:
            raise FormatError(f"a record holds 1 to {MAX_OPS} operations, not {len(self.ops)}")
        if len(self.seen) > MAX_DEVICES:
            raise FormatError("seen vector names too many devices")
        devices = [d for d, _ in self.seen]
        if devices != sorted(set(devices)):
            raise FormatError("seen vector is not sorted by device or repeats one")


# -- encoding ------------------------------------------------------------------------------------


def _dots(dots: tuple[Dot, ...]) -> list[JSONValue]:
    return [d.to_json() for d in dots]


def _op_json(op: Op) -> dict[str, JSONValue]:
    match op:
        case Put():
            return {
                "op": "put",
                "name": op.name,
                "kind": op.kind,
                "size": op.size,
                "cid": op.cid,
                "packs": [p.hex() for p in op.packs],
                "rows": base64.b64encode(op.rows).decode(),
            }
        case Remove():
            return {"op": "rm", "versions": _dots(op.versions)}
        case Forget():
            return {"op": "forget", "versions": _dots(op.versions)}
        case Tag():
            return {"op": "tag", "name": op.name, "tag": op.tag}
        case Untag():
            return {"op": "untag", "adds": _dots(op.adds)}
        case Publish():
            return {"op": "publish", "name": op.name, "cid": op.cid}
        case Unpublish():
            return {"op": "unpublish", "adds": _dots(op.adds)}
        case Grant():
            return {
                "op": "grant",
                "grant": op.grant.hex(),
                "name": op.name,
                "recipient": op.recipient,
            }
        case GrantRevoke():
            return {"op": "grant_revoke", "grant": op.grant.hex()}
        case Pending():
            return {"op": "pending", "packs": [p.hex() for p in op.packs]}
        case DeviceAdd():
            return {
                "op": "device_add",
                "device": op.device.hex(),
                "key": op.key.hex(),
                "name": op.name,
                "sig": op.sig.hex(),
            }
        case DeviceRevoke():
            return {
                "op": "device_revoke",
                "device": op.device.hex(),
                "last_seq": op.last_seq,
                "sig": op.sig.hex(),
            }
        case Places() | MoveChunks() | DropPacks() | Setting():
            return extra_json(op)


def encode_body(body: Body) -> bytes:
    """The canonical JSON of a body; refuses what :func:`decode_body` would refuse."""
    try:
        text = canonical(
            {
                "hlc": [body.hlc.wall_ms, body.hlc.counter],
                "ops": [_op_json(op) for op in body.ops],
                "seen": {d.hex(): s for d, s in body.seen},
            }
        )
    except UnicodeEncodeError:
        raise FormatError("journal body holds text that is not valid UTF-8") from None
    if decode_body(text) != body:
        raise FormatError("journal body does not survive its own decoder (a field out of range)")
    return text


# -- decoding: the ``need_*`` validators (shared with the checkpoint decoder) -----------------------


def need_dot(value: JSONValue, what: str) -> Dot:
    items = need_list(value, what, 3)
    if len(items) != 3:
        raise FormatError(f"{what} is not [device, seq, index]")
    return Dot(
        need_hex(items[0], f"{what} device", DEVICE_ID_SIZE),
        need_int(items[1], f"{what} seq", 1, MAX_U64),
        need_int(items[2], f"{what} index", 0, MAX_OPS - 1),
    )


def _dot_list(value: JSONValue, what: str) -> tuple[Dot, ...]:
    dots = tuple(
        need_dot(v, f"{what}[{i}]") for i, v in enumerate(need_list(value, what, MAX_REFS))
    )
    if not dots or list(dots) != sorted(set(dots)):
        raise FormatError(f"{what} is empty, unsorted or repeats an entry")
    return dots


def _op(value: JSONValue, where: str) -> Op:
    if not isinstance(value, dict) or not isinstance(value.get("op"), str):
        raise FormatError(f"{where} is not an operation object")
    kind = value["op"]
    assert isinstance(kind, str)
    fields = OP_FIELDS.get(kind)
    if fields is None:
        raise FormatError(f"{where} has unknown operation {kind[:40]!r}")
    v = need_obj(value, f"{where} ({kind})", fields)
    match kind:
        case "put":
            vkind = v["kind"]
            if vkind not in ("file", "tree"):
                raise FormatError(f"{where} kind is not file or tree")
            cid = None if v["cid"] is None else need_str(v["cid"], f"{where} cid", MAX_SHORT)
            return Put(
                need_name(v["name"], f"{where} name"),
                str(vkind),
                need_int(v["size"], f"{where} size", 0, MAX_U64),
                cid,
                need_packs(v["packs"], f"{where} packs"),
                need_rows(v["rows"]),
            )
        case "rm":
            return Remove(_dot_list(v["versions"], f"{where} versions"))
        case "forget":
            return Forget(_dot_list(v["versions"], f"{where} versions"))
        case "tag":
            return Tag(need_name(v["name"], f"{where} name"), need_name(v["tag"], f"{where} tag"))
        case "untag":
            return Untag(_dot_list(v["adds"], f"{where} adds"))
        case "publish":
            return Publish(
                need_name(v["name"], f"{where} name"), need_name(v["cid"], f"{where} cid")
            )
        case "unpublish":
            return Unpublish(_dot_list(v["adds"], f"{where} adds"))
        case "grant":
            return Grant(
                need_hex(v["grant"], f"{where} grant", 16),
                need_name(v["name"], f"{where} name"),
                need_str(v["recipient"], f"{where} recipient", MAX_SHORT),
            )
        case "grant_revoke":
            return GrantRevoke(need_hex(v["grant"], f"{where} grant", 16))
        case "pending":
            return Pending(need_packs(v["packs"], f"{where} packs"))
        case "device_add":
            return DeviceAdd(
                need_hex(v["device"], f"{where} device", DEVICE_ID_SIZE),
                need_hex(v["key"], f"{where} key", 32),
                need_str(v["name"], f"{where} name", MAX_SHORT),
                need_hex(v["sig"], f"{where} sig", 64),
            )
        case "device_revoke":
            return DeviceRevoke(
                need_hex(v["device"], f"{where} device", DEVICE_ID_SIZE),
                need_int(v["last_seq"], f"{where} last_seq", 0, MAX_U64),
                need_hex(v["sig"], f"{where} sig", 64),
            )
        case _:  # places, chunks, drop_packs, set: OP_FIELDS has no other key
            return extra_op(kind, v, where)


def decode_body(text: bytes) -> Body:
    """A record body from its canonical JSON; ``FormatError`` naming the first fault."""
    if len(text) > MAX_BODY_SIZE:
        raise FormatError(f"journal body is over {MAX_BODY_SIZE} bytes")
    try:
        value: JSONValue = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, nesting
        raise FormatError(f"journal body is not JSON: {str(exc)[:80]}") from None
    v = need_obj(value, "journal body", frozenset({"hlc", "ops", "seen"}))
    hlc = need_list(v["hlc"], "hlc", 2)
    if len(hlc) != 2:
        raise FormatError("hlc is not [wall_ms, counter]")
    clock = Hlc(
        need_int(hlc[0], "hlc wall_ms", 0, MAX_U64), need_int(hlc[1], "hlc counter", 0, MAX_U32)
    )
    ops = tuple(_op(o, f"ops[{i}]") for i, o in enumerate(need_list(v["ops"], "ops", MAX_OPS)))
    seen_obj = v["seen"]
    if not isinstance(seen_obj, dict) or len(seen_obj) > MAX_DEVICES:
        raise FormatError(f"seen is not an object of at most {MAX_DEVICES} devices")
    seen = tuple(
        sorted(
            (need_hex(k, "seen device", DEVICE_ID_SIZE), need_int(s, f"seen[{k[:32]}]", 0, MAX_U64))
            for k, s in seen_obj.items()
        )
    )
    body = Body(clock, ops, seen)
    if canonical(value) != text:
        raise FormatError("journal body is not in canonical form")
    return body
