"""engine/ipfs/pinning.py: pinning published UnixFS DAGs on Kubo and on a pinning service."""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ownvault.core.cid import CID
from ownvault.core.unixfs import get_profile, import_bytes
from ownvault.engine.ipfs.pinning import pin_dag, pin_report, pin_status, unpin, wait_pinned
from ownvault.errors import IntegrityError, ShareCorruptError, UsageError
from ownvault.providers.ipfs.kubo import KuboProvider
from ownvault.providers.ipfs.pinning import PinningProvider
from ownvault.providers.local import LocalProvider
from ownvault.providers.registry import open_provider
from tests.ipfsnode.node import PIN_TOKEN, HeliaNode

from .contract import run


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("pindag") / "repo", pinning=True).start()
    yield n
    n.stop()


def dag(size: int) -> tuple[CID, list[tuple[CID, bytes]], bytes]:
    """A plain `ipfs add --cid-version=1` DAG (256 KiB leaves) of random bytes."""
    data = os.urandom(size)
    blocks: list[tuple[CID, bytes]] = []
    root = import_bytes(data, get_profile("kubo-v1"), lambda c, b: blocks.append((c, b)))
    return root.cid, blocks, data


async def stream(blocks: list[tuple[CID, bytes]]) -> AsyncIterator[tuple[CID, bytes]]:
    for item in blocks:
        yield item


def gateway_bytes(node: HeliaNode, cid: CID) -> bytes:
    with urllib.request.urlopen(f"{node.url}/ipfs/{cid}", timeout=30) as resp:
        body: bytes = resp.read()
        return body


def test_pin_dag_on_kubo(node: HeliaNode, tmp_path: Path) -> None:
    kubo = KuboProvider(node.url, root="/pin-dag-test")
    root, blocks, data = dag(700_000)
    status = run(pin_dag(kubo, root, stream(blocks), name="my site"))
    assert (status.cid, status.state, status.name) == (root, "pinned", "my site")
    assert run(pin_status(kubo, root)) == status
    node.rpc("repo/gc")
    assert gateway_bytes(node, root) == data  # pinned: survives GC, served as a UnixFS file
    rows = run(pin_report({"k": kubo, "folder": LocalProvider.create(tmp_path / "f")}))
    assert [
        (r.provider, r.status.cid if r.status else None)
        for r in rows
        if r.status and r.status.cid == root
    ] == [("k", root)]
    run(unpin(kubo, root))
    run(unpin(kubo, root))  # idempotent
    assert run(pin_status(kubo, root)) is None
    node.rpc("repo/gc")
    with pytest.raises(urllib.error.HTTPError):
        gateway_bytes(node, root)
    run(kubo.close())


def test_pin_dag_rehashes_blocks(node: HeliaNode) -> None:
    kubo = KuboProvider(node.url, root="/pin-dag-test")
    root, blocks, _ = dag(300_000)
    cid, block = blocks[0]
    bad = [(cid, block[:-1] + bytes([block[-1] ^ 1])), *blocks[1:]]
    with pytest.raises(ShareCorruptError):
        run(pin_dag(kubo, root, stream(bad)))
    assert run(pin_status(kubo, root)) is None
    with pytest.raises(IntegrityError):  # the root is not among the blocks
        run(pin_dag(kubo, root, stream(blocks[:-1])))
    assert run(pin_status(kubo, root)) is None
    run(kubo.close())


def test_pin_dag_needs_an_ipfs_provider(tmp_path: Path) -> None:
    root, blocks, _ = dag(10)
    with pytest.raises(UsageError):
        run(pin_dag(LocalProvider.create(tmp_path / "f"), root, stream(blocks)))


def test_pin_dag_on_pinning_service_queued_then_pinned(node: HeliaNode) -> None:
    assert node.pinning_url is not None
    svc = PinningProvider(
        node.pinning_url,
        PIN_TOKEN,
        upload=node.url,
        gateways=[node.url],
        namespace=f"p-{uuid.uuid4().hex[:8]}",
    )
    root, blocks, data = dag(600_000)
    node.chaos(pin_queue_ms=800)
    try:
        first = run(pin_dag(svc, root, stream(blocks), name="published"))
        assert first.state == "queued" and first.requestid
        done = run(wait_pinned(svc, root, timeout=30))
    finally:
        node.chaos(pin_queue_ms=0)
    assert (done.state, done.requestid, done.name) == ("pinned", first.requestid, "published")
    rows = run(pin_report({"svc": svc}))
    assert [(r.status.cid, r.status.state) for r in rows if r.status] == [(root, "pinned")]
    assert gateway_bytes(node, root) == data
    # object pins of the same account are not publish pins
    run(svc.put("not-a-publish-pin", b"x"))
    assert len([r for r in run(pin_report({"svc": svc})) if r.status]) == 1
    run(unpin(svc, root))
    assert run(pin_status(svc, root)) is None
    run(svc.close())


def test_pin_dag_through_the_registry_wrappers(node: HeliaNode) -> None:

    p = open_provider("ipfs", f"ipfs+kubo://127.0.0.1:{node.port}/reg", {}, None, "k")
    root, blocks, _ = dag(1000)
    assert run(pin_dag(p, root, stream(blocks), name="via wrapper")).state == "pinned"
    rows = run(pin_report({"k": p}))
    assert any(r.status and r.status.cid == root for r in rows)
    run(unpin(p, root))
    run(p.close())
