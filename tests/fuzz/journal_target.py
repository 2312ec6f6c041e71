"""The fuzz target of the catalog journal's decoders (registered as ``journal`` in
``tests/fuzz/targets.py``), its seeds and its hand-made corrupt fixtures.

Modes (the first byte, modulo 4): 0 a record as a provider serves it; 1 a record body,
sealed and signed here by a known device, so the fuzzer reaches the body decoder behind
the AEAD and the signature (a device of the vault is not trusted to write well-formed
bodies either); 2 a checkpoint as stored; 3 a checkpoint's plaintext, sealed and signed
here. Round trips: a body that decodes re-encodes to the same bytes (the decoder accepts
canonical JSON only); a checkpoint state re-encodes to the same JSON.
"""

from __future__ import annotations

import json
import struct
from functools import cache

from ownvault.core import crypto
from ownvault.core.checkpoint import (
    CHECKPOINT_AD,
    decode_checkpoint,
    encode_checkpoint,
    state_json,
)
from ownvault.core.checkpoint import MAGIC as CHECKPOINT_MAGIC
from ownvault.core.journal import (
    GENESIS,
    RECORD_AD,
    DeviceKey,
    JournalKeys,
    Record,
    certify_device,
    encode_record,
    open_record,
)
from ownvault.core.journalops import (
    Body,
    ChunkPlace,
    DropPacks,
    Hlc,
    MoveChunks,
    Places,
    Put,
    Setting,
    SharePlace,
    Tag,
    canonical,
    encode_body,
)
from ownvault.core.keys import VaultKeys
from ownvault.core.merge import EMPTY, compact, heads, merge

__all__ = ["journal", "journal_fixtures", "journal_seeds"]

DEVICE = DeviceKey(bytes(range(200, 232)))


@cache
def _keys() -> JournalKeys:
    return JournalKeys.of(VaultKeys(bytes(range(32))))


@cache
def _first() -> tuple[bytes, Record]:
    cert = certify_device(_keys(), DEVICE.public, "fuzz")
    return encode_record(_keys(), DEVICE, GENESIS, Body(Hlc(1000, 0), (cert, Tag("n", "t")), ()))


def _members() -> dict[bytes, bytes]:
    return {DEVICE.id: DEVICE.public}


def _sealed_record(body: bytes) -> bytes:
    """``body`` as DEVICE's second record, sealed and signed (whatever the body holds)."""
    first = _first()[1]
    header = b"OVJR\x01" + DEVICE.id + struct.pack(">Q", 2) + first.hash
    box = crypto.seal(_keys().journal, body, RECORD_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    return signed + crypto.ed25519_sign(DEVICE.seed, RECORD_AD + b"\x00" + signed)


def _sealed_checkpoint(plain: bytes) -> bytes:
    header = CHECKPOINT_MAGIC + b"\x01" + DEVICE.id
    box = crypto.seal(_keys().journal, plain, CHECKPOINT_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    return signed + crypto.ed25519_sign(DEVICE.seed, CHECKPOINT_AD + b"\x00" + signed)


def journal(data: bytes) -> None:
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    if mode in (0, 1):
        raw = rest if mode == 0 else _sealed_record(rest)
        members = _members() if mode == 1 else {}  # mode 0: the device's own certificate
        record = open_record(_keys(), raw, members=members, revoked={})
        text = encode_body(record.body)
        if mode == 1:
            assert text == rest
        return
    obj = rest if mode == 2 else _sealed_checkpoint(rest)
    checkpoint = decode_checkpoint(_keys(), obj)
    again = json.loads(canonical(state_json(checkpoint.state)))
    if mode == 3:
        assert again == json.loads(rest)["state"]


def _state_plain() -> bytes:
    _raw, first = _first()
    _raw2, second = encode_record(
        _keys(),
        DEVICE,
        first.head,
        Body(Hlc(2000, 0), (Put("doc", "file", 5, None, (bytes(16),), b"rows"),), ()),
    )
    state = compact(merge(EMPTY, [first, second]))
    s = canonical(state_json(state))
    return canonical(
        {
            "heads": {
                d.hex(): [h.seq, h.hash.hex(), h.hlc.wall_ms, h.hlc.counter]
                for d, h in heads(state).items()
            },
            "state": json.loads(s),
            "state_hash": crypto.sha256(s).hex(),
        }
    )


def journal_seeds() -> list[bytes]:
    raw, first = _first()
    body = encode_body(
        Body(Hlc(2000, 0), (Put("doc", "file", 5, "bafyx", (bytes(16),), b"rows"),), ())
    )
    state = merge(EMPTY, [first])
    return [
        b"\x00" + raw,
        b"\x01" + body,
        b"\x02" + encode_checkpoint(_keys(), DEVICE, state),
        b"\x03" + _state_plain(),
        b"\x01" + _places_body(),
    ]


def _places_body() -> bytes:
    """A body of the place and setting ops (``core.journalplaces``)."""
    ops = (
        Places(
            bytes(16),
            4096,
            2,
            3,
            1764000000,
            (SharePlace(0, "p0", 2100, b"\x01" * 32), SharePlace(2, None, 2100, b"\x02" * 32)),
        ),
        MoveChunks(bytes(16), (ChunkPlace(b"\x03" * 32, 0, 45, b"\x04" * 60, 1),)),
        DropPacks((b"\x05" * 16,)),
        Setting("provider", "p0", '{"kind":"local"}'),
        Setting("contact", "bob", None),
    )
    return encode_body(Body(Hlc(3000, 0), ops, ()))


def journal_fixtures() -> dict[str, bytes]:
    """Hand-made damage, each file refused with a named error."""
    raw = journal_seeds()[0][1:]
    body = journal_seeds()[1][1:]
    plain = _state_plain()
    return {
        "record-truncated.bin": b"\x00" + raw[:-1],
        "record-trailing.bin": b"\x00" + raw + b"\x00",
        "record-version-2.bin": b"\x00" + raw[:4] + b"\x02" + raw[5:],
        "record-seq-0.bin": b"\x00" + raw[:21] + bytes(8) + raw[29:],
        "record-box-length-huge.bin": b"\x00" + raw[:61] + b"\xff\xff\xff\xff" + raw[65:],
        "record-tampered.bin": b"\x00" + raw[:-1] + bytes((raw[-1] ^ 1,)),
        "body-not-canonical.bin": b"\x01" + body.replace(b",", b", ", 1),
        "body-duplicate-key.bin": b"\x01" + body[:-1] + b',"seen":{}}',
        "body-float-clock.bin": b"\x01" + body.replace(b'"hlc":[2000,0]', b'"hlc":[2000.0,0]'),
        "body-unknown-op.bin": b"\x01" + body.replace(b'"op":"put"', b'"op":"putt"'),
        "body-deep.bin": b"\x01" + b"[" * 3000 + b"]" * 3000,
        "body-rows-not-base64.bin": b"\x01"
        + body.replace(b'"rows":"cm93cw=="', b'"rows":"cm93cw="'),
        "body-places-unsorted.bin": b"\x01" + _places_body().replace(b'[[0,"p0"', b'[[2,"p0"', 1),
        "body-places-share-index-huge.bin": b"\x01"
        + _places_body().replace(b'[[0,"p0"', b'[[256,"p0"', 1),
        "body-chunks-key-odd.bin": b"\x01" + _places_body().replace(b'"04040404', b'"4040404', 1),
        "body-drop-packs-empty.bin": b"\x01"
        + _places_body().replace(b'"packs":["' + b"05" * 16 + b'"]', b'"packs":[]'),
        "body-set-unknown-table.bin": b"\x01"
        + _places_body().replace(b'"table":"contact"', b'"table":"secrets"'),
        "body-set-value-not-text.bin": b"\x01"
        + _places_body().replace(b'"value":null', b'"value":{}'),
        "checkpoint-truncated.bin": b"\x02" + journal_seeds()[2][1:-1],
        "checkpoint-state-hash-wrong.bin": b"\x03" + _edit(plain, state_hash="00" * 32),
        "checkpoint-heads-wrong.bin": b"\x03"
        + _edit(plain, heads={"00" * 16: [1, "00" * 32, 0, 0]}),
        "checkpoint-not-compacted.bin": b"\x03"
        + _edit(plain, applied={DEVICE.id.hex(): [[3, "00" * 32, 3000, 0]]}),
        "checkpoint-member-forged.bin": b"\x03"
        + _edit(plain, members={DEVICE.id.hex(): [DEVICE.public.hex(), "fuzz", "00" * 64]}),
    }


def _edit(plain: bytes, **change: object) -> bytes:
    """A checkpoint plaintext with one field changed (state fields get a fresh state hash,
    so that only the change itself is wrong)."""
    value = json.loads(plain)
    for key, new in change.items():
        if key in value:
            value[key] = new
        else:
            value["state"][key] = new
            value["state_hash"] = crypto.sha256(canonical(value["state"])).hex()
    return canonical(value)
