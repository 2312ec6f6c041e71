"""The web UI in real Chromium against a real `ownvault serve` process."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.engine.helpers import PASS, make_vault, run
from tests.web.conftest import SHOTS, Served, in_thread, start_serve, stop_serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Served]:
    in_thread(lambda: _setup(tmp_path))
    s = start_serve(tmp_path / "vault", tmp_path / "serve.err")
    try:
        yield s
    finally:
        stop_serve(s)


def _setup(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "vault")
    src = tmp_path / "notes.txt"
    src.write_text("first version\n")
    run(vault.files.put([src], name="docs/notes.txt", tags=["work"]))
    src.write_text("second version, longer\n")
    run(vault.files.put([src], name="docs/notes.txt"))
    tree = tmp_path / "photos"
    (tree / "2024").mkdir(parents=True)
    (tree / "2024" / "beach.jpg").write_bytes(random.Random(1).randbytes(50_000))
    (tree / "readme.md").write_text("# photos\n")
    run(vault.files.put([tree], name="photos"))
    run(vault.close())


def open_ui(page: Page, s: Served, view: str = "files") -> None:
    page.goto(s.ui)
    page.wait_for_selector("body[data-ready]")
    if view != "files":
        page.click(f'#nav a[data-view="{view}"]')
    page.wait_for_selector(f"#view-{view}:not([hidden])")


def test_upload_through_the_page_and_download_the_same_bytes(
    page: Page, served: Served, tmp_path: Path
) -> None:
    data = random.Random(5).randbytes(9 * 1024 * 1024 + 123)  # two 8 MiB chunks
    src = tmp_path / "upload" / "big file é.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    open_ui(page, served)
    page.fill("#upload-tags", "blob, test")
    page.set_input_files("#file-input", str(src))
    page.wait_for_selector('#uploads li[data-done="true"]', timeout=60_000)
    row = page.locator('tr[data-name="big file é.bin"]')
    row.wait_for()
    assert "blob" in row.inner_text()
    with page.expect_download() as info:
        row.get_by_role("link", name="Download big file é.bin").click()
    out = tmp_path / "downloaded.bin"
    info.value.save_as(out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # the same bytes through the API, with a Range
    r = httpx.get(
        f"{served.url}/api/v1/files/content",
        params={"name": "big file é.bin"},
        headers={"Authorization": f"Bearer {served.token}", "Range": "bytes=100-199"},
    )
    assert r.status_code == 206 and r.content == data[100:200]


def test_upload_a_folder_keeps_its_paths(page: Page, served: Served, tmp_path: Path) -> None:
    trip = tmp_path / "pick" / "trip"
    (trip / "day 1").mkdir(parents=True)
    (trip / "notes.txt").write_text("packing list\n")
    (trip / "day 1" / "photo.jpg").write_bytes(random.Random(3).randbytes(70_000))
    open_ui(page, served)
    page.get_by_role("button", name="docs/").click()  # into the virtual folder docs/
    page.set_input_files("#folder-input", str(trip))
    page.wait_for_selector(
        '#uploads li[data-name="docs/trip/day 1/photo.jpg"][data-done="true"]', timeout=60_000
    )
    page.wait_for_selector('#uploads li[data-name="docs/trip/notes.txt"][data-done="true"]')
    page.get_by_role("button", name="trip/").click()
    page.get_by_role("button", name="day 1/").click()
    page.wait_for_selector('tr[data-name="docs/trip/day 1/photo.jpg"]')
    auth = {"Authorization": f"Bearer {served.token}"}
    r = httpx.get(
        f"{served.url}/api/v1/files/content",
        params={"name": "docs/trip/day 1/photo.jpg"},
        headers=auth,
    )
    assert r.content == random.Random(3).randbytes(70_000)


def test_publish_toggle_shows_cid_and_the_gateway_serves_it(page: Page, served: Served) -> None:
    open_ui(page, served)
    page.get_by_role("button", name="docs/").click()
    page.click('button[aria-label="Details of docs/notes.txt"]')
    page.check("#publish-toggle")
    link = page.wait_for_selector("#gateway-link")
    href = link.get_attribute("href")
    assert href is not None and "/ipfs/bafk" in href
    assert page.inner_text("#ipfs-url").startswith("ipfs://bafk")
    page.click("text=Copy ipfs:// address")
    assert page.evaluate("navigator.clipboard.readText()") == page.inner_text("#ipfs-url")
    r = httpx.get(href)  # no token: the gateway is public
    assert r.status_code == 200 and r.content == b"second version, longer\n"
    assert "sandbox" in r.headers["content-security-policy"]
    page.keyboard.press("Escape")
    page.click('#nav a[data-view="published"]')
    page.wait_for_selector('#pub-list li[data-name="docs/notes.txt"]')
    page.click('button[aria-label="Unpublish docs/notes.txt"]')
    page.wait_for_selector('#pub-list li[data-name="docs/notes.txt"]', state="detached")
    assert httpx.get(href).status_code == 404


def test_versions_restore_tags_search_and_delete(page: Page, served: Served) -> None:
    open_ui(page, served)
    page.fill("#search-q", "notes")
    page.click("#search button[type=submit]")
    page.click('button[aria-label="Details of docs/notes.txt"]')
    page.wait_for_selector('#versions li[data-version="1"]')
    page.click('button[aria-label="Restore version 1"]')
    page.wait_for_selector('#versions li[data-version="3"]')
    auth = {"Authorization": f"Bearer {served.token}"}
    r = httpx.get(
        f"{served.url}/api/v1/files/content", params={"name": "docs/notes.txt"}, headers=auth
    )
    assert r.content == b"first version\n"
    page.fill("#tags-input", "work, archive")
    page.click("text=Save tags")
    page.wait_for_selector("#toast.show >> text=Tags saved")
    page.keyboard.press("Escape")
    page.click("#search-clear")
    page.fill("#search-tag", "archive")
    page.click("#search button[type=submit]")
    page.wait_for_selector('tr[data-name="docs/notes.txt"]')
    assert page.locator("#files-table tbody tr").count() == 1
    page.click('button[aria-label="Delete docs/notes.txt"]')
    page.click("#confirm-ok")
    page.wait_for_selector('tr[data-name="docs/notes.txt"]', state="detached")
    assert (
        httpx.get(
            f"{served.url}/api/v1/files/versions", params={"name": "docs/notes.txt"}, headers=auth
        ).status_code
        == 404
    )


def test_browse_a_stored_tree(page: Page, served: Served, tmp_path: Path) -> None:
    open_ui(page, served)
    page.get_by_role("button", name="photos/").click()
    page.get_by_role("button", name="2024/").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download beach.jpg").click()
    out = tmp_path / "beach.jpg"
    info.value.save_as(out)
    assert out.read_bytes() == random.Random(1).randbytes(50_000)


def test_nothing_private_without_the_token_login_and_logout(page: Page, served: Served) -> None:
    base = served.url
    assert httpx.get(f"{base}/api/v1/files").status_code == 401
    assert (
        httpx.get(
            f"{base}/api/v1/files", headers={"Authorization": "Bearer " + "x" * 43}
        ).status_code
        == 401
    )
    page.goto(base + "/")
    page.wait_for_selector("#view-login:not([hidden])")
    assert page.locator("#nav").is_hidden()
    page.fill("#login-pass", "wrong passphrase")
    page.click("#login-form button")
    page.wait_for_selector("#login-error >> text=wrong passphrase")
    page.fill("#login-pass", PASS)
    page.click("#login-form button")
    page.wait_for_selector("#view-files:not([hidden])")
    page.wait_for_selector("tr >> text=docs/")
    page.click("#logout")
    page.wait_for_selector("#view-login:not([hidden])")


def test_recovery_phrase_needs_the_passphrase_again(page: Page, served: Served) -> None:
    open_ui(page, served, "recovery")
    page.fill("#phrase-pass", "not it")
    page.click("#phrase-form button")
    page.wait_for_selector("#phrase-error >> text=wrong passphrase")
    assert page.locator("#phrase-box").is_hidden()
    page.fill("#phrase-pass", PASS)
    page.click("#phrase-form button")
    page.wait_for_selector("#phrase-box:not([hidden])")
    assert page.locator("#phrase-words li").count() == 24


def test_add_and_remove_a_provider_edit_the_policy_rebalance(
    page: Page, served: Served, tmp_path: Path
) -> None:
    open_ui(page, served, "health")
    page.wait_for_selector("#health-banner[data-status=ok]")
    page.wait_for_function("document.querySelector('#policy-n').value !== ''")
    assert page.input_value("#policy-k") == "3" and page.input_value("#policy-n") == "6"
    page.fill("#provider-name", "usb")
    page.fill("#provider-url", (tmp_path / "usb").as_uri())
    page.fill("#provider-jurisdiction", "ch")
    page.click("#provider-form button[type=submit]")
    page.wait_for_selector('#providers-table tr[data-provider="usb"]')
    assert "CH" in page.inner_text('#providers-table tr[data-provider="usb"]')
    page.fill("#policy-n", "7")
    page.fill(
        "#policy-exclude", "us"
    )  # the default folders have no jurisdiction: refused, explained
    page.click("#policy-edit button[type=submit]")
    page.wait_for_selector("#policy-error >> text=cannot place 7 shares")
    page.fill("#policy-exclude", "")
    page.click("#policy-edit button[type=submit]")
    page.wait_for_selector("#policy-text >> text=3 of 7")
    auth = {"Authorization": f"Bearer {served.token}"}
    policy = httpx.get(f"{served.url}/api/v1/policy", headers=auth).json()["policy"]
    assert (policy["k"], policy["n"], policy["exclude"]) == (3, 7, [])
    page.click("#rebalance")
    page.wait_for_selector("#repair-status[data-state=done]", timeout=60_000)
    assert "Rebalance done" in page.inner_text("#repair-status")
    page.wait_for_function(  # the table is drawn again after the job: usb now holds shares
        """() => Number(document.querySelector('#providers-table tr[data-provider="usb"] td:nth-child(5)')?.textContent) > 0"""
    )
    # Back to 6 shares, then the new provider goes (its shares move first).
    page.fill("#policy-n", "6")
    page.click("#policy-edit button[type=submit]")
    page.wait_for_selector("#policy-text >> text=3 of 6")
    page.click('button[aria-label="Remove provider usb"]')
    page.click("#confirm-ok")
    page.wait_for_selector(
        '#providers-table tr[data-provider="usb"]', state="detached", timeout=60_000
    )
    page.wait_for_selector("#health-banner[data-status=ok]")
    r = httpx.get(
        f"{served.url}/api/v1/files/content", params={"name": "docs/notes.txt"}, headers=auth
    )
    assert r.content == b"second version, longer\n"


def test_forget_deep_check_and_change_passphrase(page: Page, served: Served) -> None:
    open_ui(page, served)
    page.get_by_role("button", name="docs/").click()
    page.click('button[aria-label="Details of docs/notes.txt"]')
    page.click("#forget")
    page.click("#confirm-ok")
    page.wait_for_selector('tr[data-name="docs/notes.txt"]', state="detached")
    auth = {"Authorization": f"Bearer {served.token}"}
    assert (
        httpx.get(
            f"{served.url}/api/v1/files/versions", params={"name": "docs/notes.txt"}, headers=auth
        ).status_code
        == 404
    )
    page.click('#nav a[data-view="health"]')
    page.click("#deep-check")
    page.wait_for_selector("#repair-status[data-kind=deep_check][data-state=done]", timeout=60_000)
    assert "0 bad" in page.inner_text("#repair-status")
    page.click('#nav a[data-view="recovery"]')
    page.fill("#pass-old", PASS)
    page.fill("#pass-new", "another passphrase")
    page.fill("#pass-again", "another passphrase")
    page.click("#pass-form button[type=submit]")
    page.wait_for_selector("#toast.show >> text=Passphrase changed")
    login = httpx.post(f"{served.url}/api/v1/session", json={"passphrase": "another passphrase"})
    assert login.status_code == 200


def test_guardian_shares_print_one_page_each(page: Page, served: Served, tmp_path: Path) -> None:
    open_ui(page, served, "recovery")
    page.fill("#guardians-threshold", "2")
    page.fill("#guardians-count", "3")
    page.fill("#guardians-pass", "not it")
    page.click("#guardians-form button[type=submit]")
    page.wait_for_selector("#guardians-error >> text=wrong passphrase")
    assert page.locator("#guardians-box").is_hidden()
    page.fill("#guardians-pass", PASS)
    page.click("#guardians-form button[type=submit]")
    page.wait_for_selector("#guardians-box:not([hidden])")
    cards = page.locator(".guardian-card")
    assert cards.count() == 3
    words = [cards.nth(i).locator("ol.words li").all_inner_texts() for i in range(3)]
    assert all(len(w) == 33 for w in words) and len({" ".join(w) for w in words}) == 3
    assert page.input_value("#guardians-pass") == ""
    assert words[0][5] not in page.url
    # The print stylesheet puts each share on its own page, and nothing else.
    page.emulate_media(media="print")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "guardians-print.png"), full_page=True)
    pdf = page.pdf(format="A4")
    (tmp_path / "guardians.pdf").write_bytes(pdf)
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == 3
    page.emulate_media(media="screen")
    page.click('#nav a[data-view="files"]')  # leaving the view forgets the words
    page.wait_for_selector("#view-files:not([hidden])")
    page.wait_for_selector(".guardian-card", state="detached")
    log = (tmp_path / "serve.err").read_text()
    assert not any(" ".join(w[i : i + 3]) in log for w in words for i in range(31)), (
        "guardian words in the log"
    )


def test_phone_width_keyboard_and_labels(
    browser: Browser, served: Served, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        open_ui(page, served)
        for view in ("files", "published", "sharing", "health", "recovery"):
            page.click(f'#nav a[data-view="{view}"]')
            page.wait_for_selector(f"#view-{view}:not([hidden])")
            page.wait_for_timeout(300)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, (view, width)
            unlabeled = page.evaluate("""() => [...document.querySelectorAll('button, input, select, a[href], progress')]
                .filter(e => e.offsetParent !== null || e.type === 'file')
                .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length) || e.textContent.trim()))
                .map(e => e.outerHTML.slice(0, 80))""")
            assert unlabeled == [], (view, unlabeled)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"phone-{view}.png"), full_page=True)
        # keyboard alone: skip link, the nav, a view, and back
        page.goto(served.url + "/#/files")
        page.reload()
        page.wait_for_selector("body[data-ready]")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.dataset.view") == "health":
                break
        page.keyboard.press("Enter")
        page.wait_for_selector("#view-health:not([hidden])")
        page.focus("#health-refresh")
        page.keyboard.press("Enter")
        page.wait_for_selector("#health-banner[data-status=ok]")
    finally:
        context.close()
