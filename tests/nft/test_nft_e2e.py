"""NFT preservation end to end, with real parts on loopback: a ganache chain running
OpenZeppelin ERC-721 and ERC-1155 contracts compiled by solc-js, a Helia IPFS node as the
origin gateway, another as the pinning service, a Python "marketplace", ``data:`` tokens,
and ``ownvault serve``. The marketplace is then shut down: the preserved copies still
resolve by CID. A gateway that corrupts bytes is caught."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ownvault.cli import run_cli
from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from ownvault.core.nftmeta import (
    INTERFACE_ERC721,
    INTERFACE_ERC1155,
    SELECTOR_SUPPORTS_INTERFACE,
    SELECTOR_TOKEN_URI,
    SELECTOR_URI,
)
from ownvault.engine.nft.collect import NftOptions, collect
from ownvault.engine.vault import Vault
from ownvault.providers.webfetch import NetworkPolicy
from tests.engine.helpers import PASS, Vaults, make_vault, run
from tests.nft.market import Market, MarketRequest
from tests.nft.procs import Proc, contracts, require_tools

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2400  # 614 KB: three 256 KiB leaves under CIDv0
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 5000
SVG = b"<svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>"


@dataclass
class World:
    tmp: Path
    vault: Path
    market: Market
    origin: Proc  # Helia: where the ipfs:// content lives
    pinner: Proc  # Helia: the IPFS service the user pins to
    chain: Proc
    nft: str
    multi: str
    img_cid: str
    meta_cid: str
    img2: bytes

    def token(self, n: int, contract: str | None = None) -> str:
        return f"eth:1337:{contract or self.nft}:{n}"

    def args(self, *extra: str) -> list[str]:
        return [
            "--rpc",
            self.chain.url,
            "--gateway",
            self.origin.url,
            "--allow-private-network",
            *extra,
        ]


def helia_add(url: str, data: bytes, cid_version: int) -> str:
    r = httpx.post(f"{url}/api/v0/add?cid-version={cid_version}", content=data, timeout=30)
    r.raise_for_status()
    return str(json.loads(r.text.splitlines()[-1])["Hash"])


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = run_cli([*args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_tools()
    tmp = tmp_path_factory.mktemp("nft")
    os.environ["OWNVAULT_PASSPHRASE"] = PASS
    procs: list[Proc] = []
    market = Market()
    try:
        origin = Proc.helia(tmp, "origin")
        procs.append(origin)
        pinner = Proc.helia(tmp, "pinner")
        procs.append(pinner)
        img_cid = helia_add(origin.url, PNG, 0)  # an original CIDv0 DAG: kept as it is
        assert img_cid.startswith("Qm")
        meta1 = {
            "name": "Token 1",
            "description": "on IPFS",
            "image": f"ipfs://{img_cid}",
            "animation_url": market.url + "/anim.mp4",
            "properties": {
                "files": [{"uri": "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()}]
            },
            "attributes": [{"trait_type": "eyes", "value": "two"}],
        }
        meta_cid = helia_add(origin.url, json.dumps(meta1).encode(), 1)
        img2 = PNG[::-1][:50_000] + b"2"
        img2 = b"\x89PNG\r\n\x1a\n" + img2
        market.add("/anim.mp4", MP4, headers={"Content-Type": "video/mp4"})
        market.add("/img/2.png", img2, headers={"Content-Type": "image/png"})
        market.add(
            "/meta/2.json",
            json.dumps(
                {
                    "name": "Token 2",
                    "image": market.url + "/img/2.png",
                    "external_url": market.url + "/t/2",
                    "attributes": [{"trait_type": "home", "value": "marketplace"}],
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        market.add("/t/2", "<html>token 2</html>", headers={"Content-Type": "text/html"})
        for n in (4, 5, 6):
            market.add(
                f"/meta/{n}.json", json.dumps({"name": f"Token {n}", "image": f"ipfs://{img_cid}"})
            )
        market.add(
            "/1155/" + f"{5:064x}" + ".json",
            json.dumps({"name": "Multi 5", "image": market.url + "/1155/{id}.png"}),
            headers={"Content-Type": "application/json"},
        )
        market.add(
            "/1155/" + f"{5:064x}" + ".png", PNG[:1000], headers={"Content-Type": "image/png"}
        )
        on_chain = (
            "data:application/json;base64,"
            + base64.b64encode(
                json.dumps(
                    {
                        "name": "Token 3",
                        "image": "data:image/svg+xml;utf8," + SVG.decode().replace("#", "%23"),
                    }
                ).encode()
            ).decode()
        )
        plan = {
            "chainId": 1337,
            "erc721": [
                {"id": "1", "uri": f"ipfs://{meta_cid}"},
                {"id": "2", "uri": market.url + "/meta/2.json"},
                {"id": "3", "uri": on_chain},
                *({"id": str(n), "uri": market.url + f"/meta/{n}.json"} for n in (4, 5, 6)),
            ],
            "erc1155": {"template": market.url + "/1155/{id}.json", "ids": ["5"]},
        }
        chain = Proc.chain(tmp, plan)
        procs.append(chain)
        vault_dir = tmp / "vault"
        run(make_vault(vault_dir).close())
        yield World(
            tmp,
            vault_dir,
            market,
            origin,
            pinner,
            chain,
            chain.info["erc721"],
            chain.info["erc1155"],
            img_cid,
            meta_cid,
            img2,
        )
    finally:
        market.close()
        for p in procs:
            p.stop()


def test_selectors_are_solcs(world: World) -> None:
    c = contracts()["contracts"]
    assert c["TestNFT"]["methods"]["tokenURI(uint256)"] == SELECTOR_TOKEN_URI.hex()
    assert c["TestMulti"]["methods"]["uri(uint256)"] == SELECTOR_URI.hex()
    assert c["TestNFT"]["methods"]["supportsInterface(bytes4)"] == SELECTOR_SUPPORTS_INTERFACE.hex()
    # the interface ids are XORs of the selectors (ERC-165)
    x = 0
    for sig, sel in c["TestNFT"]["methods"].items():
        if sig.split("(")[0] in (
            "balanceOf",
            "ownerOf",
            "safeTransferFrom",
            "transferFrom",
            "approve",
            "setApprovalForAll",
            "getApproved",
            "isApprovedForAll",
        ):
            x ^= int(sel, 16)
    assert x.to_bytes(4, "big") == INTERFACE_ERC721
    y = 0
    for sig, sel in c["TestMulti"]["methods"].items():
        if sig.split("(")[0] in (
            "balanceOf",
            "balanceOfBatch",
            "setApprovalForAll",
            "isApprovedForAll",
            "safeTransferFrom",
            "safeBatchTransferFrom",
        ):
            y ^= int(sel, 16)
    assert y.to_bytes(4, "big") == INTERFACE_ERC1155


def test_private_network_refused_without_the_flag(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = cli(
        capsys,
        "--vault",
        str(world.vault),
        "nft",
        "preserve",
        world.token(2),
        "--rpc",
        world.chain.url,
    )
    assert code == 6 and "allow-private-network" in doc["error"]["message"]
    code, doc = cli(capsys, "nft", "verify", world.market.url + "/meta/2.json")
    assert code == 6 and doc["parts"][0]["status"] == "refused"
    assert all("/meta/2.json" not in h for h in world.market.hits)


def _parts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["role"] + ":" + p["uri"][:40]: p for p in doc["parts"]}


def test_preserve_tokens(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    v = ["--vault", str(world.vault), "nft", "preserve"]
    pin = ["--pin", world.pinner.url]
    code, doc = cli(capsys, *v, world.token(1), *world.args(*pin))
    assert code == 0, doc
    assert doc["standard"] == "erc721" and doc["token_uri"] == f"ipfs://{world.meta_cid}"
    statuses = [(p["role"], p["status"]) for p in doc["parts"]]
    assert statuses == [
        ("metadata", "verified"),
        ("image", "verified"),
        ("animation", "unverifiable_origin"),
        ("other", "embedded"),
    ]
    assert doc["parts"][0]["cid"] == world.meta_cid
    assert doc["parts"][1]["cid"] == world.img_cid  # the original CIDv0 DAG, as the token names it
    assert doc["pins"] == [
        {"target": world.pinner.url, "ok": True, "how": "kubo-rpc", "error": None}
    ]
    assert doc["parts"][1]["pinned"] == [world.pinner.url]
    assert doc["at_risk"] == [world.market.url + "/anim.mp4"]

    code, doc2 = cli(capsys, *v, world.token(2), *world.args(*pin))
    assert code == 0 and [p["status"] for p in doc2["parts"]] == ["unverifiable_origin"] * 3
    assert len(doc2["at_risk"]) == 3 and doc2["parts"][1]["sha256"]
    code, doc3 = cli(capsys, *v, world.token(3), *world.args())
    assert (
        code == 0
        and [p["status"] for p in doc3["parts"]] == ["embedded", "embedded"]
        and not doc3["at_risk"]
    )
    code, doc5 = cli(capsys, *v, world.token(5, world.multi), *world.args(*pin))
    assert code == 0 and doc5["standard"] == "erc1155"
    assert doc5["token_uri"].endswith(f"/1155/{5:064x}.json")
    assert (
        doc5["parts"][1]["status"] == "unverifiable_origin"
    )  # {id} substituted in the metadata too
    assert doc5["parts"][1]["fetched_from"].endswith(f"{5:064x}.png")

    # the preserved folder is a plain folder of the vault, with its report inside
    code, listing = cli(capsys, "--vault", str(world.vault), "ls", doc2["name"])
    paths = {e["path"] for e in listing["entries"]}
    assert {"metadata.json", "metadata.original.json", "report.json", "assets"} <= paths
    code, listing = cli(capsys, "--vault", str(world.vault), "ls", doc2["name"] + "/assets")
    assert sorted(e["path"] for e in listing["entries"]) == [
        "assets/01-image.png",
        "assets/02-external.html",
    ]


def test_collection_is_resumable_after_ctrl_c(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    coll = world.tmp / "collection.txt"
    coll.write_text(f"# my collection\n{world.token(2)}\neth:1337:{world.nft}:4-6\n")
    slow = world.market.routes["/meta/6.json"]
    world.market.add("/meta/6.json", slow.body, delay=60)  # token 6 hangs...
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ownvault",
            "--vault",
            str(world.vault),
            "nft",
            "preserve",
            "--collection",
            str(coll),
            "--concurrency",
            "2",
            *world.args(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    db = world.vault / "catalog.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as c:
            rows = dict(
                c.execute("SELECT source, state FROM nft_tokens WHERE collection IS NOT NULL")
            )
        if sum(1 for s in rows.values() if s == "preserved") >= 2 and world.token(6) in rows:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # ...and the user presses Ctrl-C
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    with sqlite3.connect(db) as c:
        state = dict(c.execute("SELECT source, state FROM nft_tokens"))
    assert state[world.token(4)] == state[world.token(5)] == "preserved"
    assert state[world.token(6)] == "pending"  # recorded, not done
    world.market.routes["/meta/6.json"] = slow
    code, doc = cli(
        capsys,
        "--vault",
        str(world.vault),
        "nft",
        "preserve",
        "--collection",
        str(coll),
        *world.args(),
    )
    assert code == 0, doc
    assert (doc["preserved"], doc["skipped"], doc["failed"], doc["total"]) == (1, 3, 0, 4)
    assert [t["source"] for t in doc["tokens"] if t["outcome"] == "preserved"] == [world.token(6)]


def test_verify_names_what_is_at_risk(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cli(
        capsys, "--vault", str(world.vault), "nft", "verify", world.token(1), *world.args()
    )
    assert code == 0 and doc["ok"] and doc["at_risk"] == [world.market.url + "/anim.mp4"]
    code, doc = cli(capsys, "nft", "verify", world.token(3), *world.args())
    assert code == 0 and doc["at_risk"] == []


def test_a_corrupting_gateway_is_caught(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with Market() as liar:

        def corrupt(h: MarketRequest, path: str, query: dict[str, list[str]]) -> bool:
            req = urllib.request.Request(
                world.origin.url + h.path, headers={"Accept": h.headers.get("Accept", "*/*")}
            )
            with urllib.request.urlopen(req, timeout=30) as r:
                body, ctype = r.read(), r.headers.get("Content-Type", "")
            if len(body) > 5000:  # the image, not the metadata
                mid = len(body) // 2
                body = body[:mid] + bytes([body[mid] ^ 0x40]) + body[mid + 1 :]
            h.send(200, body, {"Content-Type": ctype})
            return True

        liar.dynamic = corrupt
        base = [
            "nft",
            "verify",
            world.token(1),
            "--rpc",
            world.chain.url,
            "--allow-private-network",
        ]
        code, doc = cli(capsys, *base, "--gateway", liar.url)
        assert code == 5
        assert doc["parts"][1]["status"] == "mismatch" and liar.url in doc["parts"][1]["error"]
        code, doc = cli(capsys, *base, "--gateway", liar.url, "--gateway", world.origin.url)
        assert code == 0 and doc["parts"][1]["status"] == "verified"
        assert doc["parts"][1]["fetched_from"] == world.origin.url
        assert doc["parts"][1]["attempts"][0]["gateway"] == liar.url


def test_preserved_copies_outlive_the_marketplace(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.market.close()  # the marketplace is gone
    code, doc = cli(capsys, "nft", "verify", world.token(2), *world.args())
    assert code == 6 and {p["status"] for p in doc["parts"]} == {"unreachable"}
    vault = Vault.open(world.vault, PASS)
    try:
        rows = {r.source: r for r in vault.nft.list_preserved()}
    finally:
        run(vault.close())
    root2 = rows[world.token(2)].root
    name2 = rows[world.token(2)].name
    serve = Proc.serve(world.tmp, world.vault, PASS, "--token-file", str(world.tmp / "api-token"))
    try:
        # the web UI's view: the preserved NFT is a folder of the vault, its report a file in it
        api = {"Authorization": "Bearer " + (world.tmp / "api-token").read_text().strip()}
        tree = httpx.get(
            f"{serve.url}/api/v1/files/entries", params={"name": name2}, headers=api, timeout=30
        )
        assert tree.status_code == 200, tree.text
        assert {e["path"] for e in tree.json()["entries"]} >= {
            "report.json",
            "metadata.json",
            "assets",
        }
        shown = httpx.get(
            f"{serve.url}/api/v1/files/content",
            params={"name": name2 + "/report.json"},
            headers=api,
            timeout=30,
        )
        assert shown.status_code == 200 and shown.json()["source"] == world.token(2)
        meta = httpx.get(f"{serve.url}/ipfs/{root2}/metadata.json", timeout=30)
        assert meta.status_code == 200
        rewritten = meta.json()
        image = rewritten["image"]
        assert image.startswith("ipfs://") and rewritten["attributes"][0]["value"] == "marketplace"
        got = httpx.get(f"{serve.url}/ipfs/{image[7:]}", timeout=30)
        assert got.status_code == 200 and got.content == world.img2  # by the asset's own CID
        report = httpx.get(f"{serve.url}/ipfs/{root2}/report.json", timeout=30).json()
        assert report["format"] == "ownvault-nft-report" and report["parts"][1]["cid"] == image[7:]
        original = httpx.get(f"{serve.url}/ipfs/{world.img_cid}", timeout=30)
        assert original.content == PNG  # token 1's original CIDv0 image, served by the vault
        # ownvault's own gateway is a trustless source for ownvault: everything verifies
        opts = NftOptions(gateways=(serve.url,), network=NetworkPolicy(allow_private=True))
        c = run(collect(f"ipfs://{root2}/metadata.json", opts, world.tmp / "again"))
        assert [p.status for p in c.parts] == ["verified", "verified", "verified"]
    finally:
        serve.stop()
    # and through the IPFS node it was pinned to
    pinned = httpx.get(f"{world.pinner.url}/ipfs/{image[7:]}", timeout=30)
    assert pinned.content == world.img2
    car = httpx.get(f"{world.pinner.url}/ipfs/{root2}?format=car", timeout=30).content
    blocks = list(CarReader([car]))  # every block re-hashed
    assert (
        blocks[0].cid == CID.parse(root2) and len(blocks) == 7
    )  # root, 3 files, assets/, 2 assets
    pins = httpx.post(f"{world.pinner.url}/api/v0/pin/ls", timeout=30).json()["Keys"]
    assert root2 in pins


def test_ls_and_reverify(vaults: Vaults, world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = cli(capsys, "--vault", str(world.vault), "nft", "ls")
    rows = {r["source"]: r for r in doc["tokens"]}
    assert (
        code == 0
        and rows[world.token(1)]["state"] == "preserved"
        and rows[world.token(6)]["state"] == "preserved"
    )
    assert rows[world.token(1)]["pins"] == [world.pinner.url]
    code, doc = cli(
        capsys, "--vault", str(world.vault), "nft", "reverify", "--allow-private-network"
    )
    assert (
        code == 0 and len(doc["tokens"]) == 7 and all(t["health"]["ok"] for t in doc["tokens"])
    ), doc
    world.pinner.stop()  # the pinning service disappears
    vault = vaults.open(world.vault, PASS)
    out = run(vault.nft.reverify_preserved(NftOptions(network=NetworkPolicy(allow_private=True))))
    bad = {t.source for t in out if not t.health.ok}
    assert bad == {world.token(1), world.token(2), world.token(5, world.multi)}  # the pinned ones
    assert all(t.health.copy == "ok" for t in out)
    assert {r.source for r in vault.nft.list_preserved() if not (r.health or {})["ok"]} == bad
