"""Eight real nodes on loopback: jurisdictions, kill -9, restart, retry across a restart."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from ownvault.errors import ProviderUnavailableError
from ownvault.providers.node import NodeProvider, SeedSigner
from ownvault.providers.wrappers import RetryingProvider
from tests.providers.contract import run
from tests.server.nodes import NodeCluster

JURISDICTIONS = ["CH", "DE", "FR", "NL", "SE", "IS", "NO", "AT"]


def test_eight_nodes_kill_and_restart(tmp_path: Path) -> None:
    me = SeedSigner.generate()
    with NodeCluster(tmp_path) as cluster:
        nodes = cluster.start_many(8, jurisdictions=JURISDICTIONS)
        assert len({n.port for n in nodes}) == 8
        assert len({n.node_id for n in nodes}) == 8
        providers = [NodeProvider(n.url, me, connect_timeout=1) for n in nodes]
        shares = {i: os.urandom(50_000 + i) for i in range(8)}

        async def spread() -> list[str | None]:
            async with asyncio.TaskGroup() as tg:
                for i, p in enumerate(providers):
                    tg.create_task(p.put(f"shares/x.{i}", shares[i]))
            infos = [await p.node_info() for p in providers]
            return [info.jurisdiction for info in infos]

        assert run(spread()) == JURISDICTIONS

        victim = nodes[3]
        cluster.kill(victim)
        assert not victim.alive
        with pytest.raises(ProviderUnavailableError):
            run(providers[3].get("shares/x.3"))
        # The others are unaffected.
        for i in (0, 7):
            assert run(providers[i].get(f"shares/x.{i}")) == shares[i]

        cluster.restart(victim)
        assert victim.alive
        assert run(providers[3].get("shares/x.3")) == shares[3]
        for p in providers:
            run(p.close())


def test_retry_rides_over_a_restart(tmp_path: Path) -> None:
    me = SeedSigner.generate()
    with NodeCluster(tmp_path) as cluster:
        node = cluster.start(cluster.add())
        cluster.kill(node)
        restarter = threading.Timer(0.3, cluster.restart, args=(node,))
        restarter.start()
        p = RetryingProvider(
            NodeProvider(node.url, me, connect_timeout=1), attempts=12, base_delay=0.2, max_delay=1
        )
        try:
            run(p.put("late", b"made it"))
            assert run(p.get("late")) == b"made it"
        finally:
            restarter.join()
            run(p.close())
