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
    (callers that retry compare the stored bytes themselves). ``data`` is one buffer or a
    sequence of buffers (:data:`PutData`) whose concatenation is the object: a share goes
    down as its header, views of the pack and its tree, never joined first. A provider
    reads the buffers only while ``put`` runs and keeps no reference to them afterwards
    (it copies what it keeps), so the caller may reuse them once ``put`` has returned; a
    ``put`` that was cancelled may still be reading them in a thread that cannot be
    stopped, so their owner reuses them only after a ``put`` that returned. (An object
    that lands under the name was read completely before it landed, so a stray thread
    that reads a reused buffer afterwards cannot make it visible: its name is taken.)
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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from ownvault.errors import FormatError, UsageError

__all__ = [
    "MAX_NAME_LENGTH",
    "Buffer",
    "ObjectInfo",
    "Provider",
    "ProviderInfo",
    "PutData",
    "as_parts",
    "get_at_most",
    "joined",
    "put_size",
    "same_bytes",
    "validate_name",
    "validate_prefix",
]

Buffer: TypeAlias = bytes | bytearray | memoryview
PutData: TypeAlias = Buffer | Sequence[Buffer]
"""What ``put`` stores: one buffer, or buffers whose concatenation is the object."""

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


async def get_at_most(provider: Provider, name: str, limit: int) -> bytes:
    """The whole object ``name``, refused (:class:`FormatError`) when it is over ``limit``
    bytes. Every whole-object read of bytes a provider may have forged goes through here
    (or asks for an exact range), so a hostile provider serving a huge object costs the
    reader at most ``limit + 1`` bytes of memory, never the object's size: the range asked
    is ``[0, limit + 1)``, and every provider cuts its answer to the range asked (the
    contract above; the HTTP clients bound the body they read by it)."""
    data = await provider.get(name, 0, limit + 1)
    if len(data) > limit:
        raise FormatError(f"{name} is over {limit} bytes")
    return data


def as_parts(data: PutData) -> list[memoryview]:
    """``data`` as byte views (format ``B``, one dimension), empty parts dropped."""
    buffers = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    views = []
    for b in buffers:
        view = memoryview(b)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        if len(view):
            views.append(view)
    return views


def put_size(data: PutData) -> int:
    """The size of the object ``data`` makes."""
    if isinstance(data, bytes | bytearray | memoryview):
        return memoryview(data).nbytes
    return sum(memoryview(b).nbytes for b in data)


def joined(data: PutData) -> bytes:
    """``data`` as one ``bytes`` (a copy; for providers whose client needs one object)."""
    if type(data) is bytes:
        return data
    return b"".join(as_parts(data))


def same_bytes(stored: bytes, data: PutData) -> bool:
    """Whether ``stored`` is the object ``data`` makes, compared part by part (no join)."""
    pos = 0
    with memoryview(stored) as view:
        for part in as_parts(data):
            end = pos + len(part)
            if end > len(view) or view[pos:end] != part:
                return False
            pos = end
        return pos == len(view)


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

    async def put(self, name: str, data: PutData) -> None: ...

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes: ...

    async def stat(self, name: str) -> ObjectInfo: ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]: ...

    async def delete(self, name: str) -> None: ...

    async def info(self) -> ProviderInfo: ...

    async def close(self) -> None: ...
