"""The UnixFS DAG of a stored version, and where each of its blocks comes from.

A stored file's IPFS blocks are never stored: they are *regenerated* from the plaintext
(streamed out of the vault) by re-importing it with the recorded import profile. A
:class:`DagIndex` records, for every block of a version's DAG, how to make it again::

    block = ref.data || plaintext(content)[offset : offset + length] || ref.tail   (kind "leaf")
    block = ref.data                                                               (other kinds)

Leaves keep only the few bytes around the file data (nothing for raw leaves, the dag-pb
wrapper for kubo-v0 leaves); file nodes, directories, HAMT shards and symlinks are small
and kept whole. File nodes also carry the byte range of the file they cover, so a
gateway can serve a file (or a range of it) by CID without walking its DAG.

Trees follow ``ipfs add -r --hidden``: every stored entry is in the DAG (the vault stores
hidden names too), symlinks are UnixFS symlink nodes, empty directories are empty UnixFS
directories, and directories become HAMTs above the profile's threshold.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from ownvault.core.cid import CID, DAG_PB, RAW, decode_varint
from ownvault.core.dagpb import UNIXFS_FILE, UNIXFS_RAW, decode_node, decode_unixfs
from ownvault.core.unixfs import (
    DirEntry,
    DirRoot,
    FileImporter,
    ImportProfile,
    build_directory,
    symlink_block,
)
from ownvault.errors import FormatError, IntegrityError

__all__ = [
    "BlockKind",
    "BlockRef",
    "DagIndex",
    "FileIndexer",
    "TreeItem",
    "build_tree",
    "split_leaf",
]

BlockKind = Literal["leaf", "file", "dir", "shard", "symlink"]


@dataclass(frozen=True, slots=True)
class BlockRef:
    """How to regenerate one block (see the module docstring)."""

    kind: BlockKind
    content: int | None = None
    offset: int = 0
    length: int = 0
    data: bytes = b""
    tail: bytes = b""

    @property
    def size(self) -> int:
        """The block's length in bytes."""
        if self.kind == "leaf":
            return len(self.data) + self.length + len(self.tail)
        return len(self.data)


@dataclass
class DagIndex:
    """Every block of one DAG: binary CID -> :class:`BlockRef` (first occurrence kept)."""

    root: CID
    profile: str
    blocks: dict[bytes, BlockRef] = field(default_factory=dict)

    def add(self, cid: CID, ref: BlockRef) -> None:
        self.blocks.setdefault(cid.bytes, ref)

    def stored_bytes(self) -> int:
        """Bytes the index keeps (CIDs and node/wrapper bytes), a measure of its cost."""
        return sum(len(k) + len(r.data) + len(r.tail) + 24 for k, r in self.blocks.items())


def _pb_field(buf: bytes, pos: int, end: int, want: int) -> tuple[int, int] | None:
    """Find length-delimited field ``want`` in the protobuf message ``buf[pos:end]``."""
    while pos < end:
        key, pos = decode_varint(buf, pos, max_bytes=10)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = decode_varint(buf, pos, max_bytes=10)
        elif wire == 2:
            length, pos = decode_varint(buf, pos, max_bytes=10)
            if num == want:
                return pos, pos + length
            pos += length
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise FormatError(f"unexpected protobuf wire type {wire}")
    return None


def split_leaf(cid: CID, block: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a file leaf into (wrapper head, file bytes, wrapper tail).

    A raw leaf is all file bytes. A dag-pb leaf (no links, UnixFS File or Raw) holds the
    file bytes in its UnixFS ``Data`` field, which is returned in place: ``head + data +
    tail == block``.
    """
    if cid.codec == RAW:
        return b"", block, b""
    if cid.codec != DAG_PB:
        raise FormatError(f"{cid}: a file leaf must be raw or dag-pb")
    node = decode_node(block)
    if node.links or node.data is None:
        raise FormatError(f"{cid}: not a UnixFS leaf")
    unixfs = decode_unixfs(node.data)
    if unixfs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        raise FormatError(f"{cid}: UnixFS type {unixfs.type} is not a file leaf")
    outer = _pb_field(block, 0, len(block), 1)
    assert outer is not None  # decode_node found Data
    inner = _pb_field(block, outer[0], outer[1], 2)
    if inner is None:
        return block, b"", b""
    start, end = inner
    return block[:start], block[start:end], block[end:]


class FileIndexer:
    """Feeds a file's plaintext to the importer and records where each block comes from.

    Leaves are emitted in file order and a file node right after its last leaf, so the
    range a node covers ends at the current offset and spans its ``filesize``.
    """

    def __init__(self, profile: ImportProfile, content: int, index: DagIndex | None) -> None:
        self._index = index
        self._content = content
        self._pos = 0
        self.importer = FileImporter(profile, self._on_block if index is not None else None)

    def _on_block(self, cid: CID, block: bytes) -> None:
        assert self._index is not None
        if cid.codec == RAW:
            self._index.add(cid, BlockRef("leaf", self._content, self._pos, len(block)))
            self._pos += len(block)
            return
        node = decode_node(block)
        if not node.links:
            head, data, tail = split_leaf(cid, block)
            self._index.add(cid, BlockRef("leaf", self._content, self._pos, len(data), head, tail))
            self._pos += len(data)
            return
        unixfs = decode_unixfs(node.data or b"")
        size = unixfs.filesize or 0
        self._index.add(cid, BlockRef("file", self._content, self._pos - size, size, block))

    def update(self, data: bytes) -> None:
        self.importer.update(data)


@dataclass(frozen=True, slots=True)
class TreeItem:
    """One entry of a stored tree, as the DAG builder needs it."""

    path: str  # relative, "/"-separated; "" = the root directory
    kind: str  # file | dir | symlink
    cid: CID | None = None  # files: the file's root CID
    tsize: int = 0  # files: the file's cumulative DAG size
    target: str | None = None  # symlinks


def build_tree(
    items: Iterable[TreeItem],
    profile: ImportProfile,
    on_block: Callable[[CID, bytes, BlockKind], None] | None = None,
) -> DirRoot:
    """The UnixFS directory DAG of a tree from its entries' file CIDs (no file is reread)."""
    children: dict[str, list[DirEntry]] = {}
    dirs: list[str] = []
    for item in items:
        if item.kind == "dir":
            dirs.append(item.path)
            children.setdefault(item.path, [])
            if item.path == "":
                continue
        parent, _, name = item.path.rpartition("/")
        if item.path == "":
            raise FormatError("a tree's root must be a directory")
        if item.kind == "file":
            if item.cid is None:
                raise IntegrityError(f"file {item.path} has no CID")
            entry = DirEntry(name, item.cid, item.tsize)
        elif item.kind == "symlink":
            cid, block = symlink_block(os.fsencode(item.target or ""), profile)
            if on_block is not None:
                on_block(cid, block, "symlink")
            entry = DirEntry(name, cid, len(block))
        else:
            continue
        children.setdefault(parent, []).append(entry)
    if "" not in children:
        raise FormatError("a tree needs a root directory")

    def sink(cid: CID, block: bytes) -> None:
        if on_block is not None:
            node = decode_unixfs(decode_node(block).data or b"")
            on_block(cid, block, "shard" if node.type == 5 else "dir")

    roots: dict[str, DirRoot] = {}
    for path in sorted(dirs, key=lambda p: (-p.count("/") if p else 1, p)):
        root = build_directory(children.get(path, []), profile, sink if on_block else None)
        roots[path] = root
        if path:
            parent, _, name = path.rpartition("/")
            children.setdefault(parent, []).append(DirEntry(name, root.cid, root.tsize, True))
    return roots[""]
