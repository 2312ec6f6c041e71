"""The storage network: a vault on real node processes (loopback), placement by
jurisdiction, and surviving node failures mid-put and mid-get."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.engine.store.placement import Policy
from ownvault.engine.vault import Vault
from ownvault.errors import PolicyError, ProviderError

from ..server.nodes import Node, NodeCluster
from .helpers import Vaults, make_vault, run

JURISDICTIONS = ["CH", "DE", "FR", "IS"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def network_vault(tmp_path: Path, nodes: list[Node], **policy: object) -> Vault:
    vault = make_vault(tmp_path / "vault", providers=0, k=3, n=6)
    for i, node in enumerate(nodes):
        run(vault.fleet.add_provider(f"node-{i}", node.url, jurisdiction=JURISDICTIONS[i % 4]))
    if policy:
        run(vault.fleet.set_policy(Policy(3, 6, **policy)))  # type: ignore[arg-type]
    return vault


def share_regions(vault: Vault) -> list[Counter[str]]:
    rows = {r.id: r for r in vault.catalog.providers(include_removed=True)}
    return [
        Counter(rows[s.provider].jurisdiction or "-" for s in vault.catalog.shares_of(pack))
        for pack in vault.catalog.live_packs()
    ]


@pytest.mark.slow
def test_eight_nodes_policy_failures_and_hedging(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(8)
    data = os.urandom(40 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    vault = network_vault(tmp_path, nodes, max_per_jurisdiction=2, survive_jurisdiction_loss=True)
    vaults.track(vault)
    providers = run(vault.fleet.provider_status())
    assert len(providers) == 8 and all(p.reachable and p.kind == "node" for p in providers)
    run(vault.files.put([tmp_path / "big.bin"]))
    assert all(max(c.values()) <= 2 for c in share_regions(vault))
    assert run(vault.health.check()).to_json()["policy_ok"]

    # Stop a whole jurisdiction (both IS nodes): still readable, byte-identical.
    for i in (3, 7):
        cluster.kill(nodes[i])
    run(vault.files.get("big.bin", tmp_path / "out1"))
    assert (tmp_path / "out1").read_bytes() == data

    # kill -9 a third node in the middle of a get: n-k = 3 nodes down in all.
    async def get_while_killing() -> None:
        task = asyncio.ensure_future(vault.files.get("big.bin", tmp_path / "out2"))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(cluster.kill, nodes[0])
        await task

    run(get_while_killing())
    assert (tmp_path / "out2").read_bytes() == data
    report = run(vault.health.check()).to_json()
    assert report["readable"] and not report["healthy"], report["files"][0]["missing"][:8]
    down = {m["provider"] for f in report["files"] for m in f["missing"]}
    assert down <= {"node-0", "node-3", "node-7"}

    # 5 live nodes in CH(1) DE(2) FR(2), at most 2 per jurisdiction: 5 of 6 shares can be
    # placed, which is the default happy (n-1): a degraded put succeeds and says so.
    (tmp_path / "second.bin").write_bytes(os.urandom(3_000_000))
    [res] = run(vault.files.put([tmp_path / "second.bin"]))
    assert res.under_replicated and all(u["placed"] == 5 for u in res.under_replicated)
    # With happy = n it refuses cleanly, naming the nodes that failed, and nothing becomes
    # visible.
    run(
        vault.fleet.set_policy(
            Policy(3, 6, max_per_jurisdiction=2, survive_jurisdiction_loss=True, happy=6)
        )
    )
    (tmp_path / "third.bin").write_bytes(os.urandom(3_000_000))
    with pytest.raises(ProviderError) as info:
        run(vault.files.put([tmp_path / "third.bin"]))
    message = str(info.value)
    assert "at least 6 are needed" in message and "providers down or failing" in message
    named = {f"node-{i}" for i in range(8) if f"node-{i} (" in message}
    assert named and named <= {"node-0", "node-3", "node-7"}, message
    assert [o.name for o in run(vault.files.ls()).objects] == ["big.bin", "second.bin"]
    assert vault.catalog.pending_packs() == []


@pytest.mark.slow
def test_kill_nodes_mid_put_re_places_shares(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(8)
    data = os.urandom(64 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(data)
    vault = network_vault(tmp_path, nodes)  # k=3, n=6, no jurisdiction rules

    async def put_while_killing() -> None:
        task = asyncio.ensure_future(vault.files.put([tmp_path / "big.bin"]))
        await asyncio.sleep(0.3)
        for i in (1, 4):
            await asyncio.to_thread(cluster.kill, nodes[i])
        await task

    vaults.track(vault)
    run(put_while_killing())
    dead = {"node-1", "node-4"}
    rows = {r.id: r.name for r in vault.catalog.providers()}
    # Every live pack is complete (6 distinct providers), whatever was killed when.
    for pack in vault.catalog.live_packs():
        holders = [rows[s.provider] for s in vault.catalog.shares_of(pack)]
        assert len(set(holders)) == 6
    run(vault.files.get("big.bin", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    # Kill one more (3 = n-k down): still readable.
    cluster.kill(nodes[6])
    run(vault.files.get("big.bin", tmp_path / "out2"))
    assert (tmp_path / "out2").read_bytes() == data
    report = run(vault.health.check()).to_json()
    assert report["readable"]
    missing_at = {m["provider"] for f in report["files"] for m in f["missing"]}
    assert missing_at <= dead | {"node-6"}


@pytest.mark.slow
def test_corrupt_and_hanging_nodes_are_routed_around(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    # Added first, the chaos nodes get share indexes 0 and 1 of the (single) pack: the data
    # shares a read asks for first.
    corrupt = cluster.start(cluster.add(chaos=("corrupt-reads",)))
    hang = cluster.start(cluster.add(chaos=("hang-reads",)))
    nodes = [corrupt, hang, *cluster.start_many(4)]
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "f.bin").write_bytes(data)
    vault = make_vault(tmp_path / "vault", providers=0, k=3, n=6)
    for i, node in enumerate(nodes):
        run(vault.fleet.add_provider(f"node-{i}", node.url, jurisdiction=JURISDICTIONS[i % 4]))
    problems: list[tuple[str, str]] = []
    vault.on_problem = lambda p: problems.append((p.provider, p.kind))
    vaults.track(vault)
    run(vault.files.put([tmp_path / "f.bin"]))
    [pack] = vault.catalog.live_packs()
    names = {r.id: r.name for r in vault.catalog.providers()}
    holders = {s.idx: names[s.provider] for s in vault.catalog.shares_of(pack)}
    assert (holders[0], holders[1]) == ("node-0", "node-1")
    vault.store.hedge_after = 0.5
    t0 = time.monotonic()
    run(vault.files.get("f.bin", tmp_path / "out"))
    elapsed = time.monotonic() - t0
    assert (tmp_path / "out").read_bytes() == data
    assert ("node-0", "corrupt") in problems
    # The hanging node cost about one hedge delay, not a timeout.
    assert elapsed < 10, elapsed


@pytest.mark.slow
def test_policy_change_rebalance_and_provider_rm(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(10)  # IS: node-3, node-7; 8 others
    data = os.urandom(20 * 1024 * 1024)
    (tmp_path / "f.bin").write_bytes(data)
    vault = network_vault(tmp_path, nodes)
    vaults.track(vault)
    run(vault.files.put([tmp_path / "f.bin"]))
    result = run(
        vault.fleet.set_policy(
            __import__("ownvault.engine.store.placement", fromlist=["Policy"]).Policy(
                3, 6, exclude=("IS",)
            )
        )
    )
    assert result.packs_out_of_policy >= 0
    report = run(vault.fleet.rebalance())
    assert report.failures == ()
    assert all("IS" not in c for c in share_regions(vault))
    assert run(vault.health.check()).to_json()["policy_ok"]
    # Remove a provider that holds shares: they move first, then it is gone.
    rows = {r.name: r.id for r in vault.catalog.providers()}
    held = vault.catalog.usage.by_provider().get(rows["node-0"], (0, 0))[0]
    out = run(vault.fleet.remove_provider("node-0"))
    assert out.removed and out.shares_moved == held
    assert "node-0" not in [p.name for p in run(vault.fleet.provider_status())]
    # A dead provider's shares are regenerated from the others.
    cluster.kill(nodes[1])
    out = run(vault.fleet.remove_provider("node-1"))
    assert out.shares_regenerated == out.shares_moved
    run(vault.files.get("f.bin", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    check = run(vault.health.check()).to_json()
    assert check["healthy"] and check["policy_ok"]
    # A policy no set of providers can meet is refused with the reason.

    with pytest.raises(PolicyError, match="add providers"):
        run(vault.fleet.set_policy(Policy(3, 6, jurisdictions=("CH",))))
    # --force removal says what becomes unhealthy.
    forced = run(vault.fleet.remove_provider("node-2", force=True))
    assert forced.degraded == ["f.bin"] and forced.unreadable == []
