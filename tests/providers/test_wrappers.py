"""Retry, concurrency limit and fault injection, around in-memory and node providers."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo, Provider, PutData
from ownvault.providers.memory import MemoryProvider
from ownvault.providers.wrappers import (
    Fault,
    FaultyProvider,
    LimitedProvider,
    RetryingProvider,
    unwrap,
)

from .contract import ProviderContract, run


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def retrying(inner: Provider, **kw: object) -> tuple[RetryingProvider, Sleeps]:
    sleeps = Sleeps()
    kw.setdefault("rng", random.Random(1))
    return RetryingProvider(inner, sleep=sleeps, **kw), sleeps  # type: ignore[arg-type]


class TestWrappedContract(ProviderContract):
    """The full stack of wrappers is still a provider that honours the contract."""

    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        yield RetryingProvider(LimitedProvider(FaultyProvider(MemoryProvider()), 3), attempts=2)


def test_retries_unavailable_then_succeeds() -> None:
    mem = MemoryProvider()
    faulty = FaultyProvider(mem, [Fault("fail", times=3)])
    p, sleeps = retrying(faulty, attempts=5, base_delay=0.1, max_delay=10)
    run(p.put("a", b"1"))
    assert mem.objects == {"a": b"1"}
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0 <= delay <= 0.1 * 2**attempt


def test_gives_up_after_attempts() -> None:
    faulty = FaultyProvider(MemoryProvider(), [Fault("fail", ops=frozenset({"get"}))])
    p, sleeps = retrying(faulty, attempts=4)
    with pytest.raises(ProviderUnavailableError):
        run(p.get("a"))
    assert len(sleeps.delays) == 3
    assert faulty.faults[0].fired == 4


@pytest.mark.parametrize(
    "error", [ProviderPermanentError, StorageFullError, ObjectNotFoundError, ObjectExistsError]
)
def test_never_retries_permanent_errors(error: type[Exception]) -> None:
    faulty = FaultyProvider(MemoryProvider(), [Fault("fail", error=error)])  # type: ignore[arg-type]
    p, sleeps = retrying(faulty, attempts=5)
    with pytest.raises(error):
        run(p.stat("a"))
    assert sleeps.delays == []
    assert faulty.faults[0].fired == 1


def test_backoff_is_capped_and_jittered() -> None:
    p, _ = retrying(MemoryProvider(), base_delay=0.5, max_delay=2.0, rng=random.Random(7))
    delays = [p.delay(a) for a in range(10) for _ in range(20)]
    assert max(delays) <= 2.0
    assert len(set(delays)) > 100  # jittered, not a fixed schedule
    assert max(p.delay(0) for _ in range(50)) <= 0.5


class LostAnswer(MemoryProvider):
    """Stores the object, then reports the put as failed (the answer got lost)."""

    async def put(self, name: str, data: PutData) -> None:
        await super().put(name, data)
        raise ProviderUnavailableError("connection reset after the write")


def test_put_retry_after_lost_answer_succeeds_when_bytes_match() -> None:
    p, _ = retrying(LostAnswer(), attempts=3)
    run(p.put("a", b"payload"))


def test_put_retry_does_not_hide_a_different_object() -> None:
    inner = LostAnswer()
    inner.objects["a"] = b"someone else's"
    p, _ = retrying(inner, attempts=3)
    with pytest.raises(ObjectExistsError):
        run(p.put("a", b"payload"))


def test_first_put_conflict_is_not_papered_over() -> None:
    mem = MemoryProvider()
    mem.objects["a"] = b"payload"
    p, _ = retrying(mem)
    with pytest.raises(ObjectExistsError):
        run(p.put("a", b"payload"))  # no earlier attempt of ours: a real conflict


class FlakyLister(MemoryProvider):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 2

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        count = 0
        async for item in super().list(prefix):
            if count == 3 and self.failures:
                self.failures -= 1
                raise ProviderUnavailableError("connection dropped mid-listing")
            count += 1
            yield item


def test_list_retry_resumes_without_duplicates() -> None:
    inner = FlakyLister()
    for i in range(10):
        inner.objects[f"n/{i}"] = b""
    p, sleeps = retrying(inner)

    async def names() -> list[str]:
        return [o.name async for o in p.list("n/")]

    assert run(names()) == [f"n/{i}" for i in range(10)]
    assert len(sleeps.delays) == 2


def test_timeout_turns_a_hang_into_a_retryable_error() -> None:
    faulty = FaultyProvider(MemoryProvider(), [Fault("hang", times=1, hang_seconds=60)])
    p = RetryingProvider(faulty, attempts=2, base_delay=0.01, timeout=0.2)
    started = time.monotonic()
    run(p.put("a", b"1"))  # first attempt hangs and times out, the second works
    assert time.monotonic() - started < 5
    p1 = RetryingProvider(
        FaultyProvider(MemoryProvider(), [Fault("hang", hang_seconds=60)]), attempts=1, timeout=0.1
    )
    with pytest.raises(ProviderUnavailableError):
        run(p1.get("a"))


def test_concurrency_limit() -> None:
    active = peak = 0

    class Slow(MemoryProvider):
        async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            return b""

    p = LimitedProvider(Slow(), 3)

    async def go() -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(20):
                tg.create_task(p.get("x"))

    run(go())
    assert peak == 3
    with pytest.raises(UsageError):
        LimitedProvider(MemoryProvider(), 0)


def test_limited_listing_does_not_deadlock() -> None:
    mem = MemoryProvider()
    mem.objects.update({"a": b"1", "b": b"2"})
    p = LimitedProvider(mem, 1)

    async def go() -> list[bytes]:
        return [await p.get(o.name) async for o in p.list()]

    assert run(go()) == [b"1", b"2"]


def test_fault_corrupts_reads_and_writes() -> None:
    mem = MemoryProvider()
    p = FaultyProvider(mem, [Fault("corrupt", ops=frozenset({"get"}), times=1)], seed=3)
    run(p.put("a", b"abcdef"))
    first, second = run(p.get("a")), run(p.get("a"))
    assert first != b"abcdef" and len(first) == 6
    assert sum(x != y for x, y in zip(first, b"abcdef", strict=True)) == 1
    assert second == b"abcdef"
    w = FaultyProvider(mem, [Fault("corrupt", ops=frozenset({"put"}))])
    run(w.put("b", b"abcdef"))
    assert mem.objects["b"] != b"abcdef"


def test_fault_probability_is_seeded() -> None:
    def pattern() -> list[bool]:
        p = FaultyProvider(MemoryProvider(), [Fault("fail", probability=0.5)], seed=42)
        out = []
        for _ in range(40):
            try:
                run(p.info())
                out.append(True)
            except ProviderUnavailableError:
                out.append(False)
        return out

    a = pattern()
    assert a == pattern() and 5 < a.count(False) < 35


def test_fault_rejects_unknown_operation() -> None:
    with pytest.raises(UsageError):
        Fault("fail", ops=frozenset({"rename"}))


def test_unwrap_looks_through_every_wrapper() -> None:
    adapter = MemoryProvider()
    stacked = RetryingProvider(LimitedProvider(FaultyProvider(adapter), 2), attempts=2)
    assert unwrap(stacked) is adapter
    assert unwrap(adapter) is adapter  # an adapter is its own adapter
