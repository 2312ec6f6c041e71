"""Where a device's journal stands: its clock readings, the dots that name what its ops
made, and the heads of its chain (docs/design.md, "Catalog journal and multi-device merge").

Apart from the op vocabulary (:mod:`ownvault.core.journalops`, which re-exports these) so
that the catalog can hold heads and clocks without defining every op: a command that only
reads the local catalog (``ls``, a put the files cache finds unchanged) loads this module
and not the ops, whose definitions were the largest part of opening the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from ownvault.core.journalfields import DEVICE_ID_SIZE, HASH_SIZE, MAX_OPS, MAX_U32, MAX_U64
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError

__all__ = ["GENESIS", "ChainHead", "Dot", "Hlc"]


@dataclass(frozen=True, slots=True, order=True)
class Hlc:
    """A hybrid logical clock reading (Kulkarni et al. 2014): wall milliseconds, counter."""

    wall_ms: int
    counter: int

    def __post_init__(self) -> None:
        if not (0 <= self.wall_ms <= MAX_U64 and 0 <= self.counter <= MAX_U32):
            raise FormatError(f"hybrid clock reading out of range: {self.wall_ms}.{self.counter}")

    def tick(self, now_ms: int) -> Hlc:
        """The next reading of a device whose last was ``self``, at wall time ``now_ms``:
        later than ``self`` even when the wall clock stepped back."""
        if now_ms > self.wall_ms:
            return Hlc(now_ms, 0)
        return Hlc(self.wall_ms, self.counter + 1)

    def witness(self, remote: Hlc) -> Hlc:
        """``self`` raised to at least ``remote`` (a record read from another device), so the
        next :meth:`tick` sorts after everything this device has seen."""
        return max(self, remote)


@dataclass(frozen=True, slots=True, order=True)
class Dot:
    """Names what an operation made: (device id, record seq, index of the op in it)."""

    device: bytes
    seq: int
    index: int

    def __post_init__(self) -> None:
        if len(self.device) != DEVICE_ID_SIZE:
            raise FormatError("a device id is 16 bytes")
        if not (1 <= self.seq <= MAX_U64 and 0 <= self.index < MAX_OPS):
            raise FormatError(f"dot out of range: seq {self.seq}, index {self.index}")

    def to_json(self) -> list[JSONValue]:
        return [self.device.hex(), self.seq, self.index]

    def __str__(self) -> str:
        return f"{self.device.hex()}:{self.seq}:{self.index}"


@dataclass(frozen=True, slots=True, order=True)
class ChainHead:
    """Where a device's chain stands: its last seq, that record's hash and clock reading.
    (Here, not in :mod:`ownvault.core.journal`, so the catalog can hold heads without
    loading the crypto that makes and opens records.)"""

    seq: int
    hash: bytes
    hlc: Hlc


GENESIS = ChainHead(0, bytes(HASH_SIZE), Hlc(0, 0))
