"""Catalog snapshots and locators: how the catalog itself is kept on the providers.

snapshot payload (v1), sealed and erasure-coded like data::

    plain   := "OVCS" || 0x01 || zlib(sqlite database image)
    sealed  := seal(catalog_key, plain, AD = "ownvault/v1/catalog-snapshot" || seq(u64 BE))
    padded  := sealed || zero padding to Padmé(max(len(sealed), 64 KiB))
    pieces  := padded split into pieces of at most 16 MiB; each piece is erasure-coded
               into n shares named ``catalog/<seq:016x>/<pack_id hex>.<index>``

locator (v1), one full copy on every provider, so that one reachable provider is enough to
find the rest (``catalog/<seq:016x>/locator``)::

    locator := "OVLC" || 0x01 || seal(catalog_key, json, AD = "ownvault/v1/locator" || seq)
    json    := {"seq", "vault_id", "created", "sealed_len", "k", "n",
                "pieces": [{"pack_id", "size", "shares": [{"index", "provider", "root", "size"}]}],
                "providers": [{"name", "kind", "url", "jurisdiction", "labels"}],
                "heads": {device id hex: seq}}  (optional: the journal heads the image holds)
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from ownvault.core import crypto
from ownvault.errors import FormatError

__all__ = [
    "MAX_LOCATOR_SIZE",
    "MAX_SNAPSHOT_SIZE",
    "decode_locator",
    "decode_snapshot",
    "encode_locator",
    "encode_snapshot",
    "locator_name",
    "snapshot_prefix",
]

SNAPSHOT_MAGIC = b"OVCS"
LOCATOR_MAGIC = b"OVLC"
VERSION = 1
SNAPSHOT_AD = b"ownvault/v1/catalog-snapshot"
LOCATOR_AD = b"ownvault/v1/locator"
MAX_SNAPSHOT_SIZE = 4 * 1024 * 1024 * 1024
MAX_LOCATOR_SIZE = 16 * 1024 * 1024


def snapshot_prefix(seq: int) -> str:
    return f"catalog/{seq:016x}"


def locator_name(seq: int) -> str:
    return f"{snapshot_prefix(seq)}/locator"


def _seq(seq: int) -> bytes:
    return struct.pack(">Q", seq)


def encode_snapshot(catalog_key: bytes, seq: int, database: bytes) -> bytes:
    """The sealed (unpadded) snapshot payload of a serialised SQLite database."""
    plain = SNAPSHOT_MAGIC + bytes((VERSION,)) + zlib.compress(database, 1)
    return crypto.seal(catalog_key, plain, SNAPSHOT_AD + _seq(seq))


def decode_snapshot(catalog_key: bytes, seq: int, sealed: bytes) -> bytes:
    """The SQLite database image inside a sealed snapshot (bounded decompression)."""
    plain = crypto.open_box(catalog_key, sealed, SNAPSHOT_AD + _seq(seq))
    if plain[:4] != SNAPSHOT_MAGIC:
        raise FormatError("not a catalog snapshot")
    if plain[4:5] != bytes((VERSION,)):
        raise FormatError(f"unsupported catalog snapshot version {plain[4:5].hex() or 'missing'}")
    d = zlib.decompressobj()
    try:
        out = d.decompress(plain[5:], MAX_SNAPSHOT_SIZE)
    except zlib.error as exc:
        raise FormatError(f"catalog snapshot is corrupt: {exc}") from None
    if d.unconsumed_tail or not d.eof:
        raise FormatError("catalog snapshot too large or truncated")
    return out


def encode_locator(catalog_key: bytes, seq: int, body: dict[str, Any]) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return (
        LOCATOR_MAGIC + bytes((VERSION,)) + crypto.seal(catalog_key, text, LOCATOR_AD + _seq(seq))
    )


def decode_locator(catalog_key: bytes, seq: int, data: bytes) -> dict[str, Any]:
    if len(data) > MAX_LOCATOR_SIZE:
        raise FormatError("locator too large")
    if data[:4] != LOCATOR_MAGIC:
        raise FormatError("not a catalog locator")
    if len(data) < 5 or data[4] != VERSION:
        raise FormatError("unsupported catalog locator version")
    text = crypto.open_box(catalog_key, data[5:], LOCATOR_AD + _seq(seq))
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError; deep nesting
        raise FormatError(f"catalog locator is malformed: {exc}") from None
    if not isinstance(body, dict) or body.get("seq") != seq:
        raise FormatError("catalog locator does not match its name")
    return body
