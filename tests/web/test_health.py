"""Health in the browser: a storage node is killed, the page turns red (check and audit);
repair regenerates its share on a spare provider and the page turns green."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.engine.helpers import make_vault, run
from tests.server.nodes import Node, NodeCluster
from tests.web.conftest import SHOTS, Served, in_thread, start_serve, stop_serve

if TYPE_CHECKING:
    from playwright.sync_api import Page

PLACES = ["DE", "FR", "CH", "US", "JP"]


@pytest.fixture()
def setup(tmp_path: Path) -> Iterator[tuple[Served, NodeCluster, Node]]:
    with NodeCluster(tmp_path / "nodes") as cluster:
        [node] = cluster.start_many(1, jurisdictions=["NL"])

        def make() -> None:
            vault = make_vault(tmp_path / "vault", providers=0, k=3, n=6)
            try:
                for i, code in enumerate(PLACES):
                    run(
                        vault.fleet.add_provider(
                            f"disk-{code.lower()}", (tmp_path / f"p{i}").as_uri(), jurisdiction=code
                        )
                    )
                run(vault.fleet.add_provider("node-nl", node.url, jurisdiction="NL"))
                (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 " + b"x" * 200_000)
                run(vault.files.put([tmp_path / "report.pdf"], name="work/report.pdf"))
                # A spare, empty: where repair can put the share of a provider that died.
                run(
                    vault.fleet.add_provider(
                        "disk-se", (tmp_path / "spare").as_uri(), jurisdiction="SE"
                    )
                )
            finally:
                run(vault.close())

        in_thread(make)
        s = start_serve(tmp_path / "vault", tmp_path / "serve.err")
        try:
            yield s, cluster, node
        finally:
            stop_serve(s)


def open_health(page: Page, s: Served) -> None:
    page.goto(s.ui)
    page.wait_for_selector("body[data-ready]")
    page.click('#nav a[data-view="health"]')
    page.wait_for_selector("#health-banner[data-status]")


def test_kill_a_provider_health_turns_red_and_back(
    page: Page, setup: tuple[Served, NodeCluster, Node]
) -> None:
    s, cluster, node = setup
    open_health(page, s)
    page.wait_for_selector("#health-banner[data-status=ok]")
    assert page.locator('#providers-table tr[data-provider="node-nl"][data-status=ok]').count() == 1
    assert page.locator("#world .continent").count() == 3  # Europe, Americas, Asia and Pacific
    cluster.kill(node)
    page.click("#health-refresh")
    page.wait_for_selector("#health-banner[data-status=degraded]", timeout=60_000)
    page.wait_for_selector('#providers-table tr[data-provider="node-nl"][data-status=down]')
    page.wait_for_selector('#health-files li[data-name="work/report.pdf"][data-status=degraded]')
    assert page.locator('#world .dot.down[aria-label^="node-nl"]').count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "health-red.png"), full_page=True)
    cluster.restart(node)
    page.click("#health-refresh")
    page.wait_for_selector("#health-banner[data-status=ok]", timeout=60_000)


def test_kill_a_provider_press_repair_turns_green(
    page: Page, setup: tuple[Served, NodeCluster, Node]
) -> None:
    s, cluster, node = setup
    open_health(page, s)
    page.click("#audit-now")
    page.wait_for_selector("#repair-status[data-kind=audit][data-state=done]", timeout=60_000)
    page.wait_for_selector('#providers-table tr[data-provider="node-nl"] [data-verdict=ok]')
    cluster.kill(node)
    page.click("#health-refresh")
    page.wait_for_selector("#health-banner[data-status=degraded]", timeout=60_000)
    page.click("#audit-now")
    page.wait_for_selector("#repair-status[data-kind=audit][data-state=done]", timeout=60_000)
    page.wait_for_selector(
        '#providers-table tr[data-provider="node-nl"] [data-verdict=unreachable]'
    )
    assert (
        page.locator('#providers-table tr[data-provider="disk-de"] [data-verdict=ok]').count() == 1
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "health-audit-red.png"), full_page=True)
    page.click("#repair")
    page.wait_for_selector("#repair-status[data-kind=repair][data-state=done]", timeout=120_000)
    assert "share(s) regenerated" in page.inner_text("#repair-status")
    page.wait_for_selector("#health-banner[data-status=ok]", timeout=60_000)
    page.wait_for_selector('#health-files li[data-name="work/report.pdf"][data-status=ok]')
    page.screenshot(path=str(SHOTS / "health-repaired.png"), full_page=True)
