"""The trustless reader shared by the IPFS providers, against hand-made hostile DAGs (no node)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.dagpb import (
    UNIXFS_DIRECTORY,
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    encode_node,
    encode_unixfs,
)
from ownvault.core.unixfs import ImportProfile
from ownvault.errors import (
    ObjectNotFoundError,
    ProviderUnavailableError,
    ShareCorruptError,
)
from ownvault.providers.ipfs.objects import encode_object, fetch_verified, read_range

from .contract import run

SMALL = ImportProfile("small-test", 1, True, 16, 4)  # 16-byte leaves, 4 links: deep DAGs


def store_of(blocks: dict[CID, bytes]) -> Callable[[CID], Awaitable[bytes]]:
    async def get(cid: CID) -> bytes:
        if cid not in blocks:
            raise ObjectNotFoundError(f"missing {cid}")
        block = blocks[cid]
        if not cid.verify(block):
            raise ShareCorruptError(f"bad {cid}")
        return block

    return get


def read(blocks: dict[CID, bytes], root: CID, offset: int = 0, length: int | None = None) -> bytes:
    return run(read_range(store_of(blocks), root, offset, length, provider="p", name="n"))


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=700),
    offset=st.integers(0, 800),
    length=st.none() | st.integers(0, 800),
)
def test_ranges_over_deep_dags(data: bytes, offset: int, length: int | None) -> None:
    obj = encode_object(data, SMALL)
    blocks = dict(obj.blocks)
    want = data[offset:] if length is None else data[offset : offset + length]
    assert read(blocks, obj.root, offset, length) == want


def node(
    sizes: list[int], links: list[CID], filesize: int | None = None, kind: int = UNIXFS_FILE
) -> tuple[CID, bytes]:
    fs = UnixFSData(
        kind, filesize=sum(sizes) if filesize is None else filesize, blocksizes=tuple(sizes)
    )
    block = encode_node(PBNode(tuple(PBLink(c, "", 1) for c in links), encode_unixfs(fs)))
    return CID.for_block(DAG_PB, block), block


def leaf(data: bytes) -> tuple[CID, bytes]:
    return CID.for_block(RAW, data), data


def test_lying_sizes_are_corruption() -> None:
    a, b = leaf(b"a" * 10), leaf(b"b" * 10)
    blocks = dict([a, b])
    for sizes, filesize in (([10, 11], None), ([10, 10], 25), ([10], None)):
        root = node(sizes, [a[0], b[0]], filesize)
        with pytest.raises(ShareCorruptError):
            read({**blocks, root[0]: root[1]}, root[0])


def test_directory_root_and_foreign_codec_refused() -> None:
    d = node([], [], kind=UNIXFS_DIRECTORY)
    with pytest.raises(ShareCorruptError):
        read(dict([d]), d[0])


def test_depth_is_bounded() -> None:
    cid, block = leaf(b"x")
    blocks = {cid: block}
    for _ in range(6):
        cid, block = node([1], [cid])
        blocks[cid] = block
    with pytest.raises(ShareCorruptError, match="deeper"):
        read(blocks, cid)


def test_fetch_verified_prefers_a_good_source() -> None:
    cid, block = leaf(os.urandom(100))

    async def bad(c: CID) -> bytes:
        return b"not it"

    async def down(c: CID) -> bytes:
        raise ProviderUnavailableError("down")

    async def good(c: CID) -> bytes:
        return block

    async def missing(c: CID) -> bytes:
        raise ObjectNotFoundError("gone")

    assert run(fetch_verified([bad, down, good], cid, provider="p", name="n")) == block
    with pytest.raises(ShareCorruptError):
        run(fetch_verified([missing, down, bad], cid, provider="p", name="n"))
    with pytest.raises(ProviderUnavailableError):
        run(fetch_verified([missing, down], cid, provider="p", name="n"))
    with pytest.raises(ObjectNotFoundError):
        run(fetch_verified([missing], cid, provider="p", name="n"))
