"""The fields of catalog journal records and checkpoints: sizes, bounds, and the strict
validators every decoder of them uses (``need_*``: exact field sets, integers only, bounded
strings and lists, lowercase hex, canonical base64), and canonical JSON.

Split out of :mod:`ownvault.core.journalops` so that the op vocabulary can live in more than
one module (namespace ops there, pack places and settings in
:mod:`ownvault.core.journalplaces`) without an import cycle.
"""

from __future__ import annotations

import base64
import json
import re

from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError

__all__ = [
    "DEVICE_ID_SIZE",
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
    "PACK_ID_SIZE",
    "canonical",
    "need_hex",
    "need_int",
    "need_list",
    "need_name",
    "need_obj",
    "need_packs",
    "need_rows",
    "need_str",
]

DEVICE_ID_SIZE = 16
PACK_ID_SIZE = 16
MAX_BODY_SIZE = 24 * 1024 * 1024  # a put of MAX_ROWS in base64, and room for the rest
MAX_OPS = 10_000
MAX_REFS = 100_000  # dots or pack ids in one op
MAX_NAME = 4096  # UTF-8 bytes of an object name
MAX_SHORT = 512  # a tag, a CID, a device name, a did
MAX_ROWS = 16 * 1024 * 1024  # bytes of one put's rows: a tree of about 80,000 small files
MAX_DEVICES = 1024
MAX_U64 = 2**64 - 1
HASH_SIZE = 32  # SHA-256 of a record: the next record's ``prev``
MAX_U32 = 2**32 - 1
_HEX = re.compile(r"[0-9a-f]*")


def canonical(value: JSONValue) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def need_obj(value: JSONValue, what: str, fields: frozenset[str]) -> dict[str, JSONValue]:
    if not isinstance(value, dict):
        raise FormatError(f"{what} is not an object")
    if set(value) != fields:
        extra, missing = sorted(set(value) - fields), sorted(fields - set(value))
        raise FormatError(f"{what} has wrong fields (unknown {extra}, missing {missing})")
    return value


def need_int(value: JSONValue, what: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise FormatError(f"{what} is not an integer in [{lo}, {hi}]")
    return value


def need_str(value: JSONValue, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{what} is not a string")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        raise FormatError(f"{what} is not valid UTF-8 text") from None
    if size > limit:
        raise FormatError(f"{what} is longer than {limit} bytes")
    return value


def need_name(value: JSONValue, what: str) -> str:
    text = need_str(value, what, MAX_NAME)
    if not text or "\x00" in text:
        raise FormatError(f"{what} is empty or holds NUL")
    return text


def need_hex(value: JSONValue, what: str, size: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise FormatError(f"{what} is not {size} bytes of lowercase hex")
    return bytes.fromhex(value)


def need_list(value: JSONValue, what: str, limit: int) -> list[JSONValue]:
    if not isinstance(value, list) or len(value) > limit:
        raise FormatError(f"{what} is not a list of at most {limit} items")
    return value


def need_packs(value: JSONValue, what: str) -> tuple[bytes, ...]:
    packs = tuple(
        need_hex(v, f"{what}[{i}]", PACK_ID_SIZE)
        for i, v in enumerate(need_list(value, what, MAX_REFS))
    )
    if list(packs) != sorted(set(packs)):
        raise FormatError(f"{what} is unsorted or repeats a pack")
    return packs


def need_rows(value: JSONValue) -> bytes:
    if not isinstance(value, str) or len(value) > (MAX_ROWS + 2) // 3 * 4:
        raise FormatError("put rows are not base64 text of at most 1 MiB")
    try:
        rows = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise FormatError("put rows are not base64 text") from None
    if base64.b64encode(rows).decode() != value:
        raise FormatError("put rows are not canonical base64")
    return rows
