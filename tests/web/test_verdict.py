"""One health verdict (issue 14): the web UI, the API and the CLI's `check` and `status`
show the same state, for a fresh vault (stored, never audited: "unverified"), once a
share has gone missing ("degraded"), audited and repaired ("healthy"), and when a folder
comes back from an older copy (a stale provider: "degraded", and named)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tests.cli.test_cli_tour import js, ov
from tests.engine.helpers import PASS, make_vault, run
from tests.web.conftest import Served, in_thread, start_serve, stop_serve

if TYPE_CHECKING:
    from playwright.sync_api import Page


def states(s: Served) -> dict[str, Any]:
    """The state each surface gives, and the CLI's human first lines."""
    auth = {"Authorization": f"Bearer {s.token}"}
    api = {
        route: httpx.get(f"{s.url}/api/v1/{route}", headers=auth, timeout=120).json()
        for route in ("check", "status", "health")
    }
    check = js(ov(s.vault, "check", "--json", passphrase=PASS))
    status = js(ov(s.vault, "status", "--json", passphrase=PASS))
    return {
        "cli check": check["health"]["state"],
        "cli status": status["health"]["state"],
        "api check": api["check"]["health"]["state"],
        "api status": api["status"]["health"]["state"],
        "api health": api["health"]["health"]["state"],
        "legacy": status["verdict"],
        "status text": ov(s.vault, "status", passphrase=PASS).stdout.splitlines()[0],
        "check text": [
            line
            for line in ov(s.vault, "check", passphrase=PASS).stdout.splitlines()
            if line.startswith("vault: ")
        ],
        "survives": {
            check["machine_loss"]["survives"],
            status["machine_loss"]["survives"],
            api["status"]["machine_loss"]["survives"],
            api["check"]["machine_loss"]["survives"],
        },
    }


def banner_state(page: Page, want: str) -> str:
    page.click("#health-refresh")
    page.wait_for_selector(f"#health-banner[data-state={want}]", timeout=60_000)
    return page.inner_text("#health-banner")


def test_ui_api_check_and_status_give_one_verdict(page: Page, tmp_path: Path) -> None:
    def make() -> None:
        vault = make_vault(tmp_path / "vault")  # the default: six folders inside the vault
        try:
            (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 " + b"x" * 100_000)
            run(vault.files.put([tmp_path / "report.pdf"], name="report.pdf"))
        finally:
            run(vault.close())

    in_thread(make)
    s = start_serve(tmp_path / "vault", tmp_path / "serve.err")
    try:
        page.goto(s.ui)
        page.wait_for_selector("body[data-ready]")
        page.click('#nav a[data-view="health"]')
        page.wait_for_selector("#health-banner[data-state]")

        # Fresh: every share there, nothing audited. Not green anywhere.
        seen = states(s)
        assert {seen[k] for k in seen if k.startswith(("cli", "api"))} == {"unverified"}, seen
        assert seen["legacy"] == "UNVERIFIED"
        assert seen["status text"] == "vault: UNVERIFIED (no audit has ever run)"
        assert seen["check text"] == [seen["status text"]]
        assert seen["survives"] == {False}
        text = banner_state(page, "unverified")
        assert text.startswith("Unverified") and "no audit has ever run" in text
        assert page.get_attribute("#health-machine", "data-survives") == "false"
        assert "NOT survivable" in page.inner_text("#health-machine")
        assert "add at least 3 provider(s)" in page.inner_text("#health-advice")

        # A share goes missing from one folder: degraded everywhere, the folder named.
        [share] = list((s.vault / "providers" / "local-2" / "objects" / "shares").rglob("*.*"))
        share.unlink()
        seen = states(s)
        assert {seen[k] for k in seen if k.startswith(("cli", "api"))} == {"degraded"}, seen
        assert seen["status text"].startswith("vault: DEGRADED (1 piece(s) have fewer than n")
        assert seen["check text"] == [seen["status text"]]
        text = banner_state(page, "degraded")
        assert "shares missing on local-2 (1)" in text
        page.wait_for_selector('#health-files li[data-name="report.pdf"][data-status=degraded]')

        # Audit, then repair: healthy everywhere.
        ov(s.vault, "audit", passphrase=PASS, check=5)
        ov(s.vault, "repair", passphrase=PASS)
        seen = states(s)
        assert {seen[k] for k in seen if k.startswith(("cli", "api"))} == {"healthy"}, seen
        assert seen["status text"] == "vault: HEALTHY" and seen["check text"] == ["vault: HEALTHY"]
        assert banner_state(page, "healthy").startswith("Healthy")

        # local-3 comes back from an older copy of its folder, taken before a plain put:
        # it holds the newest catalog snapshot but not the put's journal record. Stale,
        # named everywhere.
        folder = s.vault / "providers" / "local-3"
        shutil.copytree(folder, tmp_path / "local-3-old")
        (tmp_path / "notes.txt").write_bytes(b"n" * 50_000)
        ov(s.vault, "put", str(tmp_path / "notes.txt"), passphrase=PASS)
        shutil.rmtree(folder)
        shutil.copytree(tmp_path / "local-3-old", folder)
        seen = states(s)
        assert {seen[k] for k in seen if k.startswith(("cli", "api"))} == {"degraded"}, seen
        [stale] = js(ov(s.vault, "status", "--json", passphrase=PASS))["health"]["stale_providers"]
        assert stale["newest_snapshot"] == stale["expected_snapshot"]  # the journal tells
        assert [lag["known_seq"] - lag["held_seq"] for lag in stale["journal"]] == [1]
        banner = banner_state(page, "degraded")
        assert "local-3 is stale: it holds the journal of device" in banner
        page.wait_for_selector('#providers-table tr[data-provider="local-3"][data-status=stale]')
        assert page.locator("#providers-table tr[data-status=stale]").count() == 1
    finally:
        stop_serve(s)
