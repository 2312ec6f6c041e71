"""A hostile pinning service: answers bounded by bytes read, queries by pins gathered."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest

from ownvault.errors import FormatError, ProviderPermanentError
from ownvault.providers.ipfs.pinning import MAX_ANSWER_BYTES, MAX_QUERY_PINS, PAGE, PinningProvider
from tests.nft.market import Market, MarketRequest

from .contract import run


@pytest.fixture
def service() -> Iterator[Market]:
    with Market() as m:
        yield m


def _pin(n: int) -> dict[str, Any]:
    return {
        "requestid": f"r{n}",
        "status": "pinned",
        "created": f"2020-01-01T00:00:00.{n:06d}Z",  # RFC 3339: distinct, parseable
        "pin": {"cid": "bafkqaaa", "name": f"x{n}", "meta": {}},
        "delegates": [],
    }


def _names(p: PinningProvider) -> list[str]:
    async def go() -> list[str]:
        return [o.name async for o in p.list()]

    return run(go())


def test_endless_fresh_pages_are_cut(service: Market) -> None:
    counter = itertools.count()
    pages: list[int] = []

    def endless(handler: MarketRequest, path: str, _query: dict[str, list[str]]) -> bool:
        if path != "/pins":
            return False
        pages.append(1)
        # fresh pins for ever (until 5 pages past the bound, so that a missing bound
        # shows as a wrong answer instead of a hang)
        full = len(pages) <= MAX_QUERY_PINS // PAGE + 5
        results = [_pin(next(counter)) for _ in range(PAGE if full else 1)]
        body = json.dumps({"count": 10**9, "results": results}).encode()
        handler.send(200, body, {"Content-Type": "application/json"})
        return True

    service.dynamic = endless
    p = PinningProvider(service.url, "t", gateways=[service.url])
    with pytest.raises(ProviderPermanentError, match=f"more than {MAX_QUERY_PINS} pins"):
        _names(p)
    assert len(pages) == MAX_QUERY_PINS // PAGE


def test_oversized_answer_is_refused_by_bytes_read(service: Market) -> None:
    # one answer just over the bound, sent chunked (no Content-Length to refuse it early)
    body = json.dumps({"count": 1, "results": [], "pad": "x" * MAX_ANSWER_BYTES}).encode()
    service.add("/pins", body, chunked=True)
    p = PinningProvider(service.url, "t", gateways=[service.url])
    with pytest.raises(FormatError, match=f"over {MAX_ANSWER_BYTES} bytes"):
        _names(p)
