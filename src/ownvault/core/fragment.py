"""liberasurecode's fragment header, written and checked byte for byte.

Every stored fragment (inside a share, ``core.pack``) is liberasurecode's self-describing
fragment as ``pyeclib`` 1.8 (liberasurecode 1.8.0, backend ``isa_l_rs_cauchy``) wrote it:
an 80-byte little-endian header, then the payload. Reproduced here from liberasurecode's
``include/erasurecode/erasurecode.h`` (``fragment_header_t``, packed) and
``src/erasurecode_postprocessing.c`` (``add_fragment_metadata``), so that fragments coded
by ISA-L directly (``core.isal``) are the bytes pyeclib writes and the other way round
(tests/core/test_erasure_isal.py compares them for many k, n and sizes)::

    header   := meta || magic (u32) || libec_version (u32) || metadata_chksum (u32) || 0^9
    meta     := idx (u32) || size (u32) || backend_metadata_size (u32) || orig_size (u64)
                || chksum_type (u8) || chksum (8 x u32) || chksum_mismatch (u8)
                || backend_id (u8) || backend_version (u32)                       59 bytes

``metadata_chksum`` is zlib's CRC-32 of ``meta``. ``size`` is ``ceil(orig_size / k)``:
the isa_l backends align the input to ``k * w / 8`` bytes (``get_aligned_data_size``, w = 8)
and split it into k equal payloads, zero-padding the last ones.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ownvault.errors import FormatError

__all__ = [
    "BACKEND_ID",
    "BACKEND_VERSION",
    "CHKSUM_CRC32",
    "CHKSUM_NONE",
    "HEADER_SIZE",
    "LIBEC_VERSION",
    "MAGIC",
    "FragmentHeader",
    "payload_size",
]

HEADER_SIZE = 80
MAGIC = 0x0B0C5ECC
#: liberasurecode 1.8.0 (``_VERSION(1, 8, 0)``), as the pyeclib 1.8 wheel writes it.
LIBEC_VERSION = (1 << 16) | (8 << 8) | 0
#: ``EC_BACKEND_ISA_L_RS_CAUCHY`` and its ``ec_backend_version`` ``_VERSION(2, 14, 1)``.
BACKEND_ID = 7
BACKEND_VERSION = (2 << 16) | (14 << 8) | 1
CHKSUM_NONE = 1
CHKSUM_CRC32 = 2
#: liberasurecode < 1.2.0 wrote no metadata checksum; ownvault never stored such fragments.
_MIN_CHECKED_LIBEC = (1 << 16) | (2 << 8)

_META = struct.Struct("<IIIQB32sBBI")
_TAIL = struct.Struct("<III9x")


def payload_size(orig_size: int, k: int) -> int:
    """Each fragment's payload size for ``orig_size`` bytes coded with k data fragments."""
    return -(-orig_size // k)


@dataclass(frozen=True, slots=True)
class FragmentHeader:
    """The fields of one fragment header that decoding uses (the rest are fixed)."""

    index: int
    size: int
    orig_size: int
    checksum_type: int = CHKSUM_NONE
    checksum: int = 0

    def encode(self) -> bytes:
        """The 80 header bytes, as liberasurecode's ``add_fragment_metadata`` writes them."""
        chksum = struct.pack("<I28x", self.checksum) if self.checksum_type == CHKSUM_CRC32 else b""
        meta = _META.pack(
            self.index,
            self.size,
            0,
            self.orig_size,
            self.checksum_type,
            chksum.ljust(32, b"\0"),
            0,
            BACKEND_ID,
            BACKEND_VERSION,
        )
        return meta + _TAIL.pack(MAGIC, LIBEC_VERSION, zlib.crc32(meta))

    @classmethod
    def decode(cls, fragment: bytes | bytearray | memoryview, n: int) -> FragmentHeader:
        """Parse and check the header of a fragment of an n-fragment code.

        Checks the length, magic, metadata CRC, backend, index (< n), and that the payload
        is exactly ``size`` bytes; a CRC-32 payload checksum, when the header has one, is
        checked by :meth:`check_payload`. Raises :class:`FormatError` saying what is wrong.
        """
        view = memoryview(fragment)
        if view.nbytes < HEADER_SIZE:
            raise FormatError(
                f"erasure fragment too short: {view.nbytes} bytes, header is {HEADER_SIZE}"
            )
        idx, size, backend_meta, orig, ctype, chksum, _mismatch, backend, _bver = _META.unpack_from(
            view
        )
        magic, libec, meta_crc = _TAIL.unpack_from(view, _META.size)
        if magic != MAGIC:
            raise FormatError(f"erasure fragment has bad magic {magic:#010x}")
        if libec < _MIN_CHECKED_LIBEC:
            raise FormatError(f"erasure fragment has unsupported libec version {libec:#x}")
        if zlib.crc32(view[: _META.size]) != meta_crc:
            raise FormatError("erasure fragment header checksum mismatch")
        if backend != BACKEND_ID or backend_meta != 0:
            raise FormatError(f"erasure fragment is from another backend (id {backend})")
        if idx >= n:
            raise FormatError(f"erasure fragment index {idx} out of range for n={n}")
        if ctype not in (CHKSUM_NONE, CHKSUM_CRC32):
            raise FormatError(f"erasure fragment has unsupported checksum type {ctype}")
        if view.nbytes - HEADER_SIZE != size:
            raise FormatError(
                f"erasure fragment {idx} payload is {view.nbytes - HEADER_SIZE} bytes, "
                f"header says {size}"
            )
        checksum = int.from_bytes(chksum[:4], "little") if ctype == CHKSUM_CRC32 else 0
        return cls(idx, size, orig, ctype, checksum)

    def check_payload(self, payload: bytes | bytearray | memoryview) -> None:
        """Verify the payload's CRC-32 when the header carries one."""
        if self.checksum_type == CHKSUM_CRC32 and zlib.crc32(payload) != self.checksum:
            raise FormatError(f"erasure fragment {self.index} payload checksum mismatch")
