"""The journal on real storage-node processes (loopback): two devices, one node enough,
and an append that could not write enough copies, adopted and completed by the next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.journalops import Tag
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.journalstore import JournalStore, record_name
from ownvault.errors import DataUnavailableError

from ..server.nodes import NodeCluster
from .helpers import FAST_KDF, PASS, Vaults, run


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def names_on(store: JournalStore, pid: int) -> set[str]:
    async def go() -> set[str]:
        return {o.name async for o in store.host.store.providers[pid].list("journal/")}

    return run(go())


@pytest.mark.slow
def test_two_devices_on_storage_nodes(vaults: Vaults, tmp_path: Path, cluster: NodeCluster) -> None:
    nodes = cluster.start_many(3)
    a = vaults.create(tmp_path / "a", providers=0, k=1, n=3)
    for i, node in enumerate(nodes):
        run(a.fleet.add_provider(f"node-{i}", node.url))
    run(a.snapshot())
    run(recover_vault(tmp_path / "b", a.keys.entropy, PASS, [nodes[0].url], kdf=FAST_KDF))
    b = vaults.open(tmp_path / "b")
    ja, jb = JournalStore(a.ctx), JournalStore(b.ctx)
    run(ja.enroll())
    # a's certificate and its setup (one settings record per node added) were read by
    # the recovery: count from there.
    base = a.catalog.journal.head(ja.device.id).seq
    run(ja.append(ja.device, ja.body([Tag("n", "1")])))
    assert [r.seq for r in run(jb.pull())] == [base + 1]
    assert [r.device for r in run(ja.pull())] == [jb.device.id]
    for pid in a.ctx.store.providers:  # a whole copy of every record on every node
        assert record_name(jb.device.id, 1) in names_on(ja, pid)

    # Two nodes down: b still pulls everything a wrote from the one left...
    cluster.kill(nodes[1])
    cluster.kill(nodes[2])
    with pytest.raises(DataUnavailableError, match="1 of 3 copies written, 2 needed"):
        run(ja.append(ja.device, ja.body([Tag("n", "3")])))
    warnings: list[str] = []
    b.warn = warnings.append
    got = run(jb.pull())
    # ...the record whose append failed included: it is on node-0, signed, linked.
    assert [(r.seq, r.ops) for r in got] == [(base + 2, (Tag("n", "3"),))]
    assert sum("cannot be listed" in w for w in warnings) == 2

    # Back up: a's next append adopts its own record and completes its copies.
    cluster.restart(nodes[1])
    cluster.restart(nodes[2])
    rec = run(ja.append(ja.device, ja.body([Tag("n", "4")])))
    assert rec.seq == base + 3 and a.catalog.journal.head(ja.device.id).seq == base + 3
    for pid in a.ctx.store.providers:
        assert {record_name(ja.device.id, s) for s in (base + 2, base + 3)} <= names_on(ja, pid)
    assert [r.seq for r in run(jb.pull())] == [base + 3]
