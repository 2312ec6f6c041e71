"""What preserving NFTs answers: pins, health checks, listed tokens, collection runs.

Frozen values; their fields are the keys of the JSON documents ``ownvault nft ... --json``
prints (and of the ``health`` document stored with each token), in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ownvault.engine.nft.collect import Collected
from ownvault.engine.store.catalog.nft import TokenState

__all__ = [
    "CollectionRun",
    "PinHow",
    "PinOutcome",
    "PreservedToken",
    "ReverifiedToken",
    "TokenCheck",
    "TokenHealth",
    "TokenOutcome",
]

PinHow = Literal["kubo-rpc", "provider"]
"""How a folder was pinned: a Kubo RPC URL (``dag/import``) or one of the vault's providers."""


@dataclass(frozen=True, slots=True)
class PinOutcome:
    target: str
    ok: bool
    how: PinHow
    error: str | None


@dataclass(frozen=True, slots=True)
class TokenHealth:
    """A re-verification: ``copy`` is ``ok``, ``damaged: ...``, ``missing: ...`` or an error."""

    checked_at: int
    copy: str
    pins: list[PinOutcome]
    ok: bool


@dataclass(frozen=True, slots=True)
class ReverifiedToken:
    source: str
    name: str
    root: str | None
    health: TokenHealth


@dataclass(frozen=True, slots=True)
class PreservedToken:
    """A token the vault preserved or tried to; ``summary`` and ``health`` are the JSON
    documents stored with it (counts by part status; the last health check)."""

    source: str
    name: str
    collection: str | None
    state: TokenState
    root: str | None
    url: str | None
    summary: dict[str, Any] | None
    pins: list[str]
    health: dict[str, Any] | None
    error: str | None
    updated_at: int
    verified_at: int | None


Outcome = Literal["preserved", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class TokenOutcome:
    """One token of a collection run: ``error`` when it failed, ``root`` and ``statuses``
    (part counts by status) when it was preserved."""

    source: str
    outcome: Outcome
    error: str | None = None
    root: str | None = None
    statuses: dict[str, int] | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"source": self.source, "outcome": self.outcome}
        if self.outcome == "failed":
            doc["error"] = self.error
        if self.outcome == "preserved":
            doc |= {"root": self.root, "statuses": self.statuses}
        return doc


@dataclass(frozen=True, slots=True)
class CollectionRun:
    preserved: int
    skipped: int
    failed: int
    total: int
    tokens: list[TokenOutcome]

    def to_json(self) -> dict[str, object]:
        return {
            "preserved": self.preserved,
            "skipped": self.skipped,
            "failed": self.failed,
            "total": self.total,
            "tokens": [t.to_json() for t in self.tokens],
        }


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A token checked without storing it: ``ok`` when every part is verified, embedded or
    (only) of unverifiable origin."""

    collected: Collected
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return self.collected.to_json() | {"ok": self.ok}
