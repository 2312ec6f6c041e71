"""Walking UnixFS DAGs block by block: path resolution (basic and HAMT directories) and
the trustless gateway's CAR scopes.

Works on any source of verified blocks (:class:`BlockSource`); it never decides what is
public: the source does. Orders follow the trustless gateway spec: depth-first pre-order
(``order=dfs``), duplicates sent once (``dups=n``) unless asked for (``dups=y``).

* ``dag-scope=block``: the terminal block only;
* ``dag-scope=entity``: a file's every block (or, with ``entity-bytes``, only those needed
  to verify the range: the nodes on the way and the leaves that overlap it); a
  directory's own block, or every shard node of a HAMT directory (not their children);
* ``dag-scope=all``: the whole DAG under the terminal block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.dagpb import (
    UNIXFS_DIRECTORY,
    UNIXFS_FILE,
    UNIXFS_HAMT_SHARD,
    UNIXFS_RAW,
    UNIXFS_SYMLINK,
    PBNode,
    decode_node,
    decode_unixfs,
)
from ownvault.core.hamt import name_hash
from ownvault.errors import FormatError, NotFoundError

__all__ = ["BlockSource", "Node", "Resolved", "Scope", "inspect", "resolve", "walk"]

Scope = Literal["block", "entity", "all"]
MAX_PATH_SEGMENTS = 256


class BlockSource(Protocol):
    async def get(self, cid: CID, *, sequential: bool = False) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Node:
    """What a block is, as UnixFS sees it."""

    kind: Literal["file", "directory", "shard", "symlink", "other"]
    size: int  # file bytes under it (files), else 0
    pb: PBNode | None
    inline: bytes  # UnixFS Data bytes of a file node, the target of a symlink
    blocksizes: tuple[int, ...]
    fanout: int


def inspect(cid: CID, block: bytes) -> Node:
    if cid.codec == RAW:
        return Node("file", len(block), None, block, (), 0)
    if cid.codec != DAG_PB:
        return Node("other", 0, None, b"", (), 0)
    pb = decode_node(block)
    if pb.data is None:
        return Node("other", 0, pb, b"", (), 0)
    u = decode_unixfs(pb.data)
    if u.type in (UNIXFS_FILE, UNIXFS_RAW):
        inline = u.data or b""
        size = u.filesize if u.filesize is not None else len(inline) + sum(u.blocksizes)
        return Node("file", size, pb, inline, u.blocksizes, 0)
    if u.type == UNIXFS_DIRECTORY:
        return Node("directory", 0, pb, b"", (), 0)
    if u.type == UNIXFS_HAMT_SHARD:
        fanout = u.fanout or 0
        if fanout < 2 or fanout & (fanout - 1) or fanout > 1024:
            raise FormatError(f"{cid}: invalid HAMT fanout {fanout}")
        return Node("shard", 0, pb, b"", (), fanout)
    if u.type == UNIXFS_SYMLINK:
        return Node("symlink", 0, pb, u.data or b"", (), 0)
    return Node("other", 0, pb, b"", (), 0)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The end of a content path: its CID and block, the blocks read on the way
    (directories and HAMT shards, in order) and the CID of each logical path segment."""

    cid: CID
    block: bytes
    node: Node
    path_blocks: list[tuple[CID, bytes]]
    roots: list[CID]


async def _hamt_find(
    source: BlockSource, node: Node, name: str, trail: list[tuple[CID, bytes]]
) -> CID | None:
    """Find ``name`` in a HAMT directory; shard blocks visited below the first go to ``trail``."""
    raw = name.encode("utf-8")
    h = name_hash(raw)
    bits = node.fanout.bit_length() - 1
    width = len(f"{node.fanout - 1:X}")
    depth = 0
    while True:
        shift = 64 - bits * (depth + 1)
        if shift < 0:
            return None
        label = f"{(h >> shift) & (node.fanout - 1):0{width}X}"
        assert node.pb is not None
        nxt: CID | None = None
        for link in node.pb.links:
            lname = link.name or ""
            if lname == label + name:
                return link.cid
            if lname == label:
                nxt = link.cid
        if nxt is None:
            return None
        block = await source.get(nxt)
        trail.append((nxt, block))
        node = inspect(nxt, block)
        if node.kind != "shard":
            raise FormatError(f"{nxt}: a HAMT link leads to a non-shard node")
        depth += 1


async def resolve(source: BlockSource, root: CID, segments: list[str]) -> Resolved:
    """Follow ``segments`` (names) from ``root``; NotFoundError when a name is missing."""
    if len(segments) > MAX_PATH_SEGMENTS:
        raise NotFoundError("content path too deep")
    cid = root
    block = await source.get(cid)
    node = inspect(cid, block)
    trail: list[tuple[CID, bytes]] = []
    roots = [cid]
    for seg in segments:
        trail.append((cid, block))
        found: CID | None = None
        if node.kind == "directory":
            assert node.pb is not None
            found = next((lk.cid for lk in node.pb.links if lk.name == seg), None)
        elif node.kind == "shard":
            found = await _hamt_find(source, node, seg, trail)
        else:
            raise NotFoundError(f"cannot resolve {seg!r}: {cid} is not a directory")
        if found is None:
            raise NotFoundError(f"no link named {seg!r} under {cid}")
        cid = found
        block = await source.get(cid)
        node = inspect(cid, block)
        roots.append(cid)
    return Resolved(cid, block, node, trail, roots)


async def walk(
    source: BlockSource,
    root: CID,
    scope: Scope = "all",
    *,
    byte_range: tuple[int, int] | None = None,
    dups: bool = False,
    first: bytes | None = None,
) -> AsyncIterator[tuple[CID, bytes]]:
    """Blocks under ``root`` for ``scope`` in DFS pre-order; ``byte_range`` = [from, to)
    of a file (entity scope). Identity CIDs are never yielded (the spec forbids them)."""
    seen: set[bytes] = set()
    # stack of (cid, file offset of its bytes, inside the entity?)
    stack: list[tuple[CID, int]] = [(root, 0)]
    top = True
    while stack:
        cid, offset = stack.pop()
        if cid.hash_code == 0x00:
            continue
        if not dups and cid.bytes in seen:
            continue
        seen.add(cid.bytes)
        if top and first is not None:
            block = first
        else:
            block = await source.get(cid, sequential=True)
        yield cid, block
        if scope == "block":
            return
        node = inspect(cid, block)
        links = node.pb.links if node.pb is not None else ()
        if not links:
            top = False
            continue
        if scope == "entity" and top and node.kind == "directory":
            return
        if scope == "entity" and node.kind == "shard":
            # only the HAMT's own shard nodes: links named by a bare index label
            width = len(f"{node.fanout - 1:X}")
            stack.extend((lk.cid, 0) for lk in reversed(links) if len(lk.name or "") == width)
            top = False
            continue
        children: list[tuple[CID, int]] = []
        if node.kind == "file" and byte_range is not None and len(node.blocksizes) == len(links):
            pos = offset + len(node.inline)
            lo, hi = byte_range
            for link, size in zip(links, node.blocksizes, strict=True):
                if pos < hi and pos + size > lo:
                    children.append((link.cid, pos))
                pos += size
        else:
            children = [(lk.cid, offset) for lk in links]
        stack.extend(reversed(children))
        top = False
