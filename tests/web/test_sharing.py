"""Sharing in the browser between two vaults, each with its own `ownvault serve`: Bob hands
Alice his contact card, Alice shares a folder with him (a never-share tag refuses first),
Bob opens the grant in his own UI and downloads the bytes, Alice revokes, and then Bob's
UI says "revoked" and even the manifest he kept no longer reads anything."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ownvault.core.keys import VaultKeys
from ownvault.engine.sharing.reader import open_grant
from ownvault.errors import DataUnavailableError
from tests.engine.helpers import make_vault, run
from tests.web.conftest import SHOTS, Served, in_thread, start_serve, stop_serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PLAN = random.Random(8).randbytes(300_000)


@dataclass
class Two:
    alice: Served
    bob: Served
    bob_keys: VaultKeys


@pytest.fixture()
def two(tmp_path: Path) -> Iterator[Two]:
    def make() -> VaultKeys:
        alice = make_vault(tmp_path / "alice")
        bob = make_vault(tmp_path / "bob", providers=2, k=1, n=2)
        (tmp_path / "plan.bin").write_bytes(PLAN)
        (tmp_path / "notes.txt").write_text("notes\n")
        (tmp_path / "blood.csv").write_text("date,value\n")
        try:
            run(alice.files.put([tmp_path / "plan.bin"], name="docs/plan.bin"))
            run(alice.files.put([tmp_path / "notes.txt"], name="docs/notes.txt"))
            run(alice.files.put([tmp_path / "blood.csv"], name="blood.csv", tags=["health"]))
            return bob.keys
        finally:
            run(alice.close())
            run(bob.close())

    keys = in_thread(make)
    a = start_serve(tmp_path / "alice", tmp_path / "alice.err")
    try:
        b = start_serve(tmp_path / "bob", tmp_path / "bob.err")
        try:
            yield Two(a, b, keys)
        finally:
            stop_serve(b)
    finally:
        stop_serve(a)


def open_view(page: Page, s: Served, view: str) -> None:
    page.goto(s.ui)
    page.wait_for_selector("body[data-ready]")
    page.click(f'#nav a[data-view="{view}"]')
    page.wait_for_selector(f"#view-{view}:not([hidden])")


def test_share_with_a_second_vault_and_revoke(
    browser: Browser, page: Page, two: Two, tmp_path: Path
) -> None:
    bob_ctx = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    bob = bob_ctx.new_page()
    try:
        # Bob downloads his contact card; Alice adds it.
        open_view(bob, two.bob, "sharing")
        bob.wait_for_selector("#my-did")
        with bob.expect_download() as info:
            bob.click("#card-download")
        card = tmp_path / "bob-card.json"
        info.value.save_as(card)
        open_view(page, two.alice, "sharing")
        page.set_input_files("#contact-file", str(card))
        page.fill("#contact-name", "Bob")
        page.click("#contact-form button[type=submit]")
        page.wait_for_selector('#contacts-list li >> text="Bob"')

        # A never-share tag refuses, with its code.
        page.fill("#policy-tag", "health")
        page.click("#policy-form button")
        page.wait_for_selector('#policies-list li[data-tag="health"]')
        page.select_option("#share-kind", "tag")
        page.fill("#share-target", "health")
        page.select_option("#share-to", label="Bob")
        page.click("#share-form button[type=submit]")
        page.wait_for_selector("#share-error[data-code=share_policy]")

        # Share the folder docs/ from the Files view, until a date.
        page.click('#nav a[data-view="files"]')
        page.click('button[aria-label="Share the folder docs"]')
        page.wait_for_selector("#view-sharing:not([hidden])")
        assert (
            page.input_value("#share-kind") == "prefix"
            and page.input_value("#share-target") == "docs"
        )
        page.select_option("#share-to", label="Bob")
        page.fill("#share-expires", "2099-12-31")
        page.click("#share-form button[type=submit]")
        page.wait_for_selector("#grant-token")
        token = page.input_value("#grant-token")
        assert token.startswith("ovgrant1:")
        page.click("#grant-copy")
        page.wait_for_selector("#toast.show >> text=Copied")
        assert page.evaluate("navigator.clipboard.readText()") == token
        with page.expect_download() as info:
            page.click("#grant-download")
        grant_file = tmp_path / "grant.json"
        info.value.save_as(grant_file)
        row = page.locator("#grants-table tr[data-state=active]")
        row.wait_for()
        assert (
            "docs/plan.bin v1" in row.inner_text()
            and "Bob" in row.inner_text()
            and "2099" in row.inner_text()
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "sharing-granted.png"), full_page=True)

        # Bob opens the grant file in his own UI and downloads the bytes.
        bob.set_input_files("#received-file", str(grant_file))
        bob.click("#received-form button[type=submit]")
        bob.wait_for_selector('#received-items li[data-name="docs/plan.bin"]')
        with bob.expect_download() as info:
            bob.click('a[aria-label="Download docs/plan.bin (shared)"]')
        got = tmp_path / "got.bin"
        info.value.save_as(got)
        assert got.read_bytes() == PLAN
        bob.screenshot(path=str(SHOTS / "sharing-received.png"), full_page=True)
        # What a recipient could keep: the manifest (every chunk key and share place).
        kept = in_thread(lambda: run(open_grant(two.bob_keys, token)))

        # Alice revokes (confirmation, then a job with progress).
        grant_id = row.get_attribute("data-grant")
        page.click(f'tr[data-grant="{grant_id}"] button:has-text("Revoke")')
        page.click("#confirm-ok")
        page.wait_for_selector(f'tr[data-grant="{grant_id}"][data-state=revoked]', timeout=60_000)

        # Bob: the grant is revoked; the manifest he kept reads nothing (shares re-keyed, old ones deleted).
        bob.click("#received-list button")
        bob.wait_for_selector("#received-error[data-code=grant_revoked]")
        assert bob.locator("#received-items").count() == 0

        async def read_kept() -> bytes:
            try:
                return b"".join([piece async for piece in kept.read("docs/plan.bin")])
            finally:
                await kept.close()

        with pytest.raises(DataUnavailableError):
            in_thread(lambda: asyncio.run(read_kept()))
        bob.screenshot(path=str(SHOTS / "sharing-revoked.png"), full_page=True)
    finally:
        bob_ctx.close()
