"""providers/webfetch.py + nftipfs.py + nftcollect.py against loopback servers: the address
guard, redirects, limits, timeouts, content types, and gateways that lie."""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.core.cid import CID
from ownvault.core.unixfs import DirEntry, build_directory, get_profile, import_bytes
from ownvault.engine.nft.collect import NftOptions, collect
from ownvault.engine.nft.ipfs import fetch_ipfs
from ownvault.providers.webfetch import (
    Fetcher,
    FetchError,
    FetchLimits,
    NetworkPolicy,
    address_allowed,
)
from tests.engine.helpers import run
from tests.nft.market import Gateway, Market
from tests.providers.bombs import bomb, fetch_in_child

OPEN = NetworkPolicy(allow_private=True)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def market() -> Iterator[Market]:
    with Market() as m:
        yield m


def fetch(
    url: str, policy: NetworkPolicy = OPEN, limits: FetchLimits | None = None, **kw: object
) -> object:
    async def go() -> object:
        async with Fetcher(policy, limits or FetchLimits(), **kw) as f:  # type: ignore[arg-type]
            return await f.get(url, max_bytes=(limits or FetchLimits()).max_asset_bytes)

    return run(go())


def fails(status: str, url: str, policy: NetworkPolicy = OPEN, **kw: object) -> str:
    with pytest.raises(FetchError) as info:
        fetch(url, policy, **kw)  # type: ignore[arg-type]
    assert info.value.status == status, info.value.message
    return info.value.message


# -- the address guard --------------------------------------------------------------------


def test_address_policy() -> None:
    closed = NetworkPolicy()
    for text in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "255.255.255.255",
        "::",
    ]:
        assert not address_allowed(ipaddress.ip_address(text), closed), text
    for text in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"]:
        assert address_allowed(ipaddress.ip_address(text), closed), text
    assert address_allowed(
        ipaddress.ip_address("192.168.1.5"), NetworkPolicy.parse(False, ["192.168.1.0/24"])
    )
    assert not address_allowed(
        ipaddress.ip_address("192.168.2.5"), NetworkPolicy.parse(False, ["192.168.1.0/24"])
    )


EMBEDDED_V4 = [  # (address, allowed by the closed policy?)
    ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254 (cloud metadata)
    ("64:ff9b::c0a8:101", False),  # NAT64 of 192.168.1.1
    ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8: public
    ("64:ff9b:1::a00:1", False),  # local-use NAT64: embedded address not recoverable
    ("64:ff9b:1:ffff::808:808", False),
    ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ("2002:a00:1:1::1", False),  # 6to4 of 10.0.0.1
    ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
    ("::ffff:7f00:1", False),  # IPv4-mapped 127.0.0.1
    ("::ffff:a9fe:a9fe", False),
    ("::ffff:808:808", True),
    ("::ffff:0:7f00:1", False),  # IPv4-translated (SIIT) 127.0.0.1
    ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
    ("::a00:1", False),  # IPv4-compatible 10.0.0.1
    ("::808:808", True),  # IPv4-compatible 8.8.8.8
    ("::1", False),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ("2001:0:808:808::1", False),
]


@pytest.mark.parametrize(("text", "allowed"), EMBEDDED_V4)
def test_ipv6_embedding_ipv4_is_judged_by_the_ipv4(text: str, allowed: bool) -> None:
    assert address_allowed(ipaddress.ip_address(text), NetworkPolicy()) is allowed
    assert address_allowed(ipaddress.ip_address(text), NetworkPolicy(allow_private=True))
    assert address_allowed(ipaddress.ip_address(text), NetworkPolicy.parse(False, [text]))


def test_allowed_ipv4_network_covers_its_embeddings() -> None:
    allow = NetworkPolicy.parse(False, ["127.0.0.0/8"])
    for text in ["64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:7f00:1", "::7f00:1"]:
        assert address_allowed(ipaddress.ip_address(text), allow), text
    assert not address_allowed(ipaddress.ip_address("64:ff9b::a00:1"), allow)


def test_names_resolving_to_embedded_private_addresses_are_refused(market: Market) -> None:
    # through the connection layer: the resolver hook answers with the IPv6 address
    url = market.add("/x", "ok")
    port = url.split(":")[2].split("/")[0]
    hosts = {
        "nat64.test": ["64:ff9b::7f00:1"],
        "sixtofour.test": ["2002:7f00:1::1"],
        "compat.test": ["::7f00:1"],
        "teredo.test": ["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
        "local-nat64.test": ["64:ff9b:1::7f00:1"],
    }
    for host, addrs in hosts.items():
        msg = fails("refused", f"http://{host}:{port}/x", NetworkPolicy(), hosts=hosts)
        assert addrs[0] in msg, msg
    assert market.hits == []


def test_loopback_refused_without_the_flag(market: Market) -> None:
    url = market.add("/meta.json", "{}")
    port = url.split(":")[2].split("/")[0]
    for target in [
        url,
        f"http://localhost:{port}/meta.json",
        f"http://[::1]:{port}/meta.json",
        f"http://0x7f000001:{port}/meta.json",
        f"http://2130706433:{port}/meta.json",
    ]:
        msg = fails("refused", target, NetworkPolicy())
        assert "allow-private-network" in msg or "resolve" in msg
    assert market.hits == []  # nothing ever reached the server
    assert fetch(url).data == b"{}"  # type: ignore[attr-defined]


def test_every_resolved_address_is_checked(market: Market) -> None:
    # a name resolving to one public and one loopback address is refused before connecting
    hosts = {"mixed.test": ["93.184.215.14", "127.0.0.1"], "inside.test": ["127.0.0.1"]}
    fails("refused", "http://mixed.test/x", NetworkPolicy(), hosts=hosts)
    url = market.add("/x", "ok")
    port = url.split(":")[2].split("/")[0]
    allow_one = NetworkPolicy.parse(False, ["127.0.0.1/32"])
    assert fetch(f"http://inside.test:{port}/x", allow_one, hosts=hosts).data == b"ok"  # type: ignore[attr-defined]


def test_redirect_targets_are_revalidated(market: Market) -> None:
    port = market.url.rsplit(":", 1)[1]
    market.add("/ok", "fine")
    market.add("/hop", status=302, headers={"Location": "/ok"})
    assert fetch(market.url + "/hop").data == b"fine"  # type: ignore[attr-defined]
    allow_one = NetworkPolicy.parse(False, ["127.0.0.1/32"])
    market.add(
        "/to-other-loopback", status=301, headers={"Location": f"http://127.0.0.2:{port}/ok"}
    )
    fails("refused", market.url + "/to-other-loopback", allow_one)
    for i, target in enumerate(
        ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "ipfs://bafkqaaa"]
    ):
        market.add(f"/scheme{i}", status=307, headers={"Location": target})
        assert "never fetched" in fails("refused", market.url + f"/scheme{i}")
    for i in range(7):
        market.add(f"/loop{i}", status=302, headers={"Location": f"/loop{i + 1}"})
    assert "redirects" in fails("refused", market.url + "/loop0")


def test_size_and_time_limits(market: Market) -> None:
    small = FetchLimits(max_asset_bytes=1000, fetch_timeout=1.0)
    market.add("/big", b"x" * 5000)
    market.add("/big-chunked", b"x" * 5000, chunked=True)
    market.add("/bomb", b"\0" * 10_000_000, gzip=True)
    market.add("/slow", b"late", delay=3.0)
    assert "over the limit" in fails("too_large", market.url + "/big", limits=small)
    assert "more than 1000" in fails("too_large", market.url + "/big-chunked", limits=small)
    fails("too_large", market.url + "/bomb", limits=small)  # counted after decoding
    fails("unreachable", market.url + "/slow", limits=small)
    assert "HTTP 404" in fails("unreachable", market.url + "/nope")
    fails("unreachable", "http://127.0.0.1:9/closed-port")


# -- IPFS through gateways ------------------------------------------------------------------


def _dag(data: bytes, profile: str = "kubo-v1") -> tuple[CID, dict[bytes, bytes]]:
    blocks: dict[bytes, bytes] = {}
    root = import_bytes(data, get_profile(profile), lambda c, b: blocks.__setitem__(c.bytes, b))
    return root.cid, blocks


def test_ipfs_verified_through_car_and_raw_and_path(tmp_path: Path) -> None:
    data = bytes(range(256)) * 3000  # 768000 bytes: 3 leaves + a node
    cid, blocks = _dag(data)
    dir_blocks: dict[bytes, bytes] = {}
    d = build_directory(
        [DirEntry("a.bin", cid, len(data) + 200)],
        get_profile("kubo-v0"),
        lambda c, b: dir_blocks.__setitem__(c.bytes, b),
    )
    with Gateway({**blocks, **dir_blocks}) as gw:

        async def go(path: tuple[str, ...], root: CID, where: str) -> bytes:
            async with Fetcher(OPEN, FetchLimits()) as f:
                got = await fetch_ipfs(f, [gw.url], root, path, tmp_path / where, max_bytes=10**7)
            assert got.root == cid and got.size == len(data) and got.gateway == gw.url
            return got.staged.read_bytes()

        assert run(go((), cid, "car")) == data
        assert any("format=car" in h for h in gw.hits)
        gw.car = False  # a gateway that serves raw blocks only
        assert run(go(("a.bin",), d.cid, "raw")) == data


def test_lying_gateways_are_caught(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2000
    cid, blocks = _dag(data)
    leaf = next(k for k in blocks if k != cid.bytes)

    async def go(*gws: str) -> object:
        async with Fetcher(OPEN, FetchLimits()) as f:
            return await fetch_ipfs(f, list(gws), cid, (), tmp_path / "w", max_bytes=10**7)

    with Gateway(blocks) as bad, Gateway(blocks) as holey, Gateway(blocks) as good:
        bad.corrupt.add(leaf)
        holey.missing.add(leaf)
        for gw, word in [(bad, "does not match"), (holey, "incomplete")]:
            with pytest.raises(FetchError) as info:
                run(go(gw.url))
            assert info.value.status == "mismatch" and word in info.value.message
        bad.car = False  # raw blocks: the flipped block is caught on its own
        with pytest.raises(FetchError) as info:
            run(go(bad.url))
        assert info.value.status == "mismatch" and "does not match" in info.value.message
        got = run(go(bad.url, holey.url, good.url))
        assert got.gateway == good.url  # type: ignore[attr-defined]
        assert [a["gateway"] for a in got.attempts] == [bad.url, holey.url]  # type: ignore[attr-defined]


# -- collect: whole tokens ------------------------------------------------------------------


def test_collect_statuses(tmp_path: Path, market: Market) -> None:
    img_cid, img_blocks = _dag(PNG, "kubo-v0")  # an original CIDv0 DAG
    with Gateway(img_blocks) as gw:
        meta = {
            "name": "t",
            "image": market.add(
                "/fake.png", "<!doctype html>Not Found", headers={"Content-Type": "image/png"}
            ),
            "animation_url": market.add(
                "/anim.html", "<html>hi</html>", headers={"Content-Type": "text/html"}
            ),
            "external_url": market.url + "/gone",
            "properties": {
                "big": market.add("/big.bin", b"x" * 3000),
                "files": [{"uri": f"ipfs://{img_cid}", "type": "image/png"}],
                "svg": "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(),
                "ar": "ar://" + "A" * 43,
                "local": "file:///etc/passwd",
            },
            "image_url": market.add(
                "/error-page", "<html>oops</html>", headers={"Content-Type": "text/html"}
            ),
        }
        market.add("/" + "A" * 43, PNG, headers={"Content-Type": "image/png"})
        uri = market.add(
            "/meta.json", json.dumps(meta), headers={"Content-Type": "application/json"}
        )
        opts = NftOptions(
            gateways=(gw.url,),
            network=OPEN,
            arweave_gateway=market.url,
            limits=FetchLimits(max_asset_bytes=2000),
        )
        c = run(collect(uri, opts, tmp_path / "w"))
    by = {p.uri: p for p in c.parts}
    assert by[uri].status == "unverifiable_origin" and by[uri].at_risk
    assert by[f"ipfs://{img_cid}"].status == "verified" and by[f"ipfs://{img_cid}"].cid == str(
        img_cid
    )
    assert by[meta["animation_url"]].status == "unverifiable_origin"
    assert by[meta["external_url"]].status == "unreachable"
    assert by[meta["properties"]["big"]].status == "too_large"
    assert by[meta["image"]].status == "wrong_type" and "text/html" in (
        by[meta["image"]].error or ""
    )
    assert by[meta["image_url"]].status == "wrong_type"
    assert (
        by[meta["properties"]["svg"]].status == "embedded"
        and not by[meta["properties"]["svg"]].at_risk
    )
    assert (
        by["ar://" + "A" * 43].status == "unverifiable_origin"
        and not by["ar://" + "A" * 43].at_risk
    )
    assert by["file:///etc/passwd"].status == "refused"
    assert set(c.at_risk) == {
        uri,
        meta["animation_url"],
        meta["external_url"],
        meta["properties"]["big"],
        meta["image"],
        meta["image_url"],
    }


def test_collect_metadata_limits(tmp_path: Path, market: Market) -> None:
    deep = market.add("/deep.json", "[" * 100 + "]" * 100)
    huge = market.add("/huge.json", json.dumps({"x": "y" * 5000}))
    html = market.add("/html.json", "<html>", headers={"Content-Type": "text/html"})
    opts = NftOptions(network=OPEN, limits=FetchLimits(max_metadata_bytes=4000))
    for uri, status in [(deep, "wrong_type"), (huge, "too_large"), (html, "wrong_type")]:
        c = run(collect(uri, opts, tmp_path / status))
        assert c.metadata is None and c.parts[0].status == status, (uri, c.parts[0].error)
    on_chain = (
        "data:application/json;base64,"
        + base64.b64encode(b'{"name": "x", "image": "data:,hi"}').decode()
    )
    c = run(collect(on_chain, opts, tmp_path / "data"))
    assert c.parts[0].status == "embedded" and [p.status for p in c.parts[1:]] == ["embedded"]
    budget = NftOptions(network=OPEN, limits=FetchLimits(max_token_bytes=600))
    meta = json.dumps({"a": market.add("/a", b"a" * 400), "b": market.add("/b", b"b" * 400)})
    c = run(collect(market.add("/two.json", meta), budget, tmp_path / "budget"))
    assert sorted(p.status for p in c.parts[1:]) == ["too_large", "unverifiable_origin"]


# -- decompression bombs ----------------------------------------------------------------------

BOMBS = {  # path: (codings as applied, Content-Encoding header)
    "/gzip": (("gzip",), "gzip"),
    "/gzip-in-gzip": (("gzip", "gzip"), "gzip, gzip"),
    "/deflate": (("deflate",), "deflate"),
    "/stacked-5": (("gzip",) * 5, "gzip, gzip, gzip, gzip, gzip"),
}


@pytest.mark.parametrize("path", list(BOMBS))
def test_decompression_bombs_are_cut_while_inflating(market: Market, path: str) -> None:
    # A token's asset answering a few KB that inflate to 256 MiB (and more through the
    # stacks): a clear too_large at the 1 MiB limit, and the fetching process's peak
    # memory grows by less than 32 MiB (measured as VmHWM in a child process).
    codings, header = BOMBS[path]
    raw = bomb(codings)
    url = market.add(path, raw, headers={"Content-Encoding": header})
    got = fetch_in_child("webfetch", url, 1024 * 1024)
    assert got.get("status") == "too_large", got
    assert "more than 1048576 bytes" in got["message"]
    assert got["peak_growth"] < 32 * 1024 * 1024, got


def test_unknown_content_codings_are_refused(market: Market) -> None:
    url = market.add("/br", b"\x0b\x02\x80hi\x03", headers={"Content-Encoding": "br"})
    assert "unsupported content coding 'br'" in fails("refused", url)
    url = market.add("/gz", b"x" * 5000, gzip=True)
    assert fetch(url).data == b"x" * 5000  # type: ignore[attr-defined]
