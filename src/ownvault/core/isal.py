"""Intel ISA-L's Reed-Solomon primitives, bound thinly by ctypes.

Why a binding of our own: no maintained Python binding calls ISA-L without holding the GIL
and without copying (docs/design.md, "Dependencies"). ``pyeclib`` holds the GIL through
encode and decode and copies every fragment twice; ``zfec`` is its own, slower code. A
ctypes foreign call through :class:`ctypes.CDLL` releases the GIL for its duration, and the
four functions used here take plain pointers, so the caller decides where every byte lives:
parity is written straight into buffers it preallocated, and data fragments are read in
place from the input.

The library is the system's ``libisal.so.2`` (Debian's ``libisal2``), found by the dynamic
loader's own search, then by :func:`ctypes.util.find_library` (other sonames and
platforms). Never pyeclib's private copy inside its wheel (``pyeclib.libs/libisal-pyeclib
.so.2``, renamed by auditwheel, so no name tried here can resolve to it): when the system
has no ISA-L, :mod:`ownvault.core.erasure` falls back to pyeclib's own API instead.

Functions bound (ISA-L ``erasure_code.h``)::

    void gf_gen_cauchy1_matrix(unsigned char *a, int m, int k);
    void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
    void ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                        unsigned char **data, unsigned char **coding);
    int gf_invert_matrix(unsigned char *in, unsigned char *out, const int n);
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_CANDIDATES",
    "MAX_CALL_BYTES",
    "IsaL",
    "buffer_address",
    "load_isal",
    "system_isal",
]

#: Names tried in order: the soname of Debian's libisal2 (the dynamic loader searches its
#: usual paths), then whatever ``find_library("isal")`` finds (macOS, other sonames).
DEFAULT_CANDIDATES: tuple[str, ...] = ("libisal.so.2", "find_library:isal")

#: The most bytes per fragment one ``ec_encode_data`` call codes (its length is an ``int``).
MAX_CALL_BYTES = 1 << 30

_Ptr = ctypes.c_void_p
_PtrArray = ctypes.POINTER(ctypes.c_void_p)


def buffer_address(buf: bytes | bytearray | memoryview) -> int | None:
    """The address of ``buf``'s first byte without copying it, or None when ctypes cannot
    reach a read-only buffer that is not ``bytes`` (the caller then copies it once).

    ``bytes``: a ``c_char_p`` made from a bytes object points into the object itself.
    Writable buffers (``bytearray``, writable contiguous memoryviews): ``from_buffer``.
    The caller keeps ``buf`` alive (and unresized) while the address is in use.
    """
    if isinstance(buf, bytes):
        return ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value or 0
    view = memoryview(buf)
    if view.readonly or not view.c_contiguous:
        return None
    if view.nbytes == 0:
        return 0
    return ctypes.addressof((ctypes.c_char * view.nbytes).from_buffer(view))


def _pointer_array(addresses: Sequence[int]) -> ctypes.Array[ctypes.c_void_p]:
    return (ctypes.c_void_p * len(addresses))(*addresses)


@dataclass(frozen=True)
class IsaL:
    """A loaded ISA-L: the four calls the Cauchy Reed-Solomon code needs."""

    path: str
    lib: ctypes.CDLL

    def __post_init__(self) -> None:
        lib = self.lib
        lib.gf_gen_cauchy1_matrix.argtypes = [_Ptr, ctypes.c_int, ctypes.c_int]
        lib.gf_gen_cauchy1_matrix.restype = None
        lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, _Ptr, _Ptr]
        lib.ec_init_tables.restype = None
        lib.ec_encode_data.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            _Ptr,
            _PtrArray,
            _PtrArray,
        ]
        lib.ec_encode_data.restype = None
        lib.gf_invert_matrix.argtypes = [_Ptr, _Ptr, ctypes.c_int]
        lib.gf_invert_matrix.restype = ctypes.c_int

    def cauchy_matrix(self, n: int, k: int) -> bytes:
        """The n x k encoding matrix (identity on top, then the Cauchy rows), row-major."""
        a = ctypes.create_string_buffer(n * k)
        self.lib.gf_gen_cauchy1_matrix(a, n, k)
        return a.raw

    def init_tables(self, k: int, rows: int, coefficients: bytes) -> ctypes.Array[ctypes.c_char]:
        """ISA-L's expanded multiplication tables for a ``rows`` x k coefficient matrix."""
        if len(coefficients) != rows * k:
            raise ValueError("coefficient matrix size does not match rows x k")
        tables = ctypes.create_string_buffer(k * rows * 32)
        self.lib.ec_init_tables(k, rows, coefficients, tables)
        return tables

    def encode(
        self,
        length: int,
        tables: ctypes.Array[ctypes.c_char],
        sources: Sequence[int],
        destinations: Sequence[int],
    ) -> None:
        """``destinations[r] = sum_j coefficient[r][j] * sources[j]`` over ``length`` bytes
        each (addresses from :func:`buffer_address`); runs without the GIL. ISA-L's length
        is a C ``int``: longer ranges are coded in column slices of ``MAX_CALL_BYTES``."""
        if not destinations:
            return
        for offset in range(0, max(0, length), MAX_CALL_BYTES):
            self.lib.ec_encode_data(
                min(MAX_CALL_BYTES, length - offset),
                len(sources),
                len(destinations),
                tables,
                _pointer_array([a + offset for a in sources]),
                _pointer_array([a + offset for a in destinations]),
            )

    def invert(self, matrix: bytes, k: int) -> bytes | None:
        """The inverse of a k x k matrix over GF(2^8), or None when it is singular."""
        if len(matrix) != k * k:
            raise ValueError("matrix size does not match k x k")
        scratch = ctypes.create_string_buffer(matrix, k * k)  # ISA-L overwrites its input
        out = ctypes.create_string_buffer(k * k)
        if self.lib.gf_invert_matrix(scratch, out, k) != 0:
            return None
        return out.raw


def load_isal(candidates: Sequence[str] = DEFAULT_CANDIDATES) -> IsaL | None:
    """The first candidate that loads and exports the four functions, or None.

    A candidate is a library name or path for the dynamic loader, or ``find_library:NAME``
    to ask :func:`ctypes.util.find_library` (which runs ``ldconfig``: only tried when the
    soname itself did not load).
    """
    for candidate in candidates:
        name: str | None = candidate
        if candidate.startswith("find_library:"):
            # ctypes.util runs ldconfig in a subprocess: imported only when a soname failed.
            from ctypes.util import find_library  # noqa: PLC0415

            name = find_library(candidate.removeprefix("find_library:"))
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            return IsaL(name, lib)
        except (OSError, AttributeError):
            continue
    return None


@functools.cache
def system_isal() -> IsaL | None:
    """The system's ISA-L, loaded once per process (None when it has none)."""
    return load_isal()
