"""The backup feature: profiles (a folder, a schedule, excludes, retention) and their runs.

``vault.backups.add(...)`` defines a profile, ``run(name)`` stores its folder now as a new
version of its destination name (the same path as ``put``, with the profile's excludes),
records the run (start, end, result, size, what changed) and applies its retention; ``due``
lists the profiles whose time has come (the daemon runs those). Profiles and runs live in
the catalog (``catalog.backups``), so a recovered vault keeps them. docs/design.md,
"Backup profiles".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ownvault.core.retention import RetentionPolicy
from ownvault.engine.backup.conditions import Conditions
from ownvault.engine.backup.profile import (
    BackupProfile,
    ExcludeRules,
    parse_every,
    validate_profile_name,
)
from ownvault.engine.backup.prune import ForgetResult, forget_versions
from ownvault.engine.backup.schedule import jitter_offset, next_due, overdue
from ownvault.engine.store.catalog import EntryRow
from ownvault.engine.store.catalog.backups import RunRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.layout import validate_object_name
from ownvault.engine.store.versions import put_paths
from ownvault.errors import NotFoundError, OwnvaultError, UsageError

__all__ = ["HISTORY", "Backups", "ProfileState"]

HISTORY = 200
"""Runs kept per profile, besides those whose version still exists (retention bounds
those): older ones are deleted after each run."""


@dataclass(frozen=True, slots=True)
class ProfileState:
    """A profile with what ``backup ls`` shows: last run, next run, late or failing."""

    profile: BackupProfile
    last: RunRow | None
    last_success: float | None
    next_run: float
    overdue: bool

    @property
    def failed(self) -> bool:
        return self.last is not None and self.last.result == "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.profile.to_json(),
            "last_run": None if self.last is None else self.last.to_json(),
            "last_success": self.last_success,
            "next_run": self.next_run,
            "overdue": self.overdue,
            "failed": self.failed,
        }


def _files(entries: list[EntryRow]) -> dict[str, tuple[object, ...]]:
    """What "changed" compares: files and symlinks (a folder's own mtime is noise)."""
    return {
        e.path: (e.kind, e.mode, e.size, e.mtime_ns, e.cid, e.target)
        for e in entries
        if e.kind != "dir"
    }


class Backups:
    """``vault.backups``: folders kept safe on a schedule."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx

    def _now(self) -> float:
        return float(self.ctx.hooks.clock())

    # -- profiles ---------------------------------------------------------------------------

    async def add(
        self,
        name: str,
        source: str | os.PathLike[str],
        *,
        every: str = "24h",
        dest: str | None = None,
        excludes: tuple[str, ...] = (),
        exclude_file: str | os.PathLike[str] | None = None,
        retention: RetentionPolicy | None = None,
        conditions: Conditions | None = None,
    ) -> BackupProfile:
        """Define a profile. ``source`` must be a folder; ``dest`` defaults to ``name``;
        ``conditions`` hold scheduled runs back (``engine.backup.conditions``)."""
        validate_profile_name(name)
        interval = parse_every(every)
        src = Path(source).expanduser().absolute()
        if not src.is_dir():
            raise UsageError(f"not a folder: {src}")
        target = validate_object_name(dest if dest is not None else name)
        efile = None if exclude_file is None else str(Path(exclude_file).expanduser().absolute())
        ExcludeRules.load(excludes, efile)  # unreadable file or bad pattern: refuse now
        policy = retention or RetentionPolicy()
        async with self.ctx.write():
            row = self.ctx.catalog.backups.add_profile(
                name,
                str(src),
                target,
                interval,
                tuple(excludes),
                efile,
                policy.to_json(),
                self._now(),
                (conditions or Conditions()).to_json(),
            )
        return BackupProfile.from_row(row)

    def profile(self, name: str) -> BackupProfile:
        return BackupProfile.from_row(self.ctx.catalog.backups.profile(name))

    async def rm(self, name: str) -> None:
        """Forget a profile and its history; what it stored stays (``rm`` the name too)."""
        async with self.ctx.write():
            self.ctx.catalog.backups.remove_profile(name)

    def _state(self, p: BackupProfile, now: float) -> ProfileState:
        tables = self.ctx.catalog.backups
        offset = jitter_offset(self.ctx.catalog.meta("vault_id") or "", p.name, p.every)
        last_start = tables.last_start(p.id)
        ok = tables.last_success(p.id)
        return ProfileState(
            p,
            tables.last_run(p.id),
            None if ok is None else ok.started_at,
            next_due(p.created_at, p.every, offset, last_start),
            overdue(p.created_at, p.every, last_start, now),
        )

    def ls(self, now: float | None = None) -> list[ProfileState]:
        """Every profile with its last run, next run and whether it is late or failing."""
        t = self._now() if now is None else now
        return [
            self._state(BackupProfile.from_row(r), t) for r in self.ctx.catalog.backups.profiles()
        ]

    def due(self, now: float | None = None) -> list[ProfileState]:
        """Profiles whose next run is not after ``now``, the longest waiting first."""
        t = self._now() if now is None else now
        return sorted((s for s in self.ls(t) if s.next_run <= t), key=lambda s: s.next_run)

    def runs(self, name: str | None = None, limit: int = 20) -> list[RunRow]:
        if name is not None:
            self.profile(name)
        return self.ctx.catalog.backups.runs(name, limit)

    async def blocked(self, name: str) -> str | None:
        """Why a scheduled run of ``name`` must wait (its conditions), or None."""
        return await self.profile(name).conditions.blocked()

    # -- running ----------------------------------------------------------------------------

    async def run(self, name: str) -> RunRow:
        """Back the profile's folder up now; the recorded run (``result`` ``ok`` or
        ``failed`` with ``error``). Raises only when the vault cannot be written at all
        (another process holds it)."""
        p = self.profile(name)
        tables = self.ctx.catalog.backups
        async with self.ctx.write():
            tables.abandon_running(self._now())
            run = tables.start_run(p.id, self._now())
            try:
                done = await self._run(p)
            except (OwnvaultError, OSError) as exc:
                message = exc.message if isinstance(exc, OwnvaultError) else str(exc)
                tables.finish_run(run, self._now(), "failed", error=message)
            except BaseException as exc:
                tables.finish_run(run, self._now(), "failed", error=f"{type(exc).__name__}")
                raise
            else:
                tables.finish_run(run, self._now(), "ok", **done)
            tables.prune_history(p.id, HISTORY, p.dest)
        return tables.runs(name, 1)[0]

    async def _run(self, p: BackupProfile) -> dict[str, Any]:
        cat = self.ctx.catalog
        rules = ExcludeRules.load(p.excludes, p.exclude_file)
        if not Path(p.source).is_dir():
            raise UsageError(f"the source folder is gone: {p.source}")
        try:
            before = _files(cat.entries(cat.version(p.dest).id))
        except NotFoundError:
            before = {}
        (put,) = await put_paths(self.ctx, [p.source], name=p.dest, skip=rules.skipper())
        after = _files(cat.entries(cat.version(p.dest, put.version).id))
        made = cat.backups.versions_made(p.id) | {put.version}
        forgotten = await forget_versions(self.ctx, p.dest, p.retention, self._now(), among=made)
        return {
            "version": put.version,
            "files": put.files,
            "size": put.size,
            "new_bytes": put.new_bytes,
            "added": sum(1 for k in after if k not in before),
            "changed": sum(1 for k, v in after.items() if k in before and before[k] != v),
            "removed": sum(1 for k in before if k not in after),
            "forgotten": len(forgotten.remove),
        }

    async def forget(self, name: str, *, dry_run: bool = False) -> ForgetResult:
        """Apply the profile's retention to its destination now (or show what it would do)."""
        p = self.profile(name)
        made = self.ctx.catalog.backups.versions_made(p.id)
        if dry_run:
            return await forget_versions(
                self.ctx, p.dest, p.retention, self._now(), among=made, dry_run=True
            )
        async with self.ctx.write():
            return await forget_versions(self.ctx, p.dest, p.retention, self._now(), among=made)
