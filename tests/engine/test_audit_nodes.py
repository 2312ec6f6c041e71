"""Audits against real storage nodes: the /v1/audit endpoint, lying and block-dropping
nodes, and the detection probability the docs state, measured over many audits."""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ownvault.cli import run_cli
from ownvault.core.merkle import verify_proof
from ownvault.core.pack import ShareLayout, share_name
from ownvault.engine.health.audit import DEFAULT_BLOCKS, AuditSample, audit, detection_probability
from ownvault.engine.store.shares import DATA_PREFIX
from ownvault.engine.vault import Vault
from ownvault.errors import ProviderPermanentError
from ownvault.providers.node import NodeProvider, SeedSigner
from ownvault.server.node import chaos_dropped

from ..server.nodes import NodeCluster
from .helpers import Vaults, make_vault, run


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


def node_vault(tmp_path: Path, urls: list[str], k: int, n: int, size: int) -> Vault:
    vault = make_vault(tmp_path / "vault", providers=0, k=k, n=n)
    for i, url in enumerate(urls):
        run(vault.fleet.add_provider(f"node-{i}", url))
    (tmp_path / "f.bin").write_bytes(random.Random(7).randbytes(size))
    run(vault.files.put([tmp_path / "f.bin"]))
    return vault


@pytest.mark.slow
def test_endpoint_honest_liar_and_protocol_errors(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    honest, liar, spare = cluster.start_all(
        [cluster.add(), cluster.add(chaos=("lie-audits",)), cluster.add()]
    )
    vault = node_vault(tmp_path, [honest.url, liar.url, spare.url], 1, 3, 3_000_000)
    vaults.track(vault)
    report = run(vault.health.audit())
    by = {p.provider: p for p in report.providers}
    assert by["node-0"].method == "node" and by["node-0"].verdict == "ok"
    assert by["node-1"].failed == by["node-1"].challenges > 0 and report.at_fault == ["node-1"]
    assert "proof does not verify" in by["node-1"].faults[0].detail
    # A proof is a few KB per block, whatever the share size.
    assert by["node-0"].bytes < by["node-0"].challenges * (16384 + 1024) + 4096
    # The liar serves honest reads: the file reads back, repair verifies and keeps its share.
    run(vault.files.get("f.bin", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == (tmp_path / "f.bin").read_bytes()
    rep = run(vault.health.repair())
    assert rep.shares_verified_ok == 1 and rep.shares_regenerated == 0

    # The raw endpoint: answers verify against the catalog's root.
    [pack] = vault.catalog.live_packs()
    pack_id = vault.catalog.pack_info(pack)[0]
    row = vault.catalog.shares_of(pack)[0]
    layout = ShareLayout.for_total(row.size)
    node = NodeProvider(honest.url, vault.keys)
    name = share_name(DATA_PREFIX, pack_id, 0)
    answers = run(
        node.prove(
            [(name, 0), (name, layout.blocks - 1), (name, layout.blocks), ("shares/no/such.0", 0)]
        )
    )
    assert [a.status for a in answers] == [0, 0, 3, 1]
    assert verify_proof(row.root, layout.data_len, 0, answers[0].block, list(answers[0].path))
    # Signed like every /v1/ call; a malformed body is refused.
    assert httpx.post(honest.url + "/v1/audit", json={"challenges": []}).status_code == 401
    with pytest.raises(ProviderPermanentError, match="bad_request"):
        run(_post(honest.url, b'{"challenges": 3}'))
    # Another account sees nothing of this one's shares.
    other = run(NodeProvider(honest.url, SeedSigner.generate()).prove([(name, 0)]))
    assert other[0].status == 1


async def _post(url: str, body: bytes) -> None:
    node = NodeProvider(url, SeedSigner.generate())
    # A raw, signed body the public client never sends, classified as the client would.
    status, _h, answer = await node._send("POST", "/v1/audit", body)  # noqa: SLF001
    raise node._error(status, answer, None)  # noqa: SLF001


@pytest.mark.slow
def test_dropping_node_is_caught_as_often_as_the_docs_say(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    """A node that silently lost 10 % of its blocks, audited again and again.

    The docs claim: an audit of c blocks detects it with probability >= 1 - (1-f)^c
    (exactly 1 - C(N-d, c)/C(N, c) for d lost blocks out of N). Checked at the default
    c = 64 (claimed >= 99.88 %) and at c = 8, where misses are common enough to measure.
    """
    honest, dropper = cluster.start_all([cluster.add(), cluster.add(chaos=("drop-blocks=0.1",))])
    vault = node_vault(tmp_path, [honest.url, dropper.url], 1, 2, 12_000_000)
    vaults.track(vault)
    blocks = []
    for pack in vault.catalog.live_packs():
        pack_id = vault.catalog.pack_info(pack)[0]
        for s in vault.catalog.shares_of(pack):
            if s.provider == 2:
                name = share_name(DATA_PREFIX, pack_id, s.idx)
                blocks += [
                    chaos_dropped(name, i, 0.1) for i in range(ShareLayout.for_total(s.size).blocks)
                ]
    total, lost = len(blocks), sum(blocks)
    assert 0.07 < lost / total < 0.13, (lost, total)

    def exact(c: int) -> float:
        return 1 - math.comb(total - lost, c) / math.comb(total, c)

    rng = random.Random(2026)  # reproducible here; audits use the OS CSPRNG by default

    async def audits(c: int, count: int) -> int:
        caught = 0
        for _ in range(count):
            r = await audit(
                vault, providers=["node-1"], sample=AuditSample(c), rng=rng, record=False
            )
            p = r.providers[0]
            assert p.passed + p.failed == c and p.unreachable == 0
            caught += p.failed > 0
        return caught

    def trials(c: int, count: int) -> int:
        return run(audits(c, count))

    # Default audit: claimed >= 99.88 %; 60 audits, at most 1 miss (P(>= 2 misses) < 0.3 %).
    assert detection_probability(DEFAULT_BLOCKS, 0.1) > 0.998
    assert trials(DEFAULT_BLOCKS, 60) >= 59
    # c = 8: the detection rate is measured and matches the formula within 4 sigma.
    count, p = 300, exact(8)
    caught = trials(8, count)
    sigma = math.sqrt(count * p * (1 - p))
    assert abs(caught - count * p) < 4 * sigma, (caught, count * p, sigma)
    assert p >= detection_probability(8, lost / total) - 1e-9
    # A recorded audit blames the dropper only, and reads of its data fail verification.
    report = run(vault.health.audit())
    assert report.at_fault == ["node-1"]


@pytest.mark.slow
def test_chaos_mode_arguments_are_checked(tmp_path: Path) -> None:

    for bad in ["drop-blocks", "drop-blocks=2", "lie-audits=1", "drop-blocks=x"]:
        assert run_cli(["node", "serve", "--data", str(tmp_path / "d"), "--chaos", bad]) == 2
    assert os.path.exists(tmp_path) and not chaos_dropped("x", 0, 0.0)
