"""Conditions that hold scheduled backups back: AC power (a fake sysfs tree) and --only-if."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ownvault.engine.backup.conditions import Conditions, on_ac_power
from ownvault.engine.backup.scheduler import RECHECK, run_scheduled

from .helpers import Vaults, run
from .test_backup import T0, Clock


def _supply(root: Path, name: str, kind: str, online: str | None = None) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "type").write_text(kind + "\n")
    if online is not None:
        (d / "online").write_text(online + "\n")


@pytest.mark.parametrize(
    ("supplies", "expected"),
    [
        ([("AC", "Mains", "1"), ("BAT0", "Battery", None)], True),  # laptop, plugged in
        ([("AC", "Mains", "0"), ("BAT0", "Battery", None)], False),  # laptop, on battery
        ([("BAT0", "Battery", None)], False),
        ([("ucsi-source-psy-1", "USB", "1"), ("BAT0", "Battery", None)], True),  # USB-C PD
        ([("hidpp_battery_0", "Battery", None), ("AC", "Mains", "1")], True),
        ([("ups", "UPS", None)], True),  # no battery of its own: a desktop
        ([], None),  # the kernel says nothing (a container)
    ],
)
def test_ac_power_from_sysfs(
    tmp_path: Path, supplies: list[tuple[str, str, str | None]], expected: bool | None
) -> None:
    root = tmp_path / "power_supply"
    root.mkdir()
    for name, kind, online in supplies:
        _supply(root, name, kind, online)
    assert on_ac_power(root, "linux") is expected
    assert on_ac_power(tmp_path / "absent", "linux") is None


def test_blocked_says_why(tmp_path: Path) -> None:
    battery = tmp_path / "ps"
    _supply(battery, "BAT0", "Battery")
    assert (
        run(Conditions(ac_power=True).blocked(battery)) == "on battery power (--only-on-ac-power)"
    )
    assert run(Conditions(ac_power=True).blocked(tmp_path / "absent")) is None
    ok = (sys.executable, "-c", "pass")
    no = (sys.executable, "-c", "raise SystemExit(3)")
    assert run(Conditions(only_if=ok).blocked()) is None
    assert run(Conditions(only_if=no).blocked()).endswith(": exit status 3")  # type: ignore[union-attr]
    missing = run(Conditions(only_if=("/nonexistent/check",)).blocked())
    assert missing is not None and "cannot run /nonexistent/check" in missing
    assert Conditions.from_json(Conditions(True, ok).to_json()) == Conditions(True, ok)


def test_a_deferred_profile_runs_once_its_condition_holds(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(T0)
    vault.clock = clock
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    flag = tmp_path / "at-home"
    check = (
        sys.executable,
        "-c",
        f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)",
    )
    run(vault.backups.add("docs", src, every="1h", conditions=Conditions(only_if=check)))
    clock.t += 3600  # due
    sched = run(run_scheduled(vault.ctx, passes=1, clock=clock))
    assert vault.backups.runs("docs") == [] and sched.runs == 0
    assert "exit status 1" in sched.deferred["docs"]
    assert sched.retry_at["docs"] == clock.t + RECHECK
    flag.touch()
    clock.t += RECHECK
    sched = run(run_scheduled(vault.ctx, sched, passes=1, clock=clock))
    assert [r.result for r in vault.backups.runs("docs")] == ["ok"] and sched.deferred == {}
