"""Fuzz targets: one function per decoder, each taking arbitrary bytes.

The property every target checks: bad input raises only the exceptions the decoder is
allowed to raise (``OwnvaultError`` for everything in ``ownvault``; the server's own HTTP
error types for the node and API body parsers), and, where the project has an encoder,
that what decodes re-encodes to the same value (``decode(encode(decode(x))) ==
decode(x)``, or byte equality where the decoder only accepts canonical forms). Anything
else (IndexError, struct.error, RecursionError, a failed round trip) escapes the target
and is a crash.

Targets import no fuzzing engine: the same functions are driven by atheris (coverage-
guided, ``tests/fuzz/engine.py``) and replayed on the stored corpus by pytest
(``tests/fuzz/test_corpus.py``).

Keyed formats (signed or sealed) take a mode byte first: mode 0 feeds the rest to the
decoder as it would arrive from a provider; the other modes let the harness sign or seal
the rest with fixed test keys first, so the fuzzer reaches the parser behind the
signature or AEAD (a hostile grant sender signs whatever it likes).
"""

from __future__ import annotations

import base64
import contextlib
import json
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ownvault.core import crypto, multibase, nftmeta
from ownvault.core.capability import CAPABILITY_LABEL, ReadCapability, grant_capability
from ownvault.core.car import CARV2_PRAGMA, CarReader, dfs_blocks, write_car
from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.crypto import Argon2Params
from ownvault.core.dagpb import (
    PBLink,
    PBNode,
    UnixFSData,
    decode_node,
    decode_unixfs,
    encode_node,
    encode_unixfs,
    links_of,
)
from ownvault.core.erasure import ErasureCode
from ownvault.core.fragment import HEADER_SIZE as FRAGMENT_HEADER_SIZE
from ownvault.core.fragment import FragmentHeader
from ownvault.core.grants import (
    MANIFEST_BODY_MAGIC,
    REVOCATION_AD,
    REVOCATION_MAGIC,
    ContactCard,
    Grant,
    _manifest_ad,
    canonical,
    decode_manifest,
    decode_revocation,
    encode_manifest,
    encode_revocation,
)
from ownvault.core.journal import DeviceKey
from ownvault.core.keys import VaultKeys
from ownvault.core.keystore import DeviceSeal, Keystore
from ownvault.core.pack import (
    ShareHeader,
    ShareLayout,
    attach_tree,
    decode_share,
    encode_share,
    open_chunk,
    seal_chunk,
    split_share,
    unwrap_chunk_key,
    wrap_chunk_key,
)
from ownvault.core.proofs import Answer, decode_answers, encode_answers
from ownvault.core.snapshot import (
    LOCATOR_AD,
    LOCATOR_MAGIC,
    SNAPSHOT_AD,
    SNAPSHOT_MAGIC,
    decode_locator,
    decode_snapshot,
    encode_locator,
    encode_snapshot,
)
from ownvault.core.unixfs import PROFILES, DirEntry, build_directory, import_bytes
from ownvault.errors import OwnvaultError
from tests.fuzz.checkpoint_target import checkpoint, checkpoint_seeds
from tests.fuzz.journal_target import journal, journal_seeds
from tests.fuzz.journalrows_target import journal_rows, journal_rows_seeds

if TYPE_CHECKING:
    from ownvault.server.node.auth import Authenticator

__all__ = ["TARGETS", "Target"]

Fn = Callable[[bytes], None]


@dataclass(frozen=True)
class Target:
    """A named fuzz target. ``decode(data)`` runs the decoder and checks its round trip,
    raising whatever the decoder raises; ``run(data)`` is what the fuzzer calls: it lets
    through everything except the decoder's own errors (``allowed``). ``seeds()`` are
    valid inputs made by the project's encoders (the corpus the fuzzer starts from, with
    the stored corrupt fixtures)."""

    name: str
    decode: Fn
    seeds: Callable[[], list[bytes]]
    max_len: int = 4096
    allowed: tuple[type[BaseException], ...] = (OwnvaultError,)

    def run(self, data: bytes) -> None:
        with contextlib.suppress(*self.allowed):
            self.decode(data)


def _text(data: bytes) -> str:
    # Lone surrogates included: JSON strings ("\ud800") can carry them into any str decoder.
    return data.decode("utf-8", "surrogateescape")


# -- fixed test identities (deterministic) --------------------------------------------------


@cache
def alice_keys() -> VaultKeys:
    return VaultKeys(bytes(range(32)))


@cache
def _bob() -> VaultKeys:
    return VaultKeys(bytes(range(32, 64)))


KEY = bytes(range(100, 132))
GRANT_ID = bytes(range(16))
SEQ = 7
GEN = 1


# -- CAR ------------------------------------------------------------------------------------


def _chunked(data: bytes) -> Iterator[bytes]:
    # The chunking is derived from the input so the stored fixtures stay plain CAR files.
    size = 1 + len(data) % 61
    for i in range(0, len(data), size):
        yield data[i : i + size]


def car(data: bytes) -> None:
    """CARv1/CARv2 streaming reader; what reads back re-encodes (CARv1) to the same blocks."""
    reader = CarReader(_chunked(data))
    blocks = [(b.cid, b.data) for b in reader]
    distinct = list({c.bytes: (c, d) for c, d in reversed(blocks)}.values())[::-1]
    again = CarReader([b"".join(write_car(reader.roots, blocks))])
    assert again.roots == reader.roots
    assert [(b.cid, b.data) for b in again] == distinct


def _sample_dag() -> tuple[CID, dict[bytes, bytes]]:
    store: dict[bytes, bytes] = {}

    def keep(cid: CID, block: bytes) -> None:
        store[cid.bytes] = block

    root = import_bytes(bytes(range(256)) * 1200, PROFILES["kubo-v1"], keep)
    return root.cid, store


def car_bytes(root: CID, store: dict[bytes, bytes]) -> bytes:
    blocks = dfs_blocks(root, lambda c: store[c.bytes])
    return b"".join(write_car([root], blocks))


def car_v2(payload: bytes, pad: int = 0) -> bytes:
    """Wrap a CARv1 payload as a CARv2 (no index)."""
    offset = len(CARV2_PRAGMA) + 40 + pad
    header = (
        bytes(16) + offset.to_bytes(8, "little") + len(payload).to_bytes(8, "little") + bytes(8)
    )
    return CARV2_PRAGMA + header + bytes(pad) + payload


def car_seeds() -> list[bytes]:
    root, store = _sample_dag()
    v1 = car_bytes(root, store)
    raw = CID.for_block(RAW, b"hello")
    small = b"".join(write_car([raw], [(raw, b"hello")]))
    return [v1, small, car_v2(small), car_v2(small, pad=5)]


# -- dag-pb, UnixFS, HAMT shards --------------------------------------------------------------


def dagpb(data: bytes) -> None:
    """dag-pb is decoded strictly (canonical only), so decode is a bijection: byte equality."""
    node = decode_node(data)
    assert encode_node(node) == data
    assert list(links_of(data)) == [link.cid for link in node.links]


def _norm(u: UnixFSData) -> UnixFSData:
    return replace(u, data=u.data or None)  # the encoder omits an empty Data field


def unixfs(data: bytes) -> None:
    u = decode_unixfs(data)
    assert _norm(decode_unixfs(encode_unixfs(u))) == _norm(u)


def dir_blocks(
    count: int, profile_name: str, threshold: int | None
) -> tuple[CID, dict[bytes, bytes]]:
    profile = PROFILES[profile_name]
    if threshold is not None:
        profile = replace(profile, hamt_threshold=threshold)
    store: dict[bytes, bytes] = {}
    entries = []
    for i in range(count):
        body = f"file {i}".encode()
        cid = CID.for_block(RAW, body)
        store[cid.bytes] = body
        entries.append(DirEntry(f"f{i:03d}.txt", cid, len(body)))

    def keep(cid: CID, block: bytes) -> None:
        store[cid.bytes] = block

    root = build_directory(entries, profile, keep)
    return root.cid, store


def unixfs_seeds() -> list[bytes]:
    out = [
        encode_unixfs(UnixFSData(2, b"abc", 3, (), None, None, 0o644, (1_700_000_000, 5))),
        encode_unixfs(UnixFSData(1)),
        encode_unixfs(UnixFSData(5, b"\x01\x02", None, (), 0x22, 256)),
        encode_unixfs(UnixFSData(2, None, 300, (100, 200), mtime=(-5, None))),
    ]
    _root, store = _sample_dag()
    for block in store.values():
        pb = decode_node(block) if block[:1] in (b"\x12", b"\x0a") else None
        if pb is not None and pb.data is not None:
            out.append(pb.data)
    return out


def dagpb_seeds() -> list[bytes]:
    root, store = dir_blocks(40, "kubo-v1", 64)
    blocks = [store[root.bytes]]
    _r, files = _sample_dag()
    blocks += [b for b in files.values() if b[:1] in (b"\x12", b"\x0a")][:3]
    raw = CID.for_block(RAW, b"x")
    blocks.append(encode_node(PBNode((PBLink(raw, "", 0), PBLink(raw, None, None)), b"")))
    return blocks


def hamt(data: bytes) -> None:
    """One block as the gateway and the DAG walker classify it (HAMT fanout checks)."""
    from ownvault.engine.ipfs.dagwalk import inspect

    node = inspect(CID.for_block(DAG_PB, data), data)
    if node.kind == "shard":
        assert node.pb is not None and node.fanout >= 2


def hamt_seeds() -> list[bytes]:
    _root, store = dir_blocks(60, "kubo-v1", 64)
    return [b for b in store.values() if b[:1] in (b"\x12", b"\x0a")]


def hamt_car(data: bytes) -> None:
    """``car import``'s rebuild of a CAR (HAMT directories: labels, hashes, depth, names)."""
    from ownvault.engine.ipfs.carimport import rebuild_car

    with tempfile.TemporaryDirectory(prefix="ovfuzz-") as tmp:
        path = Path(tmp) / "in.car"
        path.write_bytes(data)
        rebuild_car(path, Path(tmp) / "out")


def hamt_car_seeds() -> list[bytes]:
    root, store = dir_blocks(30, "kubo-v1", 64)
    small_root, small_store = dir_blocks(3, "kubo-v1", None)
    return [car_bytes(root, store), car_bytes(small_root, small_store)]


# -- multibase and CIDs ------------------------------------------------------------------------


def multibase_(data: bytes) -> None:
    text = _text(data)
    raw = multibase.decode(text)
    encoders = {
        "b": multibase.b32_encode,
        "z": multibase.b58_encode,
        "k": multibase.b36_encode,
        "f": multibase.b16_encode,
    }
    assert text[0] + encoders[text[0]](raw) == text  # decoders accept canonical text only


def multibase_seeds() -> list[bytes]:
    raw = b"\x00\x00ownvault\xff"
    return [
        ("b" + multibase.b32_encode(raw)).encode(),
        ("z" + multibase.b58_encode(raw)).encode(),
        ("k" + multibase.b36_encode(raw)).encode(),
        ("f" + multibase.b16_encode(raw)).encode(),
    ]


def cid(data: bytes) -> None:
    """Mode 0: a binary CID; mode 1: a CID string."""
    if not data:
        return
    mode, body = data[0] % 2, data[1:]
    c = CID.from_bytes(body) if mode == 0 else CID.parse(_text(body))
    assert CID.from_bytes(c.bytes) == c
    assert CID.parse(str(c)) == c
    if c.version == 1:
        for base in ("base32", "base36", "base58btc"):
            assert CID.parse(c.encode(base)) == c
        assert CID.parse(str(c).upper()) == c


def cid_seeds() -> list[bytes]:
    cids = [
        CID.for_block(RAW, b"a"),
        CID.for_block(DAG_PB, b"b", version=0),
        CID.for_block(DAG_PB, b"c", hash_code=0x13),
        CID(1, RAW, 0, b"inline"),
    ]
    out = []
    for c in cids:
        out.append(b"\x00" + c.bytes)
        out.append(b"\x01" + str(c).encode())
        if c.version == 1:
            out.append(b"\x01" + c.encode("base36").encode())
    return out


# -- grants, contact cards, manifests, revocations, read capabilities ---------------------------


def contact_card(data: bytes) -> None:
    card = ContactCard.from_json(data)
    assert ContactCard.from_json(canonical(card.to_json())) == card


def contact_card_seeds() -> list[bytes]:
    card = ContactCard.create(alice_keys(), "Alice", 1_700_000_000)
    nameless = ContactCard.create(_bob(), None, 1_700_000_001)
    return [canonical(card.to_json()), json.dumps(nameless.to_json(), indent=1).encode()]


def _grant(capability: str | None) -> Grant:
    card = ContactCard.create(_bob(), "Bob", 1_700_000_000)
    return Grant.create(
        alice_keys(),
        card,
        GRANT_ID,
        KEY,
        created=1_700_000_000,
        expires=1_800_000_000,
        providers=[("node", "http://127.0.0.1:9/")],
        capability=capability,
    )


def grant(data: bytes) -> None:
    """Mode 0 (and anything not 1): grant text as received; mode 1: a genuinely signed
    grant whose ``capability`` is the fuzz input (the checks behind the signature)."""
    if data[:1] == b"\x01":
        try:
            text = data[1:].decode("utf-8")
        except UnicodeDecodeError:
            return
        Grant.parse(_grant(text).to_string())
        return
    g = Grant.parse(data)
    assert Grant.parse(g.to_string()) == g
    assert Grant.parse(canonical(g.to_json())) == g


def grant_seeds() -> list[bytes]:
    alice, bob = alice_keys(), _bob()
    cap = grant_capability(alice, bob.did, GRANT_ID, 1_800_000_000)
    g = _grant(cap)
    plain = _grant(None)
    return [
        g.to_string().encode(),
        canonical(plain.to_json()),
        json.dumps(g.to_json(), indent=2).encode(),
        b"\x01" + cap.encode(),
    ]


def grant_manifest(data: bytes) -> None:
    """Mode 0: a manifest object; 1: the box contents (sealed and signed here); 2: the JSON
    body (compressed, sealed and signed here)."""
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    alice = alice_keys()
    ad = _manifest_ad(GRANT_ID, GEN)
    if mode == 0:
        obj = body
    else:
        plain = body if mode == 1 else MANIFEST_BODY_MAGIC + zlib.compress(body)
        box = crypto.seal(KEY, plain, ad)
        obj = b"OVGM\x01" + alice.sign(ad + box) + box
    doc = decode_manifest(alice.did, KEY, GRANT_ID, GEN, obj)
    again = decode_manifest(
        alice.did, KEY, GRANT_ID, GEN, encode_manifest(alice, KEY, GRANT_ID, GEN, doc)
    )
    assert canonical(again) == canonical(doc)


def grant_manifest_seeds() -> list[bytes]:
    body = {"grant": GRANT_ID.hex(), "generation": GEN, "files": [{"name": "a.txt", "size": 3}]}
    return [
        b"\x00" + encode_manifest(alice_keys(), KEY, GRANT_ID, GEN, body),
        b"\x02" + canonical(body),
        b"\x01" + MANIFEST_BODY_MAGIC + zlib.compress(canonical(body)),
    ]


def grant_revocation(data: bytes) -> None:
    """Mode 0: a notice as stored; mode 1: the body, signed here."""
    if not data:
        return
    alice = alice_keys()
    if data[0] % 2 == 0:
        obj = data[1:]
    else:
        obj = REVOCATION_MAGIC + alice.sign(REVOCATION_AD + GRANT_ID + data[1:]) + data[1:]
    when = decode_revocation(alice.did, GRANT_ID, obj)
    assert decode_revocation(alice.did, GRANT_ID, encode_revocation(alice, GRANT_ID, when)) == when


def grant_revocation_seeds() -> list[bytes]:
    return [
        b"\x00" + encode_revocation(alice_keys(), GRANT_ID, 1_750_000_000),
        b"\x01" + canonical({"grant": GRANT_ID.hex(), "revoked": 1_750_000_000}),
    ]


def capability(data: bytes) -> None:
    """Mode 0: a token; mode 1: a capability body, encoded and signed here by the account."""
    if not data:
        return
    alice = alice_keys()
    if data[0] % 2 == 0:
        token = _text(data[1:])
    else:
        body = data[1:]
        token = (
            base64.urlsafe_b64encode(body).rstrip(b"=").decode()
            + "."
            + base64.urlsafe_b64encode(alice.sign(CAPABILITY_LABEL + body)).rstrip(b"=").decode()
        )
    cap = ReadCapability.parse(token)
    if cap.account == alice.did:
        assert ReadCapability.parse(cap.sign(alice)) == cap


def capability_seeds() -> list[bytes]:
    alice, bob = alice_keys(), _bob()
    token = grant_capability(alice, bob.did, GRANT_ID, None)
    body, _sig = token.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return [b"\x00" + token.encode(), b"\x01" + raw]


# -- catalog snapshots and locators -------------------------------------------------------------


def snapshot(data: bytes) -> None:
    """Mode 0: a sealed snapshot; 1: the plaintext (sealed here); 2: the database image
    inside a well-formed plaintext (compressed and sealed here)."""
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    ad = SNAPSHOT_AD + SEQ.to_bytes(8, "big")
    if mode == 0:
        sealed = body
    elif mode == 1:
        sealed = crypto.seal(KEY, body, ad)
    else:
        sealed = crypto.seal(KEY, SNAPSHOT_MAGIC + b"\x01" + zlib.compress(body), ad)
    image = decode_snapshot(KEY, SEQ, sealed)
    assert decode_snapshot(KEY, SEQ, encode_snapshot(KEY, SEQ, image)) == image
    if mode == 2:
        assert image == body


def snapshot_seeds() -> list[bytes]:
    db = b"SQLite format 3\x00" + bytes(100)
    return [
        b"\x00" + encode_snapshot(KEY, SEQ, db),
        b"\x02" + db,
        b"\x01" + SNAPSHOT_MAGIC + b"\x01" + zlib.compress(db),
    ]


def locator(data: bytes) -> None:
    """Mode 0: a locator object; 1: its JSON (sealed here)."""
    if not data:
        return
    if data[0] % 2 == 0:
        obj = data[1:]
    else:
        obj = (
            LOCATOR_MAGIC
            + b"\x01"
            + crypto.seal(KEY, data[1:], LOCATOR_AD + SEQ.to_bytes(8, "big"))
        )
    body = decode_locator(KEY, SEQ, obj)
    again = decode_locator(KEY, SEQ, encode_locator(KEY, SEQ, body))
    assert json.dumps(again, sort_keys=True) == json.dumps(body, sort_keys=True)


def _locator_body() -> dict[str, Any]:
    return {
        "seq": SEQ,
        "vault_id": "00" * 16,
        "created": 1_700_000_000,
        "sealed_len": 65536,
        "k": 2,
        "n": 3,
        "pieces": [
            {
                "pack_id": "11" * 16,
                "size": 65536,
                "shares": [{"index": 0, "provider": "p1", "root": "22" * 32, "size": 32816}],
            }
        ],
        "providers": [
            {
                "name": "p1",
                "kind": "node",
                "url": "http://127.0.0.1:9/",
                "jurisdiction": "CH",
                "labels": [],
            }
        ],
    }


def locator_seeds() -> list[bytes]:
    body = _locator_body()
    return [b"\x00" + encode_locator(KEY, SEQ, body), b"\x01" + json.dumps(body).encode()]


# -- packs, shares, audit answers, keystore -------------------------------------------------------


def share(data: bytes) -> None:
    """Share header, stored-share trailer and layout; encode_share inverts decode_share."""
    try:
        header, fragment = decode_share(data)
    except OwnvaultError:
        pass
    else:
        assert encode_share(header, fragment) == data
    try:
        body, leaves = split_share(data)
    except OwnvaultError:
        pass
    else:
        layout = ShareLayout(len(body))
        assert layout.total == len(data) and len(leaves) == layout.blocks
    if len(data) >= 16:
        with contextlib.suppress(OwnvaultError):
            ShareLayout.from_trailer(data[-16:])
    ShareLayout.for_total(len(data))


def share_seeds() -> list[bytes]:
    header = ShareHeader(2, 3, 1, bytes(range(16)))
    data = encode_share(header, b"fragment" * 8)
    stored, _root = attach_tree(data)
    return [data, stored, encode_share(ShareHeader(1, 2, 0, bytes(16)), b"")]


def _erasure_input(data: bytes) -> tuple[int, int, dict[int, bytes]]:
    """Byte 0 picks k (1..4) and n (k+1..k+4); byte 1 is a bitmask of the indexes given
    (all of them when it selects none); the rest is cut into that many equal fragments."""
    k = 1 + data[0] % 4
    n = k + 1 + (data[0] >> 2) % 4
    ids = [i for i in range(n) if data[1] >> i & 1] or list(range(n))
    body = data[2:]
    size = len(body) // len(ids)
    return k, n, {i: body[j * size : (j + 1) * size] for j, i in enumerate(ids)}


def erasure_fragments(data: bytes) -> None:
    """liberasurecode fragment headers and the erasure decoder (``core.fragment``,
    ``core.erasure``): whatever decodes re-encodes into fragments that decode to it, and a
    header that parses re-encodes into one that parses to the same fields."""
    if len(data) < 2:
        return
    k, n, fragments = _erasure_input(data)
    for fragment in fragments.values():
        with contextlib.suppress(OwnvaultError):
            header = FragmentHeader.decode(fragment, n)
            again = header.encode() + fragment[FRAGMENT_HEADER_SIZE:]
            assert FragmentHeader.decode(again, n) == header
    code = ErasureCode(k, n)
    out = code.decode(fragments)
    assert code.decode(dict(enumerate(code.encode(out)))) == out


def erasure_fragments_seeds() -> list[bytes]:
    out = []
    for k, n, mask, size in [(2, 3, 0b111, 100), (2, 3, 0b110, 33), (3, 5, 0b11010, 0)]:
        selector = (k - 1) | (n - k - 1) << 2
        frags = ErasureCode(k, n).encode(bytes(range(size)))
        given = b"".join(f for i, f in enumerate(frags) if mask >> i & 1)
        out.append(bytes((selector, mask)) + given)
    return out


def pack_blob(data: bytes) -> None:
    """Sealed chunk blobs and wrapped chunk keys (the only pack contents a reader parses:
    pack headers are never parsed, the catalog knows every blob's offset and length).
    Mode 0: a blob; 1: a wrapped key; 2: a key sealed here (its length is checked)."""
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    chunk_id = bytes(32)
    if mode == 0:
        plain = open_chunk(KEY, chunk_id, body)
        assert open_chunk(KEY, chunk_id, seal_chunk(KEY, chunk_id, plain)) == plain
    elif mode == 1:
        unwrap_chunk_key(KEY, chunk_id, body)
    else:
        key = unwrap_chunk_key(
            KEY, chunk_id, crypto.seal(KEY, body, b"ownvault/v1/chunk-key" + chunk_id)
        )
        assert key == body


def pack_blob_seeds() -> list[bytes]:
    chunk_id = bytes(32)
    return [
        b"\x00" + seal_chunk(KEY, chunk_id, b"chunk plaintext"),
        b"\x01" + wrap_chunk_key(KEY, chunk_id, bytes(range(32))),
        b"\x02" + bytes(32),
    ]


def audit_answers(data: bytes) -> None:
    """A node's audit answer body, decoded for the count it announces."""
    expected = int.from_bytes(data[5:7], "big") if len(data) >= 7 else 0
    answers = decode_answers(data, expected)
    assert encode_answers(answers) == data


def audit_answers_seeds() -> list[bytes]:
    ok = Answer(0, b"block" * 10, (bytes(32), bytes(range(32))))
    bad = Answer(1, b"", ())
    return [encode_answers([ok, bad]), encode_answers([])]


def keystore(data: bytes) -> None:
    ks = Keystore.from_json(data)
    assert Keystore.from_json(ks.to_json()) == ks


def keystore_seeds() -> list[bytes]:
    ks = Keystore(bytes(16), Argon2Params(1, 8, 1), bytes(range(16)), bytes(60), alice_keys().did)
    device = DeviceSeal.seal(alice_keys(), bytes(16), DeviceKey(bytes(32)), "laptop")
    return [ks.to_json().encode(), replace(ks, device=device).to_json().encode()]


# -- NFT metadata ---------------------------------------------------------------------------------


def nft_metadata(data: bytes) -> None:
    """Token metadata JSON, the URIs in it, and data: URIs decoded (bounded)."""
    doc = nftmeta.parse_metadata(data, max_bytes=1 << 20, max_depth=32)
    nftmeta.summarize(doc)
    for ref in nftmeta.extract_uris(doc, max_uris=64):
        if ref.uri.kind == "data":
            nftmeta.decode_data_uri(ref.uri.text, max_bytes=1 << 16)


def nft_metadata_seeds() -> list[bytes]:
    doc = {
        "name": "Token #1",
        "description": "see https://example.org/x",
        "image": "ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/a%20b.png",
        "animation_url": "ar://" + "a" * 43,
        "image_data": "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(),
        "external_url": "https://gateway.example/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG/x",
        "attributes": [{"trait_type": "k", "value": 1}],
    }
    return [json.dumps(doc).encode(), b'{"image":"data:,hello%20world"}']


def nft_uri(data: bytes) -> None:
    """One URI string from metadata or a contract; ipfs_uri re-parses to the same CID/path."""
    text = _text(data)
    try:
        uri = nftmeta.parse_uri(text)
    except OwnvaultError:
        uri = None
    if uri is not None and uri.kind == "ipfs":
        again = nftmeta.parse_uri(uri.ipfs_uri)
        assert again is not None and (again.cid, again.path) == (uri.cid, uri.path)
    with contextlib.suppress(OwnvaultError):
        nftmeta.decode_data_uri(text, max_bytes=4096)
    nftmeta.TokenRef.parse(text)


def nft_uri_seeds() -> list[bytes]:
    return [
        b"ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy/dir/file%3F.json",
        b"https://ipfs.io/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        b"data:application/json;base64,eyJhIjoxfQ==",
        b"eth:1:0x" + b"ab" * 20 + b":0x10",
        b"ar://" + b"a" * 43,
    ]


def nft_abi(data: bytes) -> None:
    """eth_call results: an ABI string or bool returned by a (hostile) contract."""
    with contextlib.suppress(OwnvaultError):
        nftmeta.decode_abi_bool(data)
    nftmeta.decode_abi_string(data, max_bytes=4096)


def nft_abi_seeds() -> list[bytes]:
    text = b"ipfs://bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    padded = text + bytes(-len(text) % 32)
    return [
        (32).to_bytes(32, "big") + len(text).to_bytes(32, "big") + padded,
        (1).to_bytes(32, "big"),
    ]


# -- storage node and vault API request parsing ---------------------------------------------------


def node_protocol(data: bytes) -> None:
    """The node protocol's JSON documents (providers/node/protocol.py), both directions:
    mode 0 an audit request body (what the node parses), 1 an error body, 2 a listing, 3 an
    info document (what the client parses from a node). Round trip where an encoder exists."""
    from ownvault.providers.node import protocol as p

    if not data:
        return
    mode, body = data[0] % 4, data[1:]
    if mode == 0:
        challenges = p.decode_challenges(body)
        assert p.decode_challenges(p.encode_challenges(challenges)) == challenges
    elif mode == 1:
        code, message = p.decode_error(body)
        p.decode_error(p.encode_error(code, message))
    elif mode == 2:
        p.decode_listing(body, prefix="shares/", after="", limit=1000)
    else:
        info = p.decode_info(body)
        assert p.decode_info(p.encode_info(info)) == info


def node_protocol_seeds() -> list[bytes]:
    from ownvault.providers.node import protocol as p

    return [
        b"\x00" + p.encode_challenges([("shares/ab/ab.0", 3), ("shares/cd/cd.1", 0)]),
        b"\x01" + p.encode_error("object_not_found", "no such object"),
        b'\x02{"objects":[{"name":"shares/ab/ab.0","size":3}],"more":false}',
        b'\x03{"protocol":"ownvault-node/1","node_id":"ab","jurisdiction":null,"free_bytes":1,'
        b'"quota_bytes":null,"used_bytes":0,"max_object_bytes":64}',
    ]


_NODE_ID = "ab" * 16


@cache
def _authenticator() -> Authenticator:
    from ownvault.server.node.auth import Authenticator

    return Authenticator(_NODE_ID, window=3600 * 24 * 365 * 100, started=0)


def _signed_headers(body: bytes, capability: str | None = None) -> list[tuple[str, str]]:
    import httpx

    from ownvault.providers.node.client import SeedSigner, sign_request

    request = httpx.Request("PUT", "http://127.0.0.1:9/v1/objects/shares/ab/x.0", content=body)
    sign_request(request, SeedSigner(bytes(32)), _NODE_ID, body, capability=capability)
    return list(request.headers.multi_items())


def node_auth(data: bytes) -> None:
    """RFC 9421 signature headers as the node reads them: only AuthFailure on bad input.

    The input is header lines (``name: value``); mode byte 1 starts from a genuinely
    signed request and replaces or adds the fuzzed headers (so the parser sees real
    Signature-Input / Signature / Content-Digest next to hostile ones)."""
    import httpx

    from ownvault.server.node.auth import AuthFailure, SignedMessage

    if not data:
        return
    mode, body = data[0] % 2, data[1:]
    fuzzed: list[tuple[str, str]] = []
    for line in body.split(b"\n"):
        name, sep, value = line.partition(b":")
        if sep and name.strip():
            fuzzed.append((name.strip().decode("latin-1"), value.strip().decode("latin-1")))
    headers = _signed_headers(b"x") if mode == 1 else [("host", "127.0.0.1:9")]
    names = {n.lower() for n, _v in fuzzed}
    items = [(n, v) for n, v in headers if n.lower() not in names] + fuzzed
    try:
        hdrs = httpx.Headers(items)
    except (ValueError, TypeError, UnicodeError):
        return  # not a header set an HTTP server could have handed over
    message = SignedMessage("PUT", "http://127.0.0.1:9/v1/objects/shares/ab/x.0", hdrs)
    with contextlib.suppress(AuthFailure):
        _authenticator().verify(message, now=1_900_000_000)
    _authenticator().check_body(message, b"x")


def node_auth_seeds() -> list[bytes]:
    headers = _signed_headers(b"x")
    keep = [
        (n, v)
        for n, v in headers
        if n.lower() in ("signature", "signature-input", "content-digest")
    ]
    lines = "\n".join(f"{n}: {v}" for n, v in keep).encode()
    return [b"\x01", b"\x00" + lines, b"\x01signature-input: ov=();created=1\nsignature: ov=:AAAA:"]


def _api_models() -> list[Any]:
    from ownvault.server.api import files as api_files
    from ownvault.server.api import jobs as api_jobs
    from ownvault.server.api import keys as api_keys
    from ownvault.server.api import providers as api_providers
    from ownvault.server.api import publish as api_publish
    from ownvault.server.api import received as api_received
    from ownvault.server.api import session as api_session
    from ownvault.server.api import sharing as api_sharing
    from ownvault.server.api import uploads as api_uploads

    return [
        api_files.Restore,
        api_files.TagChange,
        api_files.ForgetIn,
        api_files.PolicyKN,
        api_jobs.JobStart,
        api_keys.PassphraseIn,
        api_keys.NewPassphraseIn,
        api_keys.RotateIn,
        api_keys.GuardiansIn,
        api_providers.ProviderIn,
        api_providers.PolicyDoc,
        api_publish.PublishIn,
        api_publish.UnpublishIn,
        api_received.GrantIn,
        api_session.Login,
        api_sharing.ContactIn,
        api_sharing.ShareIn,
        api_uploads.UploadCreate,
    ]


def api_bodies(data: bytes) -> None:
    """The vault API's JSON request bodies (its pydantic models, as FastAPI validates them)
    and its Range header parser: only ValidationError / ApiProblem on bad input."""
    import pydantic

    from ownvault.server.api.files import parse_range
    from ownvault.server.api.problems import ApiProblem

    if not data:
        return
    models = _api_models()
    mode, body = data[0], data[1:]
    if mode == 255:
        with contextlib.suppress(ApiProblem):
            parse_range(_text(body), 1000)
        return
    model = models[mode % len(models)]
    try:
        value = model.model_validate_json(body)
    except pydantic.ValidationError:
        return
    assert model.model_validate_json(value.model_dump_json()) == value


def api_bodies_seeds() -> list[bytes]:
    models = _api_models()
    out = [b"\xffbytes=0-99", b"\xffbytes=-5"]
    samples = {
        "Restore": {"version": 1},
        "Login": {"passphrase": "x"},
        "ProviderIn": {"name": "p1", "url": "http://127.0.0.1:9/"},
    }
    for i, model in enumerate(models):
        out.append(bytes((i,)) + json.dumps(samples.get(model.__name__, {})).encode())
    return out


def drive(data: bytes) -> None:
    """The drive's WebDAV requests and FUSE paths (tests/fuzz/drive_targets.py)."""
    from tests.fuzz import drive_targets

    drive_targets.drive(data)


def drive_seeds() -> list[bytes]:
    from tests.fuzz import drive_targets

    return drive_targets.drive_seeds()


def preload() -> None:
    """Import what the targets import lazily (so an instrumenting engine sees it)."""
    import ownvault.engine.ipfs.carimport
    import ownvault.engine.ipfs.dagwalk
    import ownvault.providers.node.protocol
    import ownvault.server.node.auth  # noqa: F401
    import tests.fuzz.drive_targets  # noqa: F401

    _api_models()


# -- the registry -----------------------------------------------------------------------------------


TARGETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target("car", car, car_seeds, max_len=8192),
        Target("dagpb", dagpb, dagpb_seeds),
        Target("unixfs", unixfs, unixfs_seeds),
        Target("hamt", hamt, hamt_seeds),
        Target("hamt_car", hamt_car, hamt_car_seeds, max_len=8192),
        Target("multibase", multibase_, multibase_seeds),
        Target("cid", cid, cid_seeds),
        Target("contact_card", contact_card, contact_card_seeds),
        Target("grant", grant, grant_seeds),
        Target("grant_manifest", grant_manifest, grant_manifest_seeds),
        Target("grant_revocation", grant_revocation, grant_revocation_seeds),
        Target("capability", capability, capability_seeds),
        Target("snapshot", snapshot, snapshot_seeds),
        Target("locator", locator, locator_seeds),
        Target("journal", journal, journal_seeds),
        Target("checkpoint", checkpoint, checkpoint_seeds),
        Target("journal_rows", journal_rows, journal_rows_seeds),
        Target("share", share, share_seeds),
        Target("erasure_fragments", erasure_fragments, erasure_fragments_seeds),
        Target("pack_blob", pack_blob, pack_blob_seeds),
        Target("audit_answers", audit_answers, audit_answers_seeds),
        Target("keystore", keystore, keystore_seeds),
        Target("nft_metadata", nft_metadata, nft_metadata_seeds),
        Target("nft_uri", nft_uri, nft_uri_seeds),
        Target("nft_abi", nft_abi, nft_abi_seeds),
        Target("node_protocol", node_protocol, node_protocol_seeds),
        Target("node_auth", node_auth, node_auth_seeds),
        Target("api_bodies", api_bodies, api_bodies_seeds),
        Target("drive", drive, drive_seeds, allowed=()),
    ]
}
