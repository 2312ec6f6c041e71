"""A provider that comes back with stale data (issue 14): a storage node whose store
directory is restored from an older copy is named by `status` and `check` (the verdict's
``stale_providers``), and the daemon's audit finds its missing shares and its repair puts
them back. Real node processes; the vault through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ownvault.engine.vault import Vault
from tests.engine.helpers import PASS, make_vault, run
from tests.server.nodes import NodeCluster

from .test_cli_tour import js, ov


def test_a_node_restored_from_an_older_copy_is_named_stale(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    with NodeCluster(tmp_path / "nodes") as cluster:
        nodes = cluster.start_many(4, jurisdictions=["DE", "FR", "NL", "CH"])
        v = make_vault(vault, providers=0, k=2, n=4)
        try:
            for i, node in enumerate(nodes):
                run(v.fleet.add_provider(f"node-{i}", node.url))
            (tmp_path / "a.txt").write_bytes(b"a" * 50_000)
            run(v.files.put([tmp_path / "a.txt"], name="a.txt"))
        finally:
            run(v.close())
        # An older copy of node-0's store, taken while it was stopped.
        cluster.kill(nodes[0])
        shutil.copytree(nodes[0].data, tmp_path / "node0-old")
        cluster.start(nodes[0])
        (tmp_path / "b.txt").write_bytes(b"b" * 50_000)
        ov(vault, "put", str(tmp_path / "b.txt"), passphrase=PASS)
        v = Vault.open(vault, PASS)  # a put writes a journal record: snapshot explicitly
        try:
            run(v.snapshot())
        finally:
            run(v.close())
        ov(vault, "audit", passphrase=PASS)
        before = js(ov(vault, "status", "--json", passphrase=PASS))
        assert before["health"]["state"] == "healthy", before["health"]["reasons"]
        assert before["health"]["stale_providers"] == []

        # node-0 comes back with the old copy: b's share and the newest catalog are gone.
        cluster.kill(nodes[0])
        shutil.rmtree(nodes[0].data)
        shutil.copytree(tmp_path / "node0-old", nodes[0].data)
        cluster.start(nodes[0])

        status = js(ov(vault, "status", "--json", passphrase=PASS))
        check = js(ov(vault, "check", "--json", passphrase=PASS))
        for doc in (status, check):
            h = doc["health"]
            assert h["state"] == "degraded", h
            [stale] = h["stale_providers"]
            assert stale["name"] == "node-0" and stale["missing_shares"] == 1
            assert stale["newest_snapshot"] < stale["expected_snapshot"]
            assert any(r.startswith("node-0 is stale") for r in h["reasons"])
        assert [p["name"] for p in status["providers"] if p["stale"]] == ["node-0"]
        assert status["pieces_degraded"] == 1 and status["verdict"] == "DEGRADED"
        text = ov(vault, "status", passphrase=PASS).stdout
        assert text.startswith("vault: DEGRADED") and "node-0 is stale" in text
        assert "node-0 came back with older data" in text
        assert [ln.split()[0] for ln in text.splitlines() if "(STALE)" in ln] == ["node-0"]
        # The other nodes are not stale.
        assert all(not p["stale"] for p in status["providers"] if p["name"] != "node-0")

        # The daemon's audit finds node-0's missing share; its repair puts it back, and the
        # snapshot that repair writes goes to node-0 too: nothing stale any more.
        env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ownvault",
                "--vault",
                str(vault),
                "daemon",
                "--first-delay",
                "0",
                "--audit-every",
                "1h",
                "--repair-every",
                "1h",
                "--jitter",
                "0",
                "--rounds",
                "1",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, proc.stderr
        [line] = [json.loads(x) for x in proc.stdout.splitlines()]
        assert line["audit_at_fault"] == ["node-0"] and line["repaired"] == 1
        assert line["state"] == "healthy" and line["stale"] == []
        after = js(ov(vault, "status", "--json", passphrase=PASS))
        assert after["health"]["state"] == "healthy" and after["health"]["stale_providers"] == []
