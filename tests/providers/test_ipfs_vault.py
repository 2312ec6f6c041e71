"""A vault on IPFS providers only, through the real CLI: 3 Kubo MFS roots + 3 pinning namespaces."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli_tour import js, ov
from tests.ipfsnode.node import PIN_TOKEN, HeliaNode


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("vaultnode") / "repo", pinning=True).start()
    yield n
    n.stop()


def test_vault_on_ipfs_providers(
    node: HeliaNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert node.pinning_url is not None
    monkeypatch.setenv("OV_PIN_TOKEN", PIN_TOKEN)  # inherited by the CLI processes
    vault = tmp_path / "vault"
    ov(vault, "init", "--providers", "0", "--phrase-file", str(tmp_path / "phrase"))
    run_id = uuid.uuid4().hex[:8]
    for i in range(3):
        url = f"ipfs+kubo://127.0.0.1:{node.port}/v-{run_id}-{i}?gateway={node.url}"
        doc = js(ov(vault, "provider", "add", f"kubo-{i}", url, "--jurisdiction", "de", "--json"))
        assert doc["kind"] == "ipfs"
    pin_base = node.pinning_url.replace("http://", "ipfs+pinning+http://")
    for i in range(3):
        url = f"{pin_base}/?upload={node.url}&gateway={node.url}&namespace=v-{run_id}-{i}"
        ov(
            vault,
            "provider",
            "add",
            f"pins-{i}",
            url,
            "--token-env",
            "OV_PIN_TOKEN",
            "--jurisdiction",
            "ch",
            "--json",
        )
    listing = js(ov(vault, "provider", "ls", "--json"))["providers"]
    assert [p["reachable"] for p in listing] == [True] * 6, listing
    data = os.urandom(3_000_000)
    (tmp_path / "f.bin").write_bytes(data)
    ov(vault, "put", str(tmp_path / "f.bin"))
    ov(vault, "get", "f.bin", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    assert js(ov(vault, "check", "--json"))["healthy"]
    # a node serving corrupted blocks: every share it holds is caught, and k clean ones
    # remain nowhere here (all six providers share one node), so the read must fail loudly
    node.chaos(corrupt="all")
    try:
        p = ov(vault, "get", "f.bin", "-o", str(tmp_path / "bad"), check=None)
        assert p.returncode == 7, p.stderr  # DataUnavailableError: fewer than k good shares
    finally:
        node.chaos(corrupt=[])
