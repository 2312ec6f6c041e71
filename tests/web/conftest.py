"""Real Chromium (Debian's, driven by Python Playwright) against real `ownvault serve` processes.

The browser is Debian's ``chromium`` (``scripts/setup.d/chromium.sh`` installs it); never
``playwright install``. Without it these tests skip, except under ``CI=true``, where they
fail. Every test saves a screenshot under ``artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.engine.helpers import PASS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

T = TypeVar("T")
CHROMIUM = os.environ.get("OWNVAULT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-sync",
    "--metrics-recording-only",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} missing: run scripts/setup.d/chromium.sh (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415  only once Chromium exists

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture()
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    try:
        yield pg
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(SHOTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()
    assert not errors, errors


def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread: Playwright's sync API keeps an event loop running in this
    one, so vault set-up (``asyncio.run``) goes elsewhere."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


@dataclass
class Served:
    url: str
    ui: str
    token: str
    vault: Path
    proc: subprocess.Popen[str]


def start_serve(vault: Path, log: Path, *extra: str) -> Served:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    err = open(log, "w")  # noqa: SIM115 - the child writes to it; closed with the process
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ownvault",
            "--vault",
            str(vault),
            "serve",
            "--listen",
            "127.0.0.1:0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    err.close()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(log.read_text())
    doc = json.loads(line)
    token = doc["ui"].split("#token=", 1)[1] if "#token=" in doc["ui"] else ""
    return Served(doc["listening"], doc["ui"], token, vault, proc)


def stop_serve(s: Served) -> None:
    s.proc.terminate()
    try:
        s.proc.wait(15)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        s.proc.wait()
    if s.proc.stdout is not None:
        s.proc.stdout.close()
