"""Named rows the catalog returns (frozen values, never positional tuples)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ChunkRef",
    "EntryKind",
    "EntryRow",
    "ProviderRow",
    "ProviderState",
    "ShareRow",
    "VersionKind",
    "VersionRow",
]

VersionKind = Literal["file", "tree"]
"""What a stored version is: one file, or a tree (the catalog's CHECK on versions.kind)."""
EntryKind = Literal["file", "dir", "symlink"]
"""An entry of a stored tree (CHECK on entries.kind)."""
ProviderState = Literal["active", "draining", "removed"]
"""A provider's place in the fleet (CHECK on providers.state)."""


@dataclass(frozen=True, slots=True)
class ProviderRow:
    id: int
    name: str
    kind: str
    url: str
    jurisdiction: str | None
    labels: dict[str, str]
    config: dict[str, Any]
    state: ProviderState
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class ShareRow:
    pack: int
    idx: int
    provider: int
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """Where one chunk of a content stream lives, and where it sits in the stream."""

    row: int
    chunk_id: bytes
    pack: int
    pack_id: bytes
    pack_size: int
    offset: int
    length: int
    plain_len: int
    wrapped_key: bytes
    stream_offset: int
    key_epoch: int = 0


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: int
    name: str
    number: int
    kind: VersionKind
    created_at: int
    size: int
    file_count: int
    cid: str | None
    cid_profile: str | None


@dataclass(frozen=True, slots=True)
class EntryRow:
    path: str
    kind: EntryKind
    mode: int
    mtime_ns: int
    size: int
    content: int | None
    target: str | None
    cid: str | None
