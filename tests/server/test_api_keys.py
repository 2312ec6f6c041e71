"""The rest of the CLI over the API: status, deep check, forget, passphrase change, key rotation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import Live, serve

API = "/api/v1"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("keys")
    vault = make_vault(base / "vault")
    (base / "diary.txt").write_text("dear diary\n" * 100)
    (base / "keep.txt").write_text("keep me\n")
    run(vault.files.put([base / "diary.txt"], name="diary.txt"))
    run(vault.files.put([base / "keep.txt"], name="keep.txt"))
    try:
        with serve(vault) as s:
            yield s
    finally:
        run(vault.close())


@pytest.fixture()
def c(live: Live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def job(c: httpx.Client, kind: str) -> dict[str, Any]:
    j = c.post(f"{API}/jobs", json={"kind": kind}).json()
    while j["state"] == "running":
        time.sleep(0.05)
        j = c.get(f"{API}/jobs/{j['id']}").json()
    return j


def test_status_and_deep_check(c: httpx.Client) -> None:
    st = c.get(f"{API}/status").json()
    assert st["verdict"] == "UNVERIFIED" and st["pieces"] >= 1 and len(st["providers"]) == 6
    assert any("audit" in line for line in st["advice"])
    deep = job(c, "deep_check")
    assert deep["state"] == "done" and deep["result"]["healthy"] is True
    assert job(c, "audit")["state"] == "done"
    assert c.get(f"{API}/status").json()["verdict"] == "HEALTHY"


def test_forget_needs_confirmation_and_destroys(c: httpx.Client) -> None:
    r = c.post(f"{API}/files/forget", json={"name": "diary.txt", "confirm": False})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "usage")
    r = c.post(f"{API}/files/forget", json={"name": "diary.txt", "confirm": True})
    assert r.status_code == 200, r.text
    assert r.json()["versions_forgotten"] == 1 and r.json()["chunks_shredded"] >= 1
    assert set(r.json()) == {  # ForgetOut's fields, built from the engine's ForgetResult
        "name", "versions_forgotten", "chunks_shredded", "chunks_shared_with_other_names",
        "objects_deleted", "not_deleted",
    }  # fmt: skip
    assert c.get(f"{API}/files/versions", params={"name": "diary.txt"}).status_code == 404
    assert c.get(f"{API}/files/content", params={"name": "keep.txt"}).content == b"keep me\n"


def test_rotate_content_key(c: httpx.Client) -> None:
    first = c.post(f"{API}/keys/rotate", json={}).json()
    second = c.post(f"{API}/keys/rotate", json={"rewrap": True}).json()
    assert second["epoch"] == first["epoch"] + 1 and second["rewrapped"] >= 1
    assert set(first) == set(second) == {"epoch", "rewrapped"}
    assert c.get(f"{API}/files/content", params={"name": "keep.txt"}).content == b"keep me\n"


def test_change_passphrase(live: Live, c: httpx.Client) -> None:
    r = c.post(f"{API}/keys/passphrase", json={"passphrase": "wrong", "new_passphrase": "x"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "auth")
    r = c.post(f"{API}/keys/passphrase", json={"passphrase": PASS, "new_passphrase": "a new one"})
    assert r.status_code == 200 and r.json()["vault"] == str(live.vault.path)
    assert set(r.json()["kdf"]) == {"time_cost", "memory_kib", "parallelism"}
    with live.client(auth=False) as anon:
        assert anon.post(f"{API}/session", json={"passphrase": PASS}).status_code == 403
        assert anon.post(f"{API}/session", json={"passphrase": "a new one"}).status_code == 200
    r = c.post(f"{API}/keys/passphrase", json={"passphrase": "a new one", "new_passphrase": PASS})
    assert r.status_code == 200
