"""Failure domains (issue 14): default labels, placement spreads over them, rebalance moves
data off this machine once other domains exist, and the golden vault gets its domains."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from ownvault.engine.store.domains import default_domain, validate_domain
from ownvault.engine.store.placement import THIS_MACHINE
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError

from ..server.nodes import NodeCluster
from .helpers import Vaults, run, tree_state, write_random_tree

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def test_default_domains(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    assert (
        default_domain("local", "file:providers/local-1", {"embedded": "true"}, vault)
        == THIS_MACHINE
    )
    # A folder on the vault directory's own disk is on this machine too.
    assert default_domain("local", (tmp_path / "elsewhere").as_uri(), {}, vault) == THIS_MACHINE
    # /proc is another device: its mount point names the domain.
    assert default_domain("local", "file:///proc/self", {}, vault) == "mount:/proc"
    assert default_domain("node", "https://Node.Example.org:8443/", {}, vault) == "node.example.org"
    assert default_domain("ipfs", "ipfs+kubo://10.0.0.5:5001/x", {}, vault) == "10.0.0.5"
    s3 = {"endpoint": "https://minio.lan:9000"}
    assert default_domain("s3", "s3://bucket/pre", s3, vault) == "minio.lan"
    assert (
        default_domain("s3", "s3://bucket", {"region": "eu-central-1"}, vault)
        == "s3.eu-central-1.amazonaws.com"
    )
    assert validate_domain(" Rack-2/Host ") == "rack-2/host"
    for bad in ("", "a b", "x\ny", "é", "-x"):
        with pytest.raises(UsageError):
            validate_domain(bad)


def _per_domain(vault: Vault) -> list[Counter[str]]:
    zone = {c.id: c.zone for c in vault.candidates()}
    return [
        Counter(zone[s.provider] for s in vault.catalog.shares_of(p))
        for p in vault.catalog.live_packs()
    ]


def test_rebalance_moves_data_off_this_machine_and_survives_its_loss(
    vaults: Vaults, tmp_path: Path
) -> None:
    src = tmp_path / "docs"
    write_random_tree(src, 7, files=8, max_size=200_000)
    vault = vaults.create(tmp_path / "v")  # the README default: six embedded folders, 3-of-6
    run(vault.files.put([src]))
    assert all(c == {THIS_MACHINE: 6} for c in _per_domain(vault))
    for name in ("usb-a", "usb-b", "usb-c"):
        out = run(vault.fleet.add_provider(name, (tmp_path / name).as_uri(), domain=name.upper()))
        assert out.domain == name
    status = {p.name: p.domain for p in run(vault.fleet.provider_status())}
    assert status["local-1"] == THIS_MACHINE and status["usb-b"] == "usb-b"
    plan = run(vault.fleet.rebalance(dry_run=True))
    assert plan.packs_changed == len(vault.catalog.live_packs()) > 0
    report = run(vault.fleet.rebalance())
    assert report.failures == () and report.shares_moved == 3 * report.packs_changed
    assert all(c[THIS_MACHINE] == 3 for c in _per_domain(vault))
    # Nothing left to do: a second rebalance changes nothing.
    assert run(vault.fleet.rebalance()).packs_changed == 0
    # New data is spread at once.
    (tmp_path / "new.bin").write_bytes(b"n" * 50_000)
    run(vault.files.put([tmp_path / "new.bin"]))
    assert all(c[THIS_MACHINE] == 3 for c in _per_domain(vault))
    # Losing every embedded folder (this machine's disk) loses nothing.
    shutil.rmtree(vault.path / "providers")
    run(vault.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_golden_vault_gets_default_domains(vaults: Vaults, tmp_path: Path) -> None:
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN / "vault-v1", copy)
    vault = vaults.open(copy, "golden")
    rows = vault.catalog.providers()
    assert rows and all(r.domain is None for r in rows)  # migrated: no label stored
    assert {c.zone for c in vault.candidates()} == {THIS_MACHINE}


def test_a_node_announces_its_jurisdiction_and_its_host_is_its_domain(
    vaults: Vaults, tmp_path: Path
) -> None:
    with NodeCluster(tmp_path / "nodes") as cluster:
        (node,) = cluster.start_many(1, jurisdictions=["CH"])
        vault = vaults.create(tmp_path / "v")
        with pytest.raises(UsageError, match="announces jurisdiction CH, not DE"):
            run(vault.fleet.add_provider("zurich", node.url, jurisdiction="de"))
        assert [r.name for r in vault.catalog.providers() if r.name == "zurich"] == []
        out = run(vault.fleet.add_provider("zurich", node.url))
        assert out.jurisdiction == "CH" and out.domain == "127.0.0.1"
        out = run(
            vault.fleet.add_provider(
                "zurich-de", node.url + "/", jurisdiction="DE", override_jurisdiction=True
            )
        )
        assert out.jurisdiction == "DE"
