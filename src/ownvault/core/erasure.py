"""Reed-Solomon erasure coding: the only module that codes fragments.

The code is ISA-L's Cauchy Reed-Solomon (``isa_l_rs_cauchy``): Cauchy matrices are MDS for
every k, m (any k of the n fragments decode), which ISA-L's Vandermonde construction does
not guarantee for all parameters, and it was the fastest encoder measured (docs/design.md,
"Dependencies"). Two engines compute it and write the same bytes:

- ``isal``: the system's ISA-L called through ``core.isal`` (ctypes, no GIL held, no copy of
  the input: data fragments are views of it, parity is written into preallocated buffers).
- ``pyeclib``: pyeclib's ``ECDriver`` (which bundles ISA-L in its wheel), used only when the
  system has no ISA-L. It holds the GIL and copies.

A fragment is liberasurecode's self-describing fragment (``core.fragment``: an 80-byte header
with the fragment index, sizes and checksums, then the payload), written byte for byte as
pyeclib 1.8 writes it; ownvault stores it whole inside a share (see ``core.pack``).

Decoding validates every header it uses, then takes the fast path when the k data
fragments are all there (the code is systematic: their payloads are the data, so decoding
is slicing), and solves for the missing data fragments otherwise.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ownvault.core.fragment import HEADER_SIZE, FragmentHeader, payload_size
from ownvault.core.isal import IsaL, buffer_address, system_isal
from ownvault.errors import FormatError, UsageError

__all__ = ["ERASURE_BACKEND", "Buffer", "Engine", "ErasureCode", "Fragment"]

ERASURE_BACKEND = "isa_l_rs_cauchy"
MAX_N = 32
MAX_FRAGMENT = 0xFFFF_FFFF  # the header's payload size is a u32

Buffer = bytes | bytearray | memoryview
Engine = Literal["auto", "isal", "pyeclib"]


@dataclass(frozen=True, slots=True)
class Fragment:
    """One encoded fragment as pieces to write one after the other (``os.writev``):
    ``header`` (80 bytes), ``payload`` (a read-only view of the input for data fragments,
    of a parity buffer otherwise), then ``padding`` (the zero bytes that pad the last data
    fragments to the payload size; empty for the others). ``bytes(fragment)`` joins them
    (one copy)."""

    header: bytes
    payload: memoryview
    padding: bytes = b""

    @property
    def pieces(self) -> tuple[bytes | memoryview, ...]:
        """The non-empty pieces, in order."""
        return tuple(p for p in (self.header, self.payload, self.padding) if len(p))

    @property
    def size(self) -> int:
        return len(self.header) + self.payload.nbytes + len(self.padding)

    def __bytes__(self) -> bytes:
        return b"".join((self.header, self.payload, self.padding))


@dataclass(frozen=True)
class ErasureCode:
    """k-of-n: any k of the n fragments rebuild the data.

    ``engine`` picks the implementation: ``auto`` (the system's ISA-L, else pyeclib),
    ``isal`` (UsageError without a system ISA-L) or ``pyeclib``. Every engine reads and
    writes the same fragments. One instance may be used from several threads at once (its
    ISA-L tables are only read).
    """

    k: int
    n: int
    engine: Engine = field(default="auto", kw_only=True, compare=False)
    _isal: IsaL | None = field(init=False, repr=False, compare=False, default=None)
    _tables: ctypes.Array[ctypes.c_char] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    _matrix: bytes = field(init=False, repr=False, compare=False, default=b"")
    _driver: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not (1 <= self.k < self.n <= MAX_N):
            raise UsageError(
                f"erasure code needs 1 <= k < n <= {MAX_N} (got k={self.k}, n={self.n})"
            )
        isal = system_isal() if self.engine in ("auto", "isal") else None
        if isal is None and self.engine == "isal":
            raise UsageError("the isal erasure engine needs the system's libisal (libisal2)")
        if isal is not None:
            matrix = isal.cauchy_matrix(self.n, self.k)
            parity_rows = matrix[self.k * self.k :]
            object.__setattr__(self, "_isal", isal)
            object.__setattr__(self, "_matrix", matrix)
            object.__setattr__(
                self, "_tables", isal.init_tables(self.k, self.n - self.k, parity_rows)
            )
        else:
            from pyeclib.ec_iface import ECDriver  # noqa: PLC0415 - only the fallback needs it

            driver = ECDriver(k=self.k, m=self.n - self.k, ec_type=ERASURE_BACKEND)
            object.__setattr__(self, "_driver", driver)

    @property
    def engine_name(self) -> str:
        """The engine in use: ``isal`` or ``pyeclib``."""
        return "isal" if self._isal is not None else "pyeclib"

    # -- encoding -------------------------------------------------------------------------

    def encode(self, data: Buffer) -> list[bytes]:
        """The n fragments of ``data`` (index i at position i)."""
        return [bytes(f) for f in self.encode_fragments(data)]

    def encode_fragments(
        self, data: Buffer, parity: Sequence[bytearray | memoryview] | None = None
    ) -> list[Fragment]:
        """The n fragments as header + payload pieces, without joining them.

        With the ``isal`` engine the data fragments' payloads are views of ``data`` (``bytes``,
        ``bytearray`` or a writable contiguous view; another read-only view is copied once),
        so ``data`` must not change while they are in use; the last ones carry their zero
        padding as ``Fragment.padding``; parity is written once, into ``parity`` when given (n - k
        writable buffers of at least ``ceil(len(data) / k)`` bytes, reused by the caller:
        fresh buffers cost page faults) or else into new buffers. The pyeclib engine
        ignores ``parity``.
        """
        if self._isal is None or self._tables is None:
            return [_split(f) for f in self._pyeclib_encode(data)]
        base = buffer_address(data)
        if base is None:  # a read-only view ctypes cannot point into: copy it once
            data = bytes(data)
            base = buffer_address(data)
        assert base is not None
        view = memoryview(data).cast("B")
        length = view.nbytes
        size = payload_size(length, self.k)
        if size > MAX_FRAGMENT:
            raise UsageError(f"erasure fragments hold at most {MAX_FRAGMENT} bytes (u32 size)")
        # Bytes [0, full) of every data fragment lie inside the input: ISA-L reads them in
        # place. Past ``full`` the last data fragment(s) run off the end (zero padding): that
        # column range, a few bytes for any real pack, is coded from small padded copies.
        full = max(0, min(size, length - (self.k - 1) * size))
        outs = _outputs(parity, self.n - self.k, size, "parity")
        sources = [base + i * size for i in range(self.k)]
        self._isal.encode(full, self._tables, sources, [a for _, a in outs])
        if full < size:
            tails = [bytearray(size - full) for _ in range(self.k)]
            for i, tail in enumerate(tails):
                start = min(length, i * size + full)
                tail[: max(0, min(length, (i + 1) * size) - start)] = view[start : (i + 1) * size]
            self._isal.encode(
                size - full,
                self._tables,
                [buffer_address(t) or 0 for t in tails],
                [a + full for _, a in outs],
            )
        return self.fragments_of(view, [out for out, _ in outs])

    def fragments_of(
        self, data: Buffer, parity: Sequence[bytearray | memoryview]
    ) -> list[Fragment]:
        """The n fragments of ``data`` whose parity payloads are already coded into the
        first ``ceil(len(data) / k)`` bytes of each of ``parity`` (by :meth:`encode_fragments`,
        here or in another process over the same shared buffers): headers and views only,
        no coding. The same fragments :meth:`encode_fragments` returns."""
        view = memoryview(data).cast("B")
        length = view.nbytes
        size = payload_size(length, self.k)
        if len(parity) < self.n - self.k:
            raise UsageError(f"parity: need {self.n - self.k} buffers, got {len(parity)}")
        fragments = []
        for i in range(self.k):
            start = min(length, i * size)
            payload = view[start : min(length, (i + 1) * size)].toreadonly()
            padding = bytes(size - payload.nbytes)
            fragments.append(Fragment(FragmentHeader(i, size, length).encode(), payload, padding))
        for j, buf in enumerate(parity[: self.n - self.k]):
            out = memoryview(buf).cast("B")
            if out.nbytes < size:
                raise UsageError(f"parity: buffers must be >= {size} bytes")
            header = FragmentHeader(self.k + j, size, length).encode()
            fragments.append(Fragment(header, out[:size].toreadonly()))
        return fragments

    def _pyeclib_encode(self, data: Buffer) -> list[bytes]:
        return [bytes(f) for f in self._driver.encode(bytes(data))]

    # -- decoding -------------------------------------------------------------------------

    def decode(self, fragments: Mapping[int, Buffer]) -> bytes:
        """Rebuild the data from at least k fragments (keyed by their index)."""
        return b"".join(self.decode_pieces(fragments))

    def decode_pieces(
        self,
        fragments: Mapping[int, Buffer],
        scratch: Sequence[bytearray | memoryview] | None = None,
    ) -> list[memoryview]:
        """The data as views to use in order (their concatenation is the data).

        When fragments 0..k-1 are all given, the views are slices of them (no decoding, no
        copy); otherwise the first k given fragments are decoded into ``scratch`` (at least
        k - 1 writable buffers of the payload size, reused by the caller; the views point
        into them) or else into new buffers (the pyeclib engine ignores ``scratch``).
        Headers are checked first: a bad one, or
        fragments that do not belong together, raise :class:`FormatError`; fewer than k
        fragments raise :class:`UsageError`.
        """
        if len(fragments) < self.k:
            raise UsageError(f"need {self.k} fragments, have {len(fragments)}")
        data_ids = list(range(self.k))
        systematic = all(i in fragments for i in data_ids)
        chosen = data_ids if systematic else sorted(fragments)[: self.k]
        views = {i: memoryview(fragments[i]).cast("B") for i in chosen}
        headers = self._check_headers(views)
        orig, size = headers[0].orig_size, headers[0].size
        payloads = {i: views[i][HEADER_SIZE:] for i in chosen}
        if not systematic:
            payloads.update(self._solve(chosen, payloads, size, fragments, scratch))
        out: list[memoryview] = []
        left = orig
        for i in data_ids:
            piece = payloads[i][: min(size, left)]
            left -= piece.nbytes
            if piece.nbytes:
                out.append(piece)
        return out

    def _check_headers(self, views: Mapping[int, memoryview]) -> list[FragmentHeader]:
        headers: list[FragmentHeader] = []
        for key, view in views.items():
            h = FragmentHeader.decode(view, self.n)
            if h.index != key:
                raise FormatError(f"erasure fragment given as index {key} says index {h.index}")
            h.check_payload(view[HEADER_SIZE:])
            headers.append(h)
        first = headers[0]
        for h in headers[1:]:
            if (h.size, h.orig_size) != (first.size, first.orig_size):
                raise FormatError(
                    f"erasure fragments {first.index} and {h.index} disagree on sizes "
                    f"({first.size}/{first.orig_size} vs {h.size}/{h.orig_size})"
                )
        if first.size != payload_size(first.orig_size, self.k):
            raise FormatError(
                f"erasure fragment size {first.size} does not fit {first.orig_size} bytes "
                f"over k={self.k}"
            )
        return headers

    def _solve(
        self,
        chosen: list[int],
        payloads: Mapping[int, memoryview],
        size: int,
        fragments: Mapping[int, Buffer],
        scratch: Sequence[bytearray | memoryview] | None,
    ) -> dict[int, memoryview]:
        """The missing data fragments' payloads, from the k chosen fragments."""
        missing = [i for i in range(self.k) if i not in payloads]
        if self._isal is None:
            return self._pyeclib_solve(chosen, missing, size, fragments)
        if scratch is not None:
            scratch = scratch[: len(missing)]
        k, matrix = self.k, self._matrix
        rows = b"".join(matrix[i * k : (i + 1) * k] for i in chosen)
        inverse = self._isal.invert(rows, k)
        if inverse is None:  # cannot happen for a Cauchy matrix and distinct indices
            raise FormatError(f"erasure fragments {chosen} do not decode")
        coefficients = b"".join(inverse[i * k : (i + 1) * k] for i in missing)
        tables = self._isal.init_tables(k, len(missing), coefficients)
        sources: list[int] = []
        keep: list[Buffer] = []
        for i in chosen:
            address = buffer_address(fragments[i])
            if address is None:
                copy = bytes(payloads[i])
                keep.append(copy)
                address = (buffer_address(copy) or 0) - HEADER_SIZE
            sources.append(address + HEADER_SIZE)
        outs = _outputs(scratch, len(missing), size, "scratch")
        self._isal.encode(size, tables, sources, [a for _, a in outs])
        return {i: v.toreadonly() for i, (v, _) in zip(missing, outs, strict=True)}

    def _pyeclib_solve(
        self, chosen: list[int], missing: list[int], size: int, fragments: Mapping[int, Buffer]
    ) -> dict[int, memoryview]:
        try:
            data = self._driver.decode([bytes(fragments[i]) for i in chosen])
        except Exception as exc:  # pyeclib raises its own exception types
            raise FormatError(f"erasure decoding failed: {exc}") from None
        whole = memoryview(bytes(data)).toreadonly()
        return {i: whole[i * size : (i + 1) * size] for i in missing}


def _outputs(
    given: Sequence[bytearray | memoryview] | None, count: int, size: int, what: str
) -> list[tuple[memoryview, int]]:
    """``count`` writable views of ``size`` bytes and their addresses: the caller's buffers
    (checked) or new ones."""
    buffers: Sequence[bytearray | memoryview] = (
        [bytearray(size) for _ in range(count)] if given is None else given
    )
    if len(buffers) < count:
        raise UsageError(f"{what}: need {count} buffers, got {len(buffers)}")
    out: list[tuple[memoryview, int]] = []
    for buf in buffers[:count]:
        view = memoryview(buf)
        if not view.c_contiguous or view.readonly or view.nbytes < size:
            raise UsageError(f"{what}: buffers must be writable, contiguous, >= {size} bytes")
        view = view.cast("B")[:size]
        address = buffer_address(view)
        if address is None:
            raise UsageError(f"{what}: buffers must be writable, contiguous, >= {size} bytes")
        out.append((view, address))
    return out


def _split(fragment: bytes) -> Fragment:
    view = memoryview(fragment)
    return Fragment(fragment[:HEADER_SIZE], view[HEADER_SIZE:])
