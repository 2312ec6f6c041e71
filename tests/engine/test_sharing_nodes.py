"""Grants over storage nodes: the recipient reads the owner's shares with a read capability.

Real node processes on loopback: a vault on 6 nodes (k=3, n=6) shares a file with a second
vault, which reads it byte-identical through the nodes; forged, foreign, expired and
over-reaching uses of the capability are refused and change nothing; after ``revoke`` the
nodes refuse the old grant's capability.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.capability import CAPABILITY_OPS, ReadCapability
from ownvault.core.grants import Grant
from ownvault.engine.sharing.reader import GrantReader, open_grant
from ownvault.errors import GrantRevokedError, ProviderPermanentError
from ownvault.providers.node import NodeProvider, SeedSigner, Signer

from ..server.nodes import Node, NodeCluster
from .helpers import Vaults, run


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path / "nodes") as c:
        yield c


async def read_all(reader: GrantReader, name: str) -> bytes:
    return b"".join([piece async for piece in reader.read(name)])


async def names(
    node: Node, signer: Signer, prefix: str, capability: str | None = None
) -> list[str]:
    p = NodeProvider(node.url, signer, capability=capability)
    try:
        return [o.name async for o in p.list(prefix)]
    finally:
        await p.close()


async def attempt(node: Node, signer: Signer, capability: str | None, op: str, name: str) -> object:
    p = NodeProvider(node.url, signer, capability=capability)
    try:
        if op == "get":
            return await p.get(name)
        if op == "stat":
            return await p.stat(name)
        if op == "list":
            return [o.name async for o in p.list(name)]
        if op == "put":
            return await p.put(name, b"not yours")
        if op == "delete":
            return await p.delete(name)
        if op == "info":
            return await p.info()
        raise AssertionError(op)
    finally:
        await p.close()


def refused(
    node: Node, signer: Signer, capability: str | None, op: str, name: str, code: str
) -> None:
    with pytest.raises(ProviderPermanentError, match=code):
        run(attempt(node, signer, capability, op, name))


@pytest.mark.slow
def test_grant_over_nodes_with_read_capability(
    vaults: Vaults, tmp_path: Path, cluster: NodeCluster
) -> None:
    nodes = cluster.start_many(6)
    alice = vaults.create(tmp_path / "alice", providers=0, k=3, n=6)
    bob = vaults.create(tmp_path / "bob", providers=3, k=1, n=2)
    mallory = SeedSigner.generate()
    for i, node in enumerate(nodes):
        run(alice.fleet.add_provider(f"node-{i}", node.url))
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "report.bin").write_bytes(data)
    (tmp_path / "private.bin").write_bytes(os.urandom(100_000))
    run(alice.files.put([tmp_path / "report.bin"]))
    run(alice.files.put([tmp_path / "private.bin"]))
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    info = run(alice.sharing.share(names=["report.bin"], to="bob", expires=int(time.time()) + 3600))
    grant = Grant.parse(info.token)
    assert grant.capability is not None
    cap = ReadCapability.parse(grant.capability)
    gid = grant.id_hex
    assert (cap.account, cap.reader, cap.grant, cap.node) == (alice.did, bob.did, gid, "*")
    assert cap.prefixes == (f"grants/{gid}/", "shares/") and cap.list_prefixes == (
        f"grants/{gid}/",
    )

    # The recipient reads through the nodes, byte-identical.
    reader = run(open_grant(bob.keys, info.token))
    try:
        assert run(read_all(reader, "report.bin")) == data
    finally:
        run(reader.close())

    node = nodes[0]
    owned = run(names(node, alice.keys, "shares/"))
    assert owned
    share = owned[0]
    assert run(attempt(node, bob.keys, grant.capability, "stat", share))
    assert run(names(node, bob.keys, f"grants/{gid}/", grant.capability)) == [
        f"grants/{gid}/m.00000000"
    ]
    before = {n.index: sorted(run(names(n, alice.keys, ""))) for n in nodes}

    # Tampered: one character of the signed body changed.
    body, sig = grant.capability.split(".")
    flipped = body[:40] + ("A" if body[40] != "A" else "B") + body[41:]
    refused(node, bob.keys, f"{flipped}.{sig}", "get", share, "bad_capability")
    # Re-signed by someone else for the same account: the owner's signature is missing.
    forged = ReadCapability(
        alice.did, mallory.did, "*", gid, None, CAPABILITY_OPS, ("shares/",), ()
    )
    with pytest.raises(Exception, match="signed by the account"):
        forged.sign(mallory)
    # A third key presenting Bob's capability.
    refused(node, mallory, grant.capability, "get", share, "capability_denied")
    # Writes, deletes, info, listing outside the grant's folder: refused.
    refused(node, bob.keys, grant.capability, "put", "shares/00/evil.0", "capability_denied")
    refused(
        node, bob.keys, grant.capability, "put", f"grants/{gid}/m.00000001", "capability_denied"
    )
    refused(node, bob.keys, grant.capability, "delete", share, "capability_denied")
    refused(node, bob.keys, grant.capability, "info", "", "capability_denied")
    refused(node, bob.keys, grant.capability, "list", "shares/", "capability_denied")
    refused(node, bob.keys, grant.capability, "list", "", "capability_denied")
    refused(node, bob.keys, grant.capability, "get", "catalog/locator", "capability_denied")
    # Expired, and bound to another node.
    expired = ReadCapability(
        alice.did, bob.did, "*", gid, int(time.time()) - 1, CAPABILITY_OPS, ("shares/",), ()
    ).sign(alice.keys)
    refused(node, bob.keys, expired, "get", share, "capability_expired")
    elsewhere = ReadCapability(
        alice.did, bob.did, nodes[1].node_id, gid, None, ("get",), ("shares/",), ()
    ).sign(alice.keys)
    refused(node, bob.keys, elsewhere, "get", share, "capability_denied")
    here = ReadCapability(
        alice.did, bob.did, node.node_id, gid, None, ("get",), ("shares/",), ()
    ).sign(alice.keys)
    assert run(attempt(node, bob.keys, here, "get", share))
    refused(node, bob.keys, here, "stat", share, "capability_denied")  # op not granted
    # Nothing changed on any node; Bob's own account got nothing of Alice's.
    assert {n.index: sorted(run(names(n, alice.keys, ""))) for n in nodes} == before
    assert run(names(node, bob.keys, "")) == []

    # Revocation: the nodes refuse the old capability; the grant opens nothing.
    run(alice.sharing.revoke(gid))
    with pytest.raises(GrantRevokedError):
        run(open_grant(bob.keys, info.token))
    refused(node, bob.keys, grant.capability, "get", share, "capability_revoked|object_not_found")
    (tmp_path / "later.bin").write_bytes(os.urandom(50_000))
    run(alice.files.put([tmp_path / "later.bin"]))
    for name in run(names(node, alice.keys, "shares/")):
        refused(node, bob.keys, grant.capability, "get", name, "capability_revoked")
    assert run(names(node, bob.keys, f"grants/{gid}/", grant.capability)) == [
        f"grants/{gid}/revoked"
    ]
