"""The backup scheduler driven by an injected clock: days of schedule, no sleeping."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ownvault.core.retention import RetentionPolicy
from ownvault.engine.backup.schedule import jitter_offset
from ownvault.engine.backup.scheduler import BackupSchedule, notify, parse_command, run_scheduled
from ownvault.engine.maintenance import MaintenanceConfig, MaintenanceState, maintain

from .helpers import Vaults, run
from .test_backup import T0, Clock

HOUR = 3600.0

# Writes its OWNVAULT_BACKUP_* environment as one JSON line to the file in argv[1].
RECORDER = (
    "import json, os, sys\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('OWNVAULT_BACKUP_')}\n"
    "open(sys.argv[1], 'a').write(json.dumps(env) + '\\n')\n"
)


def _sleeper(clock: Clock, slept: list[float]):  # type: ignore[no-untyped-def]
    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.t += seconds
        await asyncio.sleep(0)

    return sleep


def test_profiles_run_on_their_grid_with_a_fixed_jitter(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(T0)
    vault.clock = clock
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    run(vault.backups.add("often", src, every="6h", retention=RetentionPolicy(last=3)))
    run(vault.backups.add("daily", src, every="1d", dest="daily-copy"))
    slept: list[float] = []
    sched = run(run_scheduled(vault.ctx, passes=700, clock=clock, sleep=_sleeper(clock, slept)))
    assert clock.t - T0 >= 2 * 86400  # two simulated days, in well under a second of sleeping
    vid = vault.ctx.catalog.meta("vault_id") or ""
    for name, every in (("often", 6 * HOUR), ("daily", 86400.0)):
        off = jitter_offset(vid, name, every)
        assert 0 <= off < min(every / 10, 900)
        starts = sorted(r.started_at for r in vault.backups.runs(name, 100))
        assert starts, name
        # Every run starts on its grid point exactly: no drift, the same offset each time.
        assert starts == pytest.approx([T0 + off + k * every for k in range(len(starts))], abs=1.0)
        assert all(r.result == "ok" for r in vault.backups.runs(name, 100))
    assert len(vault.backups.runs("often", 100)) >= 8
    assert [v.version for v in run(vault.files.versions("often"))][-3:] == [
        len(vault.backups.runs("often", 100)) - i for i in (2, 1, 0)
    ]
    assert len(run(vault.files.versions("often"))) == 3  # keep-last 3 applied after each run
    assert sched.runs == len(vault.backups.runs(None, 1000)) and sched.failures == 0
    assert max(slept) <= 300  # re-reads the profiles at least every 5 minutes


def test_a_failed_run_runs_the_on_failure_command_without_a_shell(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(T0)
    vault.clock = clock
    src = tmp_path / "src"
    src.mkdir()
    run(vault.backups.add("docs", src, every="1h"))
    src.rmdir()
    log = tmp_path / "events; touch pwned"  # a shell would run the second command
    cmd = (sys.executable, "-c", RECORDER, str(log))
    sched = run(
        run_scheduled(vault.ctx, passes=3, on_failure=cmd, clock=clock, sleep=_sleeper(clock, []))
    )
    assert sched.failures == 1 and sched.notifications[0]["exit_code"] == 0
    (event,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert event["OWNVAULT_BACKUP_EVENT"] == "failed"
    assert event["OWNVAULT_BACKUP_PROFILE"] == "docs"
    assert event["OWNVAULT_BACKUP_DEST"] == "docs"
    assert event["OWNVAULT_BACKUP_SOURCE"] == str(src)
    assert "source folder is gone" in event["OWNVAULT_BACKUP_ERROR"]
    assert event["OWNVAULT_BACKUP_LAST_SUCCESS"] == ""
    assert not (tmp_path / "pwned").exists()


def test_an_overdue_profile_is_reported_once_then_run(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(T0)
    vault.clock = clock
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    run(vault.backups.add("docs", src, every="1d"))
    clock.t += 3 * 86400  # the machine was off for three days
    log = tmp_path / "events"
    cmd = (sys.executable, "-c", RECORDER, str(log))
    state = MaintenanceState()
    run(
        maintain(
            vault.ctx,
            MaintenanceConfig(first_delay=3600, backups=True, on_failure=cmd),
            state,
            rounds=1,
            clock=clock,
            sleep=_sleeper(clock, []),
        )
    )
    events = [json.loads(line)["OWNVAULT_BACKUP_EVENT"] for line in log.read_text().splitlines()]
    assert events == ["overdue"]
    (p,) = state.backups.profiles
    assert p["last_run"]["result"] == "ok" and not p["overdue"]
    samples = {
        (m.name, m.labels.get("profile")): m.value
        for fam in text_string_to_metric_families(state.metrics_text().decode())
        for m in fam.samples
    }
    assert samples["ownvault_backup_last_result", "docs"] == 1
    assert samples["ownvault_backup_last_success_timestamp_seconds", "docs"] == p["last_success"]
    assert samples["ownvault_backup_overdue", "docs"] == 0
    assert samples["ownvault_backup_last_run_bytes", "docs"] == 1


def test_notify_reports_a_command_that_cannot_start_or_fails(tmp_path: Path) -> None:
    missing = run(notify(("/nonexistent/ownvault-notify",), {"event": "failed"}))
    assert missing["exit_code"] is None and "cannot run" in missing["error"]
    failing = run(
        notify((sys.executable, "-c", "import sys; sys.exit('boom')"), {"event": "failed"})
    )
    assert failing["exit_code"] == 1 and "boom" in failing["error"]
    assert parse_command("notify-send 'backup failed'") == ("notify-send", "backup failed")
    assert isinstance(BackupSchedule().to_json()["profiles"], list)


def test_an_unreadable_profile_is_an_error_not_the_end_of_the_scheduler(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault = vaults.create(tmp_path / "vault", providers=3, k=2, n=3)
    clock = Clock(T0)
    vault.clock = clock
    src = tmp_path / "src"
    src.mkdir()
    run(vault.backups.add("docs", src, every="1h"))
    with vault.ctx.catalog.transaction() as c:  # as a newer ownvault might have written it
        c.execute("UPDATE backup_profiles SET retention = '{\"keep_tag\": 1}'")
    sched = run(run_scheduled(vault.ctx, passes=2, clock=clock, sleep=_sleeper(clock, [])))
    assert sched.last_error is not None and "unknown retention rule" in sched.last_error
