"""``share`` warns when the recipient could not read the grant from another machine: the
packs it covers have fewer than k shares on remote providers (only local folders here). A
vault on real storage node processes, k shares of every pack on nodes, is not warned about."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_keys import js, ov
from tests.server.nodes import NodeCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def _with_bob(tmp_path: Path, home: Path) -> None:
    bob = tmp_path / "bob"
    ov(bob, "init", "--providers", "2", "--k", "1", "--phrase-file", str(tmp_path / "bob-phrase"))
    ov(bob, "identity", "--name", "Bob", "--card", str(tmp_path / "bob.json"))
    ov(home, "contacts", "add", str(tmp_path / "bob.json"))
    (tmp_path / "report.txt").write_text("quarterly figures\n" * 100)
    ov(home, "put", str(tmp_path / "report.txt"))


def test_share_from_local_folders_only_warns_and_names_them(tmp_path: Path) -> None:
    home = tmp_path / "alice"
    ov(home, "init", "--phrase-file", str(tmp_path / "phrase"))  # 6 folders, k=3
    _with_bob(tmp_path, home)
    p = ov(home, "share", "report.txt", "--to", "Bob", "--json")
    [warning] = js(p)["warnings"]
    assert warning.startswith("1 of the 1 pack(s) this grant covers have fewer than k shares")
    folders = ", ".join(f"local-{i}" for i in range(1, 7))
    assert f"reads them only from {folders} (local folders on this machine)." in warning
    assert "ownvault provider add" in warning
    assert "warning: 1 of the 1 pack(s)" in p.stderr
    # Not refused: the grant exists, and Bob on this same machine opens it.
    assert js(p)["token"].startswith("ovgrant1:")
    human = ov(home, "share", "report.txt", "--to", "Bob")
    assert human.stderr.count("fewer than k shares") == 1


def test_share_with_k_shares_of_every_pack_on_nodes_does_not_warn(
    tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(3)
    home = tmp_path / "alice"
    ov(home, "init", "--providers", "2", "--k", "1", "--phrase-file", str(tmp_path / "phrase"))
    for i, node in enumerate(nodes):
        ov(home, "provider", "add", f"node-{i}", node.url)
    # Mixed: 5 shares over the 3 nodes and the 2 folders, k=4: the nodes hold only 3.
    ov(home, "policy", "set", "--k", "4", "--n", "5")
    _with_bob(tmp_path, home)
    mixed = js(ov(home, "share", "report.txt", "--to", "Bob", "--json"))["warnings"]
    assert len(mixed) == 1
    assert (
        "from local-1, local-2 (local folders on this machine) together with node-0, "
        "node-1, node-2." in mixed[0]
    )

    ov(home, "policy", "set", "--k", "2", "--n", "3")
    ov(home, "rebalance")
    ov(home, "provider", "rm", "local-1")
    ov(home, "provider", "rm", "local-2")
    p = ov(home, "share", "report.txt", "--to", "Bob", "--json")
    assert js(p)["warnings"] == []
    assert "fewer than k shares" not in p.stderr
