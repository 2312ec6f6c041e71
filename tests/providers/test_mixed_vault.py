"""One vault over every kind of provider: n=6 shares on 2 local folders, 2 storage nodes and
2 Ceph RADOS gateways; losing any 3 of them (processes killed, folder gone) loses nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..engine.helpers import Vaults, run, tree_state, write_random_tree
from ..server.nodes import NodeCluster
from .ceph import CephCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


@pytest.mark.slow
def test_any_three_of_six_mixed_providers_can_vanish(
    vaults: Vaults,
    tmp_path: Path,
    cluster: NodeCluster,
    ceph: CephCluster,
    s3_credentials: tuple[str, str],
) -> None:
    access_env, secret_env = s3_credentials
    nodes = cluster.start_many(2)
    endpoints = ceph.endpoints
    src = tmp_path / "src"
    write_random_tree(src, 21, 25, 1_500_000)
    vault = vaults.create(tmp_path / "vault", providers=0, k=3, n=6)
    run(vault.fleet.add_provider("disk-a", (tmp_path / "disk-a").as_uri(), jurisdiction="CH"))
    run(vault.fleet.add_provider("disk-b", (tmp_path / "disk-b").as_uri(), jurisdiction="DE"))
    run(vault.fleet.add_provider("node-a", nodes[0].url, jurisdiction="FR"))
    run(vault.fleet.add_provider("node-b", nodes[1].url, jurisdiction="IS"))
    for i, name in enumerate(("s3-a", "s3-b")):
        bucket = ceph.new_bucket()
        run(
            vault.fleet.add_provider(
                name,
                f"s3://{bucket}/ownvault",
                jurisdiction=["NL", "SE"][i],
                config={
                    "endpoint": endpoints[i],
                    "region": "us-east-1",
                    "access_key_env": access_env,
                    "secret_key_env": secret_env,
                },
            )
        )
    kinds = {p.name: p.kind for p in run(vault.fleet.provider_status())}
    assert sorted(kinds.values()) == ["local", "local", "node", "node", "s3", "s3"]
    run(vault.files.put([src]))
    names = {r.id: r.name for r in vault.catalog.providers()}
    for pack in vault.catalog.live_packs():
        assert sorted(names[s.provider] for s in vault.catalog.shares_of(pack)) == sorted(kinds)

    def lose(name: str) -> Callable[[], None]:
        """Make a provider vanish; return how to bring it back."""
        if name.startswith("disk"):
            folder = tmp_path / name
            folder.rename(folder.with_suffix(".gone"))
            return lambda: folder.with_suffix(".gone").rename(folder)
        if name.startswith("node"):
            node = nodes[0 if name == "node-a" else 1]
            cluster.kill(node)
            return lambda: cluster.restart(node) and None
        gw = 0 if name == "s3-a" else 1
        ceph.kill_gateway(gw)
        return lambda: ceph.restart_gateway(gw)

    for lost in (
        ("disk-a", "node-a", "s3-a"),
        ("node-a", "node-b", "s3-b"),
        ("s3-a", "s3-b", "disk-b"),
        ("disk-a", "disk-b", "node-b"),
    ):
        back = [lose(n) for n in lost]
        out = tmp_path / ("out-" + "-".join(lost))
        run(vault.files.get("src", out))
        assert tree_state(out) == tree_state(src), lost
        report = run(vault.health.check()).to_json()
        assert report["readable"] and not report["healthy"]
        assert {m["provider"] for f in report["files"] for m in f["missing"]} == set(lost)
        for b in back:
            b()
        shutil.rmtree(out)
    assert run(vault.health.check()).to_json()["healthy"]
