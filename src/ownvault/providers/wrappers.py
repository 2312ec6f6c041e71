"""Wrappers around any provider: retries, a concurrency limit, fault injection.

They keep adapters small (an adapter classifies its failures; it never retries) and
compose: ``RetryingProvider(LimitedProvider(NodeProvider(...), 8))``. Each wrapper is a
provider itself and honours the contract of ``ownvault.providers.base``.

* :class:`RetryingProvider` retries errors whose class is ``retryable``
  (:class:`~ownvault.errors.ProviderUnavailableError`), never permanent ones, with
  exponential backoff and full jitter, an optional per-attempt timeout (a timeout counts
  as unavailable), and a bounded number of attempts. A ``put`` that failed in transit may
  have landed: when a retry then meets ``ObjectExistsError`` it reads the stored object
  back and succeeds only if the bytes are the ones it was putting.
* :class:`LimitedProvider` lets at most ``limit`` operations run at once.
* :class:`FaultyProvider` injects failures for tests: raise, corrupt bytes, or hang.

Code that needs the adapter under the wrappers (a storage node that answers audit
challenges, an IPFS provider that pins DAGs) asks :func:`unwrap`, never walks ``inner``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ownvault.errors import (
    ObjectExistsError,
    ProviderError,
    ProviderUnavailableError,
    UsageError,
)
from ownvault.providers.base import (
    ObjectInfo,
    Provider,
    ProviderInfo,
    PutData,
    as_parts,
    joined,
    put_size,
    same_bytes,
)

__all__ = [
    "OPERATIONS",
    "Fault",
    "FaultyProvider",
    "LimitedProvider",
    "RetryingProvider",
    "unwrap",
]

T = TypeVar("T")
OPERATIONS = frozenset({"put", "get", "stat", "list", "delete", "info"})


class _Wrapper:
    def __init__(self, inner: Provider) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        return self.inner.kind

    @property
    def location(self) -> str:
        return self.inner.location

    async def close(self) -> None:
        await self.inner.close()


def unwrap(provider: Provider) -> Provider:
    """The adapter under any number of wrappers of this module (``provider`` itself if none)."""
    while isinstance(provider, _Wrapper):
        provider = provider.inner
    return provider


class RetryingProvider(_Wrapper):
    def __init__(
        self,
        inner: Provider,
        *,
        attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 10.0,
        timeout: float | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(inner)
        if attempts < 1 or base_delay < 0 or max_delay < base_delay:
            raise UsageError("retry: attempts >= 1 and 0 <= base_delay <= max_delay")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._rng = rng or random.Random()
        self._sleep = sleep

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**attempt)]."""
        return self._rng.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))

    async def _attempt(self, op: Callable[[], Awaitable[T]]) -> T:
        if self.timeout is None:
            return await op()
        try:
            async with asyncio.timeout(self.timeout):
                return await op()
        except TimeoutError:
            raise ProviderUnavailableError(
                f"{self.location}: no answer within {self.timeout}s", provider=self.location
            ) from None

    async def _call(self, op: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.attempts):
            try:
                return await self._attempt(op)
            except ProviderError as exc:
                if not exc.retryable or attempt + 1 == self.attempts:
                    raise
            await self._sleep(self.delay(attempt))
        raise AssertionError("unreachable")

    async def put(self, name: str, data: PutData) -> None:
        failed_before = False
        parts = as_parts(data)  # one list for every attempt (a generator would be spent)
        for attempt in range(self.attempts):
            try:
                await self._attempt(lambda: self.inner.put(name, parts))
                return
            except ObjectExistsError:
                if failed_before and same_bytes(
                    await self._call(lambda: self.inner.get(name)), parts
                ):
                    return  # an earlier attempt landed; its answer was lost
                raise
            except ProviderError as exc:
                if not exc.retryable or attempt + 1 == self.attempts:
                    raise
                failed_before = True
            await self._sleep(self.delay(attempt))

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        return await self._call(lambda: self.inner.get(name, offset, length))

    async def stat(self, name: str) -> ObjectInfo:
        return await self._call(lambda: self.inner.stat(name))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        # Listings are sorted by name (the contract), so a retry resumes after the last
        # name already yielded instead of repeating it.
        last: str | None = None
        for attempt in range(self.attempts):
            try:
                iterator = aiter(self.inner.list(prefix))

                async def step(it: AsyncIterator[ObjectInfo] = iterator) -> ObjectInfo:
                    return await anext(it)

                while True:
                    try:
                        item = await self._attempt(step)
                    except StopAsyncIteration:
                        return
                    if last is None or item.name > last:
                        last = item.name
                        yield item
            except ProviderError as exc:
                if not exc.retryable or attempt + 1 == self.attempts:
                    raise
            await self._sleep(self.delay(attempt))

    async def delete(self, name: str) -> None:
        await self._call(lambda: self.inner.delete(name))

    async def info(self) -> ProviderInfo:
        return await self._call(self.inner.info)


class LimitedProvider(_Wrapper):
    """At most ``limit`` operations of the inner provider in flight at once."""

    def __init__(self, inner: Provider, limit: int) -> None:
        super().__init__(inner)
        if limit < 1:
            raise UsageError("concurrency limit must be at least 1")
        self.limit = limit
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            self._semaphores = {k: v for k, v in self._semaphores.items() if not k.is_closed()}
            sem = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return sem

    async def put(self, name: str, data: PutData) -> None:
        async with self._semaphore():
            await self.inner.put(name, data)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        async with self._semaphore():
            return await self.inner.get(name, offset, length)

    async def stat(self, name: str) -> ObjectInfo:
        async with self._semaphore():
            return await self.inner.stat(name)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        # Each step holds a slot, not the whole listing: a consumer that calls the same
        # provider while iterating cannot deadlock it.
        iterator = aiter(self.inner.list(prefix))
        while True:
            async with self._semaphore():
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    return
            yield item

    async def delete(self, name: str) -> None:
        async with self._semaphore():
            await self.inner.delete(name)

    async def info(self) -> ProviderInfo:
        async with self._semaphore():
            return await self.inner.info()


@dataclass
class Fault:
    """One injected fault. ``times=None`` fires forever; ``probability`` draws per call.

    * ``fail``: raise ``error`` (default: retryable ``ProviderUnavailableError``).
    * ``corrupt``: flip one byte of what ``get`` returns / what ``put`` stores.
    * ``hang``: sleep ``hang_seconds`` before doing the operation (for timeout tests).
    """

    kind: Literal["fail", "corrupt", "hang"]
    ops: frozenset[str] = OPERATIONS
    probability: float = 1.0
    times: int | None = None
    error: type[ProviderError] = ProviderUnavailableError
    hang_seconds: float = 3600.0
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("fail", "corrupt", "hang"):
            raise UsageError(f"unknown fault kind {self.kind!r}")
        if not set(self.ops) <= OPERATIONS:
            raise UsageError(f"unknown operations {sorted(set(self.ops) - OPERATIONS)}")


class FaultyProvider(_Wrapper):
    """Injects :class:`Fault` s into the inner provider's operations (tests, chaos)."""

    def __init__(
        self, inner: Provider, faults: list[Fault] | None = None, *, seed: int = 0
    ) -> None:
        super().__init__(inner)
        self.faults: list[Fault] = list(faults or [])
        self._rng = random.Random(seed)

    def _due(self, op: str, kind: str) -> Fault | None:
        for fault in self.faults:
            if fault.kind != kind or op not in fault.ops:
                continue
            if fault.times is not None and fault.fired >= fault.times:
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            fault.fired += 1
            return fault
        return None

    async def _before(self, op: str) -> None:
        hang = self._due(op, "hang")
        if hang is not None:
            await asyncio.sleep(hang.hang_seconds)
        fail = self._due(op, "fail")
        if fail is not None:
            raise fail.error(f"injected fault in {op}", provider=self.location)

    def _flip(self, data: bytes) -> bytes:
        i = self._rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]

    def _corrupt(self, op: str, data: bytes) -> bytes:
        if data and self._due(op, "corrupt") is not None:
            return self._flip(data)
        return data

    async def put(self, name: str, data: PutData) -> None:
        await self._before("put")
        # The parts go down as they are; joined only to flip a byte of them.
        if put_size(data) and self._due("put", "corrupt") is not None:
            data = self._flip(joined(data))
        await self.inner.put(name, data)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        await self._before("get")
        return self._corrupt("get", await self.inner.get(name, offset, length))

    async def stat(self, name: str) -> ObjectInfo:
        await self._before("stat")
        return await self.inner.stat(name)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        await self._before("list")
        async for item in self.inner.list(prefix):
            yield item

    async def delete(self, name: str) -> None:
        await self._before("delete")
        await self.inner.delete(name)

    async def info(self) -> ProviderInfo:
        await self._before("info")
        return await self.inner.info()
