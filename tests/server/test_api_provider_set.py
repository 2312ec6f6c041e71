"""`PATCH /providers/{name}`: the API's `provider set` (jurisdiction, failure domain,
labels), and the verdict the API's /status and /check carry (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.engine.helpers import make_vault, run
from tests.server.apiserver import serve

API = "/api/v1"


@pytest.fixture()
def c(tmp_path: Path) -> Iterator[httpx.Client]:
    vault = make_vault(tmp_path / "vault")
    (tmp_path / "a.txt").write_text("alpha\n" * 100)
    run(vault.files.put([tmp_path / "a.txt"], name="a.txt"))
    try:
        with serve(vault) as live, live.client() as client:
            yield client
    finally:
        run(vault.close())


def providers(c: httpx.Client) -> dict[str, dict]:  # type: ignore[type-arg]
    return {p["name"]: p for p in c.get(f"{API}/providers").json()["providers"]}


def test_patch_a_provider_and_read_the_verdict(c: httpx.Client, tmp_path: Path) -> None:
    r = c.patch(
        f"{API}/providers/local-1",
        json={"jurisdiction": "ch", "domain": "Shelf-2", "labels": {"owner": "ann"}},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["jurisdiction"] == "CH" and doc["domain"] == "shelf-2"
    # (the embedded folders carry the label embedded=true from `init`)
    assert doc["labels"] == {"embedded": "true", "owner": "ann"}
    assert doc["packs_out_of_policy"] == 0  # six folders, six shares: nowhere better
    p = providers(c)["local-1"]
    assert p["jurisdiction"] == "CH" and p["labels"] == {"embedded": "true", "owner": "ann"}
    r = c.patch(f"{API}/providers/local-1", json={"unlabel": ["owner"], "default_domain": True})
    assert r.json()["labels"] == {"embedded": "true"} and r.json()["domain"] == "this-machine"
    assert c.patch(f"{API}/providers/local-1", json={"unlabel": ["nope"]}).status_code == 400
    assert c.patch(f"{API}/providers/local-1", json={"jurisdiction": "x1"}).status_code == 400
    assert c.patch(f"{API}/providers/ghost", json={"jurisdiction": "DE"}).status_code == 404
    assert c.patch(f"{API}/providers/local-1", json={"labels": {"": "x"}}).status_code == 400

    # The verdict: the same in /status and /check, with the machine-loss part.
    status, check = c.get(f"{API}/status").json(), c.get(f"{API}/check").json()
    assert status["health"] == check["health"] and status["health"]["state"] == "unverified"
    assert status["machine_loss"] == check["machine_loss"]
    assert not status["health"]["survives_machine_loss"]
    assert "add at least 3 provider(s)" in status["health"]["to_add"]


def test_policy_round_trip_keeps_survive_domain_loss(c: httpx.Client) -> None:
    """GET /policy then PUT it back must not drop a rule: the document used to lack
    ``survive_domain_loss``, so any client's PUT silently turned it off."""
    for i in range(1, 7):  # six failure domains, so the rule can be met
        r = c.patch(f"{API}/providers/local-{i}", json={"domain": f"shelf-{i}"})
        assert r.status_code == 200, r.text
    doc = c.get(f"{API}/policy").json()["policy"]
    assert doc["survive_domain_loss"] is False
    r = c.put(f"{API}/policy", json={**doc, "survive_domain_loss": True, "happy": 6})
    assert r.status_code == 200, r.text
    assert "survives losing any one failure domain" in r.json()["describe"]
    doc = c.get(f"{API}/policy").json()["policy"]
    assert doc["survive_domain_loss"] is True and doc["happy"] == 6
    assert c.put(f"{API}/policy", json=doc).status_code == 200  # the round trip
    again = c.get(f"{API}/policy").json()["policy"]
    assert again == doc
