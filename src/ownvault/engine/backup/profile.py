"""A backup profile's parts as values: its interval, its exclude rules, its retention.

Excludes are gitignore patterns (``--exclude GLOB``, repeated, and the lines of an
``--exclude-file``), matched by ``pathspec``'s ``GitIgnoreSpec`` against each entry's path
relative to the source folder (docs/design.md, "Backup profiles", says why that library).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ownvault.core.retention import RetentionPolicy
from ownvault.engine.backup.conditions import Conditions
from ownvault.engine.store.catalog.backups import ProfileRow
from ownvault.errors import UsageError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

__all__ = [
    "MAX_EVERY",
    "MIN_EVERY",
    "BackupProfile",
    "ExcludeRules",
    "format_every",
    "parse_every",
    "validate_profile_name",
]

MIN_EVERY = 60.0
MAX_EVERY = 366 * 86400.0
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_EVERY = re.compile(r"(\d{1,6})([wdhms])")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_every(text: str) -> float:
    """``6h``, ``1d``, ``90m``, ``1h30m``, ``2w`` -> seconds. Strict: every number has a
    unit, units come largest first and at most once, no spaces, no signs or fractions,
    and the total is between one minute and a year."""
    pos, total, seen = 0, 0, ""
    order = "wdhms"
    if not text:
        raise UsageError("--every wants an interval such as 6h, 1d, 90m or 1h30m")
    while pos < len(text):
        m = _EVERY.match(text, pos)
        if m is None or (seen and order.index(m.group(2)) <= order.index(seen[-1])):
            raise UsageError(
                f"--every wants an interval such as 6h, 1d, 90m or 1h30m, not {text!r:.40}"
            )
        seen += m.group(2)
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not MIN_EVERY <= total <= MAX_EVERY:
        raise UsageError(f"--every must be between 1m and 366d, not {text!r}")
    return float(total)


def format_every(seconds: float) -> str:
    """The shortest ``parse_every`` text for ``seconds`` (``21600`` -> ``6h``)."""
    left, out = int(seconds), ""
    for unit, size in _UNITS.items():
        if left >= size:
            out += f"{left // size}{unit}"
            left %= size
    return out or "0s"


def validate_profile_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"a profile name is 1-64 letters, digits, '.', '_' or '-' (not first), not {name!r:.70}"
        )
    return name


@dataclass(frozen=True, slots=True)
class ExcludeRules:
    """The gitignore patterns of a profile, compiled once per run."""

    patterns: tuple[str, ...]

    @classmethod
    def load(cls, excludes: Sequence[str], exclude_file: str | None) -> ExcludeRules:
        """The ``--exclude`` patterns followed by the lines of ``exclude_file`` (read now)."""
        lines = list(excludes)
        if exclude_file is not None:
            try:
                lines += Path(exclude_file).read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                raise UsageError(f"exclude file not found: {exclude_file}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise UsageError(f"cannot read exclude file {exclude_file}: {exc}") from None
        return cls(tuple(lines))

    def __post_init__(self) -> None:
        self.spec()  # a pattern pathspec cannot compile is a usage error now, not at run time

    def spec(self) -> GitIgnoreSpec:
        # Imported here: every command imports the engine, few match excludes (10-20 ms).
        from pathspec import GitIgnoreSpec  # noqa: PLC0415

        try:
            return GitIgnoreSpec.from_lines(self.patterns)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"invalid exclude pattern: {exc}") from None

    def skipper(self) -> Callable[[str, bool], bool]:
        """``skip(relative_path, is_dir)`` for ``put_paths``."""
        spec = self.spec()

        def skip(path: str, is_dir: bool) -> bool:
            return spec.match_file(path + "/" if is_dir else path)

        return skip


@dataclass(frozen=True, slots=True)
class BackupProfile:
    """A folder kept as the name ``dest`` in the vault, every ``every`` seconds."""

    name: str
    source: str
    dest: str
    every: float
    excludes: tuple[str, ...]
    exclude_file: str | None
    retention: RetentionPolicy
    created_at: float
    id: int = 0
    conditions: Conditions = field(default_factory=Conditions)

    @classmethod
    def from_row(cls, row: ProfileRow) -> BackupProfile:
        return cls(
            row.name,
            row.source,
            row.dest,
            row.every,
            row.excludes,
            row.exclude_file,
            RetentionPolicy.from_json(row.retention),
            row.created_at,
            row.id,
            Conditions.from_json(row.conditions),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "dest": self.dest,
            "every": format_every(self.every),
            "every_seconds": self.every,
            "excludes": list(self.excludes),
            "exclude_file": self.exclude_file,
            "retention": self.retention.to_json(),
            "retention_text": self.retention.describe()
            if not self.retention.empty
            else "keep every version",
            "created": self.created_at,
            "conditions": self.conditions.to_json(),
        }
