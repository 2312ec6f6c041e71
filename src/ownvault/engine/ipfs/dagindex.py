"""The block index of a DAG on every device of the vault: built by one import pass over the
stored plaintext, rebuilt by the devices that did not publish it.

A publication (a ``dags`` row with ``published_at``) travels in the catalog journal as a
``set`` op; its block index (``dag_blocks``) does not: it is this device's own cache, a pure
function of the version's stored content and the record's import profile. So a device the
publication reached by the journal rebuilds the index **the first time something serves
it** (:func:`indexed`: ``car export``, pinning; :class:`PublishedIndexes`: the gateway) with
the same deterministic build the publisher ran (:func:`index_version`), checks that the
rebuilt root is the published root (an ``IntegrityError`` naming the publication otherwise:
never a serve of other bytes), and stores it. Not on pull: a pull runs before every command
and write block, and most devices never serve (docs/design.md, "Publications on every
device").

An imported CAR whose layout no profile reproduces (``source = 'car'``) cannot be rebuilt:
its nodes exist only in the importing device's index, so on another device it is refused
with a message saying so.
"""

from __future__ import annotations

import asyncio

from ownvault.core.cid import CID
from ownvault.core.unixfs import ImportProfile, get_profile
from ownvault.engine.store.catalog import EntryRow, VersionRow
from ownvault.engine.store.catalog.ipfs import DagRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import (
    BlockKind,
    BlockRef,
    DagIndex,
    FileIndexer,
    TreeItem,
    build_tree,
)
from ownvault.engine.store.restore import PackReader
from ownvault.errors import (
    DataUnavailableError,
    IntegrityError,
    NotFoundError,
    OwnvaultError,
    ProviderError,
    UsageError,
)

__all__ = ["PublishedIndexes", "build_index", "index_version", "indexed"]


def _subtree(entries: list[EntryRow], inner: str) -> list[EntryRow]:
    if not inner:
        return entries
    return [e for e in entries if e.path == inner or e.path.startswith(inner + "/")]


def _rebase(path: str, inner: str) -> str:
    if not inner:
        return path
    return "" if path == inner else path[len(inner) + 1 :]


async def index_version(
    ctx: VaultContext, version: VersionRow, inner: str, profile: ImportProfile, *, keep: bool = True
) -> tuple[DagIndex | None, CID, dict[str, tuple[CID, str | None]]]:
    """Re-import a stored version (or ``inner`` path) from its plaintext with ``profile``.

    Returns the block index (None when ``keep`` is false), the root CID, and per file
    path (relative to ``inner``) the regenerated CID next to the CID recorded at ingest
    under the same profile (None when none was recorded under it).
    """
    entries = _subtree(ctx.catalog.entries(version.id), inner)
    if not entries:
        raise NotFoundError(f"no such path in {version.name}: {inner}", name=version.name)
    store = ctx.catalog.dags
    index = DagIndex(CID.parse("bafkqaaa"), profile.name) if keep else None
    files: dict[str, tuple[CID, str | None]] = {}
    items: list[TreeItem] = []
    reader = PackReader(ctx.catalog, ctx.keys, ctx.store)
    try:
        for e in entries:
            rel = _rebase(e.path, inner)
            if e.kind != "file":
                items.append(TreeItem(rel, e.kind, target=e.target))
                continue
            if e.content is None:
                raise IntegrityError(f"file entry without content: {e.path}")
            indexer = FileIndexer(profile, e.content, index)
            async for piece in reader.read(ctx.catalog.content_chunks(e.content)):
                indexer.update(piece)
            root = indexer.importer.finish()
            cid, cid_profile = store.content_cid(e.content)
            files[rel] = (root.cid, cid if cid_profile == profile.name else None)
            items.append(TreeItem(rel, "file", root.cid, root.tsize))
    finally:
        await reader.close()
    top = items[0]
    if top.kind == "file":
        root_cid = files[""][0]
    elif top.kind == "symlink":
        raise UsageError(f"{version.name}/{inner} is a symlink: publish a file or a directory")
    else:

        def sink(cid: CID, block: bytes, kind: BlockKind) -> None:
            if index is not None:
                index.add(cid, BlockRef(kind, data=block))

        root_cid = build_tree(items, profile, sink).cid
    if index is not None:
        index.root = root_cid
    return index, root_cid, files


def _what(row: DagRow) -> str:
    state = "publication" if row.published_at is not None else "DAG record"
    return f"{state} {row.label} (version {row.number}, ipfs://{row.root})"


async def build_index(ctx: VaultContext, row: DagRow) -> DagIndex:
    """Rebuild the index of a DAG record from its version's stored content with the record's
    import profile; its root must be the record's root."""
    if row.source == "car":
        raise NotFoundError(
            f"{_what(row)} is an imported CAR whose layout no import profile reproduces: its "
            "block index is kept only on the device that imported it and does not travel "
            "between devices; serve it from that device, or `ownvault car export` it there "
            "and `ownvault car import` the CAR here",
            name=row.label,
        )
    v = ctx.catalog.version_by_id(row.version)
    index, root, _files = await index_version(ctx, v, row.path, get_profile(row.profile))
    assert index is not None
    if str(root) != row.root:
        raise IntegrityError(
            f"{_what(row)}: the DAG rebuilt from this device's stored content with profile "
            f"{row.profile} has the root {root}, not the published one; it is not served",
            name=row.label,
        )
    return index


async def indexed(ctx: VaultContext, row: DagRow) -> DagIndex:
    """The block index of ``row`` here: the stored one, else rebuilt (:func:`build_index`)
    and, for a publication, stored in this device's ``dag_blocks``."""
    store = ctx.catalog.dags
    if store.block_count(row.id):
        return store.load(row.id)
    index = await build_index(ctx, row)
    if row.published_at is not None:
        with ctx.catalog.transaction():
            store.put_rebuilt(row, index)
    return index


class PublishedIndexes:
    """The gateway's view: before a request whose CID no index here holds is looked up,
    every published DAG without an index here gets one (one rebuild at a time). A publication that cannot be rebuilt (its
    root differs, an imported CAR indexed elsewhere, a path its version does not hold) is
    remembered, not retried, and a request for its root gets that error; a failure to read
    (a provider down, too few shares) is retried by the next request. Other publications
    are served meanwhile."""

    def __init__(self, ctx: VaultContext) -> None:
        self._ctx = ctx
        self._lock = asyncio.Lock()
        self._refused: dict[DagRow, OwnvaultError] = {}

    async def ready(self, cid: CID) -> None:
        """Index what is published and not indexed here; raise the error of a publication
        rooted at ``cid`` that cannot be."""
        store = self._ctx.catalog.dags
        if cid.hash_code == 0x00 or store.lookup(cid.bytes) is not None:
            return  # served from an index held here: it never waits for a rebuild
        if not store.unindexed():
            return
        text = str(cid)
        failed: dict[DagRow, OwnvaultError] = {}
        async with self._lock:
            for row in store.unindexed():
                if row in self._refused:
                    failed[row] = self._refused[row]
                    continue
                try:
                    await indexed(self._ctx, row)
                except (ProviderError, DataUnavailableError) as exc:
                    failed[row] = exc  # a read that may work next time
                except OwnvaultError as exc:
                    self._refused[row] = failed[row] = exc
        for row, error in failed.items():
            if row.root == text:
                raise error
