"""Multibase encodings used by CIDs and did:key: base32 (lower, no padding, prefix ``b``),
base58btc (prefix ``z``), base36 (lower, prefix ``k``: CIDv1 in DNS labels, IPNS keys) and
base16 (lower, prefix ``f``). Decoders are bounded and reject foreign alphabets.

Written by hand because they are a few lines each and the maintained multiformats
packages are far slower on the hot path (every file CID is encoded at ingest).
"""

from __future__ import annotations

import base64
import binascii

from ownvault.errors import FormatError

__all__ = [
    "MAX_MULTIBASE_LENGTH",
    "b16_decode",
    "b16_encode",
    "b32_decode",
    "b32_encode",
    "b36_decode",
    "b36_encode",
    "b58_decode",
    "b58_encode",
    "decode",
]

MAX_MULTIBASE_LENGTH = 4096
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B36_INDEX = {c: i for i, c in enumerate(_B36)}
_B16_DIGITS = frozenset("0123456789abcdef")


def b58_encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    num = int.from_bytes(data, "big")
    out = []
    while num:
        num, rem = divmod(num, 58)
        out.append(_B58[rem])
    return "1" * zeros + "".join(reversed(out))


def b58_decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_LENGTH:
        raise FormatError("base58 string too long")
    num = 0
    for ch in text:
        try:
            num = num * 58 + _B58_INDEX[ch]
        except KeyError:
            raise FormatError(f"invalid base58 character {ch!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\0" * zeros + body


def b36_encode(data: bytes) -> str:
    """Lower-case base36 of ``data``; leading zero bytes become leading ``0`` digits."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    num = int.from_bytes(data, "big")
    out = []
    while num:
        num, rem = divmod(num, 36)
        out.append(_B36[rem])
    return "0" * zeros + "".join(reversed(out))


def b36_decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_LENGTH:
        raise FormatError("base36 string too long")
    num = 0
    for ch in text:
        try:
            num = num * 36 + _B36_INDEX[ch]
        except KeyError:
            raise FormatError(f"invalid base36 character {ch!r}") from None
    zeros = len(text) - len(text.lstrip("0"))
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\0" * zeros + body


def b16_encode(data: bytes) -> str:
    return data.hex()


def b16_decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_LENGTH:
        raise FormatError("base16 string too long")
    if len(text) % 2 or not _B16_DIGITS.issuperset(text):
        # bytes.fromhex alone would skip whitespace: two strings would name one value
        raise FormatError("base16 multibase must be lower-case hex digits with an even length")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise FormatError("invalid base16") from None


def b32_encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def b32_decode(text: str) -> bytes:
    if len(text) > MAX_MULTIBASE_LENGTH:
        raise FormatError("base32 string too long")
    if text != text.lower():
        raise FormatError("base32 multibase must be lower case")
    pad = "=" * (-len(text) % 8)
    try:
        data = base64.b32decode(text.upper() + pad)
    except (binascii.Error, ValueError) as exc:
        raise FormatError(f"invalid base32: {exc}") from None
    if b32_encode(data) != text:
        # padding, an impossible length or non-zero trailing bits: two strings would name one CID
        raise FormatError("non-canonical base32 (padding or non-zero trailing bits)")
    return data


def decode(text: str) -> bytes:
    """Decode a multibase string with prefix ``b`` (base32), ``z`` (base58btc), ``k`` (base36)
    or ``f`` (base16)."""
    if not text:
        raise FormatError("empty multibase string")
    prefix, body = text[0], text[1:]
    if prefix == "b":
        return b32_decode(body)
    if prefix == "z":
        return b58_decode(body)
    if prefix == "k":
        return b36_decode(body)
    if prefix == "f":
        return b16_decode(body)
    raise FormatError(f"unsupported multibase prefix {prefix!r}")
