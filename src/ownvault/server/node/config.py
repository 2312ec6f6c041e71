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

__all__ = ["CHAOS_MODES", "NodeConfig", "chaos_dropped", "parse_allowlist"]

CHAOS_MODES = frozenset(
    {"corrupt-reads", "bad-digest", "hang-reads", "fail-writes", "drop-blocks", "lie-audits"}
)
_JURISDICTION = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data: Path
    jurisdiction: str | None = None
    quota_per_account: int | None = None
    accounts: Literal["open", "allowlist"] = "open"
    allowlist: frozenset[str] = field(default_factory=frozenset)
    max_object_size: int = DEFAULT_MAX_OBJECT
    window: int = 120
    chaos: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.jurisdiction is not None and not _JURISDICTION.match(self.jurisdiction):
            raise UsageError("jurisdiction must be an ISO 3166-1 alpha-2 code such as CH")
        if self.quota_per_account is not None and self.quota_per_account < 0:
            raise UsageError("quota must not be negative")
        if not 0 < self.max_object_size <= 1 << 40:
            raise UsageError("max object size out of range")
        if not 5 <= self.window <= 3600:
            raise UsageError("signature window must be 5..3600 seconds")
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
