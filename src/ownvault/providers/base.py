"""The Provider protocol and its written contract.

A provider stores opaque, immutable objects under validated names. Everything ownvault
keeps anywhere (erasure-coded shares, catalog snapshot shares, locators) goes through this
small interface, and one contract test suite (``tests/providers/contract.py``) runs against
every implementation.

The contract
------------
``put(name, data)``
    Stores ``data`` under ``name`` atomically and durably: when it returns, the object is
    complete and survives a crash or power loss of the provider; a reader never sees a
    partial object. Objects are immutable: if ``name`` exists already, ``put`` raises
    :class:`~ownvault.errors.ObjectExistsError` and leaves the stored object as it was
    (callers that retry compare the stored bytes themselves).
``get(name, offset=0, length=None)``
    Returns the bytes ``[offset, offset+length)`` of the object (to its end when ``length``
    is None). A range past the end is truncated to the object's end; an ``offset`` past the
    end returns ``b""``. Missing object: :class:`~ownvault.errors.ObjectNotFoundError`.
    The bytes are *not* trusted by the caller: a hostile provider may return anything.
``stat(name)``
    Returns :class:`ObjectInfo` (name, size) or raises ``ObjectNotFoundError``.
``list(prefix)``
    Yields :class:`ObjectInfo` for every object whose name starts with ``prefix``, in
    lexicographic order of name, each once.
``delete(name)``
    Removes the object. Deleting a missing object is not an error (idempotent).
``info()``
    Returns :class:`ProviderInfo`: kind, location, and free bytes where known. It raises
    ``ProviderUnavailableError`` when the provider cannot be reached.
``close()``
    Releases connections; the provider is not used afterwards.

Errors are classified (see :mod:`ownvault.errors`): missing objects, conflicts, retryable
transport trouble, permanent refusals, and a full store are different exceptions, so that
wrappers can retry only what is worth retrying.

Names
-----
Names are ASCII, 1..200 characters of ``[a-z0-9._/-]``, made of ``/``-separated segments
that are non-empty and neither ``.`` nor ``..``, with no leading or trailing ``/``.
:func:`validate_name` is the single validator every provider calls.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ownvault.errors import UsageError

__all__ = [
    "MAX_NAME_LENGTH",
    "ObjectInfo",
    "Provider",
    "ProviderInfo",
    "validate_name",
    "validate_prefix",
]

MAX_NAME_LENGTH = 200
_NAME_RE = re.compile(r"[a-z0-9._/-]+")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid object name, else raise ``UsageError``."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
        raise UsageError(f"invalid object name (length): {name!r:.60}")
    if not _NAME_RE.fullmatch(name):
        raise UsageError(f"invalid object name (characters): {name!r:.60}")
    for segment in name.split("/"):
        if segment in ("", ".", ".."):
            raise UsageError(f"invalid object name (segment): {name!r:.60}")
    return name


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a name-like string that may end in ``/``."""
    if prefix == "":
        return prefix
    validate_name(prefix.rstrip("/") or "x")
    if len(prefix) > MAX_NAME_LENGTH:
        raise UsageError("invalid prefix (length)")
    return prefix


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    kind: str
    location: str
    free_bytes: int | None = None


@runtime_checkable
class Provider(Protocol):
    """A place that holds opaque immutable objects. See the module docstring for the contract."""

    @property
    def kind(self) -> str: ...

    @property
    def location(self) -> str: ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    async def stat(self, name: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...

    async def delete(self, name: str) -> None: ...

    async def info(self) -> ProviderInfo: ...

    async def close(self) -> None: ...
