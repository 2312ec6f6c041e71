"""audit, repair, status, check --deep and daemon from the command line: JSON contract,
human output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ownvault.cli import run_cli
from ownvault.cli.parse import parse_duration
from ownvault.errors import UsageError

PASS = "health passphrase"


def ov(vault: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    ov(v, "init", "--json", "--phrase-file", str(tmp_path / "phrase"))
    (tmp_path / "f.bin").write_bytes(os.urandom(2_000_000))
    ov(v, "put", str(tmp_path / "f.bin"))
    return v


def test_audit_repair_status_round_trip(vault: Path, tmp_path: Path) -> None:
    doc = json.loads(ov(vault, "status", "--json").stdout)
    assert doc["verdict"] == "UNVERIFIED" and "ownvault audit" in doc["advice"][0]
    doc = json.loads(ov(vault, "audit", "--json").stdout)
    assert doc["ok"] and doc["at_fault"] == [] and len(doc["providers"]) == 6
    assert all(p["holds_at_least"] > 0.9 for p in doc["providers"])
    assert json.loads(ov(vault, "status", "--json").stdout)["verdict"] == "HEALTHY"

    share = sorted((vault / "providers" / "local-2" / "objects" / "shares").rglob("*.*"))[0]
    share.unlink()
    proc = ov(vault, "audit", "--sample", "1", check=5)
    assert "AT FAULT: local-2" in proc.stderr
    doc = json.loads(ov(vault, "check", "--deep", "--json", check=5).stdout)
    assert doc["deep"] and doc["shares_bad"] == 1 and doc["bad"][0]["provider"] == "local-2"
    assert "DEGRADED" in ov(vault, "status").stdout
    plan = json.loads(ov(vault, "repair", "--dry-run", "--json").stdout)
    assert plan["shares_bad"] == 1 and plan["actions"][0]["in_place"] and not share.exists()
    proc = ov(vault, "repair")
    assert "1 share(s) regenerated (1 in place" in proc.stdout and share.exists()
    human = ov(vault, "status").stdout
    assert human.startswith("vault: HEALTHY")
    # Six embedded folders only: healthy, but the one thing to do is to get a copy elsewhere.
    todo = human.split("to do:", 1)[1]
    assert "losing this machine: NOT survivable" in todo and "add at least 3 provider(s)" in todo

    # Lose a piece: repair names what is lost, exit 7; status says DATA LOST.
    for p in (vault / "providers").glob("local-[1234]/objects/shares/*/*"):
        p.unlink()
    proc = ov(vault, "repair", check=7)
    assert "LOST f.bin v1" in proc.stderr
    assert json.loads(ov(vault, "status", "--json", check=7).stdout)["lost_names"] == ["f.bin"]
    assert ov(vault, "audit", "--blocks", "2", "--sample", "0.5", check=2).returncode == 2


def test_deep_check_exits_5_on_a_tampered_share(vault: Path) -> None:
    """A deep check that finds a tampered share says so and exits with the integrity code
    (it exited 0), with and without --json; a clean deep check exits 0."""
    assert json.loads(ov(vault, "check", "--deep", "--json").stdout)["shares_bad"] == 0
    share = sorted((vault / "providers" / "local-3" / "objects" / "shares").rglob("*.*"))[0]
    data = bytearray(share.read_bytes())
    data[len(data) // 2] ^= 0x01
    share.write_bytes(bytes(data))
    proc = ov(vault, "check", "--deep", check=5)
    assert "corrupt share" in proc.stdout and "local-3" in proc.stdout
    assert "1 bad" in proc.stdout and "run `ownvault repair`" in proc.stdout
    doc = json.loads(ov(vault, "check", "--deep", "--json", check=5).stdout)
    assert doc["shares_bad"] == 1 and doc["bad"][0]["kind"] == "corrupt"
    assert doc["bad"][0]["provider"] == "local-3"
    ov(vault, "repair")
    ov(vault, "check", "--deep")


def test_daemon_runs_rounds_and_serves_metrics(vault: Path) -> None:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ownvault",
            "--vault",
            str(vault),
            "daemon",
            "--first-delay",
            "0",
            "--blocks",
            "8",
            "--audit-every",
            "1s",
            "--repair-every",
            "1s",
            "--jitter",
            "0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--rounds",
            "40",
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
        first = json.loads(proc.stdout.readline())
        assert first["round"] == 1 and first["audit_at_fault"] == []
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "ownvault_repair_shares_regenerated" not in text:
            text = httpx.get(url, timeout=5).text
            time.sleep(0.2)
        assert 'ownvault_audit_provider_ok{provider="local-1"} 1.0' in text
        assert (
            "ownvault_vault_healthy 1.0" in text
            and "ownvault_repair_shares_regenerated 0.0" in text
        )
        assert httpx.get(url.replace("/metrics", "/status"), timeout=5).json()["audits"] >= 1
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == 0


def test_durations_and_bad_options(tmp_path: Path) -> None:
    assert (
        parse_duration("90") == 90
        and parse_duration("30m") == 1800
        and parse_duration("1d") == 86400
    )
    with pytest.raises(UsageError):
        parse_duration("soon")
    assert run_cli(["--vault", str(tmp_path / "none"), "daemon", "--audit-every", "soon"]) == 2
