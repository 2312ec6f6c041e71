"""Preserving NFTs in the vault: the preserved folder, publishing, pinning, the catalog's
record of each token, collections (resumable), listing and re-verification.

The **preserved folder** of a token is one UnixFS directory, stored as a vault version
(name ``nft/eth-CHAIN/CONTRACT/ID``, or ``nft/uri/…``/``nft/file/…``) and published::

    metadata.json            the metadata with every fetched URI rewritten to ipfs://CID
    metadata.original.json   the metadata exactly as fetched (its original DAG if on IPFS)
    report.json              the report (format ownvault-nft-report v1; no root, no pins)
    assets/NN-ROLE.EXT       each part, in metadata order

IPFS parts keep their **original DAG** (verified block by block), so their CIDs, the ones
the token names, resolve from the vault's gateway and wherever the folder is pinned. Other
parts are imported with the vault's profile (``kubo-v1``). The folder is assembled as a
CAR and stored with :func:`ownvault.engine.ipfs.carimport.import_car` (which re-verifies it and
keeps its layout as a block index when no profile reproduces it), then published.

Catalog (migration 3): ``nft_tokens`` has one row per SOURCE: ``pending`` while a run
works on it (and after a crash or Ctrl-C), then ``preserved`` (root, report summary, pins)
or ``failed`` (error). A collection run skips ``preserved`` rows unless asked to refresh,
so re-running it resumes.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from ownvault.core.car import CarReader, encode_header, encode_section
from ownvault.core.cid import CID, IDENTITY
from ownvault.core.nftmeta import TokenRef, rewrite_uris
from ownvault.core.unixfs import DirEntry, FileImporter, build_directory, get_profile, import_bytes
from ownvault.engine.ipfs.carimport import import_car
from ownvault.engine.ipfs.publish import verify_cid
from ownvault.engine.nft.collect import Collected, NftOptions, collect, name_for, parse_source
from ownvault.engine.nft.pin import pin
from ownvault.engine.nft.results import (
    CollectionRun,
    Outcome,
    PinOutcome,
    PreservedToken,
    ReverifiedToken,
    TokenCheck,
    TokenHealth,
    TokenOutcome,
)
from ownvault.engine.store.catalog.nft import NftTokenRow, TokenState
from ownvault.engine.store.context import VaultContext
from ownvault.errors import IntegrityError, NotFoundError, OwnvaultError, UsageError
from ownvault.providers.webfetch import Fetcher, FetchError

__all__ = [
    "REPORT_FORMAT",
    "Preserved",
    "build_folder",
    "list_preserved",
    "parse_collection",
    "preserve_collection",
    "preserve_token",
    "report_document",
    "reverify_preserved",
    "verify_token",
]

REPORT_FORMAT = "ownvault-nft-report"
REPORT_VERSION = 1
MAX_COLLECTION = 100_000
_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class Preserved:
    """The outcome of preserving one token."""

    collected: Collected
    root: str
    version: int
    pins: list[PinOutcome] = field(default_factory=list)
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        doc = self.collected.to_json()
        pinned = [p.target for p in self.pins if p.ok]
        for part in doc["parts"]:
            part["pinned"] = pinned if part["cid"] else []
        return doc | {
            "root": self.root,
            "url": f"ipfs://{self.root}",
            "version": self.version,
            "pins": [asdict(p) for p in self.pins],
            "skipped": self.skipped,
        }


# -- the folder -------------------------------------------------------------------------------


def _car_blocks(path: Path) -> Iterable[tuple[CID, bytes]]:
    with open(path, "rb") as fh:
        for block in CarReader(iter(lambda: fh.read(_READ), b"")):
            yield block.cid, block.data


def build_folder(collected: Collected, out: Path, profile_name: str = "kubo-v1") -> CID:
    """Write the preserved folder of ``collected`` as a CARv1 at ``out``; return its root.

    Fills in each part's ``cid`` and ``path``; the report inside is written last.
    """
    profile = get_profile(profile_name)
    body_path = out.with_suffix(".body")
    seen: set[bytes] = set()
    with open(body_path, "wb") as body:

        def emit(cid: CID, block: bytes) -> None:
            if cid.hash_code != IDENTITY and cid.bytes not in seen:
                seen.add(cid.bytes)
                body.write(encode_section(cid, block))

        def add_file(path: Path) -> tuple[CID, int]:
            importer = FileImporter(profile, emit)
            with open(path, "rb") as fh:
                while chunk := fh.read(_READ):
                    importer.update(chunk)
            root = importer.finish()
            return root.cid, root.tsize

        def add_bytes(data: bytes) -> DirEntry:
            root = import_bytes(data, profile, emit)
            return DirEntry("", root.cid, root.tsize)

        assets: list[DirEntry] = []
        mapping: dict[str, str] = {}
        top: list[DirEntry] = []
        for i, part in enumerate(collected.parts):
            staged = collected.staged.get(i)
            if staged is None:
                continue
            if staged.kind == "car":
                assert staged.root is not None
                for cid, block in _car_blocks(staged.path):
                    emit(cid, block)
                cid, tsize = staged.root, staged.tsize
            else:
                cid, tsize = add_file(staged.path)
            part.cid = str(cid)
            if i == 0:
                part.path = "metadata.original.json"
                top.append(DirEntry(part.path, cid, tsize))
                continue
            name = f"{i:02d}-{part.role}{staged.extension}"
            part.path = f"assets/{name}"
            assets.append(DirEntry(name, cid, tsize, staged.is_directory))
            if not part.uri.lower().startswith("data:"):
                mapping[part.uri] = f"ipfs://{cid}"
        if collected.metadata is not None:
            rewritten = rewrite_uris(collected.metadata, mapping)
            data = (json.dumps(rewritten, indent=2, ensure_ascii=False) + "\n").encode()
            entry = add_bytes(data)
            top.append(DirEntry("metadata.json", entry.cid, entry.tsize))
        folder = build_directory(assets, profile, emit)
        top.append(DirEntry("assets", folder.cid, folder.tsize, True))
        report = report_document(collected)
        entry = add_bytes((json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
        top.append(DirEntry("report.json", entry.cid, entry.tsize))
        root = build_directory(top, profile, emit).cid
    with open(out, "wb") as car, open(body_path, "rb") as body_in:
        car.write(encode_header([root]))
        shutil.copyfileobj(body_in, car, _READ)
    body_path.unlink()
    return root


def report_document(collected: Collected) -> dict[str, Any]:
    """``report.json``: what was preserved, from where, in what state."""
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "preserved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    } | collected.to_json()


# -- the catalog ------------------------------------------------------------------------------


class _TokenFields(TypedDict, total=False):
    """The optional columns of an ``nft_tokens`` row that :func:`_mark` may set."""

    root: str
    report: str
    pins: str
    health: str
    error: str | None


def _mark(
    ctx: VaultContext,
    source: str,
    name: str,
    state: TokenState,
    *,
    collection: str | None = None,
    **fields: Unpack[_TokenFields],
) -> None:
    """Upsert a token's row. A ``failed`` attempt never downgrades a ``preserved`` row: the
    earlier copy stays the token's record; only ``error`` says the last attempt failed."""
    now = int(time.time())
    cols: dict[str, object] = {"name": name, "state": state, "updated_at": now, **fields}
    if collection is not None:
        cols["collection"] = collection
    with ctx.catalog.transaction():
        ctx.catalog.nft.mark(source, name, state, cols)


def _statuses(collected: Collected) -> dict[str, int]:
    """How many parts of a token ended in each status."""
    counts: dict[str, int] = {}
    for part in collected.parts:
        counts[part.status] = counts.get(part.status, 0) + 1
    return counts


def _summary(collected: Collected) -> dict[str, object]:
    return {
        "statuses": _statuses(collected),
        "parts": len(collected.parts),
        "at_risk": len(collected.at_risk),
        "metadata": collected.parts[0].status,
    }


# -- preserving -------------------------------------------------------------------------------


async def _store(ctx: VaultContext, collected: Collected, work: Path) -> tuple[str, int]:
    car = work / "folder.car"
    root = await asyncio.to_thread(build_folder, collected, car, ctx.settings.cid_profile)
    stored = await import_car(ctx, car, name=collected.name, publish_it=True)
    if stored.root != str(root):
        raise IntegrityError(f"stored folder root {stored.root} is not the built {root}")
    return str(root), stored.version


async def preserve_token(
    ctx: VaultContext,
    source: str,
    opts: NftOptions,
    *,
    pins: Iterable[str] = (),
    fetcher: Fetcher | None = None,
    store_lock: asyncio.Lock | None = None,
    collection: str | None = None,
) -> Preserved:
    """Collect a token, store its folder in the vault, publish it and pin it.

    Raises when the metadata itself could not be read (the token is recorded as failed);
    parts that fail are in the report.
    """
    lock = store_lock or asyncio.Lock()
    own = fetcher is None
    f = fetcher or opts.fetcher()
    work = Path(tempfile.mkdtemp(prefix=".nft-", dir=ctx.path))
    source_key = source
    try:
        collected = await collect(source, opts, work, f)
        source_key = collected.source
        meta = collected.parts[0]
        if collected.metadata is None:
            async with lock, ctx.write():
                _mark(
                    ctx,
                    collected.source,
                    collected.name,
                    "failed",
                    collection=collection,
                    error=f"metadata {meta.status}: {meta.error}",
                    report=json.dumps(collected.to_json()),
                )
            raise _metadata_error(
                meta.status, f"{collected.source}: metadata {meta.status}: {meta.error}"
            )
        async with lock, ctx.write():
            _mark(ctx, collected.source, collected.name, "pending", collection=collection)
            root, version = await _store(ctx, collected, work)
        results = [await pin(ctx, f, root, target) for target in pins]
        async with lock, ctx.write():
            _mark(
                ctx,
                collected.source,
                collected.name,
                "preserved",
                collection=collection,
                root=root,
                report=json.dumps(_summary(collected)),
                pins=json.dumps(list(pins)),
                error=None,
                health=json.dumps(
                    {
                        "ok": True,
                        "pins": [asdict(p) for p in results],
                        "checked_at": int(time.time()),
                    }
                ),
            )
        return Preserved(collected, root, version, results)
    except OwnvaultError as exc:
        if not isinstance(exc, UsageError):
            await _fail_quietly(ctx, lock, source_key, exc, collection)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if own:
            await f.aclose()


def _metadata_error(status: str, message: str) -> OwnvaultError:
    if status in ("unreachable", "too_large", "refused", "mismatch", "wrong_type"):
        return FetchError(status, message)  # type: ignore[arg-type]
    return OwnvaultError(message)


async def _fail_quietly(
    ctx: VaultContext, lock: asyncio.Lock, source: str, exc: OwnvaultError, collection: str | None
) -> None:
    name = ctx.catalog.nft.name_of(source)
    if name is None:
        return
    async with lock, ctx.write():
        _mark(ctx, source, name, "failed", collection=collection, error=exc.message[:500])


# -- collections ------------------------------------------------------------------------------


def parse_collection(text: str) -> list[str]:
    """A collection file: one SOURCE per line (``#`` comments, blank lines ignored), or a
    token range ``eth:CHAIN:CONTRACT:FIRST-LAST`` (inclusive)."""
    out: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = (
            line.split("#", 1)[0].strip() if not line.lstrip().startswith("data:") else line.strip()
        )
        if not item:
            continue
        parts = item.split(":")
        if item.startswith("eth:") and len(parts) == 4 and "-" in parts[3]:
            first, _, last = parts[3].partition("-")
            try:
                lo, hi = int(first, 0), int(last, 0)
            except ValueError:
                raise UsageError(f"line {number}: bad token range {parts[3]!r}") from None
            if hi < lo or hi - lo + 1 + len(out) > MAX_COLLECTION:
                raise UsageError(f"line {number}: empty range or more than {MAX_COLLECTION} tokens")
            out.extend(
                str(TokenRef.parse(f"eth:{parts[1]}:{parts[2]}:{n}")) for n in range(lo, hi + 1)
            )
        else:
            out.append(item)
        if len(out) > MAX_COLLECTION:
            raise UsageError(f"a collection holds at most {MAX_COLLECTION} tokens")
    if not out:
        raise UsageError("the collection file names no token")
    return out


async def preserve_collection(
    ctx: VaultContext,
    sources: list[str],
    opts: NftOptions,
    *,
    pins: Iterable[str] = (),
    refresh: bool = False,
    concurrency: int = 4,
    collection: str | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> CollectionRun:
    """Preserve many tokens, ``concurrency`` at a time; resumable (``preserved`` rows are
    skipped unless ``refresh``). ``progress(source, outcome)`` after each token."""
    pins = list(pins)
    state = ctx.catalog.nft.states()
    lock = asyncio.Lock()
    sem = asyncio.Semaphore(max(1, concurrency))
    results: list[TokenOutcome] = []
    counts = {"preserved": 0, "skipped": 0, "failed": 0}
    async with ctx.write():
        with ctx.catalog.transaction():  # every token's progress row, first
            now = int(time.time())
            pending = []
            for source in sources:
                try:
                    kind, canonical, token = parse_source(source)
                except OwnvaultError:
                    continue
                pending.append((canonical, name_for(kind, canonical, token)))
            ctx.catalog.nft.add_pending(pending, collection, now)
    async with opts.fetcher() as fetcher:

        async def one(source: str) -> None:
            canonical = _canonical(source)
            if not refresh and state.get(canonical) == "preserved":
                counts["skipped"] += 1
                results.append(TokenOutcome(canonical, "skipped"))
                if progress is not None:
                    progress(canonical, "skipped")
                return
            async with sem:
                try:
                    done = await preserve_token(
                        ctx,
                        source,
                        opts,
                        pins=pins,
                        fetcher=fetcher,
                        store_lock=lock,
                        collection=collection,
                    )
                except OwnvaultError as exc:
                    counts["failed"] += 1
                    results.append(TokenOutcome(canonical, "failed", error=exc.message))
                    outcome: Outcome = "failed"
                else:
                    counts["preserved"] += 1
                    results.append(
                        TokenOutcome(
                            canonical,
                            "preserved",
                            root=done.root,
                            statuses=_statuses(done.collected),
                        )
                    )
                    outcome = "preserved"
            if progress is not None:
                progress(canonical, outcome)

        async with asyncio.TaskGroup() as tg:
            for source in sources:
                tg.create_task(one(source))
    return CollectionRun(
        counts["preserved"], counts["skipped"], counts["failed"], len(sources), results
    )


def _canonical(source: str) -> str:
    try:
        return parse_source(source)[1]
    except OwnvaultError:
        return source


# -- verifying without storing ------------------------------------------------------------------


async def verify_token(source: str, opts: NftOptions) -> TokenCheck:
    """Check, storing nothing, that a token's metadata and parts are reachable and match their
    CIDs; ``at_risk`` names every part that depends on a single HTTP(S) server. ``ok`` is
    true when every part is verified, embedded or (only) of unverifiable origin."""
    work = Path(tempfile.mkdtemp(prefix="ownvault-nft-verify-"))
    try:
        collected = await collect(source, opts, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ok = {p.status for p in collected.parts} <= {"verified", "embedded", "unverifiable_origin"}
    return TokenCheck(collected, ok)


# -- listing and re-verification ----------------------------------------------------------------


def _listed(row: NftTokenRow) -> PreservedToken:
    return PreservedToken(
        row.source,
        row.name,
        row.collection,
        row.state,
        row.root,
        f"ipfs://{row.root}" if row.root else None,
        json.loads(row.report) if row.report else None,
        json.loads(row.pins),
        json.loads(row.health) if row.health else None,
        row.error,
        row.updated_at,
        row.verified_at,
    )


def list_preserved(ctx: VaultContext, *, collection: str | None = None) -> list[PreservedToken]:
    """Every token the vault knows, preserved or not, with its last health check."""
    return [_listed(r) for r in ctx.catalog.nft.tokens(collection=collection)]


async def reverify_preserved(
    ctx: VaultContext, opts: NftOptions | None = None, *, repin: bool = True
) -> list[ReverifiedToken]:
    """Re-verify every preserved token's stored folder (every block regenerated from the
    vault and re-hashed) and re-pin it where it was pinned; record the health.

    Meant for the maintenance daemon; safe to run at any time (one token at a time).
    """
    opts = opts or NftOptions()
    out: list[ReverifiedToken] = []
    rows = ctx.catalog.nft.preserved()
    async with opts.fetcher() as fetcher:
        for row in rows:
            checked_at = int(time.time())
            root = row.root or ""  # a preserved token always has its folder's root
            try:
                check = await verify_cid(ctx, root)
                copy = (
                    "ok"
                    if check.ok
                    else "damaged: "
                    + "; ".join(f"{c.what}: {c.computed}" for c in check.checks if not c.ok)
                )
            except NotFoundError as exc:
                copy = f"missing: {exc.message}"
            except OwnvaultError as exc:
                copy = f"{exc.code}: {exc.message}"
            pins = [await pin(ctx, fetcher, root, t) for t in json.loads(row.pins)] if repin else []
            health = TokenHealth(checked_at, copy, pins, copy == "ok" and all(p.ok for p in pins))
            async with ctx.write():
                with ctx.catalog.transaction():
                    ctx.catalog.nft.set_health(row.source, json.dumps(asdict(health)), checked_at)
            out.append(ReverifiedToken(row.source, row.name, row.root, health))
    return out
