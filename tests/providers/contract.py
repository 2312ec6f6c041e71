"""The provider contract suite (see ownvault.providers.base), run against every provider.

A test module for a provider subclasses :class:`ProviderContract` and supplies a
``provider`` fixture that yields a fresh, empty provider. Every test here is async and runs
through ``run`` so the suite needs no asyncio plugin.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from ownvault.errors import ObjectExistsError, ObjectNotFoundError, UsageError
from ownvault.providers.base import ObjectInfo, Provider

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(_wrap(coro))


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


async def _listing(p: Provider, prefix: str = "") -> list[ObjectInfo]:
    return [o async for o in p.list(prefix)]


class ProviderContract:
    """Subclass and provide a ``provider`` fixture."""

    def test_put_get_roundtrip(self, provider: Provider) -> None:
        data = os.urandom(100_000)
        run(provider.put("shares/ab/abc.0", data))
        assert run(provider.get("shares/ab/abc.0")) == data

    def test_put_of_parts_stores_exactly_the_joined_bytes(self, provider: Provider) -> None:
        # A share goes down as header, views of a pack buffer and its tree: the provider
        # stores their concatenation, and keeps nothing that sees the caller's buffers.
        pack = bytearray(os.urandom(300_000))
        parts = [
            b"head",
            memoryview(pack)[1000:200_001],
            b"",
            bytearray(b"tail of one part"),
            memoryview(pack)[250_000:],
            *(bytes([i % 256]) * (i % 7) for i in range(1100)),  # more parts than one writev takes
        ]
        expected = b"".join(bytes(p) for p in parts)
        run(provider.put("shares/pa/parts.0", parts))
        pack[:] = bytes(len(pack))  # the caller reuses its buffer once put returned
        assert run(provider.get("shares/pa/parts.0")) == expected
        assert run(provider.stat("shares/pa/parts.0")).size == len(expected)
        run(provider.put("shares/pa/none.0", []))
        assert run(provider.get("shares/pa/none.0")) == b""

    def test_empty_object(self, provider: Provider) -> None:
        run(provider.put("e", b""))
        assert run(provider.get("e")) == b""
        assert run(provider.stat("e")).size == 0

    def test_ranges(self, provider: Provider) -> None:
        data = bytes(range(256)) * 40
        run(provider.put("r/x", data))
        assert run(provider.get("r/x", 10, 20)) == data[10:30]
        assert run(provider.get("r/x", 10)) == data[10:]
        assert run(provider.get("r/x", len(data) - 5, 100)) == data[-5:]
        assert run(provider.get("r/x", len(data) + 10, 5)) == b""
        assert run(provider.get("r/x", 0, 0)) == b""

    def test_stat(self, provider: Provider) -> None:
        run(provider.put("s/one", b"12345"))
        info = run(provider.stat("s/one"))
        assert info == ObjectInfo("s/one", 5)

    def test_missing(self, provider: Provider) -> None:
        with pytest.raises(ObjectNotFoundError):
            run(provider.get("nope/x"))
        with pytest.raises(ObjectNotFoundError):
            run(provider.stat("nope/x"))

    def test_immutable(self, provider: Provider) -> None:
        run(provider.put("imm", b"first"))
        with pytest.raises(ObjectExistsError):
            run(provider.put("imm", b"second"))
        assert run(provider.get("imm")) == b"first"

    def test_list_prefix_sorted(self, provider: Provider) -> None:
        names = ["a/1", "a/2", "a/b/3", "b/1", "ab"]
        for n in names:
            run(provider.put(n, n.encode()))
        assert [o.name for o in run(_listing(provider))] == sorted(names)
        assert [o.name for o in run(_listing(provider, "a/"))] == ["a/1", "a/2", "a/b/3"]
        assert [o.name for o in run(_listing(provider, "a"))] == ["a/1", "a/2", "a/b/3", "ab"]
        assert [o.size for o in run(_listing(provider, "b/"))] == [3]
        assert run(_listing(provider, "zzz")) == []

    def test_delete_idempotent(self, provider: Provider) -> None:
        run(provider.put("d/x", b"x"))
        run(provider.delete("d/x"))
        run(provider.delete("d/x"))
        with pytest.raises(ObjectNotFoundError):
            run(provider.get("d/x"))
        run(provider.put("d/x", b"again"))
        assert run(provider.get("d/x")) == b"again"

    @pytest.mark.parametrize(
        "bad", ["", "/abs", "a/../b", "a//b", "../x", "UPPER", "sp ace", "a/", "x" * 201, "a/./b"]
    )
    def test_bad_names_rejected(self, provider: Provider, bad: str) -> None:
        with pytest.raises(UsageError):
            run(provider.put(bad, b"x"))
        with pytest.raises(UsageError):
            run(provider.get(bad))

    def test_concurrent_puts(self, provider: Provider) -> None:
        blobs = {f"c/{i:03d}": os.urandom(1000 + i) for i in range(24)}

        async def go() -> None:
            async with asyncio.TaskGroup() as tg:
                for n, d in blobs.items():
                    tg.create_task(provider.put(n, d))

        run(go())
        for n, d in blobs.items():
            assert run(provider.get(n)) == d

    def test_large_object(self, provider: Provider) -> None:
        data = os.urandom(6 * 1024 * 1024 + 7)
        run(provider.put("big/one", data))
        assert run(provider.get("big/one")) == data
        assert run(provider.stat("big/one")).size == len(data)
        assert run(provider.get("big/one", 5 * 1024 * 1024, 1024)) == data[5 * 1024 * 1024 :][:1024]

    def test_info(self, provider: Provider) -> None:
        info = run(provider.info())
        assert info.kind == provider.kind
        assert info.location

    def test_close(self, provider: Provider) -> None:
        run(provider.close())


ProviderFactory = Callable[[], Any]
