"""Write the hand-made corrupt fixtures under ``tests/fixtures/corrupt/<target>/``.

    PYTHONPATH=src python -m tests.fuzz.make_fixtures

Each file is one input to the target of its folder (the same bytes the fuzzer feeds it:
keyed targets start with their mode byte, see ``tests/fuzz/targets.py``). The classes of
damage: truncation, lengths too large, nesting too deep, wrong magic or version,
duplicate fields, over-long or overflowing varints, non-canonical encodings. Files named
``regress-*`` are crashers the fuzzers found (kept by hand with a name that says what
they are); ``crash-*`` files are crashers ``make fuzz`` saved. This script only (re)writes
the files it makes; it never deletes one.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from ownvault.core import multibase
from ownvault.core.car import (
    CARV2_PRAGMA,
    MAX_HEADER_SIZE,
    MAX_SECTION_SIZE,
    encode_header,
    write_car,
)
from ownvault.core.cid import CID, DAG_PB, RAW, encode_varint
from ownvault.core.dagpb import PBLink, PBNode, UnixFSData, decode_node, encode_node, encode_unixfs
from ownvault.core.erasure import ErasureCode
from ownvault.core.grants import MANIFEST_BODY_MAGIC
from ownvault.core.pack import ShareHeader, attach_tree, encode_share, seal_chunk
from ownvault.core.proofs import Answer, encode_answers
from ownvault.core.snapshot import SNAPSHOT_MAGIC, encode_snapshot
from tests.fuzz import targets as t
from tests.fuzz.checkpoint_target import checkpoint_fixtures
from tests.fuzz.drive_targets import drive_fixtures
from tests.fuzz.journal_target import journal_fixtures
from tests.fuzz.journalrows_target import journal_rows_fixtures

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "corrupt"

DEEP_ARRAY = b"[" * 3000 + b"]" * 3000
DEEP_OBJECT = b'{"a":' * 1500 + b"1" + b"}" * 1500


def _car() -> dict[str, bytes]:
    raw = CID.for_block(RAW, b"hello")
    good = b"".join(write_car([raw], [(raw, b"hello")]))
    header = encode_header([raw])
    section = good[len(header) :]
    body = header[1:]
    return {
        "truncated-header.car": good[:6],
        "truncated-section.car": good[:-2],
        "header-length-varint-10-bytes.car": b"\xff" * 9 + b"\x01",
        "header-length-over-limit.car": encode_varint(MAX_HEADER_SIZE + 1) + b"\xa2",
        "header-length-zero.car": b"\x00",
        "header-version-3.car": encode_header([raw], version=3) + section,
        "header-duplicate-roots-key.car": encode_varint(len(body) + 6)
        + b"\xa3"
        + body[1:]
        + b"\x65roots\x80",
        "header-no-roots.car": encode_header([]) + section,
        "header-indefinite-map.car": b"\x02\xbf\xff",
        "header-non-minimal-length.car": b"\x03\xb8\x01\x00",
        "header-trailing-bytes.car": encode_varint(len(body) + 1) + body + b"\x00",
        "header-root-not-tag-42.car": encode_varint(len(body))
        + body.replace(b"\xd8\x2a", b"\xd8\x2b"),
        "section-length-over-limit.car": header + encode_varint(MAX_SECTION_SIZE + 1),
        "section-length-varint-overlong.car": header + b"\x80" * 9 + b"\x01",
        "section-non-minimal-varint.car": header + b"\x80\x00",
        "section-zero-length.car": header + b"\x00",
        "section-hash-mismatch.car": good[:-1] + b"X",
        "section-cid-v0-truncated.car": header + b"\x05\x12\x20abc",
        "section-cid-version-2.car": header + b"\x05\x02\x55\x12\x20a",
        "v2-offset-into-header.car": t.car_v2(good)[:27] + bytes(8) + t.car_v2(good)[35:],
        "v2-data-size-zero.car": t.car_v2(good)[:35] + bytes(8) + t.car_v2(good)[43:],
        "v2-data-size-past-end.car": t.car_v2(good)[:35]
        + (1 << 40).to_bytes(8, "little")
        + t.car_v2(good)[43:],
        "v2-offset-huge.car": t.car_v2(good)[:27]
        + (1 << 62).to_bytes(8, "little")
        + t.car_v2(good)[35:],
        "v2-inside-v2.car": t.car_v2(t.car_v2(good)),
        "v2-pragma-only.car": CARV2_PRAGMA,
    }


def _len(field: bytes) -> bytes:
    return encode_varint(len(field)) + field


def _pb_link(inner: bytes) -> bytes:
    return b"\x12" + _len(inner)


def _dagpb() -> dict[str, bytes]:
    raw = CID.for_block(RAW, b"x")
    link = encode_node(PBNode((PBLink(raw, "a", 1),), None))
    return {
        "truncated-link.bin": link[:-2],
        "link-length-too-large.bin": b"\x12\x7f" + link[2:],
        "links-after-data.bin": b"\x0a\x01x" + link,
        "two-data-fields.bin": b"\x0a\x01x\x0a\x01y",
        "unknown-field.bin": b"\x1a\x01x",
        "wrong-wire-type.bin": b"\x10\x01",
        "link-without-hash.bin": b"\x12\x03\x12\x01a",
        "link-fields-out-of-order.bin": _pb_link(b"\x12\x01a\x0a" + _len(raw.bytes)),
        "link-hash-repeated.bin": _pb_link(b"\x0a" + _len(raw.bytes) + b"\x0a" + _len(raw.bytes)),
        "link-name-not-utf8.bin": encode_node(PBNode((PBLink(raw, "a", 1),), None)).replace(
            b"\x12\x01a", b"\x12\x01\xff"
        ),
        "varint-11-bytes.bin": b"\x0a" + b"\x81" * 10 + b"\x01",
        "non-minimal-varint.bin": b"\x0a\x81\x00x",
        "regress-tsize-over-64-bits.bin": _pb_link(
            b"\x0a" + _len(raw.bytes) + b"\x18" + b"\xff" * 9 + b"\x7f"
        ),
        "data-length-huge.bin": b"\x0a\xff\xff\xff\xff\x0f",
    }


def _unixfs() -> dict[str, bytes]:
    return {
        "no-type.bin": b"\x12\x01x",
        "type-out-of-range.bin": b"\x08\x09",
        "type-repeated.bin": b"\x08\x02\x08\x02",
        "data-length-too-large.bin": b"\x08\x02\x12\x7fx",
        "mtime-nanos-truncated.bin": b"\x08\x02\x42\x03\x15\x01\x02",
        "mtime-unknown-field.bin": b"\x08\x02\x42\x02\x18\x01",
        "blocksize-varint-overlong.bin": b"\x08\x02\x20" + b"\xff" * 10 + b"\x01",
        # found by the fuzzer: mtime seconds as a 10-byte varint above 2**64 decoded to a
        # value no int64 holds, so it did not survive a re-encode
        "regress-mtime-seconds-over-64-bits.bin": bytes.fromhex(
            "080218ac0220ffff6420c801420b08fbffffffffffffffff07"
        ),
        "regress-filesize-over-64-bits.bin": b"\x08\x02\x18" + b"\xff" * 9 + b"\x7f",
    }


def _shard(fanout: int | None, hash_type: int | None = 0x22) -> bytes:
    data = encode_unixfs(UnixFSData(5, b"\x01", None, (), hash_type, fanout))
    return encode_node(PBNode((), data))


def _hamt() -> dict[str, bytes]:
    return {
        "fanout-zero.bin": _shard(0),
        "fanout-missing.bin": _shard(None),
        "fanout-not-power-of-two.bin": _shard(255),
        "fanout-huge.bin": _shard(1 << 40),
        "fanout-over-64-bits.bin": encode_node(PBNode((), b"\x08\x05\x30" + b"\xff" * 9 + b"\x7f")),
    }


def _rebuilt_car(root: CID, store: dict[bytes, bytes], edit: dict[bytes, bytes]) -> bytes:
    """A CAR of the DAG with some blocks replaced (parents re-linked to the new CIDs)."""
    fixed = dict(store)
    renamed: dict[bytes, CID] = {}
    for old_cid, block in edit.items():
        new = CID.for_block(DAG_PB, block)
        fixed[new.bytes] = block
        renamed[old_cid] = new
    new_root = renamed.get(root.bytes, root)
    return t.car_bytes(new_root, fixed)


def _hamt_car() -> dict[str, bytes]:
    root, store = t.dir_blocks(30, "kubo-v1", 64)
    node = decode_node(store[root.bytes])
    out: dict[str, bytes] = {}

    def relabel(name: str, fn: object) -> None:
        links = tuple(fn(link) for link in node.links)  # type: ignore[operator]
        block = encode_node(PBNode(links, node.data))
        out[name] = _rebuilt_car(root, store, {root.bytes: block})

    relabel("label-not-hex.car", lambda ln: PBLink(ln.cid, "ZZ" + (ln.name or "")[2:], ln.tsize))
    relabel(
        "label-wrong-index.car", lambda ln: PBLink(ln.cid, "00" + (ln.name or "")[2:], ln.tsize)
    )
    relabel("label-parent-dir.car", lambda ln: PBLink(ln.cid, (ln.name or "")[:2] + "..", ln.tsize))
    relabel("label-missing.car", lambda ln: PBLink(ln.cid, None, ln.tsize))
    bad_hash = encode_node(
        PBNode(node.links, encode_unixfs(UnixFSData(5, b"\x01", None, (), 0x12, 256)))
    )
    out["hash-type-sha256.car"] = _rebuilt_car(root, store, {root.bytes: bad_hash})
    bad_fanout = encode_node(
        PBNode(node.links, encode_unixfs(UnixFSData(5, b"\x01", None, (), 0x22, 3)))
    )
    out["fanout-3.car"] = _rebuilt_car(root, store, {root.bytes: bad_fanout})
    self_loop = encode_node(PBNode((PBLink(root, "00", 1),), node.data))
    out["shard-links-to-missing-block.car"] = _rebuilt_car(root, store, {root.bytes: self_loop})
    good = t.car_bytes(root, store)
    out["truncated.car"] = good[: len(good) // 2]
    return out


def _multibase() -> dict[str, bytes]:
    return {
        "empty.txt": b"",
        "unknown-prefix.txt": b"mAAAA",
        "base32-upper-case.txt": b"bMFRGG",
        "base32-padding.txt": b"bmfrgg===",
        "base32-trailing-bits.txt": b"bmfrgh",
        "base32-impossible-length.txt": b"bm",
        "base58-zero-digit.txt": b"z0OIl",
        "base36-upper.txt": b"kABC",
        "base16-odd-length.txt": b"fabc",
        "base16-upper-case.txt": b"fABCD",
        "regress-base16-whitespace.txt": b"f" + b"\x0c" * 16,
        "base16-spaces.txt": b"f01 02",
        "too-long.txt": b"z" + b"2" * 5000,
        "lone-surrogate.txt": b"b\xed\xa0\x80",
    }


def _cid() -> dict[str, bytes]:
    v1 = CID.for_block(RAW, b"a")
    v0 = CID.for_block(DAG_PB, b"b", version=0)
    return {
        "v0-truncated.bin": b"\x00" + v0.bytes[:20],
        "version-2.bin": b"\x00\x02" + v1.bytes[1:],
        "version-0-explicit.bin": b"\x00\x00" + v1.bytes[1:],
        "unknown-codec.bin": b"\x00\x01\x99\x01" + v1.bytes[2:],
        "unknown-hash.bin": b"\x00\x01\x55\x11\x20" + bytes(32),
        "sha256-digest-31.bin": b"\x00\x01\x55\x12\x1f" + bytes(31),
        "identity-too-long.bin": b"\x00\x01\x55\x00\x81\x01" + bytes(129),
        "trailing-bytes.bin": b"\x00" + v1.bytes + b"\x00",
        "codec-varint-huge.bin": b"\x00\x01" + b"\xff" * 9 + b"\x01",
        "digest-length-past-end.bin": b"\x00\x01\x55\x00\x7f" + bytes(3),
        "string-v0-bad-char.txt": b"\x01Qm" + b"0" * 44,
        "string-multibase-v0.txt": b"\x01b" + multibase.b32_encode(v0.bytes).encode(),
        "string-too-long.txt": b"\x01b" + b"a" * 600,
        "string-empty.txt": b"\x01",
        "string-mixed-case.txt": b"\x01B"
        + str(v1)[1:].encode().swapcase()[:10]
        + str(v1)[11:].encode(),
    }


def _json_family(mode: bytes = b"") -> dict[str, bytes]:
    return {
        "nested-too-deep-array.json": mode + DEEP_ARRAY,
        "nested-too-deep-object.json": mode + DEEP_OBJECT,
        "not-json.json": mode + b"\xff\xfe{",
        "json-array.json": mode + b"[1,2]",
        "truncated.json": mode + b'{"format":',
        "lone-surrogate.json": mode + b'{"format":"\\ud800"}',
        "huge-number.json": mode + b'{"version":' + b"9" * 5000 + b"}",
        "nan.json": mode + b'{"version":NaN}',
    }


def _contact_card() -> dict[str, bytes]:
    card = t.contact_card_seeds()[0]
    return {
        **_json_family(),
        "duplicate-field.json": card[:-1] + b',"name":"Mallory"}',
        "wrong-format.json": card.replace(b"ownvault-contact", b"ownvault-grant"),
        "version-2.json": card.replace(b'"version":1', b'"version":2'),
        "unknown-field.json": card[:-1] + b',"extra":1}',
        "agreement-not-multibase.json": card.replace(b'"agreement":"z', b'"agreement":"m'),
        "agreement-array.json": card.replace(b'"agreement":"', b'"agreement":["').replace(
            b'","created', b'"],"created', 1
        ),
        "sig-not-base64.json": card.replace(b'"sig":"', b'"sig":"!!'),
        "created-string.json": card.replace(b'"created":1700000000', b'"created":"x"'),
        "did-not-did-key.json": card.replace(b'"did":"did:key:z', b'"did":"did:web:z'),
        "forged-name.json": card.replace(b"Alice", b"Alicf"),
    }


def _grant() -> dict[str, bytes]:
    seeds = t.grant_seeds()
    text, plain = seeds[0], seeds[1]
    return {
        **_json_family(),
        "short-form-truncated.txt": text[:40],
        "short-form-not-base64.txt": b"ovgrant1:!!!!",
        "short-form-deep.txt": b"ovgrant1:"
        + __import__("base64").urlsafe_b64encode(DEEP_ARRAY[:6000]),
        "duplicate-field.json": plain[:-1] + b',"access":"write"}',
        "providers-empty.json": plain.replace(b'"providers":[{', b'"providers":[],"x":[{'),
        "providers-not-list.json": plain.replace(b'"providers":[', b'"providers":{"a":[', 1),
        "id-not-hex.json": plain.replace(b'"id":"', b'"id":"zz'),
        "expires-float.json": plain.replace(b'"expires":1800000000', b'"expires":1.5'),
        "version-2.json": plain.replace(b'"version":1', b'"version":2'),
        "forged.json": plain.replace(b"127.0.0.1", b"127.0.0.2"),
        "capability-list.bin": b"\x01[1]",
        "not-utf8.bin": b"\xff" * 10,
    }


def _grant_manifest() -> dict[str, bytes]:
    good = t.grant_manifest_seeds()[0]
    return {
        "magic-wrong.bin": b"\x00OVGX\x01" + good[6:],
        "version-2.bin": b"\x00OVGM\x02" + good[6:],
        "truncated-signature.bin": good[:40],
        "tampered-box.bin": good[:-1] + bytes((good[-1] ^ 1,)),
        "box-only-magic.bin": b"\x01" + MANIFEST_BODY_MAGIC,
        "box-wrong-magic.bin": b"\x01OVGX\x01" + zlib.compress(b"{}"),
        "box-zlib-truncated.bin": b"\x01"
        + MANIFEST_BODY_MAGIC
        + zlib.compress(b'{"grant":1}')[:-3],
        "box-zlib-trailing.bin": b"\x01" + MANIFEST_BODY_MAGIC + zlib.compress(b"{}") + b"junk",
        "box-not-zlib.bin": b"\x01" + MANIFEST_BODY_MAGIC + b"{}",
        "body-empty.bin": b"\x02",
        "body-wrong-grant.bin": b'\x02{"grant":"00","generation":1}',
        "body-generation-string.bin": b'\x02{"grant":"000102030405060708090a0b0c0d0e0f","generation":"1"}',
        **{k.replace(".json", ".bin"): v for k, v in _json_family(b"\x02").items()},
    }


def _grant_revocation() -> dict[str, bytes]:
    good = t.grant_revocation_seeds()[0]
    return {
        "magic-wrong.bin": b"\x00OVGX" + good[5:],
        "truncated.bin": good[:30],
        "tampered.bin": good[:-2] + b"1}",
        "too-large.bin": b"\x00OVGR\x01" + bytes(20000),
        "body-revoked-string.bin": b'\x01{"grant":"000102030405060708090a0b0c0d0e0f","revoked":"x"}',
        "body-revoked-float.bin": b'\x01{"grant":"000102030405060708090a0b0c0d0e0f","revoked":1.5}',
        **{k.replace(".json", ".bin"): v for k, v in _json_family(b"\x01").items()},
    }


def _capability() -> dict[str, bytes]:
    token = t.capability_seeds()[0]
    body = t.capability_seeds()[1][1:]
    return {
        "no-dot.txt": b"\x00" + token.replace(b".", b""),
        "two-dots.txt": b"\x00" + token + b".x",
        "not-base64.txt": b"\x00!!.??",
        "base64-impossible-length.txt": b"\x00A.A",
        "too-long.txt": b"\x00" + b"A" * 5000 + b".A",
        "forged.txt": b"\x00" + token[:-3] + (b"AAA" if not token.endswith(b"AAA") else b"BBB"),
        "body-nested-too-deep.bin": b"\x01" + b"[" * 1400 + b"]" * 1400,
        "regress-ops-unhashable.bin": b"\x01"
        + body.replace(b'"ops":["get","list","stat"]', b'"ops":[[1]]'),
        "ops-duplicate.bin": b"\x01"
        + body.replace(b'"ops":["get","list","stat"]', b'"ops":["get","get"]'),
        "expires-bool.bin": b"\x01" + body.replace(b'"expires":null', b'"expires":true'),
        "prefix-dot-dot.bin": b"\x01" + body.replace(b'"shares/"', b'"shares/../"'),
        "prefixes-too-many.bin": b"\x01" + body.replace(b'"list":[', b'"list":[' + b'"a/",' * 20),
        "non-canonical-spaces.bin": b"\x01" + body.replace(b",", b", "),
        "duplicate-key.bin": b"\x01" + body[:-1] + b',"v":1}',
        "version-2.bin": b"\x01" + body.replace(b'"v":1', b'"v":2'),
    }


def _snapshot() -> dict[str, bytes]:
    good = t.snapshot_seeds()[0]
    return {
        "sealed-too-short.bin": b"\x00\x01abc",
        "sealed-version-2.bin": b"\x00\x02" + good[2:],
        "tampered.bin": good[:-1] + bytes((good[-1] ^ 1,)),
        "plain-empty.bin": b"\x01",
        "regress-plain-magic-without-version.bin": b"\x01" + SNAPSHOT_MAGIC,
        "plain-version-2.bin": b"\x01" + SNAPSHOT_MAGIC + b"\x02" + zlib.compress(b"x"),
        "plain-zlib-truncated.bin": b"\x01"
        + SNAPSHOT_MAGIC
        + b"\x01"
        + zlib.compress(b"x" * 100)[:-4],
        "plain-zlib-trailing.bin": b"\x01"
        + SNAPSHOT_MAGIC
        + b"\x01"
        + zlib.compress(b"x")
        + b"junk",
        "plain-not-zlib.bin": b"\x01" + SNAPSHOT_MAGIC + b"\x01" + b"SQLite format 3",
        "wrong-seq.bin": b"\x00" + encode_snapshot(t.KEY, t.SEQ + 1, b"db"),
    }


def _locator() -> dict[str, bytes]:
    good = t.locator_seeds()[0]
    return {
        "magic-wrong.bin": b"\x00OVLX" + good[5:],
        "magic-only.bin": b"\x00OVLC",
        "version-2.bin": b"\x00OVLC\x02" + good[6:],
        "box-truncated.bin": good[:20],
        "tampered.bin": good[:-1] + bytes((good[-1] ^ 1,)),
        "seq-mismatch.bin": b'\x01{"seq":8}',
        "not-object.bin": b"\x01[7]",
        "not-utf8.bin": b"\x01\xff\xfe",
        "nested-too-deep.bin": b"\x01" + DEEP_ARRAY,
        "nested-too-deep-object.bin": b"\x01" + DEEP_OBJECT,
        "huge-number.bin": b'\x01{"seq":' + b"7" * 5000 + b"}",
    }


def _share() -> dict[str, bytes]:
    data = encode_share(ShareHeader(2, 3, 1, bytes(16)), b"fragment" * 8)
    stored, _root = attach_tree(data)
    return {
        "too-short.bin": data[:10],
        "magic-wrong.bin": b"OVSX" + data[4:],
        "version-2.bin": data[:4] + b"\x02" + data[5:],
        "k-zero.bin": data[:5] + b"\x00" + data[6:],
        "k-equals-n.bin": data[:5] + b"\x03\x03" + data[7:],
        "index-past-n.bin": data[:7] + b"\x09" + data[8:],
        "trailer-magic-wrong.bin": stored[:-4] + b"OVMX",
        "trailer-format-2.bin": stored[:-8] + b"\x02" + stored[-7:],
        "trailer-length-huge.bin": stored[:-16] + (1 << 63).to_bytes(8, "big") + stored[-8:],
        "trailer-length-too-large.bin": stored[:-16]
        + (len(data) + 1).to_bytes(8, "big")
        + stored[-8:],
        "truncated-stored.bin": stored[:-17] + stored[-16:],
        "trailer-only.bin": stored[-16:],
    }


def _pack_blob() -> dict[str, bytes]:
    blob = seal_chunk(t.KEY, bytes(32), b"chunk plaintext")
    return {
        "blob-empty.bin": b"\x00",
        "blob-too-short.bin": b"\x00\x01" + bytes(20),
        "blob-version-2.bin": b"\x00\x02" + blob[1:],
        "blob-tampered.bin": b"\x00" + blob[:-1] + bytes((blob[-1] ^ 1,)),
        "blob-truncated-tag.bin": b"\x00" + blob[:-5],
        "wrapped-key-short.bin": b"\x01\x01" + bytes(10),
        "key-16-bytes.bin": b"\x02" + bytes(16),
        "key-empty.bin": b"\x02",
        "pack-header-as-blob.bin": b"\x00OVPK\x01\x00\x00\x00" + bytes(40),
    }


def _audit_answers() -> dict[str, bytes]:
    ok = Answer(0, b"block", (bytes(32),))
    good = encode_answers([ok])
    return {
        "too-short.bin": good[:6],
        "magic-wrong.bin": b"OVAX" + good[4:],
        "version-2.bin": good[:4] + b"\x02" + good[5:],
        "count-too-large.bin": good[:5] + b"\xff\xff" + good[7:],
        "block-length-huge.bin": good[:8] + b"\xff\xff\xff\xff" + good[12:],
        "path-depth-too-deep.bin": good[:-33] + b"\xff" + good[-32:],
        "path-truncated.bin": good[:-5],
        "trailing-bytes.bin": good + b"\x00",
        "failed-answer-with-block.bin": encode_answers([ok]).replace(
            b"\x00\x00\x00\x00\x05", b"\x01\x00\x00\x00\x05", 1
        ),
    }


def _keystore() -> dict[str, bytes]:
    good = t.keystore_seeds()[0]
    return {
        **_json_family(),
        "regress-time-cost-infinity.json": good.replace(
            b'"time_cost": 1', b'"time_cost": Infinity'
        ),
        "time-cost-huge.json": good.replace(b'"time_cost": 1', b'"time_cost": ' + b"9" * 5000),
        "memory-huge.json": good.replace(b'"memory_kib": 8', b'"memory_kib": 99999999999'),
        "kdf-scrypt.json": good.replace(b"argon2id", b"scrypt"),
        "kdf-missing.json": b'{"format":"ownvault-keystore","version":1}',
        "kdf-string.json": b'{"format":"ownvault-keystore","version":1,"kdf":"argon2id"}',
        "salt-not-hex.json": good.replace(b'"salt": "', b'"salt": "zz'),
        "version-2.json": good.replace(b'"version": 1', b'"version": 2'),
        "too-large.json": b" " * 70000 + good,
        **_keystore_v2(),
    }


def _keystore_v2() -> dict[str, bytes]:
    """Version 2 (with the device box) gone wrong."""
    v2 = json.loads(t.keystore_seeds()[1])
    device = v2["device"]

    def doc(**changes: object) -> bytes:
        return json.dumps({**v2, **changes}).encode()

    return {
        "v2-version-1-with-device.json": doc(version=1),
        "v2-version-3.json": doc(version=3),
        "v2-version-true.json": doc(version=True),
        "v2-device-extra-field.json": doc(device={**device, "extra": 1}),
        "v2-device-not-object.json": doc(device=["id", "name", "box"]),
        "v2-device-id-short.json": doc(device={**device, "id": "00"}),
        "v2-device-id-number.json": doc(device={**device, "id": 7}),
        "v2-device-name-empty.json": doc(device={**device, "name": ""}),
        "v2-device-name-nul.json": doc(device={**device, "name": "a\u0000b"}),
        "v2-device-name-long.json": doc(device={**device, "name": "n" * 513}),
        "v2-device-box-not-hex.json": doc(device={**device, "box": "zz"}),
    }


def _nft_metadata() -> dict[str, bytes]:
    return {
        **_json_family(),
        "duplicate-key.json": b'{"name":"a","name":"b"}',
        "infinity.json": b'{"name":Infinity}',
        "bom-then-object.json": b'\xef\xbb\xbf{"image":"ipfs://x"}',
        "ipfs-uri-bad-cid.json": b'{"image":"ipfs://notacid/a.png"}',
        "ipfs-uri-dot-dot.json": b'{"image":"ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/../x"}',
        "data-uri-bad-base64.json": b'{"image":"data:image/png;base64,@@@"}',
        "data-uri-no-comma.json": b'{"image":"data:image/png;base64"}',
        "data-uri-lone-surrogate.json": b'{"image":"data:text/plain,\\udc80"}',
        "http-unbalanced-bracket.json": b'{"image":"http://[::1/x"}',
        "too-many-uris.json": b"[" + b",".join([b'"https://a.example/"'] * 100) + b"]",
    }


def _nft_uri() -> dict[str, bytes]:
    return {
        "regress-http-invalid-ipv6.txt": b"https://i]fs.io/ipfq/QmYwAP",
        "http-open-bracket.txt": b"http://[::1/x",
        "http-bad-port.txt": b"http://example.org:99999999/x",
        "http-no-host.txt": b"http:///x",
        "ipfs-no-cid.txt": b"ipfs://",
        "ipfs-empty-segment.txt": b"ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy//x",
        "ipfs-percent-slash.txt": b"ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/a%2Fb",
        "ar-bad-tx.txt": b"ar://short",
        "data-lone-surrogate.txt": b"data:,\xed\xb2\x80",
        "regress-data-surrogate-escape.txt": b"data:,\xe5",
        "regress-ipfs-path-surrogate.txt": bytes.fromhex(
            "697066733a2f2f6261666b726569676832616b69736361696c646371616273796733646672366368"
            "753366677072656769796d73636b376537617161347335327a792fffffffff6125314662"
        ),
        "data-percent-surrogate.txt": b"data:,%41\xed\xb2\x80",
        "data-bad-media-type.txt": b"data:not a type,x",
        "data-header-too-long.txt": b"data:" + b"a" * 2000 + b",x",
        "token-huge-id.txt": b"eth:1:0x" + b"ab" * 20 + b":" + b"9" * 5000,
        "token-chain-zero.txt": b"eth:0:0x" + b"ab" * 20 + b":1",
        "uri-too-long.txt": b"https://a.example/" + b"a" * 10000,
    }


def _nft_abi() -> dict[str, bytes]:
    w = lambda n: n.to_bytes(32, "big")  # noqa: E731
    return {
        "empty.bin": b"",
        "unaligned.bin": bytes(65),
        "offset-not-32.bin": w(64) + w(0),
        "length-huge.bin": w(32) + w((1 << 256) - 1),
        "length-past-end.bin": w(32) + w(33) + bytes(32),
        "padding-not-zero.bin": w(32) + w(1) + b"a" + b"\x01" * 31,
        "not-utf8.bin": w(32) + w(2) + b"\xff\xfe" + bytes(30),
        "bool-two.bin": w(2),
    }


def _node_protocol() -> dict[str, bytes]:
    return {
        "audit-not-json.json": b"\x00\xff",
        "audit-challenges-missing.json": b"\x00{}",
        "audit-challenges-empty.json": b'\x00{"challenges":[]}',
        "audit-challenges-not-list.json": b'\x00{"challenges":{"name":"a","block":1}}',
        "audit-block-negative.json": b'\x00{"challenges":[{"name":"a","block":-1}]}',
        "audit-block-bool.json": b'\x00{"challenges":[{"name":"a","block":true}]}',
        "audit-block-huge.json": b'\x00{"challenges":[{"name":"a","block":' + b"9" * 5000 + b"}]}",
        "audit-entry-not-object.json": b'\x00{"challenges":[1]}',
        "audit-name-dot-dot.json": b'\x00{"challenges":[{"name":"../x","block":1}]}',
        "audit-top-level-list.json": b"\x00[1]",
        # json.loads raised RecursionError here before the node protocol bounded the depth
        "audit-nested-too-deep.json": b"\x00" + DEEP_ARRAY,
        "error-nested-too-deep.json": b"\x01" + DEEP_OBJECT,
        "error-not-object.json": b"\x01[1]",
        "listing-out-of-order.json": b'\x02{"objects":[{"name":"shares/b","size":1},{"name":"shares/a","size":1}],"more":false}',
        "listing-outside-prefix.json": b'\x02{"objects":[{"name":"other/a","size":1}],"more":false}',
        "listing-size-negative.json": b'\x02{"objects":[{"name":"shares/a","size":-1}],"more":false}',
        "listing-nested-too-deep.json": b"\x02" + DEEP_ARRAY,
        "info-wrong-types.json": b'\x03{"protocol":1,"node_id":[],"free_bytes":"x"}',
        "info-huge-number.json": b'\x03{"free_bytes":' + b"9" * 5000 + b"}",
    }


def _node_auth() -> dict[str, bytes]:
    return {
        "unsigned.txt": b"\x00host: 127.0.0.1:9",
        "signature-input-garbage.txt": b"\x01signature-input: ((((",
        "signature-garbage.txt": b"\x01signature: ov=:!!!:",
        "signature-input-not-inner-list.txt": b"\x01signature-input: ov=1;created=1",
        "signature-two-labels.txt": b"\x01signature-input: ov=();created=1, ow=();created=2\nsignature: ov=:AAAA:, ow=:AAAA:",
        "created-string.txt": b'\x01signature-input: ov=("@method");created="x";keyid="did:key:z";alg="ed25519";tag="ownvault-node/1"',
        "created-huge.txt": b'\x01signature-input: ov=("@method");created=999999999999999999;keyid="k";alg="ed25519";tag="ownvault-node/1"',
        "content-digest-garbage.txt": b"\x01content-digest: sha-256=:@@:",
        "content-digest-unknown-alg.txt": b"\x01content-digest: md5=:AAAA:",
        "content-digest-twice.txt": b"\x01content-digest: sha-256=:AAAA:\ncontent-digest: sha-256=:BBBB:",
        "capability-unsigned.txt": b"\x01ownvault-capability: x.y",
        "keyid-not-did.txt": b'\x01signature-input: ov=("@method");created=1;keyid="x";alg="ed25519";tag="ownvault-node/1";nonce="aaaaaaaaaaaaaaaaaaaa"',
    }


def _api_bodies() -> dict[str, bytes]:
    return {
        "range-huge.txt": b"\xffbytes=" + b"9" * 5000 + b"-",
        "range-negative-suffix.txt": b"\xffbytes=--5",
        "range-unicode-digits.txt": "\xffbytes=\u0661-\u0662".encode("latin-1", "ignore")
        + "\u0661".encode(),
        "range-start-past-end.txt": b"\xffbytes=2000-",
        "body-nested-too-deep.json": b"\x00" + DEEP_ARRAY,
        "body-not-utf8.json": b"\x01\xff\xfe",
        "body-huge-int.json": b'\x00{"version":' + b"9" * 5000 + b"}",
        "body-wrong-types.json": b'\x09{"name":1,"url":[]}',
        "body-login-surrogate.json": b'\x0e{"passphrase":"\\ud800"}',
    }


def _erasure_fragments() -> dict[str, bytes]:
    frags = ErasureCode(2, 3).encode(bytes(range(100)))  # selector 1: k=2, n=3

    def given(*replaced: tuple[int, bytes]) -> bytes:
        parts = dict(enumerate(frags))
        parts.update(replaced)
        return b"\x01\x07" + b"".join(parts.values())

    def with_crc(frag: bytes, offset: int, value: bytes) -> bytes:
        out = bytearray(frag)
        out[offset : offset + len(value)] = value
        out[67:71] = zlib.crc32(out[:59]).to_bytes(4, "little")
        return bytes(out)

    return {
        "magic-wrong.bin": given((0, with_crc(frags[0], 59, b"\0\0\0\0"))),
        "metadata-crc-wrong.bin": given((1, frags[1][:67] + b"\0\0\0\0" + frags[1][71:])),
        "index-past-n.bin": given((0, with_crc(frags[0], 0, (9).to_bytes(4, "little")))),
        "sizes-disagree.bin": given((1, with_crc(frags[1], 12, (99).to_bytes(8, "little")))),
        "size-says-huge.bin": given((0, with_crc(frags[0], 4, (1 << 31).to_bytes(4, "little")))),
        "orig-size-huge.bin": given(
            *((i, with_crc(f, 12, (1 << 63).to_bytes(8, "little"))) for i, f in enumerate(frags))
        ),
        "backend-other.bin": given((0, with_crc(frags[0], 54, b"\x04"))),
        "payload-crc-wrong.bin": given(
            (0, with_crc(frags[0], 20, b"\x02\x01\x02\x03\x04")),
        ),
        "truncated-header.bin": b"\x01\x07" + frags[0][:50] * 3,
        "libec-version-zero.bin": given((0, frags[0][:63] + b"\0\0\0\0" + frags[0][67:])),
    }


MAKERS = {
    "car": _car,
    "dagpb": _dagpb,
    "unixfs": _unixfs,
    "hamt": _hamt,
    "hamt_car": _hamt_car,
    "multibase": _multibase,
    "cid": _cid,
    "contact_card": _contact_card,
    "grant": _grant,
    "grant_manifest": _grant_manifest,
    "grant_revocation": _grant_revocation,
    "capability": _capability,
    "snapshot": _snapshot,
    "locator": _locator,
    "journal": journal_fixtures,
    "checkpoint": checkpoint_fixtures,
    "journal_rows": journal_rows_fixtures,
    "share": _share,
    "erasure_fragments": _erasure_fragments,
    "pack_blob": _pack_blob,
    "audit_answers": _audit_answers,
    "keystore": _keystore,
    "nft_metadata": _nft_metadata,
    "nft_uri": _nft_uri,
    "nft_abi": _nft_abi,
    "node_protocol": _node_protocol,
    "node_auth": _node_auth,
    "api_bodies": _api_bodies,
    "drive": drive_fixtures,
}


def main() -> None:
    assert set(MAKERS) == set(t.TARGETS), set(MAKERS) ^ set(t.TARGETS)
    for name, make in MAKERS.items():
        folder = ROOT / name
        folder.mkdir(parents=True, exist_ok=True)
        for file, data in make().items():
            (folder / file).write_bytes(data)
    print(f"wrote fixtures for {len(MAKERS)} targets under {ROOT}")


if __name__ == "__main__":
    main()
