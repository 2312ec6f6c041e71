"""HTTP content codings decoded with a bound on the bytes they *produce* (decompression bombs).

A hostile server can send a few kilobytes that inflate to gigabytes: ``gzip`` alone reaches
about 1000:1, and stacked codings (``Content-Encoding: gzip, gzip``) multiply, so 3.5 KB
once became 6.3 GB inside httpx's decoder, which inflates a whole network chunk through
every layer before the caller can count a byte. Callers that read bodies from providers or
from the web therefore take the *raw* bytes (``Response.aiter_raw``) and decode them here:

* every layer is a ``zlib`` decompressor driven with ``max_length``, so no call produces
  more than :data:`PIECE` bytes; what it could not consume yet stays in
  ``unconsumed_tail`` and is fed again once the layers above have taken the piece;
* the decoded total is counted piece by piece and :class:`BodyTooLarge` is raised as soon
  as it passes the limit, so memory stays near ``limit + layers * PIECE`` whatever the
  ratio;
* codings: ``identity``, ``gzip`` (``x-gzip``), ``deflate`` (zlib-wrapped, or raw as some
  servers send it), stacked up to :data:`MAX_CODINGS` deep. ``br`` and ``zstd`` need
  libraries that are not installed here (httpx decodes neither without them), so like any
  other unknown coding they are refused (:class:`BadContentCoding`), never passed through
  as if they were the content. A stream that ends before its coding does is refused too.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

__all__ = [
    "MAX_CODINGS",
    "PIECE",
    "BadContentCoding",
    "BodyTooLarge",
    "ContentDecoder",
    "decoded_body",
]

PIECE = 64 * 1024  # the most bytes one decompression step may produce
MAX_CODINGS = 8


class BodyTooLarge(Exception):
    """The decoded body passed its limit (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes after content decoding")
        self.limit = limit


class BadContentCoding(Exception):
    """An unknown or unsupported coding, too many of them, or a corrupt/truncated stream."""


class _Inflater:
    """One ``gzip`` or ``deflate`` layer, producing at most :data:`PIECE` bytes per step."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # "deflate" is zlib-wrapped by the spec but raw in some servers: until the 2-byte
        # zlib header has been seen, the bytes fed are kept to retry them as raw deflate.
        self._head: bytearray | None = bytearray() if coding == "deflate" else None
        wbits = zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS
        self._d = zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._head is not None:
            self._head += data
        while not self._d.eof:
            try:
                out = self._d.decompress(data, PIECE)
            except zlib.error as exc:
                if self._head is None:
                    raise BadContentCoding(f"corrupt {self.coding} stream: {exc}") from None
                data, self._head = bytes(self._head), None
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            if self._head is not None and len(self._head) >= 2:
                self._head = None  # the zlib header was valid
            data = self._d.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < PIECE:
                return
        # bytes after the end of the stream (a second gzip member, padding) are dropped

    def finish(self) -> None:
        if not self._d.eof:
            raise BadContentCoding(f"the {self.coding} stream ends early")


class ContentDecoder:
    """Decodes one body whose ``Content-Encoding`` header is ``header``, at most ``limit`` bytes."""

    def __init__(self, header: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (header or "").split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > MAX_CODINGS:
            raise BadContentCoding(
                f"{len(codings)} stacked content codings (at most {MAX_CODINGS})"
            )
        for c in codings:
            if c not in ("gzip", "x-gzip", "deflate"):
                raise BadContentCoding(f"unsupported content coding {c[:40]!r}")
        # Codings are listed in the order they were applied: undo the last one first.
        self._layers = [_Inflater("gzip" if c == "x-gzip" else c) for c in reversed(codings)]
        self.limit = limit
        self.size = 0

    def decode(self, raw: bytes) -> Iterator[bytes]:
        """The decoded pieces of the next raw bytes (each at most :data:`PIECE` long)."""
        for piece in self._through(0, raw):
            self.size += len(piece)
            if self.size > self.limit:
                raise BodyTooLarge(self.limit)
            yield piece

    def _through(self, depth: int, data: bytes) -> Iterator[bytes]:
        if depth == len(self._layers):
            yield data
            return
        for piece in self._layers[depth].feed(data):
            yield from self._through(depth + 1, piece)

    def finish(self) -> None:
        """Check that every coded stream ended (call after the last raw bytes)."""
        for layer in self._layers:
            layer.finish()


async def decoded_body(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """The decoded body of a streamed ``response``, never more than ``limit`` bytes.

    Raises :class:`BodyTooLarge` or :class:`BadContentCoding`; transport errors are httpx's.
    """
    decoder = ContentDecoder(response.headers.get("content-encoding"), limit)
    async for raw in response.aiter_raw(PIECE):
        for piece in decoder.decode(raw):
            yield piece
    decoder.finish()
