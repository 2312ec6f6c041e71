"""What the pinning client sends and how it reads answers, against tests/providers/fakepinning.py
(a real process on loopback that records our requests): origins never carry non-global
addresses, delegates are dialed from the upload node (bounded, validated, not the LAN), and
``created`` timestamps are compared as times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from ownvault.core.cid import CID
from ownvault.errors import ObjectExistsError, UsageError
from ownvault.providers.ipfs.multiaddr import parse_multiaddr, reachable
from ownvault.providers.ipfs.pinning import (
    MAX_DELEGATES,
    PinningProvider,
    parse_created,
    rfc3339,
)
from ownvault.providers.webfetch import NetworkPolicy
from tests.providers.fakepinning import TOKEN

from .contract import run

PEER = "12D3KooW" + "A" * 44
PEER2 = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
PUBLIC = [
    f"/ip4/1.2.3.4/tcp/4001/p2p/{PEER}",
    f"/ip6/2001:4860:4860::8888/udp/4001/quic-v1/p2p/{PEER}",
    "/dns4/node.example.org/tcp/443/wss",
]
NOT_PUBLIC = [
    "/ip4/127.0.0.1/tcp/4001",
    "/ip4/192.168.1.5/tcp/4001",
    "/ip4/10.0.0.7/udp/4001/quic-v1",
    "/ip4/172.20.0.2/tcp/4001",
    "/ip4/100.64.0.1/tcp/4001",
    "/ip4/169.254.10.1/tcp/4001",
    "/ip6/::1/tcp/4001",
    "/ip6/fe80::1/tcp/4001",
    "/ip6/fd12:3456::1/tcp/4001",
    "/ip6/::ffff:192.168.1.5/tcp/4001",  # IPv4-mapped LAN address
    "/ip6/64:ff9b::a00:1/tcp/4001",  # NAT64 of 10.0.0.1
    "/dns4/localhost/tcp/4001",
    "/dns/printer.local/tcp/4001",
    "/dns/nas/tcp/4001",
    "/unix/tmp/ipfs.sock",
    "not a multiaddr",
    "/ip4/999.1.1.1/tcp/1",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.providers.fakepinning"],
        stdout=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["listening"]
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def control(url: str, **doc: object) -> None:
    httpx.post(f"{url}/_control", json=doc, timeout=10).raise_for_status()


def log(url: str) -> dict[str, list[Any]]:
    return httpx.get(f"{url}/_log", timeout=10).json()  # type: ignore[no-any-return]


def provider(
    url: str,
    *,
    origins: Sequence[str] | None = None,
    allow_networks: NetworkPolicy | None = None,
) -> PinningProvider:
    return PinningProvider(
        url,
        TOKEN,
        upload=url,
        namespace=f"w-{uuid.uuid4().hex[:10]}",
        origins=origins,
        allow_networks=allow_networks,
    )


def test_origins_carry_only_global_addresses(fake: str) -> None:
    control(
        fake, addresses=[*NOT_PUBLIC[:8], PUBLIC[0], *NOT_PUBLIC[8:], *PUBLIC[1:]], delegates=[]
    )
    p = provider(fake)
    run(p.put("o/a", b"origins"))
    sent = log(fake)["posts"][-1]
    assert sent["origins"] == PUBLIC
    run(p.close())
    # a listed network counts as reachable (a service on the LAN)
    lan = provider(fake, allow_networks=NetworkPolicy.parse(False, ["192.168.0.0/16"]))
    run(lan.put("o/b", b"lan"))
    assert log(fake)["posts"][-1]["origins"] == [
        "/ip4/192.168.1.5/tcp/4001",
        PUBLIC[0],
        "/ip6/::ffff:192.168.1.5/tcp/4001",
        *PUBLIC[1:],
    ]
    run(lan.close())
    # configured origins are checked the same way, and must be multiaddrs
    conf = provider(fake, origins=["/ip4/10.1.1.1/tcp/4001", PUBLIC[0]])
    run(conf.put("o/c", b"configured"))
    assert log(fake)["posts"][-1]["origins"] == [PUBLIC[0]]
    run(conf.close())
    with pytest.raises(UsageError, match="multiaddr"):
        provider(fake, origins=["http://1.2.3.4/"])


def test_reachable_filter_table() -> None:
    policy = NetworkPolicy()
    assert [a.text for a in reachable([*NOT_PUBLIC, *PUBLIC], policy, limit=20)] == PUBLIC
    assert [a.text for a in reachable(PUBLIC * 3, policy, limit=20)] == PUBLIC  # no repeats
    assert len(reachable([f"/ip4/1.2.3.{i}/tcp/1" for i in range(50)], policy, limit=20)) == 20
    assert parse_multiaddr(PUBLIC[0]).peer_id == PEER
    for bad in [
        "/ip4/1.2.3.4/tcp/70000",
        "/ip4/1.2.3.4/tcp",
        "/p2p/short",
        "/dns4/-bad-/tcp/1",
        "/x/1",
        "/",
    ]:
        with pytest.raises(ValueError):
            parse_multiaddr(bad)


def test_delegates_are_dialed_from_the_upload_node(fake: str) -> None:
    many = [f"/ip4/1.2.3.{i}/tcp/4001/p2p/{PEER}" for i in range(10, 30)]
    delegates = [
        f"/ip4/127.0.0.1/tcp/4001/p2p/{PEER}",  # loopback: a hostile service's probe
        f"/ip4/192.168.0.1/tcp/80/p2p/{PEER}",  # the LAN
        "/ip4/1.2.3.5/tcp/4001",  # no peer id: swarm/connect needs one
        "garbage",
        f"/dns4/pin.example.net/tcp/4001/p2p/{PEER2}",
        *many,
    ]
    control(fake, addresses=[], delegates=delegates, fail_dial=[many[0]])
    before = len(log(fake)["dials"])
    p = provider(fake)
    run(p.put("d/a", b"delegates"))
    dials = log(fake)["dials"][before:]
    want = [f"/dns4/pin.example.net/tcp/4001/p2p/{PEER2}", *many[: MAX_DELEGATES - 1]]
    assert sorted(dials) == sorted(want)
    assert p.last_dials[many[0]] is not None and "failed to dial" in str(p.last_dials[many[0]])
    assert p.last_dials[want[0]] is None
    # a second put within the redial window dials only the one that failed
    run(p.put("d/b", b"again"))
    assert log(fake)["dials"][before + len(dials) :] == [many[0]]
    # publishing (pin of a DAG root) dials them too
    fresh = provider(fake)

    run(fresh.pin(CID.for_block(0x55, b"published"), "ownvault-publish x"))
    assert len(log(fake)["dials"]) == before + len(dials) + 1 + MAX_DELEGATES
    run(p.close())
    run(fresh.close())
    control(fake, delegates=[], fail_dial=[])


def _pin(name: str, ns: str, size: int, created: str) -> dict[str, Any]:
    cid = CID.for_block(0x55, os.urandom(8))
    meta = {"ownvault": "object/1", "ns": ns, "size": str(size)}
    return {"pin": {"cid": str(cid), "name": name, "meta": meta, "origins": []}, "created": created}


def test_created_compared_as_times_not_text(fake: str) -> None:
    p = provider(fake)
    ns = p.namespace
    control(
        fake,
        preload=[
            # as text "09:00Z" < "10:00+02:00", as times 08:00Z (the second) is the older
            _pin("t/a", ns, 111, "2026-01-01T09:00:00Z"),
            _pin("t/a", ns, 222, "2026-01-01T10:00:00+02:00"),
            # as text ".5Z" sorts before "Z"; as times it is half a second later
            _pin("t/b", ns, 333, "2026-01-01T08:00:00.5Z"),
            _pin("t/b", ns, 444, "2026-01-01t08:00:00z"),  # RFC 3339 allows lower case
        ],
    )
    assert run(p.stat("t/a")).size == 222
    assert run(p.stat("t/b")).size == 444

    async def names() -> dict[str, int]:
        return {o.name: o.size async for o in p.list("t/")}

    assert run(names()) == {"t/a": 222, "t/b": 444}
    # a racing writer's pin that is older as a time but not as text wins the race
    control(fake, created=["2026-01-01T08:45:00Z"], rival={"created": "2026-01-01T09:30:00+01:00"})
    with pytest.raises(ObjectExistsError, match="concurrent"):
        run(p.put("t/c", b"loses"))
    # and one younger as a time (older as text) loses to ours
    control(fake, created=["2026-01-01T09:30:00+01:00"], rival={"created": "2026-01-01T08:45:00Z"})
    run(p.put("t/d", b"wins"))
    run(p.close())


def test_created_parsing_and_before_cursor() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert parse_created("2026-01-01T10:00:00+02:00") == datetime(2026, 1, 1, 10, tzinfo=plus2)
    assert parse_created("2026-01-01T08:00:00.123456789Z").microsecond == 123456
    for bad in ["2026-01-01T08:00:00", "yesterday", 12, "2026-01-01T08:00:00Z" + " " * 60]:
        with pytest.raises(ValueError):
            parse_created(bad)
    assert rfc3339(datetime(2026, 1, 1, 10, tzinfo=plus2)) == "2026-01-01T08:00:00Z"
    assert (
        rfc3339(datetime(2026, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)) == "2026-01-01T08:00:00.500000Z"
    )


def test_allow_networks_from_url_and_config(fake: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OV_TEST_FAKE_PIN_TOKEN", TOKEN)
    control(fake, addresses=["/ip4/10.9.8.7/tcp/4001", "/ip4/192.168.4.4/tcp/4001"], delegates=[])
    base = fake.replace("http://", "ipfs+pinning+http://")
    cfg = {"token_env": "OV_TEST_FAKE_PIN_TOKEN", "upload": fake, "namespace": "u"}
    by_url = PinningProvider.from_url(f"{base}/?allow_networks=10.0.0.0/8,192.168.0.0/16", cfg)
    run(by_url.put(f"n/{uuid.uuid4().hex}", b"url"))
    assert log(fake)["posts"][-1]["origins"] == [
        "/ip4/10.9.8.7/tcp/4001",
        "/ip4/192.168.4.4/tcp/4001",
    ]
    run(by_url.close())
    by_config = PinningProvider.from_url(base, {**cfg, "allow_networks": ["192.168.4.0/24"]})
    run(by_config.put(f"n/{uuid.uuid4().hex}", b"config"))
    assert log(fake)["posts"][-1]["origins"] == ["/ip4/192.168.4.4/tcp/4001"]
    run(by_config.close())
    for bad in ({"allow_networks": ["not-a-net"]}, {"allow_networks": 7}):
        with pytest.raises(UsageError):
            PinningProvider.from_url(base, {**cfg, **bad})


def test_paging_keeps_pins_that_share_the_oldest_time(fake: str) -> None:
    """A page boundary inside a run of equal `created` times loses no pin (before is exclusive)."""
    p = provider(fake)
    newer = [
        _pin(f"p/{i:04d}", p.namespace, i, f"2027-01-01T00:00:{i // 100:02d}.{i:06d}Z")
        for i in range(999)
    ]
    tied = [_pin(f"p/tie-{i}", p.namespace, 5000 + i, "2026-06-01T00:00:00Z") for i in range(2)]
    control(fake, preload=[*newer, *tied])

    async def names() -> list[str]:
        return [o.name async for o in p.list("p/")]

    got = run(names())
    assert len(got) == 1001 and {"p/tie-0", "p/tie-1"} <= set(got)
    run(p.close())
