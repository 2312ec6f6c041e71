"""The storage node's configuration, allowlist parsing, and its chaos modes (for tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ownvault.core import crypto
from ownvault.core.keys import ed25519_from_did_key
from ownvault.errors import FormatError, UsageError
from ownvault.providers.node.protocol import DEFAULT_MAX_OBJECT

__all__ = [
    "CHAOS_MODES",
    "DEFAULT_QUOTA",
    "NodeConfig",
    "chaos_dropped",
    "parse_allowlist",
]

CHAOS_MODES = frozenset(
    {"corrupt-reads", "bad-digest", "hang-reads", "fail-writes", "drop-blocks", "lie-audits"}
)
_JURISDICTION = re.compile(r"[A-Z]{2}")


DEFAULT_QUOTA = 1 << 30
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_UPLOAD_BUDGET = 512 << 20
DEFAULT_NONCES_PER_ACCOUNT = 100_000


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's settings. The defaults are the safe ones: only allowlisted accounts, a
    quota per account, bounded connections, uploads and timeouts (docs/node-protocol.md,
    "Limits")."""

    data: Path
    jurisdiction: str | None = None
    quota_per_account: int | None = DEFAULT_QUOTA
    """Bytes each account may store; None: unlimited (an explicit operator choice)."""
    accounts: Literal["open", "allowlist"] = "allowlist"
    allowlist: frozenset[str] = field(default_factory=frozenset)
    max_object_size: int = DEFAULT_MAX_OBJECT
    window: int = 120
    chaos: frozenset[str] = field(default_factory=frozenset)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open connections; beyond it the longest-waiting idle one is closed, else the new one."""
    header_timeout: float = 10.0
    """Seconds a new connection has to deliver a complete request head."""
    idle_timeout: float = 30.0
    """Seconds a connection may wait for its next request, or an upload for its next bytes."""
    upload_budget: int = DEFAULT_UPLOAD_BUDGET
    """Bytes of uploads in flight, all accounts; beyond it uploads get 503 + Retry-After."""
    nonces_per_account: int = DEFAULT_NONCES_PER_ACCOUNT
    """Signed requests one account may make per replay window (2 x window seconds)."""

    def __post_init__(self) -> None:
        if self.jurisdiction is not None and not _JURISDICTION.fullmatch(self.jurisdiction):
            raise UsageError("jurisdiction must be an ISO 3166-1 alpha-2 code such as CH")
        if self.quota_per_account is not None and self.quota_per_account < 0:
            raise UsageError("quota must not be negative")
        if not 0 < self.max_object_size <= 1 << 40:
            raise UsageError("max object size out of range")
        if not 5 <= self.window <= 3600:
            raise UsageError("signature window must be 5..3600 seconds")
        if not 1 <= self.max_connections <= 100_000:
            raise UsageError("max connections must be 1..100000")
        if not 0 < self.header_timeout <= 3600 or not 0 < self.idle_timeout <= 3600:
            raise UsageError("timeouts must be in (0, 3600] seconds")
        if self.upload_budget < self.max_object_size:
            raise UsageError("the upload budget must hold at least one largest object")
        if not 1 <= self.nonces_per_account <= 10_000_000:
            raise UsageError("nonces per account must be 1..10000000")
        if self.accounts not in ("open", "allowlist"):
            raise UsageError("accounts must be open or allowlist")
        unknown = {m.split("=", 1)[0] for m in self.chaos} - CHAOS_MODES
        if unknown:
            raise UsageError(f"unknown chaos mode(s): {sorted(unknown)}")
        for mode in self.chaos:
            name, sep, value = mode.partition("=")
            if (name == "drop-blocks") != bool(sep):
                raise UsageError(
                    f"chaos mode {mode!r}: only drop-blocks takes a value (drop-blocks=0.1)"
                )
            if sep:
                try:
                    fraction = float(value)
                except ValueError:
                    fraction = -1.0
                if not 0 < fraction <= 1:
                    raise UsageError("drop-blocks wants a fraction in (0, 1], e.g. drop-blocks=0.1")

    @property
    def drop_fraction(self) -> float:
        """The fraction of blocks a ``drop-blocks=F`` chaos node pretends to have lost (else 0)."""
        for mode in self.chaos:
            if mode.startswith("drop-blocks="):
                return float(mode.partition("=")[2])
        return 0.0


def chaos_dropped(name: str, index: int, fraction: float) -> bool:
    """Whether a ``drop-blocks=fraction`` node has "lost" block ``index`` of object ``name``.

    Deterministic (tests recompute it): BLAKE3 of the name and index, read as a number in
    [0, 1), below the fraction.
    """
    if fraction <= 0:
        return False
    h = crypto.blake3_hash(
        b"ownvault-chaos-drop\0" + name.encode() + b"\0" + index.to_bytes(8, "big")
    )
    return int.from_bytes(h[:8], "big") < fraction * 2**64


def parse_allowlist(text: str) -> frozenset[str]:
    """One ``did:key`` a line; blank lines and ``#`` comments are ignored."""
    dids = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                ed25519_from_did_key(line)
            except FormatError:
                raise UsageError(f"allowlist line {number} is not an Ed25519 did:key") from None
            dids.add(line)
    return frozenset(dids)
