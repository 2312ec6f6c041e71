"""``ownvault car import``: verify a CAR, rebuild its files and tree, store them in the vault.

1. **Index** (one streaming pass, :class:`~ownvault.core.car.CarReader`): every block is
   re-hashed against its CID; sections over 8 MiB, malformed headers and truncation are
   refused; exactly one root is required; at most :data:`MAX_BLOCKS` blocks. Only the
   file offsets of the blocks are kept, not the blocks.
2. **Rebuild** (random access into the CAR): walk the DAG from the root and write the
   files, directories (basic and HAMT) and symlinks into a temporary directory inside the
   vault directory. Every link must resolve to a block in the CAR (complete DAG); UnixFS
   must be consistent (``blocksizes`` match the children, ``filesize`` matches the bytes,
   HAMT labels match the names' hashes, entry names are safe and unique); anything that
   is not UnixFS (dag-cbor, metadata nodes) is refused.
3. **Store** the rebuilt path with :meth:`Vault.put` (a new version, encrypted and
   erasure-coded like any other), then match the CAR's root: the CID computed at ingest
   (vault profile) or the CID under another known profile. If one matches, a DAG record
   with that profile is kept (``source = 'profile'``): the DAG can be regenerated from the
   plaintext. If none matches (another chunker, trickle layout, metadata...), the CAR's
   own layout is recorded as a block index over the stored contents (``source = 'car'``),
   so ``car export``, ``publish`` and the gateway serve exactly the imported root.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

from ownvault.core.car import CarReader
from ownvault.core.cid import CID, DAG_PB, IDENTITY, RAW, encode_varint
from ownvault.core.dagpb import decode_unixfs
from ownvault.core.hamt import MURMUR3_X64_64, name_hash
from ownvault.core.unixfs import PROFILES
from ownvault.engine.ipfs.dagwalk import inspect
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.engine.ipfs.publish import publish
from ownvault.engine.store.catalog.ipfs import DagSource
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import BlockRef, DagIndex, split_leaf
from ownvault.engine.store.versions import put_paths
from ownvault.errors import FormatError, IntegrityError, UsageError

__all__ = ["MAX_BLOCKS", "MAX_ENTRIES", "CarImport", "import_car", "rebuild_car"]

MAX_BLOCKS = 4_000_000
MAX_ENTRIES = 1_000_000
MAX_DEPTH = 512  # directory nesting, and file DAG depth
_READ = 1 << 20


@dataclass
class _Car:
    """Random access to the verified blocks of a CAR file."""

    fh: Any
    offsets: dict[bytes, tuple[int, int]]

    def get(self, cid: CID, parent: CID | None) -> bytes:
        if cid.hash_code == IDENTITY:
            return cid.digest
        where = self.offsets.get(cid.bytes)
        if where is None:
            linked = f" (linked from {parent})" if parent is not None else ""
            raise IntegrityError(
                f"CAR is incomplete: block {cid}{linked} is missing", name=str(cid)
            )
        pos, length = where
        data = os.pread(self.fh.fileno(), length, pos)
        if len(data) != length or not cid.verify(data):
            raise IntegrityError(f"CAR block {cid} changed while importing", name=str(cid))
        return data


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(_READ):
        yield chunk


def _index(fh: BinaryIO) -> tuple[CID, dict[bytes, tuple[int, int]], int]:
    reader = CarReader(_chunks(fh))
    if len(reader.roots) != 1:
        raise UsageError(
            f"the CAR has {len(reader.roots)} roots; ownvault imports single-root CARs"
        )
    offsets: dict[bytes, tuple[int, int]] = {}
    for block in reader:
        raw = block.cid.bytes
        if raw in offsets:
            continue
        if len(offsets) >= MAX_BLOCKS:
            raise FormatError(f"CAR has more than {MAX_BLOCKS} blocks")
        section = len(raw) + len(block.data)
        start = reader.data_offset + block.offset + len(encode_varint(section)) + len(raw)
        offsets[raw] = (start, len(block.data))
    return reader.roots[0], offsets, reader.version


@dataclass
class _Rebuild:
    car: _Car
    blocks: dict[bytes, tuple[str, BlockRef]] = field(
        default_factory=dict
    )  # cid -> (file path, ref)
    entries: int = 0
    files: int = 0
    size: int = 0
    used: set[bytes] = field(default_factory=set)

    def _count(self) -> None:
        self.entries += 1
        if self.entries > MAX_ENTRIES:
            raise FormatError(f"CAR holds more than {MAX_ENTRIES} files and directories")

    def node(self, cid: CID, parent: CID | None, dest: Path, rel: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise FormatError(f"CAR DAG deeper than {MAX_DEPTH} levels at {rel or '/'}")
        block = self.car.get(cid, parent)
        self.used.add(cid.bytes)
        if cid.codec not in (RAW, DAG_PB):
            raise FormatError(f"{cid}: codec {cid.codec_name} is not UnixFS (only dag-pb and raw)")
        info = inspect(cid, block)
        self._count()
        if info.kind == "file":
            self.files += 1
            # O_EXCL | O_NOFOLLOW: the rebuild never writes through a name it did not create.
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
            with open(fd, "wb") as out:
                size = self.file(cid, block, parent, out, rel, 0, 0)
            self.size += size
        elif info.kind == "directory":
            dest.mkdir()
            self._record(cid, rel, BlockRef("dir", data=block))
            assert info.pb is not None
            seen: set[str] = set()
            for link in info.pb.links:
                name = _safe_name(link.name, cid)
                if name in seen:
                    raise FormatError(f"{cid}: directory lists {name!r} twice")
                seen.add(name)
                self.node(link.cid, cid, dest / name, f"{rel}/{name}" if rel else name, depth + 1)
        elif info.kind == "shard":
            dest.mkdir()
            names: set[str] = set()
            self.shard(cid, block, dest, rel, depth, 0, 0, names)
        elif info.kind == "symlink":
            if not rel:
                raise UsageError("the CAR's root is a symlink: nothing to store")
            self._record(cid, rel, BlockRef("symlink", data=block))
            os.symlink(os.fsdecode(info.inline), dest)
        else:
            raise FormatError(f"{cid}: not a UnixFS file, directory or symlink")

    def _record(self, cid: CID, rel: str, ref: BlockRef) -> None:
        if cid.hash_code != IDENTITY:
            self.blocks.setdefault(cid.bytes, (rel, ref))

    def shard(
        self,
        cid: CID,
        block: bytes,
        dest: Path,
        rel: str,
        depth: int,
        level: int,
        prefix: int,
        names: set[str],
    ) -> None:
        info = inspect(cid, block)
        assert info.pb is not None and info.pb.data is not None
        unixfs = decode_unixfs(info.pb.data)
        if unixfs.hash_type != MURMUR3_X64_64:
            raise FormatError(f"{cid}: HAMT hash function {unixfs.hash_type} is not murmur3-x64-64")
        self._record(cid, rel, BlockRef("shard", data=block))
        fanout = info.fanout
        bits = fanout.bit_length() - 1
        width = len(f"{fanout - 1:X}")
        bitfield = int.from_bytes(unixfs.data or b"", "big")
        shift = 64 - bits * (level + 1)
        if shift < 0:
            raise FormatError(f"{cid}: HAMT deeper than its hash")
        used = 0
        for link in info.pb.links:
            name = link.name or ""
            label = name[:width]
            try:
                index = int(label, 16)
            except ValueError:
                raise FormatError(f"{cid}: HAMT link {name!r} lacks a hex index") from None
            if len(label) != width or label != label.upper() or index >= fanout:
                raise FormatError(f"{cid}: HAMT link {name!r} has an invalid index")
            used |= 1 << index
            if len(name) == width:
                child = self.car.get(link.cid, cid)
                self.used.add(link.cid.bytes)
                if inspect(link.cid, child).kind != "shard":
                    raise FormatError(f"{link.cid}: HAMT sub-shard is not a shard node")
                self.shard(link.cid, child, dest, rel, depth, level + 1, index, names)
                continue
            entry = _safe_name(name[width:], cid)
            if (name_hash(entry.encode("utf-8")) >> shift) & (fanout - 1) != index:
                raise FormatError(f"{cid}: HAMT entry {entry!r} is filed under the wrong index")
            if entry in names:
                raise FormatError(f"{cid}: HAMT directory lists {entry!r} twice")
            names.add(entry)
            self.node(link.cid, cid, dest / entry, f"{rel}/{entry}" if rel else entry, depth + 1)
        if used != bitfield:
            raise FormatError(f"{cid}: HAMT bitfield does not match its links")

    def file(
        self,
        cid: CID,
        block: bytes,
        parent: CID | None,
        out: BinaryIO,
        rel: str,
        offset: int,
        depth: int,
    ) -> int:
        """Write the file bytes under ``cid`` at ``offset``; return how many were written."""
        if depth > MAX_DEPTH:
            raise FormatError(f"file DAG deeper than {MAX_DEPTH} levels: {rel}")
        info = inspect(cid, block)
        if info.kind != "file":
            raise FormatError(f"{cid}: a file links to a non-file node")
        links = info.pb.links if info.pb is not None else ()
        if not links:
            head, data, tail = split_leaf(cid, block)
            if info.size != len(data):
                raise FormatError(f"{cid}: UnixFS filesize {info.size} but {len(data)} bytes")
            out.write(data)
            self._record(cid, rel, BlockRef("leaf", None, offset, len(data), head, tail))
            return len(data)
        if len(info.blocksizes) != len(links):
            raise FormatError(f"{cid}: {len(links)} links but {len(info.blocksizes)} blocksizes")
        out.write(info.inline)
        written = len(info.inline)
        for link, want in zip(links, info.blocksizes, strict=True):
            child = self.car.get(link.cid, cid)
            self.used.add(link.cid.bytes)
            got = self.file(link.cid, child, cid, out, rel, offset + written, depth + 1)
            if got != want:
                raise FormatError(
                    f"{cid}: blocksizes says {want} bytes under {link.cid}, found {got}"
                )
            written += got
        if written != info.size:
            raise FormatError(f"{cid}: UnixFS filesize {info.size} but {written} bytes")
        self._record(cid, rel, BlockRef("file", None, offset, written, block))
        return written


def _safe_name(name: str | None, parent: CID) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name or len(name.encode()) > 4096:
        raise FormatError(f"{parent}: unsafe or empty entry name {name!r}")
    return name


def _rebuild(path: Path, dest_root: Path) -> tuple[CID, _Rebuild, int, int]:
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise UsageError(f"cannot open {path}: {exc.strerror}") from None
    with fh:
        root, offsets, version = _index(fh)
        state = _Rebuild(_Car(fh, offsets))
        state.node(root, None, dest_root, "", 0)
        unused = len(offsets) - len(state.used & offsets.keys())
    return root, state, version, unused


def rebuild_car(path: Path, dest: Path) -> tuple[CID, int, int]:
    """Steps 1-2 alone: verify a single-root CAR and rebuild its DAG at ``dest`` (which must
    not exist); return (root, files, bytes). Raises like :func:`import_car`."""
    root, state, _version, _unused = _rebuild(path, dest)
    return root, state.files, state.size


@dataclass(frozen=True, slots=True)
class CarImport:
    """What importing a CAR stored; ``published`` is its ipfs:// URL when it was published."""

    name: str
    version: int
    root: str
    car_version: int
    profile: str
    source: DagSource
    files: int
    bytes: int
    blocks: int
    unused_blocks: int
    stored_cid: str | None
    published: str | None = None

    def to_json(self) -> dict[str, object]:
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.published is None:
            del doc["published"]
        return doc


async def import_car(
    ctx: VaultContext, path: Path, *, name: str | None = None, publish_it: bool = False
) -> CarImport:
    """Verify and import a CAR (v1 or v2); store its content as a new version."""
    tmp = Path(tempfile.mkdtemp(prefix=".car-import-", dir=ctx.path))
    try:
        staged = tmp / "root"
        root, state, version, unused = await asyncio.to_thread(_rebuild, path, staged)
        results = await put_paths(ctx, [staged], name=name or str(root), files_cache=False)
        put = results[0]
        v = ctx.catalog.version(put.name, put.version)
        profile: str | None = None
        if put.cid == str(root):
            profile = ctx.settings.cid_profile
        else:
            for other in PROFILES.values():
                if other.name != ctx.settings.cid_profile and str(
                    (await asyncio.to_thread(cid_of_path, staged, other, hidden=True)).cid
                ) == str(root):
                    profile = other.name
                    break
        store = ctx.catalog.dags
        source: DagSource = "profile" if profile is not None else "car"
        async with ctx.write():
            with ctx.catalog.transaction():
                if profile is None:
                    contents = {e.path: e.content for e in ctx.catalog.entries(v.id)}
                    index = DagIndex(root, "car-import")
                    for cid_bytes, (rel, ref) in state.blocks.items():
                        content = contents.get(rel) if ref.kind in ("leaf", "file") else None
                        index.blocks[cid_bytes] = BlockRef(
                            ref.kind, content, ref.offset, ref.length, ref.data, ref.tail
                        )
                    dag = store.insert(v.id, "", root, "car-import", "car", False)
                    store.put_blocks(dag, index)
                elif profile != ctx.settings.cid_profile:
                    store.insert(v.id, "", root, profile, "profile", False)
        published = None
        if publish_it:
            pub = await publish(ctx, put.name, version=put.version, profile=profile or "car-import")
            published = f"ipfs://{pub.dag.root}"
        return CarImport(
            put.name,
            put.version,
            str(root),
            version,
            profile or "car-import",
            source,
            state.files,
            state.size,
            len(state.used),
            unused,
            put.cid,
            published,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
