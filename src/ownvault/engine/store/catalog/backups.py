"""The catalog's backup tables (schema 7): profiles and the history of their runs.

``catalog.backups`` is the only place their SQL lives (docs/design.md, "Backup profiles").
Rows come back as frozen values; JSON columns (excludes, retention) are decoded here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from ownvault.errors import NotFoundError, UsageError

__all__ = ["OVERDUE_SLACK", "BackupTables", "PackWaste", "ProfileRow", "RunResult", "RunRow"]

OVERDUE_SLACK = 900.0
"""Seconds past two intervals before a profile counts as overdue: its largest jitter."""

RunResult = Literal["running", "ok", "failed"]
"""A run's state (the CHECK on backup_runs.result)."""

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


@dataclass(frozen=True, slots=True)
class ProfileRow:
    id: int
    name: str
    source: str
    dest: str
    every: float
    excludes: tuple[str, ...]
    exclude_file: str | None
    retention: dict[str, Any]
    created_at: float
    conditions: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    profile: str
    started_at: float
    finished_at: float | None
    result: RunResult
    version: int | None
    files: int
    bytes: int
    new_bytes: int
    added: int
    changed: int
    removed: int
    forgotten: int
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "started": self.started_at,
            "finished": self.finished_at,
            "result": self.result,
            "version": self.version,
            "files": self.files,
            "bytes": self.bytes,
            "new_bytes": self.new_bytes,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "forgotten": self.forgotten,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PackWaste:
    """A live pack and how many of its chunk bytes no content refers to any more."""

    pack: int
    chunk_bytes: int
    unused_bytes: int

    @property
    def ratio(self) -> float:
        return self.unused_bytes / self.chunk_bytes if self.chunk_bytes else 0.0


_PROFILE_COLS = (
    "id, name, source, dest, every, excludes, exclude_file, retention, created_at, conditions"
)
_RUN_COLS = (
    "r.id, p.name, r.started_at, r.finished_at, r.result, r.version, r.files, r.bytes, "
    "r.new_bytes, r.added, r.changed, r.removed, r.forgotten, r.error"
)


def _profile(r: sqlite3.Row | tuple[Any, ...]) -> ProfileRow:
    return ProfileRow(
        int(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        float(r[4]),
        tuple(json.loads(r[5])),
        r[6],
        json.loads(r[7]),
        float(r[8]),
        json.loads(r[9]),
    )


def _run(r: sqlite3.Row | tuple[Any, ...]) -> RunRow:
    return RunRow(*r)


class BackupTables:
    """``catalog.backups``: profiles and runs. Writes run in their own transaction."""

    def __init__(self, conn: sqlite3.Connection, transaction: Transaction) -> None:
        self.conn = conn
        self.transaction = transaction

    # -- profiles ---------------------------------------------------------------------------

    def add_profile(
        self,
        name: str,
        source: str,
        dest: str,
        every: float,
        excludes: tuple[str, ...],
        exclude_file: str | None,
        retention: dict[str, Any],
        created_at: float,
        conditions: dict[str, Any] | None = None,
    ) -> ProfileRow:
        with self.transaction() as c:
            try:
                c.execute(
                    "INSERT INTO backup_profiles(name, source, dest, every, excludes, "
                    "exclude_file, retention, created_at, conditions) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        source,
                        dest,
                        every,
                        json.dumps(list(excludes)),
                        exclude_file,
                        json.dumps(retention, sort_keys=True),
                        created_at,
                        json.dumps(conditions or {}, sort_keys=True),
                    ),
                )
            except sqlite3.IntegrityError:
                raise UsageError(f"a backup profile named {name!r} exists already") from None
        return self.profile(name)

    def profile(self, name: str) -> ProfileRow:
        row = self.conn.execute(
            f"SELECT {_PROFILE_COLS} FROM backup_profiles WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no backup profile named {name!r}", name=name)
        return _profile(row)

    def profiles(self) -> list[ProfileRow]:
        return [
            _profile(r)
            for r in self.conn.execute(f"SELECT {_PROFILE_COLS} FROM backup_profiles ORDER BY name")
        ]

    def remove_profile(self, name: str) -> None:
        """Forget a profile and its run history (what it stored stays in the vault)."""
        with self.transaction() as c:
            if c.execute("DELETE FROM backup_profiles WHERE name = ?", (name,)).rowcount == 0:
                raise NotFoundError(f"no backup profile named {name!r}", name=name)

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, profile: int, started_at: float) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO backup_runs(profile, started_at, result) VALUES (?, ?, 'running')",
                (profile, started_at),
            )
        return int(cur.lastrowid or 0)

    def finish_run(
        self,
        run: int,
        finished_at: float,
        result: RunResult,
        *,
        version: int | None = None,
        files: int = 0,
        size: int = 0,
        new_bytes: int = 0,
        added: int = 0,
        changed: int = 0,
        removed: int = 0,
        forgotten: int = 0,
        error: str | None = None,
    ) -> None:
        with self.transaction() as c:
            c.execute(
                "UPDATE backup_runs SET finished_at = ?, result = ?, version = ?, files = ?, "
                "bytes = ?, new_bytes = ?, added = ?, changed = ?, removed = ?, forgotten = ?, "
                "error = ? WHERE id = ?",
                (
                    finished_at,
                    result,
                    version,
                    files,
                    size,
                    new_bytes,
                    added,
                    changed,
                    removed,
                    forgotten,
                    error,
                    run,
                ),
            )

    def abandon_running(self, finished_at: float) -> int:
        """Mark runs left ``running`` by a killed process as failed; how many there were."""
        with self.transaction() as c:
            return int(
                c.execute(
                    "UPDATE backup_runs SET result = 'failed', finished_at = ?, "
                    "error = 'interrupted (the process running it ended)' "
                    "WHERE result = 'running'",
                    (finished_at,),
                ).rowcount
            )

    def runs(self, name: str | None = None, limit: int = 20) -> list[RunRow]:
        """The newest runs first (of one profile, or of all)."""
        sql = f"SELECT {_RUN_COLS} FROM backup_runs r JOIN backup_profiles p ON p.id = r.profile"
        args: tuple[Any, ...] = ()
        if name is not None:
            sql += " WHERE p.name = ?"
            args = (name,)
        rows = self.conn.execute(sql + " ORDER BY r.id DESC LIMIT ?", (*args, limit))
        return [_run(r) for r in rows]

    def last_run(self, profile: int) -> RunRow | None:
        row = self.conn.execute(
            f"SELECT {_RUN_COLS} FROM backup_runs r JOIN backup_profiles p ON p.id = r.profile "
            "WHERE r.profile = ? AND r.result != 'running' ORDER BY r.id DESC LIMIT 1",
            (profile,),
        ).fetchone()
        return None if row is None else _run(row)

    def last_success(self, profile: int) -> RunRow | None:
        row = self.conn.execute(
            f"SELECT {_RUN_COLS} FROM backup_runs r JOIN backup_profiles p ON p.id = r.profile "
            "WHERE r.profile = ? AND r.result = 'ok' ORDER BY r.id DESC LIMIT 1",
            (profile,),
        ).fetchone()
        return None if row is None else _run(row)

    def last_start(self, profile: int) -> float | None:
        row = self.conn.execute(
            "SELECT MAX(started_at) FROM backup_runs WHERE profile = ?", (profile,)
        ).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def prune_history(self, profile: int, keep: int, dest: str) -> None:
        """Keep the newest ``keep`` runs of a profile, and every successful run whose
        version of ``dest`` still exists (retention needs to know which versions the
        profile made; it also bounds how many exist)."""
        with self.transaction() as c:
            c.execute(
                "DELETE FROM backup_runs WHERE profile = ? AND id NOT IN ("
                " SELECT id FROM backup_runs WHERE profile = ? ORDER BY id DESC LIMIT ?)"
                " AND NOT (result = 'ok' AND version IN ("
                "  SELECT v.number FROM versions v JOIN objects o ON o.id = v.object"
                "  WHERE o.name = ?))",
                (profile, profile, keep, dest),
            )

    def versions_made(self, profile: int) -> set[int]:
        """The version numbers of its destination that the profile's runs made."""
        return {
            int(r[0])
            for r in self.conn.execute(
                "SELECT version FROM backup_runs WHERE profile = ? AND result = 'ok' "
                "AND version IS NOT NULL",
                (profile,),
            )
        }

    # -- attention --------------------------------------------------------------------------

    def failing(self) -> list[str]:
        """Profiles whose last finished run failed."""
        return [
            str(r[0])
            for r in self.conn.execute(
                "SELECT p.name FROM backup_profiles p JOIN backup_runs r ON r.id = ("
                " SELECT MAX(id) FROM backup_runs WHERE profile = p.id AND result != 'running')"
                " WHERE r.result = 'failed' ORDER BY p.name"
            )
        ]

    def overdue(self, now: float, slack: float = OVERDUE_SLACK) -> list[str]:
        """Profiles with no run started for two intervals plus ``slack`` (since they were
        made, if never run): the schedule is not being kept (``engine.backup.schedule``)."""
        return [
            str(r[0])
            for r in self.conn.execute(
                "SELECT p.name FROM backup_profiles p WHERE ? > COALESCE("
                " (SELECT MAX(started_at) FROM backup_runs WHERE profile = p.id), p.created_at)"
                " + 2 * p.every + ? ORDER BY p.name",
                (now, slack),
            )
        ]

    # -- space ------------------------------------------------------------------------------

    def pack_waste(self) -> Iterator[PackWaste]:
        """Every live pack with chunks no content refers to: its chunk bytes and the unused
        part (prune repacks those over the waste threshold)."""
        rows = self.conn.execute(
            "SELECT c.pack, SUM(c.length), SUM(CASE WHEN NOT EXISTS ("
            " SELECT 1 FROM content_chunks cc WHERE cc.chunk = c.id) THEN c.length ELSE 0 END) "
            "FROM chunks c JOIN packs p ON p.id = c.pack WHERE p.state = 'live' "
            "GROUP BY c.pack ORDER BY c.pack"
        )
        for pack, total, unused in rows:
            if unused:
                yield PackWaste(int(pack), int(total), int(unused))
