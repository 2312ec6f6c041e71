"""Content identifiers: unsigned varints, multihashes and CIDs (v0 and v1).

A CID names a block by the hash of its bytes::

    CIDv0 = multihash                                   (sha2-256 dag-pb only; base58btc "Qm...")
    CIDv1 = varint(1) || varint(codec) || multihash      (multibase string, base32 "b..." canonical)
    multihash = varint(hash code) || varint(len(digest)) || digest

Written by hand rather than wrapping the ``multiformats`` package: a CID is minted for every
256 KiB chunk at ingest, so construction and encoding sit on the hot path, and every decoder
here needs explicit size limits (a CID string, a varint, a digest length) that the generic
packages do not enforce. Codecs and hash functions are closed sets: anything else is a
:class:`~ownvault.errors.FormatError`, never a guess.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass, field

from ownvault.core.multibase import b32_encode, b36_encode, b58_decode, b58_encode
from ownvault.core.multibase import decode as multibase_decode
from ownvault.errors import FormatError

__all__ = [
    "CID",
    "CODEC_NAMES",
    "DAG_CBOR",
    "DAG_PB",
    "HASH_NAMES",
    "IDENTITY",
    "MAX_CID_BYTES",
    "MAX_CID_STRING",
    "MAX_DIGEST_BYTES",
    "MAX_VARINT_BYTES",
    "RAW",
    "SHA2_256",
    "SHA2_512",
    "decode_varint",
    "encode_varint",
    "hash_block",
    "read_cid",
]

# multicodec table entries we understand
RAW = 0x55
DAG_PB = 0x70
DAG_CBOR = 0x71
IDENTITY = 0x00
SHA2_256 = 0x12
SHA2_512 = 0x13

CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor"}
HASH_NAMES = {IDENTITY: "identity", SHA2_256: "sha2-256", SHA2_512: "sha2-512"}
_DIGEST_LEN = {SHA2_256: 32, SHA2_512: 64}

MAX_VARINT_BYTES = 9  # the multiformats unsigned-varint spec caps varints at 9 bytes (63 bits)
MAX_DIGEST_BYTES = 128  # identity multihashes (inlined data) above this are refused
MAX_CID_BYTES = 4 + MAX_VARINT_BYTES * 2 + MAX_DIGEST_BYTES
MAX_CID_STRING = 512


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128 varint (multiformats / protobuf)."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(
    buf: bytes | memoryview, offset: int = 0, *, max_bytes: int = MAX_VARINT_BYTES
) -> tuple[int, int]:
    """Decode a minimal unsigned varint at ``offset``; return ``(value, end offset)``.

    Rejects truncation, more than ``max_bytes`` bytes and non-minimal encodings (a trailing
    zero byte), as the multiformats spec requires.
    """
    value = 0
    shift = 0
    pos = offset
    end = len(buf)
    while True:
        if pos >= end:
            raise FormatError("truncated varint")
        if pos - offset >= max_bytes:
            raise FormatError("varint too long")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0 and pos - offset > 1:
                raise FormatError("non-minimal varint")
            return value, pos
        shift += 7


def hash_block(hash_code: int, data: bytes | memoryview) -> bytes:
    """The digest of ``data`` under a supported multihash function."""
    if hash_code == SHA2_256:
        return hashlib.sha256(data).digest()
    if hash_code == SHA2_512:
        return hashlib.sha512(data).digest()
    if hash_code == IDENTITY:
        if len(data) > MAX_DIGEST_BYTES:
            raise FormatError("identity multihash too long")
        return bytes(data)
    raise FormatError(f"unsupported multihash function 0x{hash_code:x}")


def _read_multihash(buf: bytes | memoryview, pos: int) -> tuple[int, bytes, int]:
    code, pos = decode_varint(buf, pos)
    length, pos = decode_varint(buf, pos)
    if code not in HASH_NAMES:
        raise FormatError(f"unsupported multihash function 0x{code:x}")
    if length > MAX_DIGEST_BYTES:
        raise FormatError("multihash digest too long")
    want = _DIGEST_LEN.get(code)
    if want is not None and length != want:
        raise FormatError(f"{HASH_NAMES[code]} digest must be {want} bytes, not {length}")
    if pos + length > len(buf):
        raise FormatError("truncated multihash")
    return code, bytes(buf[pos : pos + length]), pos + length


@dataclass(frozen=True, slots=True)
class CID:
    """A CID: ``version`` 0 or 1, ``codec`` (multicodec), ``hash_code`` and ``digest``.

    ``str(cid)`` is the canonical string: base58btc for v0, lower-case base32 for v1 (what
    Kubo prints). Values are validated on construction; use :meth:`parse`,
    :meth:`from_bytes` or :meth:`for_block` to make one.
    """

    version: int
    codec: int
    hash_code: int
    digest: builtins.bytes
    _bytes: builtins.bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise FormatError(f"unsupported CID version {self.version}")
        if self.codec not in CODEC_NAMES:
            raise FormatError(f"unsupported CID codec 0x{self.codec:x}")
        if self.hash_code not in HASH_NAMES:
            raise FormatError(f"unsupported multihash function 0x{self.hash_code:x}")
        want = _DIGEST_LEN.get(self.hash_code)
        if (want is not None and len(self.digest) != want) or len(self.digest) > MAX_DIGEST_BYTES:
            raise FormatError("multihash digest has the wrong length")
        mh = encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest
        if self.version == 0:
            if self.codec != DAG_PB or self.hash_code != SHA2_256:
                raise FormatError("CIDv0 is only for sha2-256 dag-pb")
            raw = mh
        else:
            raw = b"\x01" + encode_varint(self.codec) + mh
        object.__setattr__(self, "_bytes", raw)

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def for_block(
        cls,
        codec: int,
        data: builtins.bytes | memoryview,
        *,
        version: int = 1,
        hash_code: int = SHA2_256,
    ) -> CID:
        """The CID of a block: hash ``data`` and wrap the digest."""
        return cls(version, codec, hash_code, hash_block(hash_code, data))

    @classmethod
    def from_bytes(cls, raw: builtins.bytes | memoryview) -> CID:
        """Decode a binary CID that spans all of ``raw``."""
        if len(raw) > MAX_CID_BYTES:
            raise FormatError("binary CID too long")
        cid, end = read_cid(raw, 0)
        if end != len(raw):
            raise FormatError("trailing bytes after CID")
        return cid

    @classmethod
    def parse(cls, text: str) -> CID:
        """Parse a CID string: v0 (``Qm...``, 46 chars) or v1 in base32/base36/base58btc/base16."""
        if not isinstance(text, str):
            raise FormatError("CID must be a string")
        if len(text) > MAX_CID_STRING:
            raise FormatError("CID string too long")
        if len(text) == 46 and text.startswith("Qm"):
            return cls.from_bytes(b58_decode(text))
        if text[:1] in ("B", "K", "F") and text[1:] == text[1:].upper():
            text = text.lower()  # upper-case variants of the case-insensitive bases
        raw = multibase_decode(text)
        if raw[:1] != b"\x01":
            raise FormatError("a multibase CID must be CIDv1")
        return cls.from_bytes(raw)

    # -- views ----------------------------------------------------------------------------

    @property
    def bytes(self) -> builtins.bytes:
        """The binary form (as embedded in dag-pb links and CAR sections)."""
        return self._bytes

    @property
    def multihash(self) -> builtins.bytes:
        return encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest

    @property
    def codec_name(self) -> str:
        return CODEC_NAMES[self.codec]

    def encode(self, base: str = "base32") -> str:
        """The string form in ``base`` (``base32``, ``base36``, ``base58btc``; v0 only base58btc)."""
        if self.version == 0:
            if base != "base58btc":
                raise FormatError("CIDv0 has only the base58btc form")
            return b58_encode(self._bytes)
        if base == "base32":
            return "b" + b32_encode(self._bytes)
        if base == "base36":
            return "k" + b36_encode(self._bytes)
        if base == "base58btc":
            return "z" + b58_encode(self._bytes)
        raise FormatError(f"unsupported multibase {base!r}")

    def to_v1(self) -> CID:
        return CID(1, self.codec, self.hash_code, self.digest)

    def verify(self, block: builtins.bytes | memoryview) -> bool:
        """True when ``block`` hashes to this CID's digest."""
        return hash_block(self.hash_code, block) == self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return b58_encode(self._bytes)
        return "b" + b32_encode(self._bytes)


def read_cid(buf: bytes | memoryview, offset: int) -> tuple[CID, int]:
    """Decode the binary CID that starts at ``offset``; return it and its end offset.

    A CIDv0 is recognised by its first two bytes ``0x12 0x20`` (sha2-256, 32 bytes), as in
    CAR sections and the CID spec's decoding rules.
    """
    if len(buf) - offset >= 2 and buf[offset] == 0x12 and buf[offset + 1] == 0x20:
        if len(buf) - offset < 34:
            raise FormatError("truncated CIDv0")
        return CID(0, DAG_PB, SHA2_256, bytes(buf[offset + 2 : offset + 34])), offset + 34
    version, pos = decode_varint(buf, offset)
    if version != 1:
        raise FormatError(f"unsupported CID version {version}")
    codec, pos = decode_varint(buf, pos)
    if codec not in CODEC_NAMES:
        raise FormatError(f"unsupported CID codec 0x{codec:x}")
    code, digest, pos = _read_multihash(buf, pos)
    return CID(1, codec, code, digest), pos
