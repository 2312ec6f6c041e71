"""The Backups view in real Chromium against a real `ownvault serve`: profiles with their
state, a failing one flagged, "Run now", the runs, and the retention preview."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ownvault.core.retention import RetentionPolicy
from tests.engine.helpers import make_vault, run
from tests.web.conftest import Served, in_thread, start_serve, stop_serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    def make() -> None:
        vault = make_vault(tmp_path / "vault", providers=3, k=2, n=3)
        try:
            docs = tmp_path / "Documents"
            docs.mkdir()
            (docs / "letter.txt").write_text("dear reader\n")
            run(vault.backups.add("docs", docs, every="6h", retention=RetentionPolicy(last=5)))
            for i in range(3):
                (docs / "letter.txt").write_text(f"draft {i}\n")
                run(vault.backups.run("docs"))
            gone = tmp_path / "Pictures"
            gone.mkdir()
            run(vault.backups.add("pictures", gone, every="1d"))
            shutil.rmtree(gone)
            run(vault.backups.run("pictures"))
            # Tighter rules since: the preview shows what the next run would forget.
            with vault.ctx.catalog.transaction() as c:
                c.execute(
                    "UPDATE backup_profiles SET retention = '{\"last\": 2}' WHERE name = 'docs'"
                )
        finally:
            run(vault.close())

    in_thread(make)
    s = start_serve(tmp_path / "vault", tmp_path / "serve.err")
    try:
        yield s
    finally:
        stop_serve(s)


def test_backups_view_run_now_runs_and_preview(page: Page, served: Served) -> None:
    page.goto(served.ui)
    page.wait_for_selector("body[data-ready]")
    page.click('#nav a[data-view="backups"]')
    page.wait_for_selector('#backup-banner[data-status="attention"]')
    assert "pictures (failed)" in page.inner_text("#backup-banner")
    docs = page.locator('#backup-list li[data-name="docs"]')
    assert docs.get_attribute("data-status") == "ok"
    assert page.locator('#backup-list li[data-name="pictures"][data-status="failed"]').count() == 1
    assert "source folder is gone" in page.inner_text('#backup-list li[data-name="pictures"]')
    assert "keep 2 latest snapshots" in docs.inner_text()

    docs.get_by_role("button", name="Retention preview of docs").click()
    page.wait_for_selector('table.preview tr[data-verdict="remove"]')
    kept = page.locator('table.preview tr[data-verdict="keep"]')
    assert kept.count() == 2 and "last snapshot" in kept.first.inner_text()
    assert page.locator('table.preview tr[data-verdict="remove"]').count() == 1

    docs.get_by_role("button", name="Run docs now").click()
    page.wait_for_selector("#toast.show")
    assert "docs: version 4 stored" in page.inner_text("#toast")
    docs = page.locator('#backup-list li[data-name="docs"]')
    docs.get_by_role("button", name="Runs of docs").click()
    page.wait_for_selector("table.runs tbody tr")
    rows = page.locator("table.runs tbody tr")
    assert rows.count() == 4
    assert "2 old version(s) forgotten" in rows.first.inner_text()  # keep-last 2 applied


def test_backups_view_fits_a_phone(browser: Browser, served: Served) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    try:
        page.goto(served.ui)
        page.wait_for_selector("body[data-ready]")
        page.click('#nav a[data-view="backups"]')
        page.wait_for_selector('#backup-banner[data-status="attention"]')
        docs = page.locator('#backup-list li[data-name="docs"]')
        docs.get_by_role("button", name="Runs of docs").click()
        page.wait_for_selector("table.runs tbody tr")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        docs.get_by_role("button", name="Retention preview of docs").click()
        page.wait_for_selector("table.preview tbody tr")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
