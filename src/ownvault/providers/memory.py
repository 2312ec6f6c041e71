"""An in-memory provider: for tests and for trying things out. Honours the full contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ownvault.errors import ObjectExistsError, ObjectNotFoundError, UsageError
from ownvault.providers.base import (
    ObjectInfo,
    ProviderInfo,
    PutData,
    joined,
    validate_name,
    validate_prefix,
)

__all__ = ["MemoryProvider"]


class MemoryProvider:
    def __init__(self, label: str = "memory") -> None:
        self._label = label
        self.objects: dict[str, bytes] = {}

    @property
    def kind(self) -> str:
        return "memory"

    @property
    def location(self) -> str:
        return f"memory:{self._label}"

    async def put(self, name: str, data: PutData) -> None:
        validate_name(name)
        if name in self.objects:
            raise ObjectExistsError(f"object exists: {name}", provider=self._label, share=name)
        self.objects[name] = joined(data)  # a copy: the caller may reuse its buffers

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate_name(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        try:
            data = self.objects[name]
        except KeyError:
            raise ObjectNotFoundError(
                f"object not found: {name}", provider=self._label, share=name
            ) from None
        end = len(data) if length is None else offset + length
        return data[offset:end]

    async def stat(self, name: str) -> ObjectInfo:
        validate_name(name)
        if name not in self.objects:
            raise ObjectNotFoundError(f"object not found: {name}", provider=self._label)
        return ObjectInfo(name, len(self.objects[name]))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        for name in sorted(self.objects):
            if name.startswith(prefix):
                yield ObjectInfo(name, len(self.objects[name]))

    async def delete(self, name: str) -> None:
        validate_name(name)
        self.objects.pop(name, None)

    async def info(self) -> ProviderInfo:
        return ProviderInfo("memory", self.location, None)

    async def close(self) -> None:
        return None
