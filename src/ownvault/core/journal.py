"""The catalog journal (format ``ownvault-journal`` v1): per-device signed, sealed records
in hash chains, device certificates, and chain verification against a hostile provider.

Each device appends records to its own chain (Secure Scuttlebutt's feeds: one signed
append-only sequence per author, each message naming the hash of the one before)::

    header  := "OVJR" || 0x01 || device (16) || seq (u64 BE) || prev (32)           61 bytes
    box     := seal(journal key, body, AD = "ownvault/v1/journal-record" || header)
    signed  := header || len(box) (u32 BE) || box
    record  := signed || Ed25519(device key, "ownvault/v1/journal-record" || 0x00 || signed)
    hash    := SHA-256(record)          the next record's ``prev``; seq 1 has 32 zero bytes

``body`` is :mod:`ownvault.core.journalops`' canonical JSON. The header is the AEAD's
associated data, so a provider cannot move a record to another device or sequence number;
the signature makes each device's records its own (the journal key is shared by every
device, a signature key is not). Device keys are random Ed25519 keys, each certified by the
vault's membership key (derived from the root): a device's first record carries its own
certificate, so a chain verifies from its first record on; a revocation is a certificate
too ("device D: nothing after seq N"). Everything is specified in docs/design.md,
"Catalog journal and multi-device merge".
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ownvault.core import crypto
from ownvault.core.journalops import (
    DEVICE_ID_SIZE,
    GENESIS,
    HASH_SIZE,
    MAX_BODY_SIZE,
    Body,
    ChainHead,
    DeviceAdd,
    DeviceRevoke,
    Hlc,
    Op,
    canonical,
    decode_body,
    encode_body,
)
from ownvault.core.keys import VaultKeys
from ownvault.errors import FormatError, IntegrityError, JournalError

__all__ = [
    "GENESIS",
    "HEADER_SIZE",
    "MAX_RECORD_SIZE",
    "ChainHead",
    "DeviceKey",
    "JournalKeys",
    "Record",
    "certify_device",
    "device_id",
    "encode_record",
    "open_record",
    "parse_header",
    "revoke_device",
    "unique_records",
    "verify_chain",
    "verify_device_add",
    "verify_device_revoke",
]

JOURNAL_LABEL = b"ownvault/v1/key/journal"
MEMBERSHIP_LABEL = b"ownvault/v1/key/devices"
DEVICE_ID_LABEL = b"ownvault/v1/device-id"
DEVICE_ADD_LABEL = b"ownvault/v1/device-add\x00"
DEVICE_REVOKE_LABEL = b"ownvault/v1/device-revoke\x00"
RECORD_AD = b"ownvault/v1/journal-record"
RECORD_MAGIC = b"OVJR"
VERSION = 1
SIG_SIZE = 64
HEADER_SIZE = len(RECORD_MAGIC) + 1 + DEVICE_ID_SIZE + 8 + HASH_SIZE
MAX_RECORD_SIZE = HEADER_SIZE + 4 + crypto.AEAD_OVERHEAD + MAX_BODY_SIZE + SIG_SIZE
_HEADER = struct.Struct(f">4sB{DEVICE_ID_SIZE}sQ{HASH_SIZE}s")


@dataclass(frozen=True, slots=True)
class JournalKeys:
    """The vault-wide journal keys: ``journal`` seals every record and checkpoint;
    ``membership`` (an Ed25519 seed) certifies and revokes devices."""

    journal: bytes = field(repr=False)
    membership: bytes = field(repr=False)

    @classmethod
    def of(cls, keys: VaultKeys) -> JournalKeys:
        return cls(crypto.hkdf(keys.root, JOURNAL_LABEL), crypto.hkdf(keys.root, MEMBERSHIP_LABEL))

    @property
    def membership_public(self) -> bytes:
        return crypto.ed25519_public(self.membership)


def device_id(public: bytes) -> bytes:
    """A device's id: the first 16 bytes of SHA-256("ownvault/v1/device-id" || public key)."""
    return crypto.sha256(DEVICE_ID_LABEL + public)[:DEVICE_ID_SIZE]


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """One device's signing key: 32 random bytes kept on the device, never derived."""

    seed: bytes = field(repr=False)

    @classmethod
    def new(cls) -> DeviceKey:
        return cls(crypto.random_bytes(32))

    @property
    def public(self) -> bytes:
        return crypto.ed25519_public(self.seed)

    @property
    def id(self) -> bytes:
        return device_id(self.public)


def _add_message(device: bytes, key: bytes, name: str) -> bytes:
    return DEVICE_ADD_LABEL + canonical({"device": device.hex(), "key": key.hex(), "name": name})


def _revoke_message(device: bytes, last_seq: int) -> bytes:
    return DEVICE_REVOKE_LABEL + canonical({"device": device.hex(), "last_seq": last_seq})


def certify_device(keys: JournalKeys, public: bytes, name: str) -> DeviceAdd:
    """The membership key's certificate for a device key (goes in the device's first record)."""
    device = device_id(public)
    sig = crypto.ed25519_sign(keys.membership, _add_message(device, public, name))
    return DeviceAdd(device, public, name, sig)


def revoke_device(keys: JournalKeys, device: bytes, last_seq: int) -> DeviceRevoke:
    """The membership key's statement that ``device``'s records after ``last_seq`` are void."""
    sig = crypto.ed25519_sign(keys.membership, _revoke_message(device, last_seq))
    return DeviceRevoke(device, last_seq, sig)


def verify_device_add(membership_public: bytes, op: DeviceAdd) -> bool:
    return op.device == device_id(op.key) and crypto.ed25519_verify(
        membership_public, op.sig, _add_message(op.device, op.key, op.name)
    )


def verify_device_revoke(membership_public: bytes, op: DeviceRevoke) -> bool:
    return crypto.ed25519_verify(membership_public, op.sig, _revoke_message(op.device, op.last_seq))


@dataclass(frozen=True, slots=True)
class Record:
    """An opened, verified record (signature, AEAD, body, certificates)."""

    device: bytes
    seq: int
    prev: bytes
    body: Body
    hash: bytes
    raw: bytes = field(repr=False, compare=False)

    @property
    def hlc(self) -> Hlc:
        return self.body.hlc

    @property
    def ops(self) -> tuple[Op, ...]:
        return self.body.ops

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.seq, self.hash, self.body.hlc)

    def __str__(self) -> str:
        return f"device {self.device.hex()} seq {self.seq}"


def _header(device: bytes, seq: int, prev: bytes) -> bytes:
    return _HEADER.pack(RECORD_MAGIC, VERSION, device, seq, prev)


def encode_record(
    keys: JournalKeys, device: DeviceKey, after: ChainHead, body: Body
) -> tuple[bytes, Record]:
    """The record that follows ``after`` on ``device``'s chain, and its opened form.

    The body's clock must be later than ``after``'s (use :meth:`Hlc.tick`)."""
    if body.hlc <= after.hlc:
        raise JournalError(
            "a record's clock must be later than its predecessor's",
            device=device.id.hex(),
            seq=after.seq + 1,
        )
    header = _header(device.id, after.seq + 1, after.hash)
    box = crypto.seal(keys.journal, encode_body(body), RECORD_AD + header)
    signed = header + struct.pack(">I", len(box)) + box
    raw = signed + crypto.ed25519_sign(device.seed, RECORD_AD + b"\x00" + signed)
    return raw, Record(device.id, after.seq + 1, after.hash, body, crypto.sha256(raw), raw)


def parse_header(data: bytes) -> tuple[bytes, int, bytes]:
    """(device, seq, prev) of a record, without opening it; ``FormatError`` if malformed."""
    if len(data) < HEADER_SIZE:
        raise FormatError(f"journal record shorter than its {HEADER_SIZE}-byte header")
    magic, version, device, seq, prev = _HEADER.unpack_from(data)
    if magic != RECORD_MAGIC:
        raise FormatError("not a journal record (magic)")
    if version != VERSION:
        raise FormatError(f"unsupported journal record version {version}")
    if seq == 0:
        raise FormatError("journal record seq 0 (chains start at 1)")
    if (seq == 1) != (prev == bytes(HASH_SIZE)):
        raise FormatError("journal record: only seq 1 has the all-zero previous hash")
    return device, seq, prev


def _check_certificates(membership_public: bytes, body: Body) -> None:
    for i, op in enumerate(body.ops):
        if isinstance(op, DeviceAdd) and not verify_device_add(membership_public, op):
            raise IntegrityError(f"ops[{i}]: device certificate does not verify")
        if isinstance(op, DeviceRevoke) and not verify_device_revoke(membership_public, op):
            raise IntegrityError(f"ops[{i}]: device revocation does not verify")


def _self_certificate(body: Body, device: bytes) -> bytes:
    first = body.ops[0]
    if not isinstance(first, DeviceAdd) or first.device != device:
        raise IntegrityError("first record of an unknown device without its own certificate")
    return first.key


def open_record(
    keys: JournalKeys,
    data: bytes,
    *,
    members: Mapping[bytes, bytes],
    revoked: Mapping[bytes, int],
    device: bytes | None = None,
    seq: int | None = None,
    provider: str | None = None,
) -> Record:
    """Open and verify one record as fetched from ``provider``.

    ``device`` and ``seq``, when given, are what the record's name says it is (a record
    stored under another name is refused). ``members`` maps known device ids to their
    public keys; a device not in it must open with its own certificate (its first record).
    ``revoked`` maps revoked devices to the last seq still accepted. Every failure after
    the header parses is a ``JournalError`` naming the device and seq."""
    if len(data) > MAX_RECORD_SIZE:
        raise JournalError("journal record over its size limit", provider=provider, seq=seq)
    try:
        dev, n, prev = parse_header(data)
    except FormatError as exc:
        where = device.hex() if device else None
        raise JournalError(str(exc), device=where, seq=seq, provider=provider) from None
    try:
        if (device is not None and dev != device) or (seq is not None and n != seq):
            raise IntegrityError("record is stored under another device or sequence number")
        if dev in revoked and n > revoked[dev]:
            raise IntegrityError(f"device was revoked after seq {revoked[dev]}")
        return _open(keys, data, dev, n, prev, members.get(dev))
    except IntegrityError as exc:  # FormatError included
        raise JournalError(
            f"journal record refused: {exc.message}", device=dev.hex(), seq=n, provider=provider
        ) from None


def _open(
    keys: JournalKeys, data: bytes, dev: bytes, n: int, prev: bytes, public: bytes | None
) -> Record:
    if len(data) < HEADER_SIZE + 4 + SIG_SIZE:
        raise FormatError("truncated")
    (box_len,) = struct.unpack_from(">I", data, HEADER_SIZE)
    end = HEADER_SIZE + 4 + box_len
    if len(data) != end + SIG_SIZE:
        raise FormatError(f"{len(data)} bytes where the header announces {end + SIG_SIZE}")
    signed, sig = data[:end], data[end:]
    message = RECORD_AD + b"\x00" + signed
    if public is not None and not crypto.ed25519_verify(public, sig, message):
        raise IntegrityError("signature does not verify")
    body = decode_body(
        crypto.open_box(keys.journal, data[HEADER_SIZE + 4 : end], RECORD_AD + data[:HEADER_SIZE])
    )
    _check_certificates(keys.membership_public, body)
    if public is None:
        public = _self_certificate(body, dev)
        if not crypto.ed25519_verify(public, sig, message):
            raise IntegrityError("signature does not verify")
    return Record(dev, n, prev, body, crypto.sha256(data), data)


def unique_records(records: Iterable[Record]) -> dict[tuple[bytes, int], Record]:
    """Copies of records (from several providers) by (device, seq); two different records
    under one (device, seq) are a fork: ``JournalError``."""
    out: dict[tuple[bytes, int], Record] = {}
    for r in records:
        seen = out.setdefault((r.device, r.seq), r)
        if seen.hash != r.hash:
            raise JournalError(
                "fork: two different records with one sequence number",
                device=r.device.hex(),
                seq=r.seq,
            )
    return out


def _link_fault(r: Record, device: bytes, head: ChainHead, known: ChainHead | None) -> str:
    if r.device != device:
        return f"record of another device in the chain of {device.hex()}"
    if r.seq != head.seq + 1:
        return f"out of order: expected seq {head.seq + 1}"
    if r.prev != head.hash:
        return "broken chain: previous hash does not match"
    if r.hlc <= head.hlc:
        return "clock does not advance along the chain"
    if known is not None and r.seq == known.seq and known.hash and r.hash != known.hash:
        return "fork: differs from the record seen before"
    return ""


def verify_chain(
    records: Sequence[Record],
    *,
    device: bytes,
    after: ChainHead = GENESIS,
    known: ChainHead | None = None,
    provider: str | None = None,
) -> ChainHead:
    """Check that ``records`` (in the order served) continue ``device``'s chain from
    ``after`` (a checkpoint's head, or the local head), and return the new head.

    Refused with ``JournalError``: a record of another device; a gap, repeat or reordering
    (seq not the next one); a broken link (``prev`` is not the hash before it); a clock
    that does not advance. ``known`` is the furthest head this device has learnt by other
    means (its own last write, an earlier pull, another device's ``seen`` vector with the
    hash unknown: pass ``ChainHead(seq, b"", ...)``): ending before it is a rollback or
    withheld tail; a record at ``known.seq`` with another hash is a fork."""
    head = after
    for r in records:
        fault = _link_fault(r, device, head, known)
        if fault:
            raise JournalError(fault, device=r.device.hex(), seq=r.seq, provider=provider)
        head = r.head
    if known is not None and head.seq < known.seq:
        raise JournalError(
            f"rollback: the chain ends at seq {head.seq} but seq {known.seq} was seen before",
            device=device.hex(),
            seq=known.seq,
            provider=provider,
        )
    return head
