"""Degraded writes against real storage node processes (docs/design.md, "Degraded writes").

A put succeeds while at least ``happy`` shares of each piece can be placed, records the
missing ones (``catalog.underrep``) and says so; below ``happy`` it fails naming the nodes
that are down and leaves nothing visible; repair (and the maintenance loop) completes the
pieces once a node is back or a new one is added; ``kill -9`` during a degraded put, during
the completion and during a snapshot write loses nothing and the next run finishes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.pack import share_name
from ownvault.engine.maintenance import MaintenanceConfig, maintain
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.engine.vault import Vault
from ownvault.errors import ProviderError

from ..server.apiserver import serve
from ..server.nodes import Node, NodeCluster
from .helpers import PASS, Vaults, make_vault, run
from .test_crash import cli, kill_after, wait_ok


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def node_vault(path: Path, nodes: list[Node]) -> Vault:
    """k=3, n=6 over the nodes, happy left at its default (n-1 = 5)."""
    vault = make_vault(path, providers=0, k=3, n=6)
    for i, node in enumerate(nodes):
        run(vault.fleet.add_provider(f"node-{i}", node.url))
    return vault


async def read_all(vault: Vault, name: str) -> bytes:
    return b"".join([piece async for piece in vault.files.read(name)])


async def holders_ok(vault: Vault) -> list[int]:
    """Every live share the catalog names is on its provider with its size; returns the
    number of shares of each live pack."""
    cat = vault.catalog
    counts = []
    for pack in cat.live_packs():
        pack_id, *_ = cat.pack_info(pack)
        rows = cat.shares_of(pack)
        for s in rows:
            info = await vault.ctx.store.providers[s.provider].stat(
                share_name(DATA_PREFIX, pack_id, s.idx)
            )
            assert info.size == s.size
        assert len({s.provider for s in rows}) == len(rows)
        counts.append(len(rows))
    return counts


def test_put_with_a_node_down_is_recorded_and_repair_completes_it(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    vault = vaults.track(node_vault(tmp_path / "vault", nodes))
    data = os.urandom(3_000_000)
    (tmp_path / "f.bin").write_bytes(data)
    cluster.kill(nodes[2])

    [res] = run(vault.files.put([tmp_path / "f.bin"]))
    assert res.under_replicated, "the put must say which pieces are short"
    assert all(u["placed"] == 5 and u["wanted"] == 6 for u in res.under_replicated)
    assert res.to_json()["under_replicated"] == list(res.under_replicated)
    cat = vault.catalog
    assert cat.underrep.count() == len(res.under_replicated) + 1  # + the catalog snapshot
    assert cat.underrep.snapshot_missing() == 1
    assert run(holders_ok(vault)) == [5] * len(cat.live_packs())
    assert run(read_all(vault, "f.bin")) == data
    assert run(vault.health.status()).to_json()["pieces_under_replicated"] == cat.underrep.count()
    assert run(vault.health.check()).to_json()["pieces_under_replicated"] == cat.underrep.count()
    health = run(vault.health.status()).to_json()["health"]
    assert health["state"] == "degraded"
    assert any("written while providers were down" in r for r in health["reasons"])

    # Still down: repair leaves the record (nothing else can take a 6th share).
    rep = run(vault.health.repair())
    assert rep.shares_completed == 0 and rep.under_replicated_left == cat.underrep.count() > 0

    cluster.restart(nodes[2])
    rep = run(vault.health.repair())
    assert rep.shares_completed == len(res.under_replicated)
    assert rep.snapshot_rewritten and not rep.failures
    assert cat.underrep.count() == 0 and rep.under_replicated_left == 0
    assert run(vault.health.status()).to_json()["pieces_under_replicated"] == 0
    assert run(holders_ok(vault)) == [6] * len(cat.live_packs())
    # The node that came back holds its share of every pack now: readable without two others.
    cluster.kill(nodes[0])
    cluster.kill(nodes[1])
    assert run(read_all(vault, "f.bin")) == data


def test_put_below_happy_fails_naming_the_nodes_and_stores_nothing(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    vault = vaults.track(node_vault(tmp_path / "vault", nodes))
    (tmp_path / "f.bin").write_bytes(os.urandom(2_000_000))
    cluster.kill(nodes[1])
    cluster.kill(nodes[4])
    with pytest.raises(ProviderError) as info:
        run(vault.files.put([tmp_path / "f.bin"]))
    message = str(info.value)
    assert "node-1 (" in message and "node-4 (" in message, message
    assert "at least 5 are needed" in message
    assert info.value.exit_code == 6
    assert run(vault.files.ls()).objects == []
    assert vault.catalog.pending_packs() == [] and vault.catalog.live_packs() == []
    assert vault.catalog.underrep.count() == 0

    async def stored_shares() -> int:
        found = 0
        for pid, p in vault.ctx.store.providers.items():
            if vault.ctx.store.names[pid] in ("node-1", "node-4"):
                continue
            found += len([o async for o in p.list(DATA_PREFIX + "/")])
        return found

    assert run(stored_shares()) == 0


def test_a_new_node_takes_the_missing_shares(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    vault = vaults.track(node_vault(tmp_path / "vault", nodes))
    (tmp_path / "f.bin").write_bytes(os.urandom(2_000_000))
    cluster.kill(nodes[5])
    [res] = run(vault.files.put([tmp_path / "f.bin"]))
    assert res.under_replicated
    [extra] = cluster.start_many(1)
    run(vault.fleet.add_provider("node-6", extra.url))
    rep = run(vault.health.repair())
    assert rep.shares_completed == len(res.under_replicated)
    assert vault.catalog.underrep.count() == 0
    new = next(r.id for r in vault.catalog.providers() if r.name == "node-6")
    for pack in vault.catalog.live_packs():
        assert new in {s.provider for s in vault.catalog.shares_of(pack)}


def test_the_maintenance_loop_completes_when_the_node_returns(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    vault = vaults.track(node_vault(tmp_path / "vault", nodes))
    (tmp_path / "f.bin").write_bytes(os.urandom(1_000_000))
    cluster.kill(nodes[3])
    [res] = run(vault.files.put([tmp_path / "f.bin"]))
    assert res.under_replicated
    cluster.restart(nodes[3])

    async def no_sleep(_seconds: float) -> None:
        return None

    config = MaintenanceConfig(first_delay=0.0, unreachable_grace=None)
    state = run(
        maintain(
            vault.ctx,
            config,
            rounds=1,
            rng=random.Random(7),
            sleep=no_sleep,
            clock=lambda: 1_800_000_000.0,  # time stands still: only the hook makes repair due
        )
    )
    assert state.repairs == 1, state.last_error
    assert state.last_repair is not None
    assert state.last_repair["shares_completed"] == len(res.under_replicated)
    assert vault.catalog.underrep.count() == 0


def _open_check(vault_path: Path, data: dict[str, bytes]) -> tuple[int, dict[str, str]]:
    """Open the vault: every visible file reads back, every share the catalog names exists,
    every live pack has at least happy (5) shares. Returns (under-replicated pieces, meta)."""
    vault = Vault.open(vault_path, PASS)
    try:
        assert all(c >= 5 for c in run(holders_ok(vault)))
        for o in run(vault.files.ls()).objects:
            assert run(read_all(vault, o.name)) == data[o.name]
        run(holders_ok(vault))
        meta = {k: vault.catalog.meta(k) or "" for k in ("seq", "snapshot_seq")}
        # What a killed writer owes the providers: a snapshot (the settings/places mark).
        meta["unpushed"] = "1" if vault.catalog.jns.settings_changed() else "0"
        return vault.catalog.underrep.count(), meta
    finally:
        run(vault.close())


# A real process that runs one vault operation and stops for good right after the first
# object under PREFIX is durably written (so the test can kill -9 it at that exact point).
HOLD_AFTER_WRITE = """
import asyncio, sys
from pathlib import Path
from ownvault.engine.store.shares import ShareStore
from ownvault.engine.vault import Vault

vault_path, op, arg, prefix, marker = sys.argv[1:6]
real = ShareStore.put_share

async def put_share(self, provider, name, data, **kw):
    await real(self, provider, name, data, **kw)
    if name.startswith(prefix):
        Path(marker).write_text(name)
        await asyncio.sleep(3600)

ShareStore.put_share = put_share

async def main():
    vault = Vault.open(vault_path, sys.argv[6])
    if op == "put":
        await vault.files.put([arg])
    else:
        await vault.health.repair()

asyncio.run(main())
"""


def kill_at_first_write(vault_path: Path, op: str, arg: str, prefix: str, tmp: Path) -> str:
    """Run ``op`` in a process, kill -9 it once its first write under ``prefix`` is
    durable; returns that object's name."""
    marker = tmp / f"marker-{os.urandom(4).hex()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_AFTER_WRITE,
            str(vault_path),
            op,
            arg,
            prefix,
            str(marker),
            PASS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the operation never wrote under " + prefix
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    return marker.read_text()


@pytest.mark.slow
def test_kill_9_during_degraded_put_completion_and_snapshot(
    tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    vault_path = tmp_path / "vault"
    run(node_vault(vault_path, nodes).close())
    rnd = random.Random(14)
    data = {f"f{i}.bin": rnd.randbytes(6_000_000) for i in range(5)}
    data["h.bin"] = rnd.randbytes(1_000_000)
    for name, blob in data.items():
        (tmp_path / name).write_bytes(blob)
    cluster.kill(nodes[2])

    # An uninterrupted degraded put (CLI, --json) says which pieces are short.
    proc = cli(vault_path, "--json", "put", str(tmp_path / "f0.bin"))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    stored = json.loads(out)["stored"][0]
    assert stored["under_replicated"] and stored["under_replicated"][0]["placed"] == 5
    assert b"under-replicated: pack" not in err  # --json: the document, no human lines
    proc = cli(vault_path, "put", str(tmp_path / "h.bin"))
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and b"under-replicated: pack" in err, err.decode()

    # kill -9 during degraded puts at random moments; the same put run again finishes.
    for name in ("f1.bin", "f2.bin"):
        for delay in (rnd.uniform(0.2, 2.0), rnd.uniform(0.2, 2.0)):
            kill_after(cli(vault_path, "put", str(tmp_path / name)), delay)
            _open_check(vault_path, data)
        wait_ok(cli(vault_path, "put", str(tmp_path / name)), 300)

    # kill -9 in the middle of a degraded pack write (one share durable, the pack pending).
    kill_at_first_write(vault_path, "put", str(tmp_path / "f3.bin"), "shares/", tmp_path)
    _open_check(vault_path, data)
    wait_ok(cli(vault_path, "put", str(tmp_path / "f3.bin")), 300)

    # kill -9 during a snapshot write: the version is committed, its snapshot owed.
    kill_at_first_write(vault_path, "put", str(tmp_path / "f4.bin"), "catalog/", tmp_path)
    count, meta = _open_check(vault_path, data)
    assert meta["unpushed"] == "1" and meta["seq"] != meta["snapshot_seq"], meta
    wait_ok(cli(vault_path, "put", str(tmp_path / "f4.bin")), 300)  # pushes what was owed
    count, meta = _open_check(vault_path, data)
    assert count > 0 and meta["unpushed"] == "0" and meta["seq"] == meta["snapshot_seq"]

    # The node is back: kill -9 the completion right after its first share is durable
    # (its record not yet switched), then at random moments, then let it finish.
    cluster.restart(nodes[2])
    kill_at_first_write(vault_path, "repair", "", "shares/", tmp_path)
    assert _open_check(vault_path, data)[0] > 0
    left = 0
    for _ in range(2):
        kill_after(cli(vault_path, "repair"), rnd.uniform(0.3, 2.5))
        left = _open_check(vault_path, data)[0]
    proc = cli(vault_path, "repair")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    if left:  # the killed runs may have finished the job already
        assert b"share(s) completed, 0 piece(s) still short of n" in out, out.decode()
    count, meta = _open_check(vault_path, data)
    assert count == 0 and meta["unpushed"] == "0"
    vault = Vault.open(vault_path, PASS)
    try:
        assert set(run(holders_ok(vault))) == {6}
        assert {o.name for o in run(vault.files.ls()).objects} == set(data)
    finally:
        run(vault.close())


def test_rebalance_moves_shares_of_an_under_replicated_pack(vaults: Vaults, tmp_path: Path) -> None:
    # 7 folders, n=6, happy=5: two folders gone leave 5, so each pack is written short and
    # has 5 share rows whose indexes are not their positions.
    (tmp_path / "f.bin").write_bytes(os.urandom(1_500_000))
    vault = vaults.track(make_vault(tmp_path / "v", providers=7, n=6))
    for gone in ("local-3", "local-5"):
        shutil.rmtree(tmp_path / "v" / "providers" / gone)
    [res] = run(vault.files.put([tmp_path / "f.bin"]))
    assert res.under_replicated
    run(vault.fleet.add_provider("extra", (tmp_path / "extra").as_uri()))
    cat = vault.catalog
    names = {r.id: r.name for r in cat.providers()}
    pack = cat.live_packs()[0]
    last = max(cat.shares_of(pack), key=lambda s: s.idx)
    # Draining the holder of the highest index moves exactly that share.
    out = run(vault.fleet.remove_provider(names[last.provider]))
    assert out.shares_moved >= 1
    after = {s.idx: names[s.provider] for s in cat.shares_of(pack)}
    assert after[last.idx] not in (names[last.provider], "local-3", "local-5")
    assert run(holders_ok(vault)) == [5] * len(cat.live_packs())
    assert run(read_all(vault, "f.bin")) == (tmp_path / "f.bin").read_bytes()


def test_repair_regenerates_a_lost_share_of_an_under_replicated_pack(
    vaults: Vaults, tmp_path: Path
) -> None:
    (tmp_path / "f.bin").write_bytes(os.urandom(1_500_000))
    vault = vaults.track(make_vault(tmp_path / "v"))
    shutil.rmtree(tmp_path / "v" / "providers" / "local-3")
    [res] = run(vault.files.put([tmp_path / "f.bin"]))
    assert res.under_replicated
    cat = vault.catalog
    rows = {r.id: r for r in cat.providers()}
    pack = cat.live_packs()[0]
    pack_id, *_ = cat.pack_info(pack)
    last = max(cat.shares_of(pack), key=lambda s: s.idx)  # index above its position
    obj = share_name(DATA_PREFIX, pack_id, last.idx)
    (tmp_path / "v" / rows[last.provider].url.removeprefix("file:") / "objects" / obj).unlink()
    rep = run(vault.health.repair())
    assert rep.shares_regenerated == 1 and rep.shares_rewritten_in_place == 1, rep.failures
    assert rep.under_replicated_left == cat.underrep.count() > 0  # local-3 is still gone
    assert run(holders_ok(vault)) == [5] * len(cat.live_packs())


def test_api_put_says_under_replicated_and_policy_carries_happy(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault = vaults.track(make_vault(tmp_path / "v"))
    shutil.rmtree(tmp_path / "v" / "providers" / "local-3")
    data = os.urandom(500_000)
    with serve(vault) as live, live.client() as c:
        r = c.put("/api/v1/files/content", params={"name": "d.bin"}, content=data)
        assert r.status_code == 200, r.text
        [piece] = r.json()["under_replicated"]
        assert piece["placed"] == 5 and piece["wanted"] == 6 and len(piece["missing"]) == 1
        doc = c.get("/api/v1/policy").json()
        assert doc["policy"]["happy"] is None
        doc["policy"]["happy"] = 4
        r = c.put("/api/v1/policy", json=doc["policy"])
        assert r.status_code == 200, r.text
        assert c.get("/api/v1/policy").json()["policy"]["happy"] == 4 == vault.policy.happy
        doc["policy"]["happy"] = 2  # below k
        assert c.put("/api/v1/policy", json=doc["policy"]).status_code in (400, 422)
