"""Running due profiles on their schedule (``ownvault daemon``), and telling someone when
one fails or falls behind.

:func:`run_scheduled` loops until ``stop``: run every due profile (oldest due first), then
wait until the next one is due, re-reading the profiles at least every
:data:`RECHECK` seconds (another process may add one). Time comes from ``clock`` and waits
go through ``sleep``, both injectable, so tests drive days of schedule without sleeping.

A failed run, and a profile that becomes overdue (once per episode), runs the
``--on-failure`` command if one is configured: an argument vector run without a shell,
its environment extended with ``OWNVAULT_BACKUP_*`` variables that describe the event
(:func:`notify`). Its exit status and output are recorded, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ownvault.engine.backup.service import Backups, ProfileState
from ownvault.engine.store.catalog.backups import RunRow
from ownvault.engine.store.context import VaultContext
from ownvault.errors import OwnvaultError, UsageError, VaultStateError

__all__ = [
    "BUSY_RETRY",
    "NOTIFY_TIMEOUT",
    "RECHECK",
    "BackupSchedule",
    "notify",
    "parse_command",
    "run_scheduled",
]

RECHECK = 300.0
BUSY_RETRY = 300.0
NOTIFY_TIMEOUT = 60.0


def parse_command(text: str, option: str = "--on-failure") -> tuple[str, ...]:
    """``--on-failure 'notify-send "backup failed"'`` -> an argument vector (POSIX shell
    quoting, no shell: no pipes, redirections or variables)."""
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if not argv:
        raise UsageError(f"{option} needs a command")
    return argv


@dataclass
class BackupSchedule:
    """What the scheduler saw and did; read by metrics, ``/status`` and tests."""

    profiles: list[dict[str, Any]] = field(default_factory=list)
    runs: int = 0
    failures: int = 0
    notifications: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None
    retry_at: dict[str, float] = field(default_factory=dict)
    overdue_notified: set[str] = field(default_factory=set)
    deferred: dict[str, str] = field(default_factory=dict)

    def refresh(self, states: list[ProfileState]) -> None:
        self.profiles = [s.to_json() for s in states]

    def to_json(self) -> dict[str, Any]:
        return {
            "profiles": self.profiles,
            "runs": self.runs,
            "failures": self.failures,
            "notifications": self.notifications[-20:],
            "last_error": self.last_error,
            "deferred": dict(self.deferred),
        }


async def notify(command: Sequence[str], event: dict[str, str]) -> dict[str, Any]:
    """Run ``command`` with ``OWNVAULT_BACKUP_<KEY>=value`` for each ``event`` item added
    to the environment; its exit code (None: could not start or timed out)."""
    env = {**os.environ, **{f"OWNVAULT_BACKUP_{k.upper()}": v for k, v in event.items()}}
    out: dict[str, Any] = {"command": list(command), "event": event, "exit_code": None}
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        out["error"] = f"cannot run {command[0]}: {exc.strerror}"
        return out
    try:
        _, err = await asyncio.wait_for(proc.communicate(), NOTIFY_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        out["error"] = f"timed out after {NOTIFY_TIMEOUT:.0f} s"
        return out
    except BaseException:  # cancelled: do not leave the child behind
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    out["exit_code"] = proc.returncode
    if proc.returncode:
        out["error"] = err.decode("utf-8", "replace")[-500:]
    return out


def _event(ctx: VaultContext, kind: str, s: ProfileState, run: RunRow | None) -> dict[str, str]:
    p = s.profile
    event = {
        "event": kind,
        "profile": p.name,
        "source": p.source,
        "dest": p.dest,
        "vault": str(ctx.path),
        "last_success": "" if s.last_success is None else str(int(s.last_success)),
    }
    if run is not None:
        event["started"] = str(int(run.started_at))
        event["error"] = run.error or ""
    return event


async def _tell(
    ctx: VaultContext,
    schedule: BackupSchedule,
    command: Sequence[str] | None,
    kind: str,
    s: ProfileState,
    run: RunRow | None,
) -> None:
    if not command:
        return
    result = await notify(command, _event(ctx, kind, s, run))
    schedule.notifications.append(result)
    if result.get("error"):
        ctx.warn(f"--on-failure command: {result['error']}")


async def run_due(
    ctx: VaultContext,
    schedule: BackupSchedule,
    *,
    now: float,
    on_failure: Sequence[str] | None = None,
    on_run: Callable[[RunRow], None] | None = None,
) -> None:
    """One pass: notify about newly overdue profiles (a machine that was off, a vault
    held by another process), then run what is due and notify about failed runs."""
    backups = Backups(ctx)
    for s in backups.ls(now):
        if s.overdue and s.profile.name not in schedule.overdue_notified:
            schedule.overdue_notified.add(s.profile.name)
            await _tell(ctx, schedule, on_failure, "overdue", s, s.last)
    for s in backups.due(now):
        name = s.profile.name
        if schedule.retry_at.get(name, 0.0) > now:
            continue
        why = await backups.blocked(name)
        if why is not None:  # deferred, not failed: asked again at the next pass
            schedule.deferred[name] = why
            schedule.retry_at[name] = now + RECHECK
            continue
        schedule.deferred.pop(name, None)
        try:
            run = await backups.run(name)
        except VaultStateError as exc:  # another process holds the vault: later
            schedule.last_error = f"backup {name}: {exc.message}"
            schedule.retry_at[name] = now + BUSY_RETRY
            continue
        except OwnvaultError as exc:  # e.g. removed meanwhile
            schedule.last_error = f"backup {name}: {exc.message}"
            continue
        schedule.retry_at.pop(name, None)
        schedule.runs += 1
        schedule.overdue_notified.discard(name)
        if run.result == "failed":
            schedule.failures += 1
            after = backups.ls(now)
            state = next((x for x in after if x.profile.name == name), s)
            await _tell(ctx, schedule, on_failure, "failed", state, run)
        # Reported after its notification and with the metrics' state refreshed: once a
        # run's line is out, everything that run changes is visible.
        schedule.refresh(backups.ls(now))
        if on_run is not None:
            on_run(run)
    schedule.refresh(backups.ls(now))


async def run_scheduled(
    ctx: VaultContext,
    schedule: BackupSchedule | None = None,
    *,
    stop: asyncio.Event | None = None,
    on_failure: Sequence[str] | None = None,
    on_run: Callable[[RunRow], None] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    passes: int | None = None,
) -> BackupSchedule:
    """Run due profiles on schedule until ``stop`` (or ``passes`` passes ran)."""
    schedule = schedule or BackupSchedule()
    stop = stop or asyncio.Event()
    now_of = clock or (lambda: float(ctx.hooks.clock()))

    async def wait(seconds: float) -> None:
        if sleep is not None:
            await sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))

    done = 0
    while not stop.is_set() and (passes is None or done < passes):
        try:
            await run_due(ctx, schedule, now=now_of(), on_failure=on_failure, on_run=on_run)
        except OwnvaultError as exc:  # e.g. a profile this version cannot read: keep going
            schedule.last_error = f"backups: {exc.message}"
        done += 1
        if passes is not None and done >= passes:
            break
        now = now_of()
        upcoming = [p["next_run"] for p in schedule.profiles]
        upcoming += list(schedule.retry_at.values())
        nxt = min([u for u in upcoming if u > now], default=now + RECHECK)
        await wait(min(RECHECK, max(1.0, nxt - now)))
    return schedule
