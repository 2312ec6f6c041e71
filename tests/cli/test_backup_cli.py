"""``ownvault backup`` and the daemon's backups, as real processes on real folders."""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .test_health_cli import PASS, ov

OV = (sys.executable, "-m", "ownvault", "--vault")
RECORDER = (
    "import json, os, sys\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('OWNVAULT_BACKUP_')}\n"
    "open(sys.argv[1], 'a').write(json.dumps(env) + '\\n')\n"
)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    ov(v, "init", "--json", "--phrase-file", str(tmp_path / "phrase"))
    return v


def _docs(root: Path) -> Path:
    src = root / "Documents"
    (src / "cache").mkdir(parents=True)
    (src / "letter.txt").write_text("dear reader\n")
    (src / "scratch.tmp").write_text("temporary\n")
    (src / "cache" / "thumb.bin").write_bytes(os.urandom(5000))
    return src


def test_add_ls_run_forget_rm(vault: Path, tmp_path: Path) -> None:
    src = _docs(tmp_path)
    ignore = tmp_path / ".ovignore"
    ignore.write_text("cache/\n")
    out = ov(
        vault,
        "backup",
        "add",
        "docs",
        str(src),
        "--every",
        "6h",
        "--exclude",
        "*.tmp",
        "--exclude-file",
        str(ignore),
        "--keep-last",
        "10",
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "12",
        "--keep-yearly",
        "3",
    ).stdout
    assert "docs:" in out and "every 6h" in out
    assert "keep 10 latest, 7 daily, 4 weekly, 12 monthly, 3 yearly snapshots" in out
    (p,) = json.loads(ov(vault, "backup", "ls", "--json").stdout)["profiles"]
    assert p["last_run"] is None and p["excludes"] == ["*.tmp"]
    assert p["exclude_file"] == str(ignore) and p["every_seconds"] == 21600
    assert p["retention"] == {"last": 10, "daily": 7, "weekly": 4, "monthly": 12, "yearly": 3}
    assert "never run" in ov(vault, "backup", "ls").stdout

    ran = ov(vault, "backup", "run", "docs").stdout
    assert "docs: version 1, 1 files" in ran and "+1 ~0 -0" in ran
    listing = json.loads(ov(vault, "ls", "docs", "--json").stdout)
    assert [e["path"] for e in listing["entries"]] == ["letter.txt"]
    (src / "letter.txt").write_text("dear reader, again\n")
    (src / "new.txt").write_text("new\n")
    ov(vault, "backup", "run", "docs")
    (p,) = json.loads(ov(vault, "backup", "ls", "--json").stdout)["profiles"]
    r = p["last_run"]
    assert (r["result"], r["version"], r["added"], r["changed"], r["removed"]) == ("ok", 2, 1, 1, 0)
    human = ov(vault, "backup", "ls").stdout
    assert "ok" in human and "+1 ~1 -0" in human

    preview = json.loads(ov(vault, "backup", "forget", "docs", "--dry-run", "--json").stdout)
    assert [k["version"] for k in preview["keep"]] == [2, 1] and preview["dry_run"]
    assert "last snapshot" in preview["keep"][0]["reasons"]
    assert "keep" in ov(vault, "backup", "forget", "docs", "--dry-run").stdout

    # A second run "now" finds nothing due.
    assert "no profile is due" in ov(vault, "backup", "run").stdout
    ov(vault, "backup", "rm", "docs")
    assert json.loads(ov(vault, "backup", "ls", "--json").stdout) == {"profiles": []}
    assert json.loads(ov(vault, "ls", "--json").stdout)["objects"][0]["name"] == "docs"
    ov(vault, "backup", "rm", "docs", check=4)


def test_usage_errors_have_their_exit_codes(vault: Path, tmp_path: Path) -> None:
    src = _docs(tmp_path)
    bad = ov(vault, "backup", "add", "docs", str(src), "--every", "6 hours", check=2)
    assert "--every wants an interval" in bad.stderr
    ov(vault, "backup", "add", "docs", str(src), "--keep-daily", "-2", check=2)
    ov(vault, "backup", "add", "docs", str(src), "--keep-within", "7x", check=2)
    ov(vault, "backup", "run", "nope", check=4)
    ov(vault, "backup", "add", "w", str(src), "--keep-within", "7d", "--keep-monthly", "-1")
    (p,) = json.loads(ov(vault, "backup", "ls", "--json").stdout)["profiles"]
    assert p["retention"] == {"within": "7d", "monthly": -1}
    assert (
        p["retention_text"]
        == "keep all monthly snapshots and all snapshots within 7d of the newest"
    )


def test_a_failed_run_exits_1_and_shows_in_status(vault: Path, tmp_path: Path) -> None:
    src = _docs(tmp_path)
    ov(vault, "backup", "add", "docs", str(src), "--every", "1h")
    shutil.rmtree(src)
    r = ov(vault, "backup", "run", "docs", check=1)
    assert "docs: FAILED: the source folder is gone" in r.stderr
    status = json.loads(ov(vault, "status", "--json", check=None).stdout)
    assert status["backups"]["failing"] == ["docs"]
    assert any("backups last run failed: docs" in a for a in status["advice"])


def test_install_timer_systemd_files_verify(vault: Path, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    env = {**os.environ, "XDG_CONFIG_HOME": str(conf), "OWNVAULT_EXE": "/usr/bin/env"}
    printed = subprocess.run(
        [
            *OV,
            str(vault),
            "backup",
            "install-timer",
            "--system",
            "systemd",
            "--print",
            "--check-every",
            "10m",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert not (conf / "systemd").exists()
    assert f'ExecStart="/usr/bin/env" "backup" "run" "--vault" "{vault}"' in printed
    assert (
        "OnUnitActiveSec=600" in printed
        and "EnvironmentFile=%h/.config/ownvault/backup.env" in printed
    )
    assert PASS not in printed
    done = subprocess.run(
        [*OV, str(vault), "backup", "install-timer", "--system", "systemd", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    doc = json.loads(done.stdout)
    unit_dir = conf / "systemd" / "user"
    assert doc["files"] == [
        str(unit_dir / "ownvault-backup.service"),
        str(unit_dir / "ownvault-backup.timer"),
    ]
    service = (unit_dir / "ownvault-backup.service").read_text()
    assert "Type=oneshot" in service and service in printed
    if shutil.which("systemd-analyze") is None:
        return
    # verify wants the EnvironmentFile's directory layout only at run time; it checks syntax,
    # the executable and the timer -> service link.
    check = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(unit_dir / "ownvault-backup.timer"),
            str(unit_dir / "ownvault-backup.service"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert check.returncode == 0, check.stderr
    assert "ownvault-backup" not in check.stderr, check.stderr


def test_install_timer_launchd_plist(vault: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "OWNVAULT_EXE": "/opt/ownvault/bin/ownvault"}
    subprocess.run(
        [*OV, str(vault), "backup", "install-timer", "--system", "launchd"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    path = tmp_path / "Library" / "LaunchAgents" / "org.ownvault.backup.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "org.ownvault.backup" and plist["StartInterval"] == 900
    args = plist["ProgramArguments"]
    assert args[:2] == ["/bin/sh", "-c"] and args[3:] == [
        "/opt/ownvault/bin/ownvault",
        "backup",
        "run",
        "--vault",
        str(vault),
    ]
    # The script only reads the env file and execs its arguments; run it for real.
    (tmp_path / ".config" / "ownvault").mkdir(parents=True)
    (tmp_path / ".config" / "ownvault" / "backup.env").write_text("OWNVAULT_PASSPHRASE=from-file\n")
    echo = subprocess.run(
        [
            "/bin/sh",
            "-c",
            args[2],
            sys.executable,
            "-c",
            "import os; print(os.environ['OWNVAULT_PASSPHRASE'])",
        ],
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert echo.stdout == "from-file\n"


def test_daemon_runs_due_profiles_notifies_and_exports_metrics(vault: Path, tmp_path: Path) -> None:
    """A real daemon process: one profile made a day ago (due and overdue), one whose folder
    is gone (fails: the --on-failure command runs), metrics per profile, status after."""
    good = _docs(tmp_path / "a")
    gone = _docs(tmp_path / "b")
    ov(vault, "backup", "add", "good", str(good), "--every", "6h", "--exclude", "*.tmp")
    ov(vault, "backup", "add", "gone", str(gone), "--every", "6h")
    shutil.rmtree(gone)
    db = sqlite3.connect(vault / "catalog.db")
    with db:  # both made a day ago: due at once, and overdue
        db.execute("UPDATE backup_profiles SET created_at = created_at - 86400")
    db.close()
    log = tmp_path / "events.jsonl"
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    proc = subprocess.Popen(
        [
            *OV,
            str(vault),
            "daemon",
            "--first-delay",
            "1h",
            "--metrics-listen",
            "127.0.0.1:0",
            "--on-failure",
            shlex.join([sys.executable, "-c", RECORDER, str(log)]),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["metrics"]
        runs = {}
        while len(runs) < 2:
            line = json.loads(proc.stdout.readline())
            runs[line["backup"]["profile"]] = line["backup"]
        assert runs["good"]["result"] == "ok" and runs["good"]["files"] == 2
        assert runs["gone"]["result"] == "failed"
        samples = {
            (m.name, m.labels.get("profile")): m.value
            for fam in text_string_to_metric_families(httpx.get(url, timeout=5).text)
            for m in fam.samples
        }
        assert samples["ownvault_backup_last_result", "good"] == 1
        assert samples["ownvault_backup_last_result", "gone"] == 0
        assert (
            samples["ownvault_backup_last_success_timestamp_seconds", "good"]
            == runs["good"]["started"]
        )
        assert ("ownvault_backup_last_success_timestamp_seconds", "gone") not in samples
        status = httpx.get(url.replace("/metrics", "/status"), timeout=5).json()
        assert {p["name"] for p in status["backups"]["profiles"]} == {"good", "gone"}
    finally:
        proc.terminate()
        proc.wait(60)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 0
    events = [json.loads(x) for x in log.read_text().splitlines()]
    kinds = sorted((e["OWNVAULT_BACKUP_PROFILE"], e["OWNVAULT_BACKUP_EVENT"]) for e in events)
    assert kinds == [("gone", "failed"), ("gone", "overdue"), ("good", "overdue")]
    failed = next(e for e in events if e["OWNVAULT_BACKUP_EVENT"] == "failed")
    assert "source folder is gone" in failed["OWNVAULT_BACKUP_ERROR"]
    assert failed["OWNVAULT_BACKUP_VAULT"] == str(vault)
    status = json.loads(ov(vault, "status", "--json", check=None).stdout)
    assert status["backups"] == {"failing": ["gone"], "overdue": []}


def test_conditions_defer_scheduled_runs_not_named_ones(vault: Path, tmp_path: Path) -> None:
    src = _docs(tmp_path)
    never = shlex.join([sys.executable, "-c", "raise SystemExit(1)"])
    ov(vault, "backup", "add", "docs", str(src), "--every", "1h", "--only-if", never)
    ov(vault, "backup", "add", "other", str(src), "--every", "1h", "--only-on-ac-power")
    profiles = json.loads(ov(vault, "backup", "ls", "--json").stdout)["profiles"]
    conditions = {p["name"]: p["conditions"] for p in profiles}
    assert conditions["docs"] == {"only_if": [sys.executable, "-c", "raise SystemExit(1)"]}
    assert conditions["other"] == {"ac_power": True}
    ov(vault, "backup", "rm", "other")  # this machine's power supply is not the test's
    db = sqlite3.connect(vault / "catalog.db")
    with db:
        db.execute("UPDATE backup_profiles SET created_at = created_at - 86400")
    db.close()
    doc = json.loads(ov(vault, "backup", "run", "--json").stdout)
    assert doc["runs"] == [] and "exit status 1" in doc["deferred"]["docs"]
    assert "docs: waiting: --only-if" in ov(vault, "backup", "run").stdout
    assert "docs: version 1" in ov(vault, "backup", "run", "docs").stdout  # asked by name
    ov(vault, "backup", "add", "x", str(src), "--only-if", "'unbalanced", check=2)
