"""NodeProvider against real node processes on loopback: the contract, and classification."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.keys import VaultKeys
from ownvault.errors import (
    ObjectNotFoundError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import Provider
from ownvault.providers.node import NodeProvider, SeedSigner
from tests.server.nodes import Node, NodeCluster

from .contract import ProviderContract, run


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path_factory.mktemp("nodes")) as c:
        yield c


@pytest.fixture(scope="module")
def node(cluster: NodeCluster) -> Node:
    return cluster.start(cluster.add(jurisdiction="CH", max_object_size="8MiB"))


class TestNodeContract(ProviderContract):
    """Every test gets a fresh account (a new key) on the same node: an empty provider."""

    @pytest.fixture
    def provider(self, node: Node) -> Iterator[NodeProvider]:
        p = NodeProvider(node.url, SeedSigner.generate())
        yield p
        run(p.close())


def test_vault_keys_are_a_signer(node: Node) -> None:
    keys = VaultKeys(os.urandom(32))
    p = NodeProvider(node.url, keys)
    run(p.put("k/1", b"signed by the vault's key"))
    assert run(p.get("k/1")) == b"signed by the vault's key"
    run(p.close())


def test_info_reports_jurisdiction_and_usage(node: Node) -> None:
    p = NodeProvider(node.url, SeedSigner.generate())
    run(p.put("x", b"12345"))
    info = run(p.node_info())
    assert info.jurisdiction == "CH"
    assert info.node_id == node.node_id
    assert info.used_bytes == 5
    assert info.max_object_bytes == 8 * 1024 * 1024
    assert isinstance(run(p.info()).free_bytes, int)
    run(p.close())


def test_listing_pages(node: Node) -> None:
    p = NodeProvider(node.url, SeedSigner.generate(), list_page=7)
    names = [f"p/{i:03d}" for i in range(30)]

    async def fill() -> list[str]:
        async with asyncio.TaskGroup() as tg:
            for n in [*names, "q/1", "o"]:
                tg.create_task(p.put(n, b""))
        return [o.name async for o in p.list("p/")]

    assert run(fill()) == names
    run(p.close())


def test_bad_url_and_did_rejected() -> None:
    with pytest.raises(UsageError):
        NodeProvider("ftp://127.0.0.1:1", SeedSigner.generate())


def test_unreachable_node_is_retryable(tmp_path: Path) -> None:
    with NodeCluster(tmp_path) as c:
        n = c.start(c.add())
        p = NodeProvider(n.url, SeedSigner.generate(), connect_timeout=1)
        run(p.put("a", b"1"))
        c.kill(n)
        with pytest.raises(ProviderUnavailableError):
            run(p.get("a"))
        with pytest.raises(ProviderUnavailableError):
            run(p.put("b", b"2"))
        c.restart(n)
        assert run(p.get("a")) == b"1"  # acknowledged before kill -9: durable
        run(p.close())


def test_quota_and_size_limits(tmp_path: Path) -> None:
    with NodeCluster(tmp_path) as c:
        n = c.start(c.add(quota="1MiB", max_object_size="700KiB"))
        p = NodeProvider(n.url, SeedSigner.generate())
        other = NodeProvider(n.url, SeedSigner.generate())
        run(p.put("a", os.urandom(600 * 1024)))
        with pytest.raises(StorageFullError):
            run(p.put("b", os.urandom(600 * 1024)))
        with pytest.raises(ObjectNotFoundError):
            run(p.stat("b"))
        run(other.put("b", os.urandom(600 * 1024)))  # quotas are per account
        with pytest.raises(ProviderPermanentError, match="too_large"):
            run(p.put("big", os.urandom(701 * 1024)))
        run(p.delete("a"))
        run(p.put("b", os.urandom(600 * 1024)))  # space freed by the delete
        assert run(p.node_info()).used_bytes == 600 * 1024
        c.restart(n)  # usage is recounted from disk
        with pytest.raises(StorageFullError):
            run(p.put("c", os.urandom(600 * 1024)))
        assert run(p.node_info()).free_bytes == 1024 * 1024 - 600 * 1024
        run(p.close())
        run(other.close())


def test_allowlist(tmp_path: Path) -> None:
    allowed, stranger = SeedSigner.generate(), SeedSigner.generate()
    listing = tmp_path / "allow.txt"
    listing.write_text(f"# accounts served here\n{allowed.did}\n\n")
    with NodeCluster(tmp_path) as c:
        n = c.start(c.add(allowlist=listing))
        ok = NodeProvider(n.url, allowed)
        run(ok.put("a", b"1"))
        no = NodeProvider(n.url, stranger)
        with pytest.raises(ProviderPermanentError, match="account_not_allowed"):
            run(no.put("a", b"1"))
        with pytest.raises(ProviderPermanentError, match="account_not_allowed"):
            run(no.get("a"))
        run(ok.close())
        run(no.close())


def test_chaos_reads(tmp_path: Path) -> None:
    signer = SeedSigner.generate()
    with NodeCluster(tmp_path) as c:
        modes = ("corrupt-reads", "bad-digest", "hang-reads", "fail-writes")
        corrupt, bad_digest, hang, fail = c.start_all([c.add(chaos=(m,)) for m in modes])
        p = NodeProvider(corrupt.url, signer)
        run(p.put("s", b"share bytes"))
        # A hostile node can send any bytes with a matching digest: only the engine's
        # hashes catch that. The provider passes them on.
        assert run(p.get("s")) == b"rhare bytes"
        p2 = NodeProvider(bad_digest.url, signer)
        run(p2.put("s", b"share bytes"))
        with pytest.raises(ShareCorruptError):
            run(p2.get("s"))
        p3 = NodeProvider(hang.url, signer, timeout=0.5)
        run(p3.put("s", b"share bytes"))
        started = time.monotonic()
        with pytest.raises(ProviderUnavailableError):
            run(p3.get("s"))
        assert time.monotonic() - started < 5
        p4 = NodeProvider(fail.url, signer)
        with pytest.raises(ProviderUnavailableError):
            run(p4.put("s", b"x"))
        for q in (p, p2, p3, p4):
            run(q.close())


def test_is_a_provider(node: Node) -> None:
    assert isinstance(NodeProvider(node.url, SeedSigner.generate()), Provider)
