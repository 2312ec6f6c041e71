"""Objects as UnixFS DAGs: encoding, verified block reads, ranged reads, CAR streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from ownvault.core.car import encode_header, encode_section
from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.dagpb import (
    MAX_BLOCK_SIZE,
    UNIXFS_FILE,
    UNIXFS_RAW,
    decode_node,
    decode_unixfs,
)
from ownvault.core.unixfs import ImportProfile, get_profile, import_bytes
from ownvault.errors import (
    FormatError,
    IntegrityError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    UsageError,
)

__all__ = [
    "MAX_DAG_DEPTH",
    "OBJECT_PROFILE",
    "BlockGetter",
    "EncodedObject",
    "car_stream",
    "encode_object",
    "fetch_verified",
    "first_error",
    "read_range",
]

OBJECT_PROFILE: ImportProfile = get_profile("unixfs-v1-2025")
"""How objects become DAGs: 1 MiB raw leaves, 1024 links, CIDv1 (Helia's and IPIP-499's)."""

MAX_DAG_DEPTH = 4  # 1024**3 MiB under a root: far beyond any share; deeper DAGs are refused
_FETCH_CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class EncodedObject:
    root: CID
    size: int
    blocks: tuple[tuple[CID, bytes], ...] = field(repr=False)


def encode_object(data: bytes, profile: ImportProfile = OBJECT_PROFILE) -> EncodedObject:
    """The blocks of ``data`` as a UnixFS file (leaves first, the root last)."""
    blocks: list[tuple[CID, bytes]] = []
    root = import_bytes(data, profile, lambda cid, block: blocks.append((cid, block)))
    unique: dict[CID, bytes] = {}
    for cid, block in blocks:
        unique.setdefault(cid, block)
    return EncodedObject(root.cid, root.size, tuple(unique.items()))


BlockGetter = Callable[[CID], Awaitable[bytes]]
"""Fetch a block by CID, *unverified* (raises ObjectNotFoundError / ProviderError)."""


async def fetch_verified(
    sources: Sequence[BlockGetter], cid: CID, *, provider: str, name: str
) -> bytes:
    """The block ``cid`` from the first source that returns the right bytes.

    Every block is re-hashed against ``cid``. A wrong block from one source is skipped when
    another has the right one; when none does, the worst finding wins: corruption, then
    unavailability, then "not found".
    """
    errors: list[ProviderError | IntegrityError] = []
    for get in sources:
        try:
            block = await get(cid)
        except (ProviderError, IntegrityError) as exc:
            errors.append(exc)
            continue
        if len(block) > MAX_BLOCK_SIZE:
            errors.append(
                ShareCorruptError(
                    f"block {cid} of {name} is over {MAX_BLOCK_SIZE} bytes",
                    provider=provider,
                    share=name,
                )
            )
            continue
        if cid.verify(block):
            return block
        errors.append(
            ShareCorruptError(
                f"block {cid} of {name} from {provider} does not match its CID",
                provider=provider,
                share=name,
            )
        )
    for kind in (IntegrityError, ProviderUnavailableError, ProviderPermanentError):
        for err in errors:
            if isinstance(err, kind):
                raise err
    if errors:
        raise errors[0]
    raise ObjectNotFoundError(f"no source for block {cid}", provider=provider, share=name)


def _corrupt(msg: str, provider: str, name: str) -> ShareCorruptError:
    return ShareCorruptError(f"{name}: {msg}", provider=provider, share=name)


async def read_range(
    get: Callable[[CID], Awaitable[bytes]],
    root: CID,
    offset: int,
    length: int | None,
    *,
    provider: str,
    name: str,
) -> bytes:
    """Bytes ``[offset, offset+length)`` of the UnixFS file (or raw block) ``root``.

    ``get`` returns *verified* blocks. Only the blocks under the range are fetched.
    """
    if offset < 0 or (length is not None and length < 0):
        raise UsageError("negative range")
    sem = asyncio.Semaphore(_FETCH_CONCURRENCY)

    async def load(cid: CID) -> bytes:
        async with sem:
            return await get(cid)

    async def node(cid: CID, expect: int | None, lo: int, hi: int | None, depth: int) -> bytes:
        block = await load(cid)
        if cid.codec == RAW:
            if expect is not None and len(block) != expect:
                raise _corrupt(f"leaf {cid} is {len(block)} bytes, not {expect}", provider, name)
            return block[lo:hi]
        if cid.codec != DAG_PB:
            raise _corrupt(f"block {cid} is neither raw nor dag-pb", provider, name)
        try:
            pb = decode_node(block)
            fs = decode_unixfs(pb.data or b"")
        except FormatError as exc:
            raise _corrupt(f"malformed UnixFS node {cid}: {exc}", provider, name) from exc
        if fs.type not in (UNIXFS_FILE, UNIXFS_RAW):
            raise _corrupt(f"root {cid} is not a UnixFS file", provider, name)
        inline = fs.data or b""
        if len(fs.blocksizes) != len(pb.links):
            raise _corrupt(
                f"node {cid} has {len(pb.links)} links, {len(fs.blocksizes)} sizes", provider, name
            )
        total = len(inline) + sum(fs.blocksizes)
        if (fs.filesize is not None and fs.filesize != total) or (
            expect is not None and total != expect
        ):
            raise _corrupt(f"node {cid} sizes do not add up", provider, name)
        if pb.links and depth >= MAX_DAG_DEPTH:
            raise _corrupt(f"DAG deeper than {MAX_DAG_DEPTH}", provider, name)
        end = total if hi is None else min(hi, total)
        if lo >= end:
            return b""
        parts: list[Awaitable[bytes]] = []
        if lo < len(inline):
            parts.append(_const(inline[lo:end]))
        pos = len(inline)
        for link, size in zip(pb.links, fs.blocksizes, strict=True):
            a, b = max(lo, pos), min(end, pos + size)
            if a < b:
                parts.append(node(link.cid, size, a - pos, b - pos, depth + 1))
            pos += size
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(_await(p)) for p in parts]
        return b"".join(t.result() for t in tasks)

    hi = None if length is None else offset + length
    if length == 0:
        return b""
    try:
        return await node(root, None, offset, hi, 0)
    except BaseExceptionGroup as group:  # TaskGroup: surface the first real error
        raise first_error(group) from None


async def _const(b: bytes) -> bytes:
    return b


async def _await(a: Awaitable[bytes]) -> bytes:
    return await a


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of a TaskGroup's group (the real error to surface)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return first_error(exc)
        return exc
    return group


def car_stream(root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> AsyncIterator[bytes]:
    """A CARv1 with one root, streamed from ``blocks`` (duplicates dropped)."""

    async def gen() -> AsyncIterator[bytes]:
        yield encode_header([root])
        seen: set[bytes] = set()
        async for cid, block in blocks:
            if cid.bytes in seen:
                continue
            seen.add(cid.bytes)
            yield encode_section(cid, block)

    return gen()
