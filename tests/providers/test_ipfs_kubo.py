"""The Kubo-RPC provider against a real IPFS implementation (Helia) on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.cid import CID, RAW
from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderUnavailableError,
    ShareCorruptError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo
from ownvault.providers.ipfs.kubo import KuboProvider
from ownvault.providers.ipfs.objects import OBJECT_PROFILE, encode_object
from ownvault.providers.ipfs.urls import parse_kubo_url
from ownvault.providers.registry import kind_of_url, open_provider
from ownvault.providers.wrappers import RetryingProvider, unwrap
from tests.ipfsnode.node import HeliaNode

from .contract import ProviderContract, run


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("kubo") / "repo").start()
    yield n
    n.stop()


def fresh(node: HeliaNode, **kw: object) -> KuboProvider:
    """A provider on its own, empty MFS root."""
    return KuboProvider(node.url, root=f"/ov-{uuid.uuid4().hex[:12]}", **kw)  # type: ignore[arg-type]


class TestKuboContract(ProviderContract):
    @pytest.fixture
    def provider(self, node: HeliaNode) -> Iterator[KuboProvider]:
        p = fresh(node)
        yield p
        run(p.close())


# -- URLs and the registry ---------------------------------------------------------------------


def test_kubo_urls() -> None:
    assert parse_kubo_url("ipfs+kubo://127.0.0.1:5001") == ("http://127.0.0.1:5001", "/ownvault")
    assert parse_kubo_url("ipfs+kubo+https://node.example:443/vaults/me") == (
        "https://node.example:443",
        "/vaults/me",
    )
    for bad in ["ipfs+kubo://", "ipfs+kubo://h:1/a/../b", "ipfs+kubo://u:p@h:1", "http://h:1"]:
        with pytest.raises(UsageError):
            parse_kubo_url(bad)
    for url, config in [
        ("ipfs+kubo://h:1?gateway=ftp://x", {}),
        ("ipfs+kubo://h:1?token=secret", {}),
        ("ipfs+kubo://h:1", {"timeout": "soon"}),
    ]:
        with pytest.raises(UsageError):
            KuboProvider.from_url(url, config)


def test_registry_opens_kubo(node: HeliaNode) -> None:

    url = f"ipfs+kubo://127.0.0.1:{node.port}/ov-reg-{uuid.uuid4().hex[:8]}"
    assert kind_of_url(url) == "ipfs"
    p = open_provider("ipfs", f"{url}?gateway={node.url}", {"timeout": 30}, None, "my-kubo")
    assert isinstance(p, RetryingProvider)  # retried like every network provider
    inner = unwrap(p)
    assert isinstance(inner, KuboProvider)
    # the RPC API, then the gateway from the URL
    assert len(inner._sources) == 2  # noqa: SLF001  the sources are not public API
    assert p.location == url
    run(p.put("x/y", b"registry"))
    assert run(p.get("x/y")) == b"registry"
    assert run(p.info()).kind == "ipfs"
    run(p.close())


# -- the stored form ---------------------------------------------------------------------------


def test_layout_is_a_standard_unixfs_file(node: HeliaNode) -> None:
    """Small objects are one raw block; larger ones the DAG `ipfs add` makes (IPIP-499 profile)."""
    p = fresh(node)
    small = os.urandom(OBJECT_PROFILE.chunk_size)  # exactly 1 MiB: still one raw block
    big = os.urandom(3 * OBJECT_PROFILE.chunk_size + 5)
    run(p.put("small", small))
    run(p.put("big", big))
    st = json.loads(node.rpc("files/stat", arg=f"{p.root}/small"))
    assert CID.parse(st["Hash"]) == CID.for_block(RAW, small)
    st = json.loads(node.rpc("files/stat", arg=f"{p.root}/big"))
    assert CID.parse(st["Hash"]) == encode_object(big).root
    # the import's temporary pin is gone: MFS alone keeps the object
    assert st["Hash"] not in node.rpc("pin/ls").decode()
    # the reference importer (ipfs-unixfs-importer, profile unixfs-v1-2025) agrees
    added = _add(node, big)
    assert added == st["Hash"]
    # any trustless gateway serves it as a file, with ranges
    with urllib.request.urlopen(f"{node.url}/ipfs/{added}", timeout=30) as resp:
        assert resp.read() == big
    req = urllib.request.Request(f"{node.url}/ipfs/{added}", headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.read() == big[10:20]
    run(p.close())


def _add(node: HeliaNode, data: bytes) -> str:
    req = urllib.request.Request(
        f"{node.url}/api/v0/add?profile=unixfs-v1-2025&only-hash=true",
        data=data,
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        out: str = json.loads(resp.read().splitlines()[-1])["Hash"]
        return out


def test_gateway_only_reads(node: HeliaNode) -> None:
    """Reads can come from a gateway when the RPC API fails to serve blocks."""
    p = fresh(node, gateways=[node.url])
    data = os.urandom(2 * OBJECT_PROFILE.chunk_size + 1)
    run(p.put("g", data))

    async def refuse(cid: CID) -> bytes:
        raise ProviderUnavailableError("rpc block/get disabled for this test")

    p._sources[0] = refuse  # noqa: SLF001  fault injection: the RPC source refuses
    assert (
        run(p.get("g", 5, 2 * OBJECT_PROFILE.chunk_size))
        == data[5:][: 2 * OBJECT_PROFILE.chunk_size]
    )
    run(p.close())


def test_deleting_a_directory_name_deletes_nothing(node: HeliaNode) -> None:
    p = fresh(node)
    run(p.put("a/1", b"one"))
    run(p.put("a/b/2", b"two"))
    run(p.delete("a"))
    run(p.delete("a/b"))
    assert [o.name for o in run(_listing(p))] == ["a/1", "a/b/2"]
    run(p.close())


def test_concurrent_puts_of_one_name(node: HeliaNode) -> None:
    p = fresh(node)
    blobs = [os.urandom(5000 + i) for i in range(6)]

    async def race() -> list[BaseException | None]:
        async def one(b: bytes) -> BaseException | None:
            try:
                await p.put("same", b)
            except ObjectExistsError as exc:
                return exc
            return None

        return list(await asyncio.gather(*(one(b) for b in blobs)))

    results = run(race())
    winners = [b for b, r in zip(blobs, results, strict=True) if r is None]
    assert len(winners) == 1
    assert run(p.get("same")) == winners[0]
    run(p.close())


def test_delete_then_gc_removes_blocks(node: HeliaNode) -> None:
    p = fresh(node)
    data = os.urandom(OBJECT_PROFILE.chunk_size + 10)
    run(p.put("gone", data))
    obj = encode_object(data)
    run(p.delete("gone"))
    with pytest.raises(ObjectNotFoundError):
        run(p.stat("gone"))
    before = node.rpc("refs/local").decode()
    assert all(_v0_or_v1_in(c, before) for c, _ in obj.blocks)  # still there until GC
    node.rpc("repo/gc")
    after = node.rpc("refs/local").decode()
    assert not any(_v0_or_v1_in(c, after) for c, _ in obj.blocks)
    run(p.close())


def _v0_or_v1_in(cid: CID, text: str) -> bool:
    # the node lists blocks by multihash; it prints raw and dag-pb blocks as CIDv0
    v0 = CID(0, 0x70, cid.hash_code, cid.digest)
    return str(v0) in text or str(cid) in text


# -- hostile and failing nodes -----------------------------------------------------------------


def test_corrupt_block_is_detected(node: HeliaNode) -> None:
    p = fresh(node)
    data = os.urandom(3 * OBJECT_PROFILE.chunk_size)
    run(p.put("c", data))
    obj = encode_object(data)
    leaf = obj.blocks[1][0]  # the second leaf: bytes [1 MiB, 2 MiB)
    node.chaos(corrupt=[str(leaf)])
    try:
        with pytest.raises(ShareCorruptError) as info:
            run(p.get("c"))
        assert info.value.share == "c"
        assert str(leaf) in info.value.message
        # ranges that do not touch the bad leaf are still served (only needed blocks are read)
        assert run(p.get("c", 0, 1000)) == data[:1000]
        assert (
            run(p.get("c", 2 * OBJECT_PROFILE.chunk_size, 10))
            == data[2 * OBJECT_PROFILE.chunk_size :][:10]
        )
        with pytest.raises(ShareCorruptError):
            run(p.get("c", OBJECT_PROFILE.chunk_size + 5, 1))
        node.chaos(corrupt="all")
        run(p.put("tiny", b"abc"))
        with pytest.raises(ShareCorruptError):
            run(p.get("tiny"))
    finally:
        node.chaos(corrupt=[])
    assert run(p.get("c")) == data
    run(p.close())


def test_node_killed_and_restarted(tmp_path: Path) -> None:
    n = HeliaNode(tmp_path / "repo").start()
    p = KuboProvider(n.url, root="/ownvault")
    try:
        data = os.urandom(2 * OBJECT_PROFILE.chunk_size + 3)
        run(p.put("shares/ab/before", data))
        run(p.put("small", b"s"))
        n.kill()
        for call in (
            lambda: p.get("shares/ab/before"),
            lambda: p.put("shares/ab/during", b"x"),
            lambda: p.stat("small"),
            lambda: p.delete("small"),
            p.info,
        ):
            with pytest.raises(ProviderUnavailableError):
                run(call())
        with pytest.raises(ProviderUnavailableError):
            run(_listing(p))
        n.start()
        assert run(p.get("shares/ab/before")) == data
        assert run(p.get("small")) == b"s"
        assert [o.name for o in run(_listing(p))] == ["shares/ab/before", "small"]
        run(p.put("shares/ab/after", b"after"))
        assert run(p.get("shares/ab/after")) == b"after"
    finally:
        run(p.close())
        n.stop()


async def _listing(p: KuboProvider) -> list[ObjectInfo]:
    return [o async for o in p.list("")]
