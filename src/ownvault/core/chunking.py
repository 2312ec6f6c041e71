"""Content-defined chunking (FastCDC), streaming.

The chunker's parameters decide chunk boundaries and therefore deduplication, so they are
a named frozen value stored in the vault's catalog (``ChunkerParams``), never a module
global. Boundaries depend only on the bytes from a chunk's start up to ``max_size`` later,
so feeding the stream in any block sizes gives the same chunks as chunking it whole.

Chunk boundaries are not secret from someone who holds the plaintext, but they never reach
a provider: encrypted chunks are concatenated into padded packs before erasure coding.
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.errors import UsageError

__all__ = ["DEFAULT_CHUNKER", "Chunker", "ChunkerParams"]


@dataclass(frozen=True, slots=True)
class ChunkerParams:
    name: str
    min_size: int
    avg_size: int
    max_size: int

    def __post_init__(self) -> None:
        if not 64 <= self.min_size <= self.avg_size <= self.max_size <= 64 * 1024 * 1024:
            raise UsageError("chunker sizes must satisfy 64 <= min <= avg <= max <= 64 MiB")

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "min": self.min_size,
            "avg": self.avg_size,
            "max": self.max_size,
        }

    @classmethod
    def from_json(cls, d: object) -> ChunkerParams:
        if not isinstance(d, dict):
            raise UsageError("bad chunker parameters: not a JSON object")
        try:
            return cls(str(d["name"]), int(d["min"]), int(d["avg"]), int(d["max"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad chunker parameters: {exc}") from None


DEFAULT_CHUNKER = ChunkerParams("fastcdc-v1-256k-1m-4m", 256 * 1024, 1024 * 1024, 4 * 1024 * 1024)


class Chunker:
    """Feed bytes in any block sizes; get back the chunks whose boundaries are final.

    A chunk is final when FastCDC cut it before the end of the bytes it was given (a cut
    depends only on the bytes from the chunk's start up to the cut), or at ``max_size``;
    the chunk that runs into the end of the buffer may grow with more bytes, so it is
    carried to the next call."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        self._carry = b""

    def cut(self, buf: bytes | bytearray | memoryview, final: bool) -> tuple[list[memoryview], int]:
        """The final chunks at the start of ``buf``, as views into it (no copies), and the
        number of bytes they cover; the rest must start the next buffer. ``final``: ``buf``
        ends the stream (every byte is cut)."""
        p = self.params
        view = memoryview(buf).cast("B")
        size = len(view)
        out: list[memoryview] = []
        end = 0
        if not size:
            return out, 0
        from fastcdc import fastcdc  # noqa: PLC0415 (not loaded by what only reads settings)

        for c in fastcdc(view, p.min_size, p.avg_size, p.max_size, False):
            stop = c.offset + c.length
            if not final and stop >= size and c.length < p.max_size:
                break
            out.append(view[c.offset : stop])
            end = stop
        return out, end

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        buf = self._carry + bytes(data) if self._carry else bytes(data)
        pieces, end = self.cut(buf, final=False)
        self._carry = buf[end:]
        return [bytes(piece) for piece in pieces]

    def finish(self) -> list[bytes]:
        buf, self._carry = self._carry, b""
        return [bytes(piece) for piece in self.cut(buf, final=True)[0]]
