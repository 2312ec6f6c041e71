"""``status``: one document that says whether the vault is healthy, what is at risk, and
what to do. Cheap: it asks each provider ``info()`` (reachable or not) and reads the
catalog's health record (last audit per provider, known bad shares, last repair); it never
reads a share.

Per piece, the shares counted as good are those on reachable, active providers with no
recorded fault. A piece with fewer than n good shares is *degraded*, with exactly k *at
risk* (one more loss makes it unreadable), with fewer than k *lost*.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ownvault.engine.health.healthlog import RunRow, faults, last_run, latest_audit_rows
from ownvault.engine.health.machine import machine_loss
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.context import VaultContext
from ownvault.errors import OwnvaultError

__all__ = ["AUDIT_STALE_AFTER", "vault_status"]

AUDIT_STALE_AFTER = 7 * 24 * 3600
REACH_TIMEOUT = 10.0


async def _reachable(ctx: VaultContext) -> dict[int, str | None]:
    """Provider id -> None if reachable, else why not."""
    out: dict[int, str | None] = {}

    async def probe(pid: int) -> None:
        p = ctx.store.providers.get(pid)
        if p is None:
            out[pid] = "cannot be opened"
            return
        try:
            await asyncio.wait_for(p.info(), REACH_TIMEOUT)
            out[pid] = None
        except (OwnvaultError, TimeoutError) as exc:
            out[pid] = getattr(exc, "message", "timed out")

    await asyncio.gather(*(probe(r.id) for r in ctx.catalog.providers()))
    return out


async def vault_status(ctx: VaultContext, *, now: float | None = None) -> dict[str, Any]:
    """The status document (see the module docstring)."""
    now = time.time() if now is None else now
    cat = ctx.catalog
    reach = await _reachable(ctx)
    rows = cat.providers(include_removed=True)
    names = {r.id: r.name for r in rows}
    active = {r.id for r in rows if r.state != "removed"}
    bad = faults(cat)
    bad_by_provider = Counter(names.get(f.provider, str(f.provider)) for f in bad)
    pieces = _count_pieces(cat, reach, active, {(f.pack, f.idx) for f in bad})
    last_audit = last_run(cat, "audit")
    last_repair = last_run(cat, "repair")
    last_deep = last_run(cat, "deep")
    providers = _provider_rows(cat, reach, bad_by_provider)
    verdict, advice, failing, down = _advise(pieces, providers, last_audit, last_repair, now)
    machine = machine_loss(ctx)
    if machine.advice is not None:
        advice = [a for a in advice if a != "nothing to do"] + [machine.line()]
    late = cat.backups.overdue(float(ctx.hooks.clock()))  # the clock backup runs record
    backups = {"failing": cat.backups.failing(), "overdue": late}
    if backups["failing"] or backups["overdue"]:
        advice = [a for a in advice if a != "nothing to do"] + [_backup_line(**backups)]
    return {
        "verdict": verdict,
        "healthy": verdict == "HEALTHY",
        "pieces": pieces.total,
        "pieces_degraded": pieces.degraded,
        "pieces_at_risk": pieces.at_risk,
        "pieces_lost": pieces.lost,
        "at_risk_names": sorted(pieces.risk_names),
        "lost_names": sorted(pieces.lost_names),
        "known_bad_shares": len(bad),
        "providers": providers,
        "providers_failing_audits": failing,
        "providers_unreachable": down,
        "policy": ctx.policy.describe(),
        "last_audit": None
        if last_audit is None
        else {"at": last_audit.finished_at, **last_audit.summary},
        "last_deep_check": None
        if last_deep is None
        else {"at": last_deep.finished_at, **last_deep.summary},
        "last_repair": None
        if last_repair is None
        else {"at": last_repair.finished_at, **last_repair.summary},
        "machine_loss": machine.to_json(),
        "backups": backups,
        "advice": advice,
    }


@dataclass(slots=True)
class _Pieces:
    """How many live packs there are, and how many are degraded, at risk or lost (with the
    names of the files in the last two)."""

    total: int = 0
    degraded: int = 0
    at_risk: int = 0
    lost: int = 0
    lost_names: set[str] = field(default_factory=set)
    risk_names: set[str] = field(default_factory=set)


def _count_pieces(
    cat: Catalog, reach: dict[int, str | None], active: set[int], bad_keys: set[tuple[int, int]]
) -> _Pieces:
    packs = cat.live_packs()
    out = _Pieces(total=len(packs))
    for pack in packs:
        _pid, _size, k, n = cat.pack_info(pack)
        good = sum(
            1
            for s in cat.shares_of(pack)
            if s.provider in active
            and reach.get(s.provider) is None
            and (pack, s.idx) not in bad_keys
        )
        if good >= n:
            continue
        out.degraded += 1
        if good < k or good == k:
            names_here = {
                r[0]
                for r in cat.conn.execute(
                    "SELECT DISTINCT o.name FROM chunks c JOIN content_chunks cc ON cc.chunk = c.id "
                    "JOIN entries e ON e.content = cc.content JOIN versions v ON v.id = e.version "
                    "JOIN objects o ON o.id = v.object WHERE c.pack = ?",
                    (pack,),
                )
            }
            if good < k:
                out.lost += 1
                out.lost_names |= names_here
            else:
                out.at_risk += 1
                out.risk_names |= names_here
    return out


def _provider_rows(
    cat: Catalog, reach: dict[int, str | None], bad_by_provider: Counter[str]
) -> list[dict[str, Any]]:
    """One row per active provider: reachable now, what it holds, its last audit."""
    audits = latest_audit_rows(cat)
    usage = cat.provider_usage()
    providers: list[dict[str, Any]] = []
    for r in cat.providers():
        a = audits.get(r.id)
        shares, used = usage.get(r.id, (0, 0))
        providers.append(
            {
                "name": r.name,
                "kind": r.kind,
                "state": r.state,
                "jurisdiction": r.jurisdiction,
                "reachable": reach.get(r.id) is None,
                "error": reach.get(r.id),
                "shares": shares,
                "bytes": used,
                "known_bad_shares": bad_by_provider.get(r.name, 0),
                "last_audit": None
                if a is None
                else {
                    "at": a.finished_at,
                    "challenges": a.challenges,
                    "passed": a.passed,
                    "failed": a.failed,
                    "unreachable": a.unreachable,
                    "missing_shares": a.missing_shares,
                    "holds_at_least": a.holds_at_least,
                    "method": a.method,
                    "verdict": "failing"
                    if a.failed or a.missing_shares
                    else "unreachable"
                    if a.unreachable or a.error
                    else "ok",
                },
            }
        )
    return providers


def _advise(
    pieces: _Pieces,
    providers: list[dict[str, Any]],
    last_audit: RunRow | None,
    last_repair: RunRow | None,
    now: float,
) -> tuple[str, list[str], list[str], list[str]]:
    """The verdict, the advice, the providers failing audits and those unreachable now."""
    # A provider whose failed audit came before the last repair, and which has no bad share
    # left, has been dealt with; still shown as failing in its row, not in the advice.
    repaired_at = last_repair.finished_at if last_repair is not None else 0.0
    failing = sorted(
        p["name"]
        for p in providers
        if p["last_audit"]
        and p["last_audit"]["verdict"] == "failing"
        and (p["last_audit"]["at"] > repaired_at or p["known_bad_shares"])
    )
    down = sorted(p["name"] for p in providers if not p["reachable"])
    advice: list[str] = []
    if pieces.lost:
        verdict = "DATA LOST"
        advice.append(
            f"{pieces.lost} piece(s) have fewer than k good shares: bring back the unreachable providers "
            f"({', '.join(down) or 'none'}) if you can, then run `ownvault repair`; otherwise these "
            f"are lost: {', '.join(sorted(pieces.lost_names)[:10])}"
        )
    elif pieces.at_risk:
        verdict = "AT RISK"
        advice.append(
            f"run `ownvault repair` now: {pieces.at_risk} piece(s) are one loss away from unreadable"
        )
    elif pieces.degraded:
        verdict = "DEGRADED"
        advice.append(
            f"run `ownvault repair`: {pieces.degraded} piece(s) have fewer than n good shares"
        )
    else:
        verdict = "HEALTHY"
    if failing:
        advice.append(
            f"provider(s) failing audits: {', '.join(failing)}; repair moves their bad shares; "
            "if it keeps happening, `ownvault provider rm NAME`"
        )
    if down:
        advice.append(
            f"unreachable now: {', '.join(down)} (check them; repair regenerates their shares elsewhere)"
        )
    never = last_audit is None
    stale = last_audit is not None and now - last_audit.finished_at > AUDIT_STALE_AFTER
    if (never or stale) and pieces.total:
        if verdict == "HEALTHY":
            verdict = "UNVERIFIED"
        advice.append(
            ("no audit has ever run" if never else "the last audit is more than 7 days old")
            + ": run `ownvault audit`, or keep `ownvault daemon` running"
        )
    if not advice:
        advice.append("nothing to do")
    return verdict, advice, failing, down


def _backup_line(failing: list[str], overdue: list[str]) -> str:
    """Backup profiles that need a look (``catalog.backups``; engine/backup runs them)."""
    parts = [f"last run failed: {', '.join(failing)}"] if failing else []
    if overdue:
        parts.append(f"overdue (no run for two intervals): {', '.join(overdue)}")
    return (
        "backups " + "; ".join(parts) + ": see `ownvault backup ls`, keep `ownvault daemon` running"
    )
