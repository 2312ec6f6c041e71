"""`publish --pin` puts the plain UnixFS DAG on an IPFS provider; `pins` shows it; anyone
can then fetch it by CID from that IPFS node, byte-identical."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli_tour import js, ov
from tests.ipfsnode.node import HeliaNode


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeliaNode]:
    n = HeliaNode(tmp_path_factory.mktemp("pinnode") / "repo").start()
    try:
        yield n
    finally:
        n.stop()


def test_publish_pin_and_pins(node: HeliaNode, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"))
    ov(
        vault,
        "provider",
        "add",
        "home-ipfs",
        f"ipfs+kubo://127.0.0.1:{node.port}/pins-test",
        "--jurisdiction",
        "de",
    )
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "nft.bin").write_bytes(data)
    ov(vault, "put", str(tmp_path / "nft.bin"))
    doc = js(ov(vault, "publish", "nft.bin", "--pin", "home-ipfs", "--json"))
    cid = doc["cid"]
    assert doc["pins"] == [{"provider": "home-ipfs", "cid": cid, "state": "pinned"}]
    pins = js(ov(vault, "pins", "--json"))["pins"]
    assert {"provider": "home-ipfs", "cid": cid, "state": "pinned"}.items() <= next(
        p for p in pins if p["cid"] == cid
    ).items()
    # The plain DAG is on the IPFS node: its gateway serves the bytes by CID.
    r = httpx.get(f"{node.url}/ipfs/{cid}", timeout=60)
    assert r.status_code == 200 and r.content == data
    # Pinning to something that is not an IPFS provider is refused clearly.
    p = ov(vault, "publish", "nft.bin", "--pin", "local-1", check=4)
    assert "no IPFS provider named 'local-1'" in p.stderr
