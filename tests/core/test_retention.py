"""Retention against restic's own rules.

1. restic's TestApplyPolicy data (tests/vectors/restic_policy: the 103 snapshot times and
   40 policies of internal/data/snapshot_policy_test.go as input.json, and restic's golden
   results policy_keep_snapshots_N verbatim): every kept snapshot, in order, with restic's
   reason strings and counters.
2. The real ``restic`` binary (Debian's package) on a generated list of times, where its
   ``forget --dry-run --json`` must keep exactly what we keep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ownvault.core.retention import Duration, Item, RetentionPolicy, apply_policy
from ownvault.errors import UsageError

VECTORS = Path(__file__).parent.parent / "vectors" / "restic_policy"
NOW = datetime(2026, 1, 1, tzinfo=UTC)

_GO_FIELDS = {
    "Last": "last",
    "Hourly": "hourly",
    "Daily": "daily",
    "Weekly": "weekly",
    "Monthly": "monthly",
    "Yearly": "yearly",
    "Within": "within",
    "WithinHourly": "within_hourly",
    "WithinDaily": "within_daily",
    "WithinWeekly": "within_weekly",
    "WithinMonthly": "within_monthly",
    "WithinYearly": "within_yearly",
    "Tags": "tags",
}


def _parse_input_time(s: str) -> datetime:
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in s else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(s, fmt).replace(tzinfo=UTC)


def _parse_rfc3339(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _policy(go: dict[str, Any]) -> RetentionPolicy:
    return RetentionPolicy.from_json({_GO_FIELDS[k]: v for k, v in go.items()})


def _input() -> tuple[list[dict[str, Any]], list[RetentionPolicy]]:
    data = json.loads((VECTORS / "input.json").read_text())
    return data["snapshots"], [_policy(p) for p in data["policies"]]


SNAPSHOTS, POLICIES = _input()


def _snap_key(s: dict[str, Any]) -> tuple[datetime, tuple[str, ...], tuple[str, ...]]:
    t = _parse_input_time(s["time"]) if " " in s["time"] else _parse_rfc3339(s["time"])
    return t, tuple(s.get("tags") or ()), tuple(s.get("paths") or ())


def test_vectors_cover_restics_test() -> None:
    assert len(SNAPSHOTS) == 103
    assert len(POLICIES) == 40
    assert len(list(VECTORS.glob("policy_keep_snapshots_*"))) == 40


@pytest.mark.parametrize("n", range(40))
def test_restic_golden_results(n: int) -> None:
    items = [
        Item(i, _parse_input_time(s["time"]), tuple(s.get("tags") or ()))
        for i, s in enumerate(SNAPSHOTS)
    ]
    decision = apply_policy(items, POLICIES[n], NOW)
    want = json.loads((VECTORS / f"policy_keep_snapshots_{n}").read_text())
    want_keep = [_snap_key(s) for s in want["keep"] or []]
    got_keep = [_snap_key(SNAPSHOTS[i.key]) for i in decision.keep]
    assert got_keep == want_keep
    assert len(decision.keep) + len(decision.remove) == len(items)
    want_reasons = [(r["matches"], r["counters"]) for r in want.get("reasons") or []]
    got_reasons = [(list(r.matches), r.counters) for r in decision.reasons]
    assert got_reasons == want_reasons


def test_policy_json_round_trip_and_describe() -> None:
    p = RetentionPolicy(
        last=10, daily=7, weekly=4, monthly=12, yearly=3, within=Duration.parse("1y2m")
    )
    assert RetentionPolicy.from_json(p.to_json()) == p
    assert p.describe() == (
        "keep 10 latest, 7 daily, 4 weekly, 12 monthly, 3 yearly snapshots and all snapshots within 1y2m of the newest"
    )
    assert RetentionPolicy().empty and RetentionPolicy().describe() == "remove"
    assert RetentionPolicy(last=-1).describe() == "keep all latest snapshots"


@pytest.mark.parametrize("bad", ["", "7", "d", "1w", "-1d", "1d 2"])
def test_bad_durations(bad: str) -> None:
    if bad == "":
        assert Duration.parse(bad).zero
        return
    with pytest.raises(UsageError):
        Duration.parse(bad)


def test_bad_counts_and_rules() -> None:
    with pytest.raises(UsageError):
        RetentionPolicy(daily=-2)
    with pytest.raises(UsageError):
        RetentionPolicy.from_json({"weekly": "4"})
    with pytest.raises(UsageError):
        RetentionPolicy.from_json({"fortnightly": 1})


def test_go_adddate_normalisation() -> None:
    # Go: 2015-03-31 AddDate(0, -1, 0) is 2015-03-03 (February 31 normalised).
    t = datetime(2015, 3, 31, 12, tzinfo=UTC)
    assert Duration(months=1).before(t) == datetime(2015, 3, 3, 12, tzinfo=UTC)
    assert Duration(years=1, days=1, hours=3).before(t) == datetime(2014, 3, 30, 9, tzinfo=UTC)
    assert Duration(years=9999).before(t) is None


def test_buckets_use_the_times_own_offset() -> None:
    # 23:30 at UTC+02:00 is 21:30 UTC: the same local day as 08:00 local, one daily bucket.
    tz = timezone(timedelta(hours=2))
    items = [
        Item(1, datetime(2024, 5, 1, 8, tzinfo=tz)),
        Item(2, datetime(2024, 5, 1, 23, 30, tzinfo=tz)),
    ]
    d = apply_policy(items, RetentionPolicy(daily=5), NOW)
    assert [i.key for i in d.keep] == [2, 1]  # 2 newest of its day, 1 as the oldest
    assert d.reasons[1].matches == ("oldest daily snapshot",)


def test_future_times_are_not_latest() -> None:
    items = [Item("future", NOW + timedelta(days=30)), Item("old", NOW - timedelta(days=3))]
    d = apply_policy(items, RetentionPolicy(within=Duration(days=1)), NOW)
    assert {i.key for i in d.keep} == {"future", "old"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=3 * 365 * 24), min_size=0, max_size=60),
    st.integers(-1, 6),
    st.integers(-1, 6),
    st.integers(-1, 6),
    st.integers(0, 6),
)
def test_invariants(hours: list[int], last: int, daily: int, weekly: int, monthly: int) -> None:
    base = datetime(2020, 1, 1, tzinfo=UTC)
    items = [Item(i, base + timedelta(hours=h)) for i, h in enumerate(hours)]
    p = RetentionPolicy(last=last, daily=daily, weekly=weekly, monthly=monthly)
    d = apply_policy(items, p, NOW)
    assert sorted(i.key for i in (*d.keep, *d.remove)) == list(range(len(items)))
    assert len(d.reasons) == len(d.keep)
    if items and not p.empty:
        assert d.keep[0].time == max(i.time for i in items)  # the newest always stays
    if -1 not in (last, daily, weekly, monthly) and items:
        # every count rule keeps at most its count, plus possibly the oldest item
        assert len(d.keep) <= last + daily + weekly + monthly + 4
    if p.empty:
        assert not d.keep


# -- the real restic binary ---------------------------------------------------------------

# Times over two years, several a day sometimes; the policies exhaust their counts before
# the oldest time, so restic 0.14 (Debian's, older than the keep-oldest rule of 0.16)
# and current restic agree.
RESTIC_TIMES = [
    "2023-01-02 09:00:00",
    "2023-06-30 23:59:59",
    "2023-12-31 12:00:00",
    "2024-01-01 00:30:00",
    "2024-02-28 10:00:00",
    "2024-02-29 10:00:00",
    "2024-03-01 10:00:00",
    "2024-03-03 18:00:00",
    "2024-03-04 01:00:00",
    "2024-03-04 07:00:00",
    "2024-03-04 07:30:00",
    "2024-03-05 08:00:00",
]
RESTIC_POLICIES = [
    (
        [
            "--keep-last",
            "2",
            "--keep-daily",
            "3",
            "--keep-weekly",
            "2",
            "--keep-monthly",
            "2",
            "--keep-yearly",
            "1",
        ],
        RetentionPolicy(last=2, daily=3, weekly=2, monthly=2, yearly=1),
    ),
    (
        ["--keep-hourly", "3", "--keep-within", "2d", "--keep-within-weekly", "1m"],
        RetentionPolicy(hourly=3, within=Duration(days=2), within_weekly=Duration(months=1)),
    ),
]


@pytest.mark.skipif(
    shutil.which("restic") is None and os.environ.get("CI") != "true",
    reason="restic is installed by scripts/setup.d/restic.sh (required under CI)",
)
def test_real_restic_forget_agrees(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RESTIC_PASSWORD": "retention-test",
        "RESTIC_REPOSITORY": str(tmp_path / "repo"),
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
        "TZ": "UTC",
    }
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")

    def restic(*args: str) -> str:
        return subprocess.run(
            ["restic", "-q", *args], env=env, check=True, capture_output=True, text=True
        ).stdout

    restic("init")
    for t in RESTIC_TIMES:
        restic("backup", "--host", "h", "--time", t, str(src))
    items = [Item(t, _parse_input_time(t).replace(tzinfo=UTC)) for t in RESTIC_TIMES]
    for args, policy in RESTIC_POLICIES:
        out = json.loads(restic("forget", "--dry-run", "--json", *args))
        assert len(out) == 1
        kept = [_parse_rfc3339(s["time"]) for s in out[0]["keep"]]
        removed = sorted(_parse_rfc3339(s["time"]) for s in out[0]["remove"] or [])
        d = apply_policy(items, policy, NOW)
        assert [i.time for i in d.keep] == kept, args
        assert sorted(i.time for i in d.remove) == removed, args
        assert [list(r.matches) for r in d.reasons] == [r["matches"] for r in out[0]["reasons"]], (
            args
        )


def test_design_doc_worked_example() -> None:
    times = [
        "2025-12-31 18:00",
        "2026-01-31 18:00",
        "2026-02-15 18:00",
        "2026-02-22 18:00",
        "2026-02-27 18:00",
        "2026-02-28 18:00",
        "2026-03-01 18:00",
        "2026-03-02 06:00",
        "2026-03-02 12:00",
        "2026-03-02 18:00",
    ]
    items = [
        Item(n, datetime.strptime(t, "%Y-%m-%d %H:%M").replace(tzinfo=UTC))
        for n, t in enumerate(times, 1)
    ]
    p = RetentionPolicy(last=2, daily=3, weekly=2, monthly=2)
    assert p.describe() == "keep 2 latest, 3 daily, 2 weekly, 2 monthly snapshots"
    d = apply_policy(items, p, NOW)
    assert [(r.item.key, r.matches) for r in d.reasons] == [
        (10, ("last snapshot", "daily snapshot", "weekly snapshot", "monthly snapshot")),
        (9, ("last snapshot",)),
        (7, ("daily snapshot", "weekly snapshot")),
        (6, ("daily snapshot", "monthly snapshot")),
    ]
    assert [i.key for i in d.remove] == [8, 5, 4, 3, 2, 1]
