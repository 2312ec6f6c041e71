"""Chaos, with real node processes: a vault on 8 nodes and 2 local folders; shares deleted,
bits flipped, a node killed, a node lying in its audit answers. Audit and repair; then
every file reads byte-identical, the policy holds, and the audit named exactly the
providers at fault."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.pack import share_name
from ownvault.engine.health.audit import AuditSample
from ownvault.engine.store.placement import Policy
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.engine.vault import Vault

from ..server.nodes import Node, NodeCluster
from .helpers import Vaults, make_vault, run

JURISDICTIONS = ["CH", "DE", "FR", "IS"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def node_object(node: Node, vault: Vault, name: str) -> Path:
    account = hashlib.sha256(vault.did.encode()).hexdigest()[:32]
    return node.data / "accounts" / account / "objects" / name


def held_by(vault: Vault, provider: str) -> list[str]:
    pid = next(r.id for r in vault.catalog.providers() if r.name == provider)
    out = []
    for pack in vault.catalog.live_packs():
        pack_id = vault.catalog.pack_info(pack)[0]
        out += [
            share_name(DATA_PREFIX, pack_id, s.idx)
            for s in vault.catalog.shares_of(pack)
            if s.provider == pid
        ]
    return out


def flip(path: Path, rnd: random.Random) -> None:
    blob = bytearray(path.read_bytes())
    blob[rnd.randrange(len(blob) - 2000)] ^= 1 << rnd.randrange(8)
    path.write_bytes(bytes(blob))


@pytest.mark.slow
def test_chaos_audit_and_repair(vaults: Vaults, tmp_path: Path, cluster: NodeCluster) -> None:
    rnd = random.Random(6)
    nodes = cluster.start_all(
        [cluster.add(chaos=("lie-audits",)) if i == 1 else cluster.add() for i in range(8)]
    )
    vault = make_vault(tmp_path / "vault", providers=0, k=3, n=6)
    files = {
        f"f{i}.bin": rnd.randbytes(rnd.choice([200_000, 3_000_000, 9_000_000])) for i in range(6)
    }
    vaults.track(vault)
    for i, node in enumerate(nodes):
        run(vault.fleet.add_provider(f"node-{i}", node.url, jurisdiction=JURISDICTIONS[i % 4]))
    for i in range(2):
        run(
            vault.fleet.add_provider(
                f"disk-{i}", (tmp_path / f"disk-{i}").as_uri(), jurisdiction="NL"
            )
        )
    run(vault.fleet.set_policy(Policy(3, 6, max_per_jurisdiction=2)))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    run(vault.files.put([tmp_path / n for n in files]))
    assert run(vault.health.check()).to_json()["policy_ok"]

    # Chaos. node-0 dies; node-1 lies (chaos mode); node-2 loses two shares; node-3
    # and disk-0 rot (a flipped bit each).
    deleted = rnd.sample(held_by(vault, "node-2"), 2)
    for name in deleted:
        node_object(nodes[2], vault, name).unlink()
    flip(node_object(nodes[3], vault, rnd.choice(held_by(vault, "node-3"))), rnd)
    flip(tmp_path / "disk-0" / "objects" / rnd.choice(held_by(vault, "disk-0")), rnd)
    cluster.kill(nodes[0])

    report = run(vault.health.audit(sample=AuditSample(None, 1.0)))
    assert report.at_fault == ["disk-0", "node-1", "node-2", "node-3"]
    assert report.unreachable == ["node-0"]
    by = {p.provider: p for p in report.providers}
    assert (
        by["node-2"].missing_shares == 2 and by["node-3"].failed == 1 and by["disk-0"].failed == 1
    )
    assert by["node-1"].failed == by["node-1"].challenges > 0, by["node-1"]
    assert by["node-1"].method == "node"
    assert by["disk-0"].method == "ranges"
    assert all(by[n].verdict == "ok" for n in ("node-4", "node-5", "node-6", "node-7", "disk-1"))

    repaired = run(vault.health.repair())
    assert repaired.lost == [] and repaired.failures == []
    assert repaired.shares_verified_ok == len(held_by(vault, "node-1"))  # the liar's data is fine
    assert repaired.unreachable == ["node-0"] and held_by(vault, "node-0") == []

    for name, data in files.items():
        run(vault.files.get(name, tmp_path / "out" / name))
        assert (tmp_path / "out" / name).read_bytes() == data
    check = run(vault.health.deep_check()).to_json()
    assert check["policy_ok"] and check["healthy"] and check["shares_bad"] == 0, check["bad"]
    again = run(vault.health.audit())
    assert again.at_fault == ["node-1"]  # still lying
    # Its shares stay suspect (reads verify, proofs do not): status says so and what to do.
    status = run(vault.health.status()).to_json()
    assert status["providers_failing_audits"] == ["node-1"] and status["pieces_lost"] == 0
    assert 1 <= status["known_bad_shares"] <= len(held_by(vault, "node-1"))
    assert any("provider rm" in line for line in status["advice"])
