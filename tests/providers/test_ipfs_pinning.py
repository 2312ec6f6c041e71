"""The Pinning Service API provider against tests/ipfsnode's pinning service over Helia."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo
from ownvault.providers.ipfs.objects import OBJECT_PROFILE
from ownvault.providers.ipfs.pinning import PinningProvider
from ownvault.providers.ipfs.urls import parse_pinning_url
from ownvault.providers.registry import open_provider
from ownvault.providers.webfetch import NetworkPolicy
from ownvault.providers.wrappers import unwrap
from tests.ipfsnode.node import PIN_TOKEN, HeliaNode

from .contract import ProviderContract, run


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("pinning") / "repo", pinning=True).start()
    yield n
    n.stop()


def fresh(node: HeliaNode, **kw: object) -> PinningProvider:
    """A provider on its own, empty namespace; blocks go to the node, reads via its gateway."""
    assert node.pinning_url is not None
    return PinningProvider(
        node.pinning_url,
        PIN_TOKEN,
        upload=node.url,
        gateways=[node.url],
        namespace=f"t-{uuid.uuid4().hex[:12]}",
        **kw,  # type: ignore[arg-type]
    )


class TestPinningContract(ProviderContract):
    @pytest.fixture
    def provider(self, node: HeliaNode) -> Iterator[PinningProvider]:
        p = fresh(node)
        yield p
        run(p.close())


def test_pinning_urls() -> None:
    assert parse_pinning_url("ipfs+pinning://api.example/psa") == "https://api.example/psa"
    assert parse_pinning_url("ipfs+pinning+http://127.0.0.1:9097") == "http://127.0.0.1:9097"
    for bad in ["ipfs+pinning://", "https://x", "ipfs+pinning://u:p@x/"]:
        with pytest.raises(UsageError):
            parse_pinning_url(bad)


def test_registry_opens_pinning(node: HeliaNode, monkeypatch: pytest.MonkeyPatch) -> None:

    assert node.pinning_url is not None
    # what `provider add NAME URL --token-env VAR` stores: options in the URL, the variable's name
    url = node.pinning_url.replace("http://", "ipfs+pinning+http://") + (
        f"/?upload={node.url}&gateway={node.url}&namespace=reg-{uuid.uuid4().hex[:8]}"
    )
    config = {"token_env": "OV_TEST_PIN_TOKEN"}
    with pytest.raises(ProviderPermanentError):  # the variable is not set
        open_provider("ipfs", url, config, None, "my-pins")
    monkeypatch.setenv("OV_TEST_PIN_TOKEN", PIN_TOKEN)
    p = open_provider("ipfs", url, config, None, "my-pins")
    assert isinstance(unwrap(p), PinningProvider)
    run(p.put("a", b"via registry"))
    assert run(p.get("a")) == b"via registry"
    run(p.close())


def test_wrong_token_is_permanent(node: HeliaNode) -> None:
    assert node.pinning_url is not None
    p = PinningProvider(node.pinning_url, "wrong", upload=node.url, gateways=[node.url])
    with pytest.raises(ProviderPermanentError):
        run(p.info())
    with pytest.raises(ProviderPermanentError):
        run(p.put("x", b"x"))
    run(p.close())


def test_queued_before_pinned(node: HeliaNode) -> None:
    """put returns only once the service says `pinned`; until then the name is taken but unreadable."""
    p = fresh(node)
    node.chaos(pin_queue_ms=1500)
    try:

        async def scenario() -> tuple[
            float, type[BaseException] | None, type[BaseException] | None
        ]:
            t0 = time.monotonic()
            task = asyncio.create_task(p.put("slow", b"queued first"))
            await asyncio.sleep(0.6)
            errors: list[type[BaseException] | None] = []
            for attempt in (p.stat("slow"), p.put("slow", b"rival")):
                try:
                    await attempt
                    errors.append(None)
                except (ObjectNotFoundError, ObjectExistsError) as exc:
                    errors.append(type(exc))
            await task
            return time.monotonic() - t0, errors[0], errors[1]

        elapsed, while_queued_stat, rival_put = run(scenario())
    finally:
        node.chaos(pin_queue_ms=0)
    assert elapsed >= 1.5
    assert p.last_statuses[0] == "queued" and p.last_statuses[-1] == "pinned"
    assert while_queued_stat is ObjectNotFoundError  # not visible before it is pinned
    assert rival_put is ObjectExistsError  # but the name is taken
    assert run(p.get("slow")) == b"queued first"
    run(p.close())


def test_failed_pin_is_retryable_and_leaves_nothing(node: HeliaNode) -> None:
    p = fresh(node)
    node.chaos(pin_fail=True)
    try:
        with pytest.raises(ProviderUnavailableError, match="failed"):
            run(p.put("f", b"will fail"))
    finally:
        node.chaos(pin_fail=False)
    assert run(_names(p)) == []
    run(p.put("f", b"second try"))
    assert run(p.get("f")) == b"second try"
    run(p.close())


def test_corrupt_gateway_block_is_detected(node: HeliaNode) -> None:
    p = fresh(node)
    data = os.urandom(OBJECT_PROFILE.chunk_size + 100)
    run(p.put("c", data))
    node.chaos(corrupt="all")
    try:
        with pytest.raises(ShareCorruptError):
            run(p.get("c"))
    finally:
        node.chaos(corrupt=[])
    assert run(p.get("c", 7, 7)) == data[7:14]
    run(p.close())


def test_service_fetches_from_origins(node: HeliaNode, tmp_path: Path) -> None:
    """Blocks go to the user's own node; the service fetches them from its addresses."""
    own = HeliaNode(tmp_path / "own").start()
    try:
        assert node.pinning_url is not None
        p = PinningProvider(
            node.pinning_url,
            PIN_TOKEN,
            upload=own.url,  # not the service's node
            gateways=[node.url],  # read back from the service's side only
            namespace=f"o-{uuid.uuid4().hex[:8]}",
            # the test node's origin is on loopback, which is never sent unless allowed
            allow_networks=NetworkPolicy.parse(False, ["127.0.0.0/8"]),
        )
        data = os.urandom(OBJECT_PROFILE.chunk_size * 2 + 1)
        run(p.put("o/x", data))
        own.kill()  # the origin is gone: the service must hold its own copy
        p._sources = p._sources[:1]  # noqa: SLF001  fault injection: only the service is left
        assert run(p.get("o/x")) == data
        run(p.close())
    finally:
        own.stop()


async def _names(p: PinningProvider) -> list[str]:
    return [o.name async for o in p.list("")]


def test_racing_puts_first_request_wins(node: HeliaNode) -> None:
    """The API has no conditional create: racing puts settle on the oldest pin request."""
    p = fresh(node)
    blobs = [os.urandom(3000 + i) for i in range(4)]

    async def race() -> list[bool]:
        async def one(b: bytes) -> bool:
            try:
                await p.put("same", b)
            except ObjectExistsError:
                return False
            return True

        return list(await asyncio.gather(*(one(b) for b in blobs)))

    won = run(race())
    assert sum(won) == 1
    assert run(p.get("same")) == blobs[won.index(True)]
    assert [o.name for o in run(_names_info(p))] == ["same"]
    run(p.close())


async def _names_info(p: PinningProvider) -> list[ObjectInfo]:
    return [o async for o in p.list("")]
