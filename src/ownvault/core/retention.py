"""Retention: which versions a backup keeps, with restic's ``forget --keep-*`` rules exactly.

Pure: times in, a decision out (no clock: ``now`` is an argument). The rules, as restic
applies them (``internal/data/snapshot_policy.go``, restic >= 0.16):

* sort the items newest first (stable: equal times keep their input order);
* ``latest`` is the newest time that is not after ``now``;
* an item is kept if it has every tag of one of the ``tags`` lists, or if it lies strictly
  after ``latest - within``;
* for each count rule (last, hourly, daily, weekly, monthly, yearly) with a count left
  (or ``-1``, "all"): the item's bucket (itself; YYYYMMDDHH; YYYYMMDD; ISO year and
  week; YYYYMM; YYYY) is compared with the bucket of the last item that rule kept: a new
  bucket keeps the item and uses one count. The oldest item is kept by every rule that
  still has counts left ("oldest ..."), which keeps the longest history;
* each ``within_*`` rule keeps the newest item of each of its buckets strictly after
  ``latest - duration`` (and the oldest item, as above), with no count.

Buckets use each time's own wall clock (its UTC offset), as restic does. A duration is
``[Ny][Nm][Nd][Nh]`` (years, months, days, hours) subtracted the way Go's
``Time.AddDate`` does it (month lengths normalised: March 31 minus 1 month is March 3).
docs/design.md, "Backups" has a worked example.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ownvault.errors import UsageError

__all__ = [
    "Decision",
    "Duration",
    "Item",
    "KeepReason",
    "RetentionPolicy",
    "apply_policy",
]

COUNT_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
WITHIN_RULES = ("hourly", "daily", "weekly", "monthly", "yearly")
MAX_COUNT = 1_000_000
_DURATION = re.compile(r"(\d{1,7})([ymdh])")


@dataclass(frozen=True, slots=True)
class Duration:
    """restic's calendar duration: years, months, days, hours."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``1y2m3d4h`` (any subset, in any order; a later unit overwrites an earlier)."""
        s = text.strip()
        pos = 0
        values = {"y": 0, "m": 0, "d": 0, "h": 0}
        while pos < len(s):
            m = _DURATION.match(s, pos)
            if m is None:
                raise UsageError(f"invalid duration {text!r} (use e.g. 7d, 2m, 1y6m, 36h)")
            values[m.group(2)] = int(m.group(1))
            pos = m.end()
        return cls(values["y"], values["m"], values["d"], values["h"])

    @property
    def zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def __str__(self) -> str:
        return "".join(
            f"{v}{u}"
            for v, u in ((self.years, "y"), (self.months, "m"), (self.days, "d"), (self.hours, "h"))
            if v
        )

    def before(self, t: datetime) -> datetime | None:
        """``t`` minus this duration as Go's ``t.AddDate(-y, -m, -d).Add(-h hours)``; None
        below year 1 (earlier than every representable time)."""
        year = t.year - self.years
        month = t.month - self.months
        year += (month - 1) // 12
        month = (month - 1) % 12 + 1
        if year < 1:
            return None
        try:
            base = t.replace(year=year, month=month, day=1)
            return base + timedelta(days=t.day - 1 - self.days, hours=-self.hours)
        except OverflowError:
            return None


def _count(name: str, value: int) -> int:
    if value < -1 or value > MAX_COUNT:
        raise UsageError(f"--keep-{name} must be -1 (all) or between 0 and {MAX_COUNT}")
    return value


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """``--keep-last/-hourly/-daily/-weekly/-monthly/-yearly N`` (-1: all),
    ``--keep-within[-hourly|-daily|...] DURATION`` and ``--keep-tag T[,T...]``."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration = field(default_factory=Duration)
    within_hourly: Duration = field(default_factory=Duration)
    within_daily: Duration = field(default_factory=Duration)
    within_weekly: Duration = field(default_factory=Duration)
    within_monthly: Duration = field(default_factory=Duration)
    within_yearly: Duration = field(default_factory=Duration)
    tags: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        for name in COUNT_RULES:
            _count(name, getattr(self, name))

    @property
    def empty(self) -> bool:
        """No rule at all: restic refuses to forget with an empty policy, and so do we."""
        return (
            not self.tags
            and all(getattr(self, n) == 0 for n in COUNT_RULES)
            and self.within.zero
            and all(getattr(self, f"within_{n}").zero for n in WITHIN_RULES)
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {n: getattr(self, n) for n in COUNT_RULES if getattr(self, n)}
        if not self.within.zero:
            out["within"] = str(self.within)
        for n in WITHIN_RULES:
            d: Duration = getattr(self, f"within_{n}")
            if not d.zero:
                out[f"within_{n}"] = str(d)
        if self.tags:
            out["tags"] = [list(t) for t in self.tags]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RetentionPolicy:
        known = {*COUNT_RULES, "within", *(f"within_{n}" for n in WITHIN_RULES), "tags"}
        extra = set(obj) - known
        if extra:
            raise UsageError(f"unknown retention rule(s): {', '.join(sorted(extra))}")
        kw: dict[str, Any] = {}
        for n in COUNT_RULES:
            v = obj.get(n, 0)
            if not isinstance(v, int) or isinstance(v, bool):
                raise UsageError(f"retention rule {n} must be an integer")
            kw[n] = v
        for n in ("within", *(f"within_{w}" for w in WITHIN_RULES)):
            v = obj.get(n, "")
            if not isinstance(v, str):
                raise UsageError(f"retention rule {n} must be a duration string")
            kw[n] = Duration.parse(v)
        tags = obj.get("tags", [])
        if not isinstance(tags, list) or not all(
            isinstance(t, list) and all(isinstance(x, str) for x in t) for t in tags
        ):
            raise UsageError("retention rule tags must be a list of tag lists")
        kw["tags"] = tuple(tuple(t) for t in tags)
        return cls(**kw)

    def describe(self) -> str:
        """restic's wording, e.g. ``keep 10 latest, 7 daily snapshots``."""
        names = {"last": "latest"}
        keeps = [
            (f"{v} {names.get(n, n)}" if v > 0 else f"all {names.get(n, n)}")
            for n in COUNT_RULES
            if (v := getattr(self, n)) != 0
        ]
        keepw = [
            f"{n} snapshots within {d}"
            for n in WITHIN_RULES
            if not (d := getattr(self, f"within_{n}")).zero
        ]
        s = f"{', '.join(keeps)} snapshots" if keeps else ""
        if keepw:
            s = f"{s}, " if s else s
            s += ", ".join(keepw)
        if self.tags:
            s = f"{s} and " if s else s
            s += "all snapshots with tags " + "[" + " ".join(_taglist(t) for t in self.tags) + "]"
        if not self.within.zero:
            s = f"{s} and " if s else s
            s += f"all snapshots within {self.within} of the newest"
        return f"keep {s}" if s else "remove"


@dataclass(frozen=True, slots=True)
class Item:
    """One version to judge: a key of the caller's (e.g. the version number), its time
    (timezone-aware) and its tags."""

    key: Any
    time: datetime
    tags: tuple[str, ...] = ()

    def has_tags(self, wanted: Sequence[str]) -> bool:
        for t in wanted:
            if t == "" and not self.tags:
                return True
            if t not in self.tags:
                return False
        return True


@dataclass(frozen=True, slots=True)
class KeepReason:
    item: Item
    matches: tuple[str, ...]
    counters: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"key": self.item.key, "matches": list(self.matches), "counters": self.counters}


@dataclass(frozen=True, slots=True)
class Decision:
    keep: tuple[Item, ...]
    remove: tuple[Item, ...]
    reasons: tuple[KeepReason, ...]


def _taglist(tags: Sequence[str]) -> str:
    return "[" + ", ".join(tags) + "]"


def _ymdh(t: datetime, _nr: int) -> int:
    return t.year * 1_000_000 + t.month * 10_000 + t.day * 100 + t.hour


def _ymd(t: datetime, _nr: int) -> int:
    return t.year * 10_000 + t.month * 100 + t.day


def _yw(t: datetime, _nr: int) -> int:
    year, week, _ = t.isocalendar()
    return year * 100 + week


def _ym(t: datetime, _nr: int) -> int:
    return t.year * 100 + t.month


def _y(t: datetime, _nr: int) -> int:
    return t.year


def _always(_t: datetime, nr: int) -> int:
    return nr


_BUCKETS: dict[str, Callable[[datetime, int], int]] = {
    "last": _always,
    "hourly": _ymdh,
    "daily": _ymd,
    "weekly": _yw,
    "monthly": _ym,
    "yearly": _y,
}
_REASON = {"last": "last snapshot"} | {n: f"{n} snapshot" for n in WITHIN_RULES}


def apply_policy(items: Sequence[Item], policy: RetentionPolicy, now: datetime) -> Decision:
    """Split ``items`` into kept and removed (both newest first) with a reason per kept
    item: the rule names restic prints and each count rule's counts left after it."""
    ordered = sorted(items, key=lambda i: i.time, reverse=True)  # stable, as sort.Stable
    if not ordered:
        return Decision((), (), ())
    past = [i.time for i in ordered if i.time < now]
    latest = max(past) if past else None
    counts = {n: getattr(policy, n) for n in COUNT_RULES}
    last_bucket = dict.fromkeys(COUNT_RULES, -1)
    within_last = dict.fromkeys(WITHIN_RULES, -1)

    def after(t: datetime, d: Duration) -> bool:
        if latest is None:  # restic compares with Go's zero time
            return True
        cut = d.before(latest)
        return cut is None or t > cut

    keep: list[Item] = []
    remove: list[Item] = []
    reasons: list[KeepReason] = []
    oldest = len(ordered) - 1
    for nr, cur in enumerate(ordered):
        matches: list[str] = []
        for tl in policy.tags:
            if cur.has_tags(tl):
                matches.append(f"has tags {_taglist(tl)}")
        if not policy.within.zero and after(cur.time, policy.within):
            matches.append(f"within {policy.within}")
        for n in COUNT_RULES:
            if counts[n] > 0 or counts[n] == -1:
                val = _BUCKETS[n](cur.time, nr)
                if val != last_bucket[n] or nr == oldest:
                    reason = _REASON[n]
                    if val == last_bucket[n]:
                        reason = f"oldest {reason}"
                    last_bucket[n] = val
                    if counts[n] > 0:
                        counts[n] -= 1
                    matches.append(reason)
        for n in WITHIN_RULES:
            d: Duration = getattr(policy, f"within_{n}")
            if not d.zero and after(cur.time, d):
                val = _BUCKETS[n](cur.time, nr)
                if val != within_last[n] or nr == oldest:
                    reason = f"{n} within"
                    if val == within_last[n]:
                        reason = f"oldest {reason}"
                    within_last[n] = val
                    matches.append(f"{reason} {d}")
        if matches:
            keep.append(cur)
            reasons.append(KeepReason(cur, tuple(matches), {n: c for n, c in counts.items() if c}))
        else:
            remove.append(cur)
    return Decision(tuple(keep), tuple(remove), tuple(reasons))
