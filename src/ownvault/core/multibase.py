"""Multibase encodings used by CIDs and did:key: base32 (lower, no padding, prefix ``b``),
base58btc (prefix ``z``), base36 (lower, prefix ``k``: CIDv1 in DNS labels, IPNS keys) and
base16 (lower, prefix ``f``). Decoders are bounded and reject foreign alphabets.

Written by hand because they are a few lines each and the maintained multiformats
packages are far slower on the hot path (every file CID is encoded at ingest).
"""

from __future__ import annotations

import base64
import binascii
import functools

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


_B32_TABLE = bytes(b"abcdefghijklmnopqrstuvwxyz234567"[i & 31] for i in range(256))


@functools.lru_cache(maxsize=64)
def _b32_spread(units: int) -> tuple[tuple[int, int, int], ...]:
    """The steps that move the ``units`` 5-bit groups of an integer (unit j at bit 5j) to
    one byte each (unit j at bit 8j): unit j moves by 3j bits, done one bit of j at a time
    from the highest, each step a mask of the units that stay and a shift of the others."""
    pos = [5 * j for j in range(units)]
    steps = []
    b = 1 << max(units - 1, 0).bit_length() >> 1
    while b:
        keep = 0
        for j in range(units):
            if j & b:
                pos[j] += 3 * b
            else:
                keep |= 31 << pos[j]
        steps.append((keep, ~keep, 3 * b))
        b >>= 1
    return tuple(steps)


def b32_encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, unpadded: ``base64.b32encode(data)`` lowered and
    stripped (test-checked), 3x faster. ``base64.b32encode`` is a Python loop per 5 bytes
    in 3.11; here the bits are spread to a byte per 5-bit group with a few whole-integer
    steps and the alphabet applied by ``bytes.translate`` (a file CID: 1.5 us, not 4.4)."""
    n = len(data)
    if not n:
        return ""
    pad = -n % 5
    units = (n + pad) * 8 // 5
    v = int.from_bytes(data, "big") << (8 * pad)
    for keep, move, shift in _b32_spread(units):
        v = (v & keep) | ((v & move) << shift)
    return v.to_bytes(units, "big").translate(_B32_TABLE)[: (8 * n + 4) // 5].decode("ascii")


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
