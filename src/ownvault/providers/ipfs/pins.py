"""Pins: where a CID is pinned and how far, and the port of providers that pin whole DAGs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ownvault.core.cid import CID
from ownvault.errors import FormatError

__all__ = ["PIN_STATES", "DagPinner", "PinState", "PinStatus"]

PinState = Literal["queued", "pinning", "pinned", "failed"]
PIN_STATES: tuple[PinState, ...] = ("queued", "pinning", "pinned", "failed")


@dataclass(frozen=True, slots=True)
class PinStatus:
    """Where one CID is pinned and how far (the Pinning Service API's ``PinStatus``)."""

    provider: str
    cid: CID
    state: PinState
    name: str | None = None
    requestid: str | None = None
    created: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.state not in PIN_STATES:
            raise FormatError(f"unknown pin status {self.state!r}")


@runtime_checkable
class DagPinner(Protocol):
    """An IPFS provider that can also take in a whole DAG and pin it (for publishing)."""

    async def import_blocks(self, root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> int: ...

    async def pin(self, root: CID, name: str) -> PinStatus: ...

    async def pin_status(self, cid: CID) -> PinStatus | None: ...

    async def unpin(self, cid: CID) -> None: ...

    def pins(self) -> AsyncIterator[PinStatus]: ...
