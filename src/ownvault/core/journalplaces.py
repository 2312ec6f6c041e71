"""Journal ops about where data sits and about the vault's settings: a pack's share places
(``places``), chunks re-pointed into a pack (``chunks``), packs deleted (``drop_packs``),
and one setting's new value (``set``). Part of the op vocabulary of
:mod:`ownvault.core.journalops` (which dispatches to :func:`extra_json` and
:func:`extra_op`); docs/design.md, "Pack places and settings as ops".

These are facts merged **last-writer-wins per key** by the clock of the record that carries
them, ties broken by device id (the later (HLC, device) wins on every replica): a share by
(pack, index), a chunk by its id, a setting by (table, key). Decoding is as strict as the
rest of a body: exact fields, integers only, bounded lists, sorted and unique keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.core.journalfields import (
    MAX_REFS,
    MAX_U32,
    MAX_U64,
    PACK_ID_SIZE,
    need_hex,
    need_int,
    need_list,
    need_name,
    need_packs,
    need_str,
)
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError

__all__ = [
    "EXTRA_FIELDS",
    "MAX_SETTING",
    "MAX_SHARES",
    "SETTING_TABLES",
    "ChunkPlace",
    "DropPacks",
    "ExtraOp",
    "MoveChunks",
    "Places",
    "Setting",
    "SharePlace",
    "extra_json",
    "extra_op",
]

MAX_SHARES = 256  # shares of one pack (as in the rows of a put)
MAX_KEY = 1024  # bytes of one wrapped chunk key
CHUNK_ID_SIZE = 32
ROOT_SIZE = 32
MAX_SETTING = 64 * 1024  # bytes of one setting's value (a row as canonical JSON)
SETTING_TABLES = (
    "provider",
    "meta",
    "contact",
    "tag_policy",
    "backup_profile",
    "nft_token",
    "grant",
    "publication",
)

EXTRA_FIELDS: dict[str, frozenset[str]] = {
    "places": frozenset({"op", "pack", "size", "k", "n", "created_at", "shares"}),
    "chunks": frozenset({"op", "pack", "chunks"}),
    "drop_packs": frozenset({"op", "packs"}),
    "set": frozenset({"op", "table", "key", "value"}),
}


@dataclass(frozen=True, slots=True, order=True)
class SharePlace:
    """Share ``idx`` of a pack is on ``provider`` (by name); None: it has no place now
    (its copy was lost and not yet rebuilt). ``size`` and ``root`` never change."""

    idx: int
    provider: str | None
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class Places:
    """The places of some shares of ``pack`` (those that changed), with the pack's own
    fields, so a device that does not hold the pack yet (a repack's new pack) can add it."""

    pack: bytes
    size: int
    k: int
    n: int
    created_at: int
    shares: tuple[SharePlace, ...]


@dataclass(frozen=True, slots=True, order=True)
class ChunkPlace:
    chunk_id: bytes
    offset: int
    length: int
    wrapped_key: bytes
    key_epoch: int


@dataclass(frozen=True, slots=True)
class MoveChunks:
    """These chunks now sit in ``pack`` (a repack or re-encoding moved them there)."""

    pack: bytes
    chunks: tuple[ChunkPlace, ...]


@dataclass(frozen=True, slots=True)
class DropPacks:
    """These packs were deleted (rewritten or collected): their rows go."""

    packs: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Setting:
    """Setting ``key`` of ``table`` is now ``value`` (canonical JSON text of the row);
    None: it was removed (a tombstone, so an older write of it arriving later stays out)."""

    table: str
    key: str
    value: str | None


ExtraOp = Places | MoveChunks | DropPacks | Setting


def extra_json(op: ExtraOp) -> dict[str, JSONValue]:
    match op:
        case Places():
            return {
                "op": "places",
                "pack": op.pack.hex(),
                "size": op.size,
                "k": op.k,
                "n": op.n,
                "created_at": op.created_at,
                "shares": [[s.idx, s.provider, s.size, s.root.hex()] for s in op.shares],
            }
        case MoveChunks():
            return {
                "op": "chunks",
                "pack": op.pack.hex(),
                "chunks": [
                    [c.chunk_id.hex(), c.offset, c.length, c.wrapped_key.hex(), c.key_epoch]
                    for c in op.chunks
                ],
            }
        case DropPacks():
            return {"op": "drop_packs", "packs": [p.hex() for p in op.packs]}
        case Setting():
            return {"op": "set", "table": op.table, "key": op.key, "value": op.value}


def _tuple(value: JSONValue, what: str, size: int) -> list[JSONValue]:
    items = need_list(value, what, size)
    if len(items) != size:
        raise FormatError(f"{what} is not a list of {size} items")
    return items


def _share(value: JSONValue, what: str) -> SharePlace:
    v = _tuple(value, what, 4)
    return SharePlace(
        need_int(v[0], f"{what} index", 0, MAX_SHARES - 1),
        None if v[1] is None else need_name(v[1], f"{what} provider"),
        need_int(v[2], f"{what} size", 0, MAX_U64),
        need_hex(v[3], f"{what} root", ROOT_SIZE),
    )


def _chunk(value: JSONValue, what: str) -> ChunkPlace:
    v = _tuple(value, what, 5)
    key = v[3]
    if not isinstance(key, str) or not 0 < len(key) <= 2 * MAX_KEY or len(key) % 2:
        raise FormatError(f"{what} wrapped key is not 1 to {MAX_KEY} bytes of hex")
    return ChunkPlace(
        need_hex(v[0], f"{what} id", CHUNK_ID_SIZE),
        need_int(v[1], f"{what} offset", 0, MAX_U64),
        need_int(v[2], f"{what} length", 0, MAX_U64),
        need_hex(key, f"{what} wrapped key", len(key) // 2),
        need_int(v[4], f"{what} key_epoch", 0, MAX_U32),
    )


def extra_op(kind: str, v: dict[str, JSONValue], where: str) -> ExtraOp:
    """The op of ``kind`` (a key of :data:`EXTRA_FIELDS`) from its checked field set."""
    match kind:
        case "places":
            shares = tuple(
                _share(s, f"{where} shares[{i}]")
                for i, s in enumerate(need_list(v["shares"], f"{where} shares", MAX_SHARES))
            )
            if not shares or [s.idx for s in shares] != sorted({s.idx for s in shares}):
                raise FormatError(f"{where} shares are empty, unsorted or repeat an index")
            return Places(
                need_hex(v["pack"], f"{where} pack", PACK_ID_SIZE),
                need_int(v["size"], f"{where} size", 0, MAX_U64),
                need_int(v["k"], f"{where} k", 1, MAX_SHARES),
                need_int(v["n"], f"{where} n", 1, MAX_SHARES),
                need_int(v["created_at"], f"{where} created_at", 0, MAX_U64),
                shares,
            )
        case "chunks":
            chunks = tuple(
                _chunk(c, f"{where} chunks[{i}]")
                for i, c in enumerate(need_list(v["chunks"], f"{where} chunks", MAX_REFS))
            )
            ids = [c.chunk_id for c in chunks]
            if not ids or ids != sorted(set(ids)):
                raise FormatError(f"{where} chunks are empty, unsorted or repeat a chunk")
            return MoveChunks(need_hex(v["pack"], f"{where} pack", PACK_ID_SIZE), chunks)
        case "drop_packs":
            packs = need_packs(v["packs"], f"{where} packs")
            if not packs:
                raise FormatError(f"{where} packs are empty")
            return DropPacks(packs)
        case _:  # "set"
            table = v["table"]
            if table not in SETTING_TABLES:
                raise FormatError(f"{where} table is not one of {', '.join(SETTING_TABLES)}")
            value = (
                None if v["value"] is None else need_str(v["value"], f"{where} value", MAX_SETTING)
            )
            return Setting(str(table), need_name(v["key"], f"{where} key"), value)
