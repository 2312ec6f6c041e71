"""Writing the catalog to the providers after each change, and reading it back.

Format in ``core.snapshot`` and docs/design.md ("Catalog snapshots"). Each change bumps
``meta.seq``; the snapshot of that state is sealed under the catalog key, padded, split
into pieces, erasure-coded with the vault's k/n and placed like data, by the placement
policy (``engine.store.placement``: eligibility, jurisdiction and failure-domain caps), so
that once providers exist outside this machine, k shares of the catalog are outside it too.
A locator (which share is where, plus the provider list) is written whole to every
reachable provider. The newest ``KEEP`` snapshots are kept; older ones are deleted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ownvault.core.keys import VaultKeys
from ownvault.core.pack import MAX_PACK_SIZE, new_pack_id, pack_size_class, share_name
from ownvault.core.snapshot import (
    MAX_LOCATOR_SIZE,
    decode_locator,
    decode_snapshot,
    encode_locator,
    encode_snapshot,
    locator_name,
    snapshot_prefix,
)
from ownvault.engine.store.catalog import Catalog, ProviderRow
from ownvault.engine.store.placement import (
    THIS_MACHINE,
    Candidate,
    Policy,
    capacity,
    place,
    place_upto,
)
from ownvault.engine.store.shares import ShareStore
from ownvault.errors import (
    DataUnavailableError,
    FormatError,
    OwnvaultError,
    PolicyError,
    ProviderError,
)
from ownvault.providers.base import Provider, get_at_most

__all__ = [
    "KEEP",
    "NewerSnapshot",
    "SnapshotResult",
    "find_latest_locator",
    "newer_snapshot",
    "restore_snapshot",
    "snapshot_seqs",
    "write_snapshot",
]

KEEP = 3
RESTORE_LANES = 4  # snapshot pieces fetched at once (each k shares of up to 16 MiB / k)


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    seq: int
    bytes: int
    shares_written: int
    locators_written: int
    missing: int = 0  # shares no provider could take (at most n - happy per piece)


@dataclass(frozen=True, slots=True)
class NewerSnapshot:
    """A snapshot of this vault, written by another device, newer than this catalog's."""

    seq: int
    provider: str
    heads: dict[bytes, int] | None  # the journal heads it holds; None: it does not say
    size: int = 0  # its padded pieces

    def covered_by(self, heads: Mapping[bytes, int]) -> bool:
        """Whether a catalog with journal ``heads`` holds everything this snapshot does,
        so a snapshot of it may supersede this one: the snapshot named its heads (it said
        it carries nothing the journal does not: no version only a snapshot carries), and
        each is at most the catalog's."""
        return self.heads is not None and all(
            seq <= heads.get(device, 0) for device, seq in self.heads.items()
        )


def _heads_of(body: dict[str, Any]) -> dict[bytes, int] | None:
    """A locator's ``heads`` (device id hex -> seq), None if absent or malformed."""
    raw = body.get("heads")
    if not isinstance(raw, dict):
        return None
    out: dict[bytes, int] = {}
    for device, seq in raw.items():
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            return None
        try:
            out[bytes.fromhex(device)] = seq
        except ValueError:
            return None
    return out


def padded_size(length: int) -> int:
    """Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
    Communication with PURBs", PETS 2019): ``length`` rounded up so that only its top
    ``log2(log2(length)) + 1`` bits may be set, at least 64 KiB. A provider learns
    O(log log) bits of the catalog's size, at most 12 % of padding (a power of two, the
    rule before, learns fewer bits but costs up to 100 %: a 176 MB catalog took 256 MiB)."""
    length = max(length, 64 * 1024)
    exponent = length.bit_length() - 1
    mask = (1 << (exponent - exponent.bit_length())) - 1
    return (length + mask) & ~mask


def _pieces_size(body: dict[str, Any]) -> int:
    """The padded size a locator's pieces add up to; 0 if they are malformed (the snapshot
    is then counted as small: the next one of this device comes due sooner, nothing
    worse)."""
    pieces = body.get("pieces")
    if not isinstance(pieces, list):
        return 0
    sizes = [p.get("size") if isinstance(p, dict) else None for p in pieces]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
        return 0
    return sum(sizes)  # type: ignore[arg-type]


def _pad(sealed: bytes) -> bytes:
    return sealed + bytes(padded_size(len(sealed)) - len(sealed))


def provider_json(rows: list[ProviderRow]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "kind": r.kind,
            "url": r.url,
            "jurisdiction": r.jurisdiction,
            "labels": r.labels,
            "config": r.config,
            "state": r.state,
        }
        for r in rows
    ]


def snapshot_policy(policy: Policy, candidates: list[Candidate]) -> Policy:
    """The policy a snapshot is placed under: the vault's, with n (and k) lowered when the
    providers cannot take n shares (a vault of two folders still keeps its catalog)."""
    try:
        place(policy, candidates)
        return policy
    except PolicyError:
        pass
    n = capacity(policy, candidates)
    if n < 2:
        raise DataUnavailableError(
            "a catalog snapshot needs at least 2 providers the placement policy allows "
            f"({policy.describe()})"
        )
    k = min(policy.k, n - 1)
    mpj = None if policy.max_per_jurisdiction is None else min(policy.max_per_jurisdiction, n)
    # As many shares may be missing as the vault's policy allows (n - happy), never below k.
    happy = max(k, policy.happy_shares - (policy.n - n))
    return Policy(
        k, n, policy.jurisdictions, policy.exclude, mpj, 1,
        policy.survive_jurisdiction_loss, policy.survive_domain_loss, happy,
    )  # fmt: skip


async def _place_piece(
    store: ShareStore,
    policy: Policy,
    candidates: list[Candidate],
    prefix: str,
    pack_id: bytes,
    shares: list[bytes],
    roots: list[bytes],
    load: dict[int, int],
    failed: set[int],
) -> list[dict[str, Any]]:
    """Write the shares of one snapshot piece where the policy says; a provider that fails
    (added to ``failed``) is replaced by another the policy allows (next to the shares
    already written)."""
    by_id = {c.id: c for c in candidates}
    placed: dict[int, tuple[int, bytes]] = {}  # share index -> (provider id, root)
    todo = list(range(len(shares)))
    while todo:
        cands = [replace(c, load=load.get(c.id, 0)) for c in candidates]
        fixed = [by_id[pid] for pid, _root in placed.values()]
        targets = place_upto(policy, cands, unusable=failed, fixed=fixed, count=len(todo))
        if not targets:
            break

        async def put(i: int, pid: int) -> None:
            name = share_name(prefix, pack_id, i)
            try:
                await store.put_share(pid, name, shares[i])
            except OwnvaultError as exc:
                store.report(
                    pid, name, "unavailable", f"catalog snapshot write failed: {exc.message}"
                )
                failed.add(pid)
                return
            placed[i] = (pid, roots[i])
            load[pid] = load.get(pid, 0) + len(shares[i])

        # Each round places what it can: every target either takes its share or joins
        # ``failed``, so the rounds end.
        await asyncio.gather(*(put(i, pid) for i, pid in zip(todo, targets, strict=False)))
        todo = [i for i in todo if i not in placed]
    return [
        {"index": i, "provider": by_id[pid].name, "root": root.hex(), "size": len(shares[i])}
        for i, (pid, root) in sorted(placed.items())
    ]


def _held_heads(catalog: Catalog) -> dict[str, int] | None:
    """The journal heads a snapshot of ``catalog`` holds, for its locator, so another
    device may supersede it (``NewerSnapshot.covered_by``); None (not said) while it
    carries versions no record does."""
    if catalog.jns.undotted():
        return None
    return {d.hex(): h.seq for d, h in catalog.journal.heads().items()}


async def write_snapshot(
    catalog: Catalog,
    keys: VaultKeys,
    store: ShareStore,
    policy: Policy,
    candidates: list[Candidate],
) -> SnapshotResult:
    """Snapshot the catalog now, placed by the policy over ``candidates``.

    Raises if fewer than k shares of a piece could be written."""
    cands = [c for c in candidates if c.id in store.providers]
    pol = snapshot_policy(policy, cands)
    k, n = pol.k, pol.n
    with catalog.transaction():
        seq = int(catalog.meta("seq") or "0") + 1
        catalog.set_meta("seq", str(seq))
    held = _held_heads(catalog)
    image = await asyncio.to_thread(catalog.image)
    sealed = await asyncio.to_thread(encode_snapshot, keys.catalog, seq, image)
    padded = _pad(sealed)
    providers = [p for p in catalog.providers() if p.id in store.providers]
    prefix = snapshot_prefix(seq)
    pieces: list[dict[str, Any]] = []
    shares_written = 0
    load = {c.id: c.load for c in cands}
    zone = {c.name: c.zone for c in cands}
    off_machine: int | None = None  # the fewest shares of a piece outside this machine
    failed: set[int] = set()
    unplaced: list[tuple[bytes, int, int, bytes]] = []  # (piece, idx, size, root)
    for start in range(0, len(padded), MAX_PACK_SIZE):
        piece = padded[start : start + MAX_PACK_SIZE]
        pack_size_class(len(piece))
        pack_id = new_pack_id()
        enc = await store.encode(pack_id, piece, k, n)
        placed = await _place_piece(
            store, pol, cands, prefix, pack_id, list(enc.shares), list(enc.roots), load, failed
        )
        if len(placed) < pol.happy_shares:
            down = ", ".join(sorted(store.names.get(p, str(p)) for p in failed)) or "none"
            raise DataUnavailableError(
                f"catalog snapshot {seq}: only {len(placed)} of {n} shares could be written "
                f"(need {pol.happy_shares}, the policy's happy); providers down or failing: {down}"
            )
        done = {int(sh["index"]) for sh in placed}
        unplaced += [
            (pack_id, i, len(enc.shares[i]), enc.roots[i]) for i in range(n) if i not in done
        ]
        shares_written += len(placed)
        off = sum(1 for sh in placed if zone.get(sh["provider"]) != THIS_MACHINE)
        off_machine = off if off_machine is None else min(off_machine, off)
        shares = sorted(placed, key=lambda s: s["index"])
        pieces.append(
            {"pack_id": pack_id.hex(), "size": len(piece), "k": k, "n": n, "shares": shares}
        )
    body = {
        "seq": seq,
        "vault_id": catalog.meta("vault_id"),
        "created": int(time.time()),
        "sealed_len": len(sealed),
        "pieces": pieces,
        **({} if held is None else {"heads": held}),
        "providers": provider_json(catalog.providers(include_removed=False)),
    }
    written = await _write_locators(store, providers, seq, encode_locator(keys.catalog, seq, body))
    with catalog.transaction():
        catalog.set_meta("snapshot_seq", str(seq))
        # Where the newest snapshot sits, for `status`/`check` ("would it survive losing
        # this machine?") without reading a locator back.
        catalog.set_meta(
            "snapshot_placement",
            json.dumps({"seq": seq, "k": k, "n": n, "off_machine": off_machine or 0}),
        )
    # The newest snapshot's missing shares (repair writes a new snapshot to complete them).
    catalog.underrep.set_snapshot(seq, unplaced)
    await _prune(store, providers, seq)
    return SnapshotResult(seq, len(padded), shares_written, written, len(unplaced))


async def _write_locators(
    store: ShareStore, providers: list[ProviderRow], seq: int, locator: bytes
) -> int:
    """Write the locator whole to every provider; how many took it (at least one)."""
    written = 0

    async def put_locator(prow: ProviderRow) -> None:
        nonlocal written
        try:
            await store.put_share(prow.id, locator_name(seq), locator)
            written += 1
        except OwnvaultError as exc:
            store.report(
                prow.id, locator_name(seq), "unavailable", f"locator write failed: {exc.message}"
            )

    await asyncio.gather(*(put_locator(p) for p in providers))
    if written == 0:
        raise DataUnavailableError(f"catalog snapshot {seq}: no locator could be written")
    return written


async def _prune(store: ShareStore, providers: list[ProviderRow], seq: int) -> None:
    """Delete snapshot objects older than the newest ``KEEP`` (best effort)."""
    oldest_kept = seq - KEEP + 1

    async def prune_one(prow: ProviderRow) -> None:
        p = store.providers[prow.id]
        try:
            names = [o.name async for o in p.list("catalog/")]
        except ProviderError:
            return
        for name in names:
            try:
                s = int(name.split("/")[1], 16)
            except (IndexError, ValueError):
                continue
            if s < oldest_kept:
                await store.delete_share(prow.id, name)

    await asyncio.gather(*(prune_one(p) for p in providers))


async def find_latest_locator(
    store: ShareStore, provider_ids: list[int], keys: VaultKeys
) -> tuple[int, dict[str, Any]]:
    """The newest locator any of the providers holds that opens with this vault's key."""
    seqs: set[int] = set()
    for pid in provider_ids:
        try:
            async for o in store.providers[pid].list("catalog/"):
                if o.name.endswith("/locator"):
                    try:
                        seqs.add(int(o.name.split("/")[1], 16))
                    except ValueError:
                        continue
        except ProviderError:
            continue
    for seq in sorted(seqs, reverse=True):
        for pid in provider_ids:
            try:
                data = await get_at_most(store.providers[pid], locator_name(seq), MAX_LOCATOR_SIZE)
                return seq, decode_locator(keys.catalog, seq, data)
            except OwnvaultError:
                continue
    raise DataUnavailableError("no readable catalog locator on any reachable provider")


async def restore_snapshot(
    store: ShareStore,
    name_to_id: dict[str, int],
    keys: VaultKeys,
    seq: int,
    locator: dict[str, Any],
) -> bytes:
    """Fetch, verify and open the catalog snapshot a locator describes: the DB image."""
    prefix = snapshot_prefix(seq)
    lanes = asyncio.Semaphore(RESTORE_LANES)

    async def fetch(piece: dict[str, Any]) -> bytes:
        pack_id = bytes.fromhex(piece["pack_id"])
        shares = [
            (int(s["index"]), name_to_id[s["provider"]], int(s["size"]), bytes.fromhex(s["root"]))
            for s in piece["shares"]
            if s["provider"] in name_to_id
        ]
        async with lanes:
            return await store.fetch_pack(
                prefix, pack_id, int(piece["size"]), int(piece["k"]), int(piece["n"]), shares
            )

    padded = b"".join(await asyncio.gather(*(fetch(p) for p in locator["pieces"])))
    sealed_len = int(locator["sealed_len"])
    if sealed_len > len(padded):
        raise FormatError("catalog snapshot shorter than its locator says")
    return await asyncio.to_thread(decode_snapshot, keys.catalog, seq, padded[:sealed_len])


SCAN_TIMEOUT = 30.0


async def newer_snapshot(
    catalog: Catalog, keys: VaultKeys, store: ShareStore
) -> NewerSnapshot | None:
    """The newest snapshot of THIS vault newer than this catalog on some provider.

    Every snapshot this catalog wrote has a sequence number at most ``meta.seq`` (it is
    raised before the snapshot is made), so a locator above it that opens under the
    catalog key and names this vault was written by another copy of the vault (one
    recovered elsewhere, or a copied vault directory). Unreachable providers are skipped.
    """
    ours = int(catalog.meta("seq") or "0")
    vault_id = catalog.meta("vault_id")
    names = {r.id: r.name for r in catalog.providers()}
    found: list[NewerSnapshot] = []

    async def scan(pid: int) -> None:
        p = store.providers[pid]
        seqs = await snapshot_seqs(p)
        for seq in sorted((s for s in seqs if s > ours), reverse=True):
            try:
                body = decode_locator(
                    keys.catalog, seq, await get_at_most(p, locator_name(seq), MAX_LOCATOR_SIZE)
                )
            except OwnvaultError:
                continue
            if body.get("vault_id") == vault_id:
                size = _pieces_size(body)
                found.append(NewerSnapshot(seq, names.get(pid, str(pid)), _heads_of(body), size))
                return

    async def guarded(pid: int) -> None:
        try:
            await asyncio.wait_for(scan(pid), SCAN_TIMEOUT)
        except (OwnvaultError, TimeoutError):
            return

    await asyncio.gather(*(guarded(pid) for pid in store.providers if pid in names))
    return max(found, key=lambda f: f.seq) if found else None


async def snapshot_seqs(provider: Provider) -> list[int]:
    """The sequence numbers of the catalog snapshots ``provider`` lists (by their
    locators, ``catalog/<seq hex>/locator``); names that are not one are skipped."""
    seqs = []
    async for o in provider.list("catalog/"):
        if o.name.endswith("/locator"):
            try:
                seqs.append(int(o.name.split("/")[1], 16))
            except (IndexError, ValueError):
                continue
    return seqs
