"""Pinning published DAGs on IPFS providers, and where each CID is pinned (``ownvault pins``).

``ownvault publish NAME --pin PROVIDER...`` hands the plain UnixFS DAG of published content
to :func:`pin_dag` for each IPFS provider: its blocks are re-hashed, streamed to the node as
one CAR (``dag/import``, not pinned by the import itself), then the root is pinned under a
name: on Kubo with ``pin/add --name`` (done when it returns: ``pinned``), on a pinning
service with ``POST /pins`` (``queued`` at first; :func:`pin_status` follows it to
``pinning``, ``pinned`` or ``failed``). :func:`pin_report` gathers every publish pin of
several providers for a table.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from ownvault.core.cid import CID
from ownvault.engine.ipfs.publish import dag_blocks, dag_index
from ownvault.engine.store.context import VaultContext
from ownvault.errors import (
    IntegrityError,
    NotFoundError,
    ProviderError,
    ShareCorruptError,
    UsageError,
)
from ownvault.providers.base import Provider
from ownvault.providers.ipfs.pins import DagPinner, PinState, PinStatus
from ownvault.providers.wrappers import unwrap

__all__ = [
    "PinReportRow",
    "PinState",
    "PinStatus",
    "as_pinner",
    "ipfs_providers",
    "pin_dag",
    "pin_published",
    "pin_report",
    "pin_status",
    "unpin",
    "wait_pinned",
]

TERMINAL: frozenset[PinState] = frozenset({"pinned", "failed"})


def as_pinner(provider: Provider) -> DagPinner:
    """The provider as a :class:`DagPinner`, or ``UsageError`` if it cannot pin IPFS DAGs.

    Wrappers (retry, limits) are looked through (:func:`unwrap`).
    """
    provider = unwrap(provider)
    if not isinstance(provider, DagPinner):
        raise UsageError(
            f"provider {provider.location} ({provider.kind}) cannot pin IPFS content; "
            "use an ipfs+kubo:// or ipfs+pinning:// provider"
        )
    return provider


async def _verified(
    blocks: AsyncIterator[tuple[CID, bytes]], where: str
) -> AsyncIterator[tuple[CID, bytes]]:
    async for cid, block in blocks:
        if not await asyncio.to_thread(cid.verify, block):
            raise ShareCorruptError(f"block {cid} does not match its CID", provider=where)
        yield cid, block


async def pin_dag(
    provider: Provider,
    root_cid: CID,
    blocks: AsyncIterator[tuple[CID, bytes]],
    *,
    name: str | None = None,
    wait: float = 0.0,
) -> PinStatus:
    """Import the DAG ``blocks`` (which must include ``root_cid``) and pin its root.

    Returns the pin's status right after the request (``wait`` = 0) or once it is
    ``pinned``/``failed`` or ``wait`` seconds have passed.
    """
    pinner = as_pinner(provider)
    seen_root = False

    async def checked() -> AsyncIterator[tuple[CID, bytes]]:
        nonlocal seen_root
        async for cid, block in _verified(blocks, provider.location):
            seen_root = seen_root or cid == root_cid
            yield cid, block

    count = await pinner.import_blocks(root_cid, checked())
    if not seen_root:
        raise IntegrityError(f"the blocks of {root_cid} do not include the root ({count} given)")
    status = await pinner.pin(root_cid, name or f"ownvault-publish {root_cid}")
    if wait > 0 and status.state not in TERMINAL:
        status = await wait_pinned(provider, root_cid, timeout=wait)
    return status


async def pin_status(provider: Provider, cid: CID) -> PinStatus | None:
    """The newest publish pin of ``cid`` on ``provider``, or None when it is not pinned there."""
    return await as_pinner(provider).pin_status(cid)


async def wait_pinned(provider: Provider, cid: CID, *, timeout: float) -> PinStatus:
    """Poll :func:`pin_status` until the pin is ``pinned`` or ``failed``, at most ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        status = await pin_status(provider, cid)
        if status is None:
            raise ProviderError(f"{cid} is not pinned on {provider.location}")
        if status.state in TERMINAL or time.monotonic() >= deadline:
            return status
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.6, 2.0)


async def unpin(provider: Provider, cid: CID) -> None:
    """Withdraw the publish pins of ``cid`` (idempotent). Copies others made stay theirs."""
    await as_pinner(provider).unpin(cid)


def _can_pin(provider: Provider) -> bool:
    try:
        as_pinner(provider)
    except UsageError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class PinReportRow:
    """One line of ``ownvault pins``: a provider and one pin, or the error reaching it."""

    provider: str
    status: PinStatus | None
    error: str | None = None


async def pin_report(providers: Mapping[str, Provider]) -> list[PinReportRow]:
    """Every publish pin on every IPFS provider given (by name), sorted by provider and CID.

    Providers that cannot pin are left out; unreachable ones get a row with the error.
    """

    async def one(label: str, provider: Provider) -> list[PinReportRow]:
        try:
            return [PinReportRow(label, s) async for s in as_pinner(provider).pins()]
        except ProviderError as exc:
            return [PinReportRow(label, None, exc.message)]

    jobs = {k: p for k, p in providers.items() if _can_pin(p)}
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(k, p)) for k, p in sorted(jobs.items())]
    rows = [row for t in tasks for row in t.result()]
    rows.sort(key=lambda r: (r.provider, str(r.status.cid) if r.status else ""))
    return rows


def ipfs_providers(ctx: VaultContext) -> dict[str, Provider]:
    """The vault's providers that can pin a DAG (Kubo nodes, pinning services), by name."""
    store = ctx.store
    out: dict[str, Provider] = {}
    for row in ctx.catalog.providers():
        p = store.providers.get(row.id)
        if p is not None and _can_pin(p):
            out[row.name] = p
    return out


async def pin_published(
    ctx: VaultContext, target: str, provider_name: str, *, wait: float = 0.0
) -> PinStatus:
    """Pin the plain UnixFS DAG of stored content (by NAME or CID) to an IPFS provider.

    The blocks are regenerated from the vault and checked against the recorded CID (the
    same path as ``car export``), then re-hashed once more by :func:`pin_dag`.
    """
    providers = ipfs_providers(ctx)
    if provider_name not in providers:
        known = ", ".join(sorted(providers)) or "none"
        raise NotFoundError(
            f"no IPFS provider named {provider_name!r} (IPFS providers of this vault: {known})",
            provider=provider_name,
        )
    v, _inner, index = await dag_index(ctx, target)
    return await pin_dag(
        providers[provider_name],
        index.root,
        dag_blocks(ctx, index),
        name=f"ownvault-publish {v.name}",
        wait=wait,
    )
