"""engine/nft/preserve.py with loopback Python servers: the folder, the catalog record,
collections, pins that cannot be made, local files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from ownvault.core.unixfs import get_profile, import_bytes
from ownvault.engine.nft.collect import NftOptions
from ownvault.engine.nft.preserve import (
    parse_collection,
    verify_token,
)
from ownvault.errors import UsageError
from ownvault.providers.webfetch import FetchError, NetworkPolicy
from tests.engine.helpers import Vaults, run
from tests.nft.market import Gateway, Market

OPEN = NftOptions(network=NetworkPolicy(allow_private=True))
ADDR = "0x" + "12" * 20


def test_parse_collection() -> None:
    text = f"# tokens\n\neth:1:{ADDR}:7  # one\neth:1:{ADDR}:0x10-0x12\nipfs://bafkqaaa\n"
    assert parse_collection(text) == [
        f"eth:1:{ADDR}:7",
        *(f"eth:1:{ADDR}:{n}" for n in (16, 17, 18)),
        "ipfs://bafkqaaa",
    ]
    assert parse_collection("data:,a#b\n") == ["data:,a#b"]
    for bad in [
        "",
        "# nothing\n",
        f"eth:1:{ADDR}:5-1",
        f"eth:1:{ADDR}:0-100000",
        f"eth:1:{ADDR}:x-y",
    ]:
        with pytest.raises(UsageError):
            parse_collection(bad)


def test_preserve_folder_catalog_and_failures(vaults: Vaults, tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"p" * 1000
    blocks: dict[bytes, bytes] = {}
    img = import_bytes(png, get_profile("kubo-v0"), lambda c, b: blocks.__setitem__(c.bytes, b)).cid
    vault = vaults.create(tmp_path / "v")
    with Market() as market, Gateway(blocks) as gw:
        meta = {
            "name": "x",
            "image": f"ipfs://{img}",
            "animation_url": market.add("/a.html", "<html>"),
            "image_data": "<svg/>",
            "properties": {"logo": "data:,hi", "gone": market.url + "/gone"},
        }
        uri = market.add("/m.json", json.dumps(meta))
        opts = NftOptions(gateways=(gw.url,), network=NetworkPolicy(allow_private=True))
        done = run(vault.nft.preserve_token(uri, opts, pins=["no-such-provider"]))
        doc = done.to_json()
        assert doc["pins"][0]["ok"] is False and "no IPFS provider named" in doc["pins"][0]["error"]
        assert [p["status"] for p in doc["parts"]] == [
            "unverifiable_origin",
            "verified",
            "unverifiable_origin",
            "embedded",
            "unreachable",
        ]
        # the folder: original metadata, the rewritten copy, the report, the assets
        chunks: list[bytes] = []
        run(vault.ipfs.export_car(done.root, chunks.append))
        files = {b.cid: b.data for b in CarReader(chunks)}
        assert CID.parse(str(img)) in files  # the original CIDv0 DAG is inside
        by_path = {p["path"]: p for p in doc["parts"] if p["path"]}
        assert set(by_path) == {
            "metadata.original.json",
            "assets/01-image.png",
            "assets/02-animation.html",
            "assets/03-other.txt",
        }
        rewritten = next(json.loads(d) for d in files.values() if d.startswith(b'{\n  "name"'))
        assert rewritten["image"] == f"ipfs://{img}" and rewritten["animation_url"].startswith(
            "ipfs://bafk"
        )
        assert rewritten["properties"] == {"logo": "data:,hi", "gone": market.url + "/gone"}
        assert rewritten["image_data"] == "<svg/>"
        report = next(json.loads(d) for d in files.values() if b'"ownvault-nft-report"' in d)
        assert report["version"] == 1 and report["parts"][1]["cid"] == str(img)
        [row] = vault.nft.list_preserved()
        assert row.state == "preserved" and row.root == done.root
        assert row.summary is not None and row.summary["statuses"] == {
            "unverifiable_origin": 2,
            "verified": 1,
            "embedded": 1,
            "unreachable": 1,
        }
        # a later attempt that fails keeps the preserved record (and says why)
        market.routes.pop("/m.json")
        with pytest.raises(FetchError):
            run(vault.nft.preserve_token(uri, opts))
        [row] = vault.nft.list_preserved()
        assert row.state == "preserved" and row.error is not None and "HTTP 404" in row.error
        [health] = run(vault.nft.reverify_preserved(opts))
        assert health.health.copy == "ok" and health.health.pins[0].ok is False


def test_collection_and_local_file(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "v")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"name": "local", "image": "data:image/svg+xml,<svg/>"}))
    with Market() as market:
        market.add("/1.json", json.dumps({"name": "one"}))
        sources = [market.url + "/1.json", market.url + "/2.json", str(meta)]
        seen: list[tuple[str, str]] = []
        out = run(
            vault.nft.preserve_collection(
                sources, OPEN, collection="c1", progress=lambda s, o: seen.append((s, o))
            )
        )
        assert (out.preserved, out.failed, out.skipped) == (2, 1, 0)
        assert sorted(o for _s, o in seen) == ["failed", "preserved", "preserved"]
        market.add("/2.json", json.dumps({"name": "two"}))
        out = run(vault.nft.preserve_collection(sources, OPEN, collection="c1"))
        assert (out.preserved, out.failed, out.skipped) == (1, 0, 2)
        states = {r.source: r.state for r in vault.nft.list_preserved(collection="c1")}
        assert set(states.values()) == {"preserved"} and str(meta.resolve()) in states
        local = next(r for r in vault.nft.list_preserved() if r.source == str(meta.resolve()))
        assert local.summary is not None
        assert local.name.startswith("nft/file/") and local.summary["statuses"] == {"embedded": 2}
        check = run(verify_token(market.url + "/1.json", OPEN))
        assert check.ok and check.to_json()["at_risk"] == [market.url + "/1.json"]
    vaults.close(vault)
    with pytest.raises(UsageError):
        run(verify_token("not a source at all", OPEN))
