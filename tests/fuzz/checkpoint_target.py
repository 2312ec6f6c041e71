"""The fuzz target of paged journal checkpoints (version 2; registered as ``checkpoint`` in
``tests/fuzz/targets.py``), its seeds and its hand-made corrupt fixtures.

Modes (the first byte, modulo 3): 0 a root and its pages as a provider serves them
(``u32 BE length || root``, then ``u32 BE length || page`` for each page; the harness
names each page by its hash, as a reader fetches it); 1 a root's plaintext, compressed,
sealed and signed here by a member, read with the seed's pages; 2 a page's plaintext,
sealed here as the only page of a root signed here (with the seed's heads), so the fuzzer
reaches the fact decoder behind the AEAD, the hash and the signature. Round trip: a
checkpoint that opens is encoded again and opens to the same state; in mode 2 its one
page holds the same plaintext.
"""

from __future__ import annotations

import json
import struct
import zlib
from functools import cache

from ownvault.core import crypto
from ownvault.core.checkpoint import CHECKPOINT_AD, MAGIC
from ownvault.core.checkpointpages import (
    PAGE_AD,
    PAGE_HEADER,
    Paged,
    decode_pages,
    encode_paged,
    open_checkpoint,
    open_root,
)
from ownvault.core.journal import GENESIS, DeviceKey, JournalKeys, certify_device, encode_record
from ownvault.core.journalops import Body, Dot, Hlc, Publish, Put, Remove, Tag, canonical
from ownvault.core.keys import VaultKeys
from ownvault.core.merge import EMPTY, State, merge

__all__ = ["checkpoint", "checkpoint_fixtures", "checkpoint_seeds"]

DEVICE = DeviceKey(bytes(range(100, 132)))


@cache
def _keys() -> JournalKeys:
    return JournalKeys.of(VaultKeys(bytes(range(32))))


@cache
def _state() -> State:
    cert = certify_device(_keys(), DEVICE.public, "fuzz")
    ops = (cert, Put("a", "file", 1, None, (bytes(16),), b"r"), Tag("a", "t"))
    _raw, first = encode_record(_keys(), DEVICE, GENESIS, Body(Hlc(1000, 0), ops, ()))
    put = Put("b", "file", 2, "bafyb", (bytes([1]) * 16,), b"rows")
    more = (put, Publish("b", "bafyb"), Remove((Dot(first.device, 1, 1),)))
    _raw, second = encode_record(_keys(), DEVICE, first.head, Body(Hlc(2000, 0), more, ()))
    return merge(EMPTY, [first, second])


@cache
def _paged(limit: int) -> Paged:
    return encode_paged(_keys(), DEVICE, _state(), limit=limit)


def _open_plain(box: bytes, ad: bytes) -> bytes:
    return zlib.decompress(crypto.open_box(_keys().journal, box, ad))


def _root_plain(paged: Paged) -> bytes:
    root = paged.root
    (n,) = struct.unpack_from(">I", root, 21)
    return _open_plain(root[25 : 25 + n], CHECKPOINT_AD + root[:21])


def _page_plain(paged: Paged) -> bytes:
    (page,) = paged.pages.values()
    return _open_plain(page[len(PAGE_HEADER) :], PAGE_AD + PAGE_HEADER)


def _signed_root(plain: bytes) -> bytes:
    header = MAGIC + b"\x02" + DEVICE.id
    box = crypto.seal(_keys().journal, zlib.compress(plain), CHECKPOINT_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    return signed + crypto.ed25519_sign(DEVICE.seed, CHECKPOINT_AD + b"\x00" + signed)


def _one_page_root(plain: bytes) -> tuple[bytes, dict[str, bytes]]:
    page = PAGE_HEADER + crypto.seal(_keys().journal, zlib.compress(plain), PAGE_AD + PAGE_HEADER)
    name = crypto.sha256(page).hex()
    try:
        value = json.loads(plain)
        count = len(value) if isinstance(value, list) else 1
    except (ValueError, RecursionError):
        count = 1
    leaf = ["", max(count, 1), len(plain), crypto.sha256(plain).hex(), name]
    root = json.loads(_root_plain(_paged(1 << 18)))
    root["pages"] = [leaf]
    return _signed_root(canonical(root)), {name: page}


def _served(data: bytes) -> tuple[bytes, dict[str, bytes]]:
    parts, at = [], 0
    while at + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, at)
        parts.append(data[at + 4 : at + 4 + n])
        at += 4 + n
    if not parts:
        return b"", {}
    return parts[0], {crypto.sha256(p).hex(): p for p in parts[1:]}


def _container(root: bytes, pages: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(p)) + p for p in [root, *pages])


def checkpoint(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        root, pages = _served(rest)
        state = open_checkpoint(_keys(), root, pages).state
    elif mode == 1:
        opened = open_root(_keys(), _signed_root(rest))
        state = decode_pages(_keys(), opened, {**_paged(64).pages, **_paged(1 << 18).pages}).state
    else:
        root, pages = _one_page_root(rest)
        state = open_checkpoint(_keys(), root, pages).state
    again = encode_paged(_keys(), DEVICE, state)
    assert open_checkpoint(_keys(), again.root, again.pages).state == state
    if mode == 2 and len(again.pages) == 1:
        assert _page_plain(again) == rest


def checkpoint_seeds() -> list[bytes]:
    small, one = _paged(64), _paged(1 << 18)
    return [
        b"\x00" + _container(small.root, list(small.pages.values())),
        b"\x00" + _container(one.root, list(one.pages.values())),
        b"\x01" + _root_plain(small),
        b"\x02" + _page_plain(one),
    ]


def _root_edit(**change: object) -> bytes:
    value = json.loads(_root_plain(_paged(64)))
    value.update(change)
    return b"\x01" + canonical(value)


def checkpoint_fixtures() -> dict[str, bytes]:
    """Hand-made damage, each input refused with a named error."""
    small = _paged(64)
    root, pages = small.root, list(small.pages.values())
    leaves = json.loads(_root_plain(small))["pages"]
    facts = json.loads(_page_plain(_paged(1 << 18)))
    return {
        "root-truncated.bin": b"\x00" + _container(root[:-1], pages),
        "root-tampered.bin": b"\x00" + _container(root[:-1] + bytes((root[-1] ^ 1,)), pages),
        "root-version-3.bin": b"\x00" + _container(root[:4] + b"\x03" + root[5:], pages),
        "root-box-length-huge.bin": b"\x00"
        + _container(root[:21] + b"\xff\xff\xff\xff" + root[25:], pages),
        "page-missing.bin": b"\x00" + _container(root, pages[1:]),
        "page-tampered.bin": b"\x00"
        + _container(root, [pages[0][:-1] + bytes((pages[0][-1] ^ 1,)), *pages[1:]]),
        "page-of-another-checkpoint.bin": b"\x00"
        + _container(root, list(encode_paged(_keys(), DEVICE, _state(), limit=64).pages.values())),
        "root-not-canonical.bin": b"\x01" + _root_plain(small).replace(b",", b", ", 1),
        "root-pages-do-not-cover.bin": _root_edit(pages=leaves[:-1]),
        "root-page-should-split.bin": _root_edit(
            limit=64, pages=json.loads(_root_plain(_paged(1 << 18)))["pages"]
        ),
        "root-split-under-limit.bin": _root_edit(limit=1 << 20),
        "root-empty-leaf-names-page.bin": _root_edit(
            pages=[[x[0], 0, 0, x[3], x[4]] for x in leaves]
        ),
        "root-prefix-not-bits.bin": _root_edit(pages=[["x", *leaves[0][1:]], *leaves[1:]]),
        "root-limit-float.bin": _root_edit(limit=64.0),
        "root-deep.bin": b"\x01" + b"[" * 3000 + b"]" * 3000,
        "page-facts-reversed.bin": b"\x02" + canonical(list(reversed(facts))),
        "page-fact-unknown-kind.bin": b"\x02" + canonical([*facts, ["z"]]),
        "page-device-without-facts.bin": b"\x02"
        + canonical([*facts, ["d", "00" * 16, None, None, None, None, None]]),
        "page-not-a-list.bin": b"\x02" + canonical({"facts": facts}),
        "page-deep.bin": b"\x02" + b"[" * 3000 + b"]" * 3000,
        "page-version-float-size.bin": b"\x02"
        + canonical(facts).replace(b',"file",2,', b',"file",2.0,', 1),
    }
