"""The maintenance loop: audits and repair on a schedule, with jitter and a byte budget.

``ownvault daemon`` runs :func:`maintain` until interrupted; ``ownvault serve`` (or any
host) can start it next to its own work::

    state = MaintenanceState()
    task = asyncio.create_task(maintain(ctx, MaintenanceConfig(), state, stop=stop_event))
    ... state.metrics_text() for a /metrics endpoint, state.to_json() for a status page ...

Each round: an audit when one is due (every ``audit_interval``, each interval stretched or
shrunk at random by up to ``jitter`` so that many vaults do not audit a provider in step),
then a repair when one is due, the audit found faults, or degraded writes left pieces
under-replicated (``catalog.underrep``: repair completes them once providers allow). Repair leaves shares of a
provider that answered an audit within ``unreachable_grace`` where they are (a short
outage does not move data). Every byte an audit or repair transfers counts against
``budget_bytes_per_day`` (a UTC day); work that would overrun it waits for the next day,
and a repair stops at the budget (it resumes next time). A repair that finds the vault
busy (another process holds the writer lock) is retried a few minutes later.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, get_args

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from ownvault.core.merkle import BLOCK_SIZE
from ownvault.engine.backup.scheduler import BackupSchedule, run_scheduled
from ownvault.engine.health.audit import AuditReport, AuditSample
from ownvault.engine.health.service import Health
from ownvault.engine.health.status import VaultStatus, vault_status
from ownvault.engine.health.verdict import State
from ownvault.engine.nft.preserve import reverify_preserved
from ownvault.engine.store.catalog.backups import RunRow
from ownvault.engine.store.context import VaultContext
from ownvault.errors import OwnvaultError, UsageError, VaultStateError

__all__ = ["MaintenanceConfig", "MaintenanceState", "NftReverification", "maintain"]

BUSY_RETRY = 300.0
DAY = 86400


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    audit_interval: float = 6 * 3600
    repair_interval: float = 24 * 3600
    jitter: float = 0.25
    budget_bytes_per_day: int | None = 2 * 1024**3
    sample: AuditSample = field(default_factory=AuditSample)
    unreachable_grace: float | None = 24 * 3600
    first_delay: float = 60.0
    backups: bool = False
    on_failure: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.audit_interval <= 0 or self.repair_interval <= 0:
            raise UsageError("maintenance intervals must be positive")
        if not 0 <= self.jitter < 1:
            raise UsageError("jitter must be in [0, 1)")
        if self.first_delay < 0:
            raise UsageError("the first delay must not be negative")
        if self.budget_bytes_per_day is not None and self.budget_bytes_per_day <= 0:
            raise UsageError("the daily budget must be positive")


@dataclass(frozen=True, slots=True)
class NftReverification:
    """The last re-verification of the preserved NFTs: how many, how many healthy, and the
    names of the others."""

    tokens: int
    healthy: int
    unhealthy: tuple[str, ...]


@dataclass
class MaintenanceState:
    """What the loop did last; read by ``status``, metrics endpoints and tests."""

    started_at: float = field(default_factory=time.time)
    rounds: int = 0
    audits: int = 0
    repairs: int = 0
    last_audit: AuditReport | None = None
    last_repair: dict[str, Any] | None = None
    health: VaultStatus | None = None
    last_error: str | None = None
    skipped_for_budget: int = 0
    budget_day: int = -1
    budget_used: int = 0
    next_audit_at: float = 0.0
    next_repair_at: float = 0.0
    nft_reverified: int = 0
    last_nft: NftReverification | None = None
    backups: BackupSchedule = field(default_factory=BackupSchedule)

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "rounds": self.rounds,
            "audits": self.audits,
            "repairs": self.repairs,
            "last_audit": None if self.last_audit is None else self.last_audit.to_json(),
            "last_repair": self.last_repair,
            "health": None if self.health is None else self.health.to_json(),
            "last_error": self.last_error,
            "skipped_for_budget": self.skipped_for_budget,
            "budget_used_today": self.budget_used,
            "next_audit_at": self.next_audit_at,
            "next_repair_at": self.next_repair_at,
            "nft_reverified": self.nft_reverified,
            "last_nft": None if self.last_nft is None else asdict(self.last_nft),
            "backups": self.backups.to_json(),
        }

    def metrics_text(self) -> bytes:
        """Prometheus text exposition of the last results (labels: provider names only)."""
        r = CollectorRegistry()

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, labels, registry=r)

        up = gauge("ownvault_maintenance_started_timestamp_seconds", "When the loop started.")
        up.set(self.started_at)
        gauge("ownvault_maintenance_rounds", "Rounds run.").set(self.rounds)
        gauge(
            "ownvault_maintenance_budget_used_bytes",
            "Bytes moved today (UTC) by audits and repair.",
        ).set(self.budget_used)
        gauge("ownvault_maintenance_skipped_for_budget", "Runs deferred by the daily budget.").set(
            self.skipped_for_budget
        )
        if self.last_audit is not None:
            a = self.last_audit.to_json()
            gauge("ownvault_audit_last_run_timestamp_seconds", "End of the last audit.").set(
                a["started_at"] + a["seconds"]
            )
            ch = gauge(
                "ownvault_audit_challenges",
                "Challenges in the last audit, by result.",
                ("provider", "result"),
            )
            ok = gauge(
                "ownvault_audit_provider_ok",
                "1 if the provider passed the last audit.",
                ("provider",),
            )
            held = gauge(
                "ownvault_audit_holds_at_least_ratio",
                "95% lower confidence bound on the fraction of its blocks the provider holds.",
                ("provider",),
            )
            missing = gauge(
                "ownvault_audit_missing_shares",
                "Shares absent from the provider's listing.",
                ("provider",),
            )
            for p in a["providers"]:
                for result in ("passed", "failed", "unreachable"):
                    ch.labels(p["provider"], result).set(p[result])
                ok.labels(p["provider"]).set(1 if p["verdict"] in ("ok", "empty") else 0)
                missing.labels(p["provider"]).set(p["missing_shares"])
                if p["holds_at_least"] is not None:
                    held.labels(p["provider"]).set(p["holds_at_least"])
        if self.last_repair is not None:
            rp = self.last_repair
            gauge(
                "ownvault_repair_shares_regenerated", "Shares regenerated by the last repair."
            ).set(rp["shares_regenerated"])
            gauge(
                "ownvault_repair_pieces_lost", "Pieces below k good shares at the last repair."
            ).set(len(rp["lost"]))
            gauge("ownvault_repair_bytes", "Bytes read and written by the last repair.").set(
                rp["bytes_read"] + rp["bytes_written"]
            )
        if self.health is not None:
            _health_gauges(self.health, gauge)
        _backup_gauges(self.backups, gauge)
        return bytes(generate_latest(r))


def _health_gauges(status: VaultStatus, gauge: Callable[..., Gauge]) -> None:
    """The vault's health, from the last ``status``: its verdict and piece counts."""
    v = status.health
    gauge("ownvault_vault_healthy", "1 if status says HEALTHY.").set(
        1 if v.state == "healthy" else 0
    )
    gauge("ownvault_pieces_degraded", "Pieces with fewer than n good shares.").set(
        v.pieces_degraded
    )
    gauge("ownvault_pieces_at_risk", "Pieces with exactly k good shares.").set(v.pieces_at_risk)
    gauge("ownvault_pieces_lost", "Pieces with fewer than k good shares.").set(v.pieces_lost)
    gauge("ownvault_shares_known_bad", "Shares recorded bad and not yet repaired.").set(
        v.known_bad_shares
    )
    gauge(
        "ownvault_pieces_under_replicated",
        "Pieces a degraded write left short of n shares (repair completes them).",
    ).set(status.pieces_under_replicated)
    gauge("ownvault_providers_stale", "Providers that came back with older data.").set(
        len(v.stale_providers)
    )
    state = gauge("ownvault_health_state", "1 for the vault's health verdict.", ("state",))
    for name in get_args(State):
        state.labels(name).set(1 if v.state == name else 0)


def _backup_gauges(schedule: BackupSchedule, gauge: Callable[..., Gauge]) -> None:
    """Per backup profile: last success time, last result, overdue, last size."""
    if not schedule.profiles:
        return
    success = gauge(
        "ownvault_backup_last_success_timestamp_seconds",
        "Start of the profile's last successful run (absent: never).",
        ("profile",),
    )
    result = gauge(
        "ownvault_backup_last_result",
        "1 if the profile's last run succeeded, 0 if it failed, -1 if it never ran.",
        ("profile",),
    )
    late = gauge("ownvault_backup_overdue", "1 if the profile missed a whole run.", ("profile",))
    size = gauge("ownvault_backup_last_run_bytes", "Bytes stored by the last run.", ("profile",))
    for p in schedule.profiles:
        last = p["last_run"]
        if p["last_success"] is not None:
            success.labels(p["name"]).set(p["last_success"])
        result.labels(p["name"]).set(-1 if last is None else 1 if last["result"] == "ok" else 0)
        late.labels(p["name"]).set(1 if p["overdue"] else 0)
        if last is not None:
            size.labels(p["name"]).set(last["bytes"])


def _jittered(interval: float, jitter: float, rng: random.Random) -> float:
    return interval * (1 + rng.uniform(-jitter, jitter))


def _audit_cost(ctx: VaultContext, sample: AuditSample) -> int:
    """A generous estimate of an audit's traffic: every challenge a block plus a leaf level."""
    blocks_per_provider = []
    for row in ctx.catalog.providers():
        total = ctx.catalog.fleet.held_bytes(row.id)
        blocks_per_provider.append(sample.count(total // BLOCK_SIZE + 1))
    return sum(blocks_per_provider) * (BLOCK_SIZE + 12 * 1024)


async def _reverify_nfts(ctx: VaultContext, state: MaintenanceState) -> None:
    """On the repair schedule: re-verify (and re-pin) every preserved NFT ."""
    try:
        results = await reverify_preserved(ctx)
    except OwnvaultError as exc:
        state.last_error = f"nft re-verification: {exc.message}"
        return
    if results:
        state.nft_reverified += 1
        state.last_nft = NftReverification(
            len(results),
            sum(1 for r in results if r.health.ok),
            tuple(r.name for r in results if not r.health.ok),
        )


async def _audit_due(
    ctx: VaultContext,
    health: Health,
    config: MaintenanceConfig,
    state: MaintenanceState,
    rng: random.Random,
    now: float,
    left: int | None,
) -> None:
    """The audit of a round: run it (or put it off to tomorrow when over budget)."""
    if left is not None and _audit_cost(ctx, config.sample) > left:
        state.skipped_for_budget += 1
        state.next_audit_at = (int(now // DAY) + 1) * DAY + rng.uniform(0, 3600)
        return
    try:
        report = await health.audit(sample=config.sample)
        state.audits += 1
        state.last_audit = report
        state.budget_used += sum(p.bytes for p in report.providers)
        if report.at_fault or ctx.catalog.underrep.count():  # faults, or degraded writes
            state.next_repair_at = now
    except OwnvaultError as exc:
        state.last_error = f"audit: {exc.message}"
    state.next_audit_at = now + _jittered(config.audit_interval, config.jitter, rng)


async def _repair_due(
    ctx: VaultContext,
    health: Health,
    config: MaintenanceConfig,
    state: MaintenanceState,
    rng: random.Random,
    now: float,
    left: int | None,
) -> None:
    """The repair of a round (within what is left of the day's budget), then the NFTs."""
    if left is not None and left <= 0:
        state.skipped_for_budget += 1
        state.next_repair_at = (int(now // DAY) + 1) * DAY + rng.uniform(0, 3600)
        return
    try:
        rep = await health.repair(unreachable_grace=config.unreachable_grace, max_bytes=left)
        state.repairs += 1
        state.last_repair = rep.to_json()
        state.budget_used += rep.bytes_read + rep.bytes_written
        state.next_repair_at = now + _jittered(config.repair_interval, config.jitter, rng)
    except VaultStateError as exc:
        state.last_error = f"repair: {exc.message} (retrying in {BUSY_RETRY:.0f} s)"
        state.next_repair_at = now + BUSY_RETRY
    except OwnvaultError as exc:
        state.last_error = f"repair: {exc.message}"
        state.next_repair_at = now + _jittered(config.repair_interval, config.jitter, rng)
    await _reverify_nfts(ctx, state)


async def maintain(
    ctx: VaultContext,
    config: MaintenanceConfig | None = None,
    state: MaintenanceState | None = None,
    *,
    stop: asyncio.Event | None = None,
    rounds: int | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    on_round: Callable[[MaintenanceState], None] | None = None,
    on_backup: Callable[[RunRow], None] | None = None,
) -> MaintenanceState:
    """Run audits and repairs on schedule until ``stop`` is set (or ``rounds`` ran); with
    ``config.backups``, run due backup profiles alongside (``engine.backup.scheduler``)."""
    config = config or MaintenanceConfig()
    state = state or MaintenanceState()
    stop = stop or asyncio.Event()
    if not config.backups:
        return await _maintain(ctx, config, state, stop, rounds, rng, clock, sleep, on_round)
    backups_stop = asyncio.Event()
    task = asyncio.create_task(
        run_scheduled(
            ctx,
            state.backups,
            stop=backups_stop,
            on_failure=config.on_failure,
            on_run=on_backup,
            clock=clock,
            sleep=sleep,
        )
    )
    try:
        return await _maintain(ctx, config, state, stop, rounds, rng, clock, sleep, on_round)
    finally:
        backups_stop.set()  # a run in progress finishes first
        await task


async def _maintain(
    ctx: VaultContext,
    config: MaintenanceConfig,
    state: MaintenanceState,
    stop: asyncio.Event,
    rounds: int | None,
    rng: random.Random | None,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] | None,
    on_round: Callable[[MaintenanceState], None] | None,
) -> MaintenanceState:
    health = Health(ctx)
    rng = rng or secrets.SystemRandom()
    now = clock()
    # The first audit comes soon, but not at the same second for everyone.
    state.next_audit_at = now + rng.uniform(0, min(config.first_delay, config.audit_interval))
    state.next_repair_at = state.next_audit_at + 1

    async def wait(seconds: float) -> None:
        if sleep is not None:
            await sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))

    while not stop.is_set() and (rounds is None or state.rounds < rounds):
        now = clock()
        day = int(now // DAY)
        if day != state.budget_day:
            state.budget_day, state.budget_used = day, 0
        left = (
            None
            if config.budget_bytes_per_day is None
            else config.budget_bytes_per_day - state.budget_used
        )
        worked = False
        if now >= min(state.next_audit_at, state.next_repair_at):
            # Providers added or removed by other processes since the last round.
            await ctx.providers.reset()
        if now >= state.next_audit_at:
            worked = True
            await _audit_due(ctx, health, config, state, rng, now, left)
        now = clock()
        left = (
            None
            if config.budget_bytes_per_day is None
            else config.budget_bytes_per_day - state.budget_used
        )
        if now >= state.next_repair_at:
            worked = True
            await _repair_due(ctx, health, config, state, rng, now, left)
        if worked:
            try:
                state.health = await vault_status(ctx)
            except OwnvaultError as exc:
                state.last_error = f"status: {exc.message}"
            state.rounds += 1
            if on_round is not None:
                on_round(state)
        nxt = min(state.next_audit_at, state.next_repair_at)
        if rounds is not None and state.rounds >= rounds:
            break
        await wait(max(0.0, nxt - clock()))
    return state
