"""Content-defined chunking (FastCDC), streaming.

The chunker's parameters decide chunk boundaries and therefore deduplication, so they are
a named frozen value stored in the vault's catalog (``ChunkerParams``), never a module
global. Boundaries depend only on the bytes from a chunk's start up to ``max_size`` later,
so feeding the stream in any block sizes gives the same chunks as chunking it whole.

Chunk boundaries are not secret from someone who holds the plaintext, but they never reach
a provider: encrypted chunks are concatenated into padded packs before erasure coding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastcdc import fastcdc as _fastcdc

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
    """Feed bytes in any block sizes; get back the chunks whose boundaries are final."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        self._carry = b""

    def _cut(self, buf: bytes, final: bool) -> Iterator[bytes]:
        p = self.params
        view = memoryview(buf)
        end = 0
        for c in _fastcdc(view, p.min_size, p.avg_size, p.max_size, False):
            if not final and c.offset + p.max_size > len(buf):
                break
            end = c.offset + c.length
            yield bytes(view[c.offset : end])
        view.release()
        self._carry = buf[end:]

    def feed(self, data: bytes | memoryview) -> list[bytes]:
        buf = self._carry + bytes(data) if self._carry else bytes(data)
        if len(buf) < self.params.max_size:
            self._carry = buf
            return []
        return list(self._cut(buf, final=False))

    def finish(self) -> list[bytes]:
        buf, self._carry = self._carry, b""
        if not buf:
            return []
        return list(self._cut(buf, final=True))
