"""The one health verdict (docs/design.md, "The health verdict").

``check``, ``status``, the HTTP API (``/check``, ``/status``, ``/health``) and the web UI
all show the :class:`Verdict` :func:`assess` computes here, so they cannot disagree. It
reads no share. Its evidence, gathered once per call:

- each active provider's ``info()`` (reachable or not), its listing of ``shares/`` (which
  of the shares the catalog places there it still holds, at the right size), of
  ``catalog/`` (the newest catalog snapshot it holds) and of ``journal/`` (how far it
  holds each device's chain of journal records, by name: no record is read);
- the catalog's health record: known bad shares and the last audit (``healthlog``);
- where the newest catalog snapshot and every piece sit (``machine.machine_loss``).

A share is *good* when its provider is active and reachable, lists it at its size and
has no recorded fault. The state, worst first:

| state | when |
|---|---|
| ``damaged`` | some piece has fewer than k good shares (unreadable now) |
| ``at-risk`` | some piece has exactly k good shares (one more loss and it is unreadable) |
| ``degraded`` | some piece has fewer than n good shares, or a provider is stale |
| ``unverified`` | all present, but no audit has run in 7 days (nothing proved the bytes) |
| ``healthy`` | all present and audited within 7 days |

A provider is *stale* when it came back with an older copy of its store (a restored
backup, a rolled-back disk) or missed writes while away, seen two ways:

- the newest catalog snapshot it lists is older than the newest this vault wrote (every
  snapshot's locator goes to every provider). One that lists no snapshot at all is not
  called stale by this (some providers cannot list them);
- it holds some device's journal chain up to a lower seq than the head this device has
  written or pulled (every record goes whole to every provider the placement policy
  allows). Judged for those providers only, and for a chain the provider lists or listed
  before (``journal_marks``): one added after a device's last record holds none of that
  chain, and the catalog snapshot written when it was added covers it.

Its missing shares count against the pieces like any other missing share.

Whether the vault survives losing this machine is part of the verdict (``machine_loss``,
with what to add), but not of the state: the state says how the data is now.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from ownvault.core.pack import share_name
from ownvault.engine.health.journallag import ChainLag, chain_lags
from ownvault.engine.health.machine import MachineLoss, machine_loss
from ownvault.engine.store.catalog.healthlog import RunRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.journalpull import chain_tops
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.engine.store.snapshots import snapshot_seqs
from ownvault.errors import OwnvaultError

__all__ = [
    "AUDIT_STALE_AFTER",
    "LEGACY_NAMES",
    "ChainLag",
    "ProviderProbe",
    "StaleProvider",
    "State",
    "Verdict",
    "assess",
]

State = Literal["healthy", "unverified", "degraded", "at-risk", "damaged"]
"""The vault's state, best to worst."""

LEGACY_NAMES: dict[State, str] = {
    "healthy": "HEALTHY",
    "unverified": "UNVERIFIED",
    "degraded": "DEGRADED",
    "at-risk": "AT RISK",
    "damaged": "DATA LOST",
}
"""The upper-case names ``status`` printed before the verdict had a type (its ``verdict``
field keeps them)."""

AUDIT_STALE_AFTER = 7 * 24 * 3600
PROBE_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProviderProbe:
    """What one provider answered: ``error`` (None: reachable), the data shares it lists
    (name -> size; None when it could not list), the newest catalog snapshot it holds
    (None when it lists none or could not list) and the top of each device's journal
    chain it lists (device id -> seq; None when it could not list)."""

    error: str | None
    listed: dict[str, int] | None = None
    newest_snapshot: int | None = None
    chains: dict[bytes, int] | None = None


@dataclass(frozen=True, slots=True)
class StaleProvider:
    """A provider holding an older catalog snapshot than this vault's newest, or less of
    some device's journal chain than this device knows (``journal``)."""

    name: str
    newest_snapshot: int | None
    expected_snapshot: int | None
    missing_shares: int
    shares: int
    journal: tuple[ChainLag, ...] = ()

    @property
    def snapshot_behind(self) -> bool:
        return (
            self.newest_snapshot is not None
            and self.expected_snapshot is not None
            and self.newest_snapshot < self.expected_snapshot
        )

    def line(self) -> str:
        held = []
        if self.snapshot_behind:
            held.append(
                f"it holds catalog snapshot #{self.newest_snapshot}, this vault wrote "
                f"#{self.expected_snapshot} there"
            )
        if self.journal:
            more = len(self.journal) - 1
            held.append(
                self.journal[0].phrase()
                + (f" (and {more} more device(s)' journal behind)" if more else "")
            )
        return (
            f"{self.name} is stale: {'; '.join(held)}; {self.missing_shares} of its "
            f"{self.shares} share(s) are missing"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "newest_snapshot": self.newest_snapshot,
            "expected_snapshot": self.expected_snapshot,
            "journal": [lag.to_json() for lag in self.journal],
            "missing_shares": self.missing_shares,
            "shares": self.shares,
            "summary": self.line(),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The vault's health, as every surface shows it (see the module docstring).

    ``reasons`` say why the state is not ``healthy`` (empty when it is); ``advice`` says
    what to do (``["nothing to do"]`` when nothing)."""

    state: State
    reasons: tuple[str, ...]
    advice: tuple[str, ...]
    pieces: int
    pieces_degraded: int
    pieces_at_risk: int
    pieces_lost: int
    at_risk_names: tuple[str, ...]
    lost_names: tuple[str, ...]
    missing_shares: int
    known_bad_shares: int
    providers_unreachable: tuple[str, ...]
    providers_failing_audits: tuple[str, ...]
    stale_providers: tuple[StaleProvider, ...]
    machine_loss: MachineLoss
    last_audit_at: float | None
    backups_failing: tuple[str, ...] = ()
    backups_overdue: tuple[str, ...] = ()

    @property
    def legacy_name(self) -> str:
        return LEGACY_NAMES[self.state]

    def line(self) -> str:
        """One line for people: ``vault: STATE (first reason)``."""
        why = f" ({self.reasons[0]})" if self.reasons else ""
        return f"vault: {self.legacy_name}{why}"

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "summary": self.line(),
            "reasons": list(self.reasons),
            "advice": list(self.advice),
            "pieces": self.pieces,
            "pieces_degraded": self.pieces_degraded,
            "pieces_at_risk": self.pieces_at_risk,
            "pieces_lost": self.pieces_lost,
            "missing_shares": self.missing_shares,
            "known_bad_shares": self.known_bad_shares,
            "providers_unreachable": list(self.providers_unreachable),
            "providers_failing_audits": list(self.providers_failing_audits),
            "stale_providers": [s.to_json() for s in self.stale_providers],
            "survives_machine_loss": self.machine_loss.survives,
            "to_add": self.machine_loss.advice,
            "last_audit_at": self.last_audit_at,
            "backups_failing": list(self.backups_failing),
            "backups_overdue": list(self.backups_overdue),
        }


async def _probe(ctx: VaultContext, pid: int) -> ProviderProbe:
    p = ctx.store.providers.get(pid)
    if p is None:
        return ProviderProbe("cannot be opened")
    try:
        await asyncio.wait_for(p.info(), PROBE_TIMEOUT)
    except (OwnvaultError, TimeoutError) as exc:
        return ProviderProbe(getattr(exc, "message", "timed out"))

    async def data() -> dict[str, int]:
        return {o.name: o.size async for o in p.list(DATA_PREFIX + "/")}

    async def snapshots() -> int | None:
        return max(await snapshot_seqs(p), default=None)

    # A provider that cannot list: its shares count as present, its snapshot and journal
    # as unknown (not stale).
    listed, newest, chains = await asyncio.gather(
        _or_none(data()), _or_none(snapshots()), _or_none(chain_tops(p))
    )
    return ProviderProbe(None, listed, newest, chains)


async def _or_none(aw: Awaitable[T]) -> T | None:
    try:
        return await asyncio.wait_for(aw, PROBE_TIMEOUT)
    except (OwnvaultError, TimeoutError):
        return None


async def probe_providers(ctx: VaultContext) -> dict[int, ProviderProbe]:
    """Every active provider's answer (asked at once)."""
    ids = [r.id for r in ctx.catalog.providers()]
    answers = await asyncio.gather(*(_probe(ctx, pid) for pid in ids))
    return dict(zip(ids, answers, strict=True))


@dataclass(slots=True)
class _Pieces:
    total: int = 0
    degraded: int = 0
    at_risk: int = 0
    lost: int = 0
    missing: int = 0
    missing_on: dict[int, int] = field(default_factory=dict)
    held_on: dict[int, int] = field(default_factory=dict)
    lost_names: set[str] = field(default_factory=set)
    risk_names: set[str] = field(default_factory=set)


def _count(
    ctx: VaultContext, probes: dict[int, ProviderProbe], bad: set[tuple[int, int]]
) -> _Pieces:
    cat = ctx.catalog
    packs = cat.live_packs()
    out = _Pieces(total=len(packs))
    for pack in packs:
        pack_id, _size, k, n = cat.pack_info(pack)
        good = 0
        for s in cat.shares_of(pack):
            probe = probes.get(s.provider)
            if probe is None or probe.error is not None:
                continue  # removed, draining or unreachable
            out.held_on[s.provider] = out.held_on.get(s.provider, 0) + 1
            if (
                probe.listed is not None
                and probe.listed.get(share_name(DATA_PREFIX, pack_id, s.idx)) != s.size
            ):
                out.missing += 1
                out.missing_on[s.provider] = out.missing_on.get(s.provider, 0) + 1
                continue
            if (pack, s.idx) not in bad:
                good += 1
        if good >= n:
            continue
        out.degraded += 1
        if good <= k:
            names = cat.names_of_pack(pack)
            if good < k:
                out.lost += 1
                out.lost_names |= names
            else:
                out.at_risk += 1
                out.risk_names |= names
    return out


def _stale(
    ctx: VaultContext, probes: dict[int, ProviderProbe], pieces: _Pieces, names: dict[int, str]
) -> tuple[StaleProvider, ...]:
    """The stale providers (module docstring), each with what it lacks."""
    raw = ctx.catalog.meta("snapshot_seq")
    expected = None if raw is None else int(raw)
    lags = chain_lags(
        ctx,
        {pid: p.chains for pid, p in probes.items() if p.error is None and p.chains is not None},
    )
    out = []
    for pid, p in sorted(probes.items()):
        if p.error is not None:
            continue
        s = StaleProvider(
            names[pid],
            p.newest_snapshot,
            expected,
            pieces.missing_on.get(pid, 0),
            pieces.held_on.get(pid, 0),
            lags.get(pid, ()),
        )
        if s.snapshot_behind or s.journal:
            out.append(s)
    return tuple(out)


def _failing(ctx: VaultContext, last_repair: RunRow | None, bad_by: dict[int, int]) -> list[str]:
    """Providers whose last audit failed after the last repair, or with bad shares left."""
    repaired_at = last_repair.finished_at if last_repair is not None else 0.0
    names = {r.id: r.name for r in ctx.catalog.providers()}
    return sorted(
        names[pid]
        for pid, a in ctx.catalog.healthlog.latest_audit_rows().items()
        if pid in names
        and (a.failed or a.missing_shares)
        and (a.finished_at > repaired_at or bad_by.get(pid))
    )


def _explain(
    pieces: _Pieces,
    stale: tuple[StaleProvider, ...],
    names: dict[int, str],
    down: list[str],
    failing: list[str],
    under: int,
) -> tuple[list[str], list[str]]:
    """Why the vault is in its state (reasons) and what to do about it (advice)."""
    reasons: list[str] = []
    advice: list[str] = []
    if pieces.lost:
        reasons.append(f"{pieces.lost} piece(s) have fewer than k good shares")
        advice.append(
            "bring back the unreachable providers "
            f"({', '.join(down) or 'none'}) if you can, then run `ownvault repair`; otherwise "
            f"these are lost: {', '.join(sorted(pieces.lost_names)[:10])}"
        )
    if pieces.at_risk:
        reasons.append(f"{pieces.at_risk} piece(s) are one loss away from unreadable")
        advice.append(f"run `ownvault repair` now: {pieces.at_risk} piece(s) have only k shares")
    if pieces.degraded and not pieces.lost and not pieces.at_risk:
        reasons.append(f"{pieces.degraded} piece(s) have fewer than n good shares")
        advice.append(f"run `ownvault repair`: {pieces.degraded} piece(s) are degraded")
    if under:  # counted in pieces.degraded too: they hold fewer than n shares
        reasons.append(
            f"{under} piece(s) were written while providers were down and wait for their "
            "missing shares (repair or the daemon completes them)"
        )
    missing_named = sorted((names[pid], count) for pid, count in pieces.missing_on.items() if count)
    if missing_named:
        reasons.append(
            "shares missing on " + ", ".join(f"{name} ({count})" for name, count in missing_named)
        )
    for s in stale:
        reasons.append(s.line())
        advice.append(
            f"{s.name} came back with older data: run `ownvault repair` (it rewrites its "
            "missing shares; the next change writes the catalog there again); if it keeps "
            f"happening, `ownvault provider rm {s.name}`"
        )
    if failing:
        advice.append(
            f"provider(s) failing audits: {', '.join(failing)}; repair moves their bad shares; "
            "if it keeps happening, `ownvault provider rm NAME`"
        )
    if down:
        advice.append(
            f"unreachable now: {', '.join(down)} (check them; repair regenerates their shares elsewhere)"
        )
    return reasons, advice


async def assess(
    ctx: VaultContext, *, now: float | None = None
) -> tuple[Verdict, dict[int, ProviderProbe]]:
    """The verdict, and each active provider's probe (for callers that show providers)."""
    now = time.time() if now is None else now
    cat = ctx.catalog
    probes = await probe_providers(ctx)
    names = {r.id: r.name for r in cat.providers(include_removed=True)}
    bad_rows = cat.healthlog.faults()
    bad_by: dict[int, int] = {}
    for f in bad_rows:
        bad_by[f.provider] = bad_by.get(f.provider, 0) + 1
    pieces = _count(ctx, probes, {(f.pack, f.idx) for f in bad_rows})
    last_audit = cat.healthlog.last_run("audit")
    failing = _failing(ctx, cat.healthlog.last_run("repair"), bad_by)
    down = sorted(names[pid] for pid, p in probes.items() if p.error is not None)
    stale = _stale(ctx, probes, pieces, names)
    machine = machine_loss(ctx)
    reasons, advice = _explain(pieces, stale, names, down, failing, cat.underrep.count())
    state: State
    if pieces.lost:
        state = "damaged"
    elif pieces.at_risk:
        state = "at-risk"
    elif pieces.degraded or stale:
        state = "degraded"
    else:
        state = "healthy"
    never = last_audit is None
    old = last_audit is not None and now - last_audit.finished_at > AUDIT_STALE_AFTER
    if (never or old) and pieces.total:
        why = "no audit has ever run" if never else "the last audit is more than 7 days old"
        if state == "healthy":
            state = "unverified"
            reasons.append(why)
        advice.append(why + ": run `ownvault audit`, or keep `ownvault daemon` running")
    if not machine.survives:
        advice.append(machine.line())
    failing_backups = cat.backups.failing()
    overdue = cat.backups.overdue(float(ctx.hooks.clock()))  # the clock backup runs record
    if failing_backups or overdue:
        advice.append(_backup_line(failing_backups, overdue))
    if not advice:
        advice.append("nothing to do")
    verdict = Verdict(
        state=state,
        reasons=tuple(reasons),
        advice=tuple(advice),
        pieces=pieces.total,
        pieces_degraded=pieces.degraded,
        pieces_at_risk=pieces.at_risk,
        pieces_lost=pieces.lost,
        at_risk_names=tuple(sorted(pieces.risk_names)),
        lost_names=tuple(sorted(pieces.lost_names)),
        missing_shares=pieces.missing,
        known_bad_shares=len(bad_rows),
        providers_unreachable=tuple(down),
        providers_failing_audits=tuple(failing),
        stale_providers=stale,
        machine_loss=machine,
        last_audit_at=None if last_audit is None else last_audit.finished_at,
        backups_failing=tuple(failing_backups),
        backups_overdue=tuple(overdue),
    )
    return verdict, probes


def _backup_line(failing: list[str], overdue: list[str]) -> str:
    """Backup profiles that need a look (``catalog.backups``; engine/backup runs them).
    Advice, not state: the state says how the stored data is."""
    parts = [f"last run failed: {', '.join(failing)}"] if failing else []
    if overdue:
        parts.append(f"overdue (no run for two intervals): {', '.join(overdue)}")
    return (
        "backups " + "; ".join(parts) + ": see `ownvault backup ls`, keep `ownvault daemon` running"
    )
