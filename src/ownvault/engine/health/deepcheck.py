"""Deep check: read every share whole and verify it (size, trailer, Merkle root, stored
tree, header), where the plain ``check`` only asks providers whether the shares exist.

Every bad share found is recorded as a fault (``catalog.healthlog``) for ``repair``; shares
that verify clear any fault recorded earlier. The per-file report has the shape of
:meth:`Vault.check`'s, with ``missing`` listing every share that failed verification.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from ownvault.core.pack import ShareHeader
from ownvault.engine.health.check import BadShare, CheckReport, FileCheck, check
from ownvault.engine.store.catalog.healthlog import FaultKind
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.shares import data_share_name, share_problem
from ownvault.errors import ObjectNotFoundError, OwnvaultError, ProviderError

__all__ = ["DeepCheckReport", "deep_check"]

CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class DeepCheckReport(CheckReport):
    """``check``'s report from the shares read whole: each file's counts and ``missing``
    from the verified shares, ``bad`` every share that failed (kind and reason)."""

    deep: Literal[True]
    shares_verified: int
    shares_bad: int
    bad: list[BadShare]
    bytes_read: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return CheckReport.to_json(self) | {
            "deep": self.deep,
            "shares_verified": self.shares_verified,
            "shares_bad": self.shares_bad,
            "bad": [_bad_json(b) for b in self.bad],
            "bytes_read": self.bytes_read,
            "seconds": self.seconds,
        }


def _bad_json(b: BadShare) -> dict[str, Any]:
    return {
        "provider": b.provider,
        "pack": b.pack,
        "share": b.share,
        "kind": b.kind,
        "reason": b.reason,
    }


async def deep_check(ctx: VaultContext, name: str | None = None) -> DeepCheckReport:
    started = time.time()
    t0 = time.monotonic()
    cheap = await check(ctx, name)
    cat = ctx.catalog
    if name is None:  # not the garbage of removed versions GC has not collected here yet
        garbage = {c.pack for c in cat.gc.candidates()}
        packs = [p for p in cat.live_packs() if p not in garbage]
    else:
        packs = sorted({p for f in cheap.files for p in _packs_of(ctx, f.name, f.version)})
    names = {r.id: r.name for r in cat.providers(include_removed=True)}
    sem = asyncio.Semaphore(CONCURRENCY)
    good: dict[tuple[int, int], bool] = {}
    bad: dict[tuple[int, int], BadShare] = {}
    totals = {"bytes": 0}

    async def verify(
        pack: int, pack_id: bytes, k: int, n: int, idx: int, provider: int, size: int, root: bytes
    ) -> None:
        sname = data_share_name(pack_id, idx)
        p = ctx.store.providers.get(provider)
        kind: FaultKind | None = "unreachable"
        why = "provider cannot be opened"
        if p is not None:
            async with sem:
                try:
                    data = await p.get(sname, 0, size + 1)  # longer is wrong, not read whole
                    totals["bytes"] += len(data)
                    problem = await asyncio.to_thread(
                        share_problem, data, size, root, ShareHeader(k, n, idx, pack_id)
                    )
                    del data
                    kind, why = ("corrupt", problem) if problem else (None, "")
                except ObjectNotFoundError:
                    kind, why = "missing", "not found"
                except ProviderError as exc:
                    kind, why = (
                        ("unreachable", exc.message) if exc.retryable else ("corrupt", exc.message)
                    )
                except OwnvaultError as exc:
                    kind, why = "corrupt", exc.message
        good[(pack, idx)] = not kind
        if kind:
            bad[(pack, idx)] = BadShare(
                names.get(provider, str(provider)), pack_id.hex(), idx, kind, why
            )
            if kind != "unreachable":
                cat.healthlog.add_fault(pack, idx, provider, kind, why)
        else:
            cat.healthlog.clear_fault(pack, idx)

    jobs = []
    for pack in packs:
        pack_id, _size, k, n = cat.pack_info(pack)
        for s in cat.shares_of(pack):
            jobs.append(verify(pack, pack_id, k, n, s.idx, s.provider, s.size, s.root))
    await asyncio.gather(*jobs)

    files = [_file_verdict(ctx, f, good, bad) for f in cheap.files]
    report = DeepCheckReport(
        files=tuple(files),
        healthy=all(f.healthy for f in files) and not bad,
        readable=all(f.readable for f in files),
        policy_ok=cheap.policy_ok,
        policy=cheap.policy,
        health=cheap.health,
        pieces_under_replicated=cheap.pieces_under_replicated,
        deep=True,
        shares_verified=len(good),
        shares_bad=len(bad),
        bad=sorted(bad.values(), key=lambda b: (b.provider, b.pack, b.share)),
        bytes_read=totals["bytes"],
        seconds=round(time.monotonic() - t0, 3),
    )
    summary = report.to_json()
    del summary["files"]
    summary["bad"] = summary["bad"][:100]
    cat.healthlog.record_run("deep", started, summary)
    return report


def _file_verdict(
    ctx: VaultContext,
    f: FileCheck,
    good: dict[tuple[int, int], bool],
    bad: dict[tuple[int, int], BadShare],
) -> FileCheck:
    """A file's share counts from the verified shares: its weakest pack decides."""
    worst = None
    missing: list[BadShare] = []
    for pack in sorted(_packs_of(ctx, f.name, f.version)):
        _pid, _size, k, n = ctx.catalog.pack_info(pack)
        rows = ctx.catalog.shares_of(pack)
        count = sum(1 for s in rows if good.get((pack, s.idx)))
        if worst is None or count < worst[0]:
            worst = (count, k, n)
        missing += [bad[(pack, s.idx)] for s in rows if (pack, s.idx) in bad]
    present, needed, total = worst or (f.shares_total, f.shares_needed, f.shares_total)
    return replace(
        f,
        shares_present=present,
        shares_needed=needed,
        shares_total=total,
        healthy=present == total,
        readable=present >= needed,
        missing=missing,
    )


def _packs_of(ctx: VaultContext, name: str, number: int) -> set[int]:
    v = ctx.catalog.version(name, number)
    packs: set[int] = set()
    for e in ctx.catalog.entries(v.id):
        if e.content is not None:
            packs.update(r.pack for r in ctx.catalog.content_chunks(e.content))
    return packs
