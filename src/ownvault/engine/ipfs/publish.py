"""Publishing stored versions as IPFS content: DAG records, the block index, verification.

* A **DAG record** (catalog table ``dags``) ties a stored version (or a path inside a stored
  tree) to an IPFS root CID and how to regenerate it: ``source = 'profile'`` (re-import the
  plaintext with a named import profile) or ``'car'`` (an imported CAR whose layout no
  profile reproduces: its block index is the only way back to that root, so it is kept).
* **Publishing** builds the block index (``dag_blocks``: binary CID -> how to regenerate
  the block, see :mod:`ownvault.engine.store.dag`) by streaming the plaintext once, checks the
  regenerated root against the CID recorded at ingest, and sets ``published_at``. Only
  blocks of published DAGs are ever looked up for the gateway.
* **Reading** a block (:class:`BlockReader`) regenerates it from the stored data and
  re-hashes it against its CID before it is returned.
* **On another device** (the publication came by the journal, its index did not), the
  index is rebuilt the first time something serves it (:mod:`ownvault.engine.ipfs.dagindex`).

Content stays stored like everything else (encrypted, erasure-coded): publishing adds
catalog rows only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

from ownvault.core.car import encode_header, encode_section
from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES, get_profile
from ownvault.engine.ipfs.dagindex import build_index, index_version, indexed
from ownvault.engine.ipfs.dagstore import BlockReader, DagInfo, DagRow, Publication
from ownvault.engine.ipfs.dagwalk import walk
from ownvault.engine.store.catalog import VersionRow
from ownvault.engine.store.catalog.ipfs import DagTables
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.dag import DagIndex
from ownvault.errors import FormatError, IntegrityError, NotFoundError

__all__ = [
    "BlockReader",
    "CarExport",
    "CidCheck",
    "CidVerification",
    "DagInfo",
    "DagRow",
    "Publication",
    "dags",
    "export_car",
    "index_version",
    "publish",
    "resolve_target",
    "unpublish",
    "verify_cid",
]


# -- resolving what the user names ----------------------------------------------------------


def resolve_target(
    ctx: VaultContext, target: str, version: int | None = None
) -> tuple[VersionRow, str, str | None]:
    """A NAME (or NAME/path inside a tree) or a CID -> (version, inner path, expected root).

    For a CID, any DAG record, version or content with that CID is accepted (the owner may
    export private content); the expected root is the CID itself.
    """
    try:
        cid = CID.parse(target)
    except FormatError:
        cid = None
    if cid is not None:
        text = str(cid)
        rows = ctx.catalog.dags.by_root(text)
        if rows:
            row = rows[0]
            return ctx.catalog.version_by_id(row.version), row.path, text
        found = ctx.catalog.dags.version_with_cid(text)
        if found is not None:
            return ctx.catalog.version_by_id(found), "", text
        entry = ctx.catalog.dags.entry_with_cid(text)
        if entry is not None:
            return ctx.catalog.version_by_id(entry.version), entry.path, text
        raise NotFoundError(f"no stored content has the CID {text}", name=text)
    v, inner = ctx.resolve(target, version)
    expected: str | None = None
    if not inner:
        expected = v.cid
    return v, inner, expected


def _is_cid(text: str) -> bool:
    try:
        CID.parse(text)
    except FormatError:
        return False
    return True


def _profile_for(
    ctx: VaultContext, v: VersionRow, inner: str, profile: str | None
) -> tuple[str, DagRow | None]:
    """The profile to publish with and an existing DAG record to reuse."""
    rows = ctx.catalog.dags.of_version(v.id, inner)
    if profile is None:
        if rows:
            return rows[0].profile, rows[0]
        return v.cid_profile or ctx.settings.cid_profile, None
    for row in rows:
        if row.profile == profile:
            return profile, row
    return profile, None


# -- the operations ---------------------------------------------------------------------


async def publish(
    ctx: VaultContext, target: str, *, version: int | None = None, profile: str | None = None
) -> Publication:
    """Mark a stored file or tree (or a path inside a tree) public; build its block index."""
    t0 = time.perf_counter()
    async with ctx.write():
        v, inner, expected = resolve_target(ctx, target, version)
        name, existing = _profile_for(ctx, v, inner, profile)
        store = ctx.catalog.dags
        if existing is not None and existing.source == "car":
            if not store.block_count(existing.id):  # a device that did not import it
                await build_index(ctx, existing)  # refused, saying why
            with ctx.catalog.transaction():
                store.set_published(existing.id, True)
            dag = store.get(existing.id)
            return Publication(dag, store.block_count(dag.id), 0, time.perf_counter() - t0)
        index, root, _files = await index_version(ctx, v, inner, get_profile(name))
        assert index is not None
        recorded = (
            existing.root
            if existing is not None
            else (expected if name == (v.cid_profile or ctx.settings.cid_profile) else None)
        )
        if recorded is not None and recorded != str(root):
            raise IntegrityError(
                f"regenerated root {root} differs from the recorded CID {recorded} of {v.name}",
                name=v.name,
            )
        with ctx.catalog.transaction():
            dag_id = (
                existing.id
                if existing is not None
                else store.insert(v.id, inner, root, name, "profile", True)
            )
            store.put_blocks(dag_id, index)
            store.set_published(dag_id, True)
        dag = store.get(dag_id)
    return Publication(dag, len(index.blocks), index.stored_bytes(), time.perf_counter() - t0)


def dags(ctx: VaultContext, *, published: bool = False) -> list[DagInfo]:
    """Every DAG record (imported DAGs kept for their root CID too), or only published ones."""
    rows = ctx.catalog.dags.published() if published else ctx.catalog.dags.all()
    return [DagInfo.of(r) for r in rows]


async def unpublish(ctx: VaultContext, target: str, *, version: int | None = None) -> list[DagInfo]:
    """Stop publishing a name (all its published DAGs) or one root CID; the records as they
    were (``published_at``: when they had been published)."""
    async with ctx.write():
        store = ctx.catalog.dags
        try:
            cid: CID | None = CID.parse(target)
        except FormatError:
            cid = None
        if cid is not None:
            rows = [r for r in store.by_root(str(cid)) if r.published_at is not None]
        else:
            v, inner = ctx.resolve(target, version)
            rows = [
                r
                for r in store.published()
                if (r.version == v.id and (not inner or r.path == inner))
                or (version is None and r.name == v.name and (not inner or r.path == inner))
            ]
        if not rows:
            raise NotFoundError(f"{target} is not published", name=target)
        with ctx.catalog.transaction():
            for r in rows:
                store.set_published(r.id, False)
                if r.source == "profile":
                    store.drop_blocks(r.id)
    return [replace(DagInfo.of(r), published=False) for r in rows]


@dataclass(frozen=True, slots=True)
class CidCheck:
    """One recorded CID compared with the one recomputed from the stored plaintext."""

    what: str
    profile: str
    recorded: str | None
    computed: str
    ok: bool


@dataclass(frozen=True, slots=True)
class CidVerification:
    name: str
    version: int
    path: str
    cid: str
    checks: list[CidCheck]
    ok: bool


async def verify_cid(
    ctx: VaultContext, target: str, *, version: int | None = None
) -> CidVerification:
    """Recompute CIDs from the stored plaintext and compare with every recorded CID."""
    v, inner, expected = resolve_target(ctx, target, version)
    store = ctx.catalog.dags
    profile = v.cid_profile or ctx.settings.cid_profile
    checks: list[CidCheck] = []
    _index, root, files = await index_version(ctx, v, inner, PROFILES[profile], keep=False)
    for path, (got, recorded) in sorted(files.items()):
        if recorded is not None:
            checks.append(
                CidCheck(
                    f"file {path or v.name}", profile, recorded, str(got), recorded == str(got)
                )
            )
    if expected is not None and (inner or v.cid == expected):
        checks.append(CidCheck("root", profile, expected, str(root), expected == str(root)))
    for row in store.of_version(v.id, inner):
        if row.source == "car":
            ok, detail = await _verify_stored_dag(ctx, store, row)
            checks.append(
                CidCheck("imported DAG", row.profile, row.root, row.root if ok else detail, ok)
            )
        elif row.profile != profile or row.root != str(root):
            _i, other, _f = await index_version(ctx, v, inner, PROFILES[row.profile], keep=False)
            checks.append(
                CidCheck("DAG record", row.profile, row.root, str(other), row.root == str(other))
            )
    if not checks:
        checks.append(CidCheck("root", profile, None, str(root), True))
    return CidVerification(v.name, v.number, inner, str(root), checks, all(c.ok for c in checks))


async def _verify_stored_dag(ctx: VaultContext, store: DagTables, row: DagRow) -> tuple[bool, str]:
    """Regenerate every block of a stored index from the vault and walk it from the root."""
    if not store.block_count(row.id):  # a device that did not import it: why not
        try:
            await build_index(ctx, row)
        except NotFoundError as exc:
            return False, exc.message
    reader = BlockReader(ctx, lambda c: store.lookup(c, dag=row.id))
    try:
        async for _cid, _block in _dfs(reader, CID.parse(row.root)):
            pass
    except (IntegrityError, NotFoundError) as exc:
        return False, exc.message
    finally:
        await reader.close()
    return True, ""


async def _dfs(reader: BlockReader, root: CID) -> AsyncIterator[tuple[CID, bytes]]:
    async for item in walk(reader, root, "all"):
        yield item


async def dag_index(
    ctx: VaultContext, target: str, *, version: int | None = None
) -> tuple[VersionRow, str, DagIndex]:
    """The block index of a stored version's DAG (by NAME or CID), checked against the CID
    recorded for it: (version, path inside it, index with ``.root`` and ``.blocks``)."""
    v, inner, expected = resolve_target(ctx, target, version)
    store = ctx.catalog.dags
    rows = store.of_version(v.id, inner)
    if not _is_cid(target) and rows:
        # by NAME: the DAG record (a publication, an imported CAR's root) wins over the
        # CID recorded at ingest, so an imported CAR exports as it came in
        rows.sort(key=lambda r: r.published_at is None)
        expected = rows[0].root
    row = next(
        (r for r in rows if r.root == expected), rows[0] if rows and expected is None else None
    )
    if row is not None:
        # stored, or rebuilt here (a publication another device made: stored too)
        index = await indexed(ctx, row)
    else:
        name = v.cid_profile or ctx.settings.cid_profile
        built, _root, _files = await index_version(ctx, v, inner, get_profile(name))
        assert built is not None
        index = built
    if expected is not None and str(index.root) != expected:
        raise IntegrityError(
            f"regenerated root {index.root} differs from the recorded CID {expected}", name=v.name
        )
    return v, inner, index


async def dag_blocks(ctx: VaultContext, index: DagIndex) -> AsyncIterator[tuple[CID, bytes]]:
    """Every block of an indexed DAG, depth-first, regenerated from the vault and verified."""
    reader = BlockReader(ctx, index.blocks.get)
    try:
        async for cid, block in walk(reader, index.root, "all"):
            yield cid, block
    finally:
        await reader.close()


@dataclass(frozen=True, slots=True)
class CarExport:
    name: str
    version: int
    path: str
    root: str
    profile: str
    blocks: int
    bytes: int


async def export_car(
    ctx: VaultContext, target: str, out: Callable[[bytes], object], *, version: int | None = None
) -> CarExport:
    """Write the DAG of a stored version (by NAME or CID) as a CARv1 through ``out``.

    The blocks are regenerated from the stored plaintext with the recorded profile (or
    the stored index of an imported CAR); the regenerated root must equal the recorded
    CID before anything is written.
    """
    v, inner, index = await dag_index(ctx, target, version=version)
    reader = BlockReader(ctx, index.blocks.get)
    header = encode_header([index.root])
    out(header)
    size = len(header)
    count = 0
    try:
        async for cid, block in walk(reader, index.root, "all"):
            section = encode_section(cid, block)
            out(section)
            size += len(section)
            count += 1
    finally:
        await reader.close()
    return CarExport(v.name, v.number, inner, str(index.root), index.profile, count, size)
