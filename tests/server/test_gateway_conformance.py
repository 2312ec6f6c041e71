"""The IPFS gateway-conformance suite's trustless-gateway cases, replayed against a real
`ownvault serve` on 127.0.0.1.

The suite itself (Go 1.25 and its module graph) cannot be built here, so its cases
(``tests/trustless_gateway_raw_test.go``, ``tests/trustless_gateway_car_test.go``, commit
22c76440) are written down below as data, each under the suite's own name, and run on the
suite's own fixture CARs (tests/fixtures/gateway-conformance, MIT/Apache-2.0). Like the
suite's ``StandardCARTestTransforms``, every CAR case runs twice (``?format=car`` and
``Accept: application/vnd.ipld.car``) and checks the standard CAR headers. ``SKIPPED``
names each case not replayed and why; a test checks that replayed + skipped = the suite.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import serve_process
from tests.server.conformance import Fixture

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gateway-conformance"
IMPORTED = [
    "gateway-raw-block.car",
    "subdir-with-two-single-block-files.car",
    "single-layer-hamt-with-multi-block-files.car",
    "subdir-with-mixed-block-files.car",
    "dir-with-duplicate-files.car",
]
CAR = "application/vnd.ipld.car"
RAW = "application/vnd.ipld.raw"

# Every case of the two files, by the suite's name: replayed (CASES) or skipped (here, why).
SKIPPED = {
    "GET default CAR response of UnixFS file on a path with DAG-CBOR as root CID": "DAG-CBOR: ownvault's gateway serves UnixFS (dag-pb, raw) only and `car import` takes UnixFS DAGs (design.md, Limits)",
    "GET CAR with dag-scope=entity of DAG-CBOR with Links": "DAG-CBOR: ownvault's gateway serves UnixFS (dag-pb, raw) only and `car import` takes UnixFS DAGs (design.md, Limits)",
    "GET CAR with entity-bytes succeeds even if the gateway is missing a block after the requested range": "needs a gateway that holds an incomplete DAG: ownvault serves only published content it stores, and `car import` refuses a CAR with a missing block (the range-minimal block set itself is replayed on the other entity-bytes cases)",
    "GET CAR with entity-bytes succeeds even if the gateway is missing a block before the requested range": "needs a gateway that holds an incomplete DAG: ownvault serves only published content it stores, and `car import` refuses a CAR with a missing block",
}
SUITE_CASE_COUNT = 40  # `Name:` entries in the two Go files (raw: 6, CAR: 34)


@dataclass
class Case:
    name: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    car: bool = True  # a CAR case: run with format=car and with Accept, check CAR headers
    transforms: bool = True  # StandardCARTestTransforms applies
    status: tuple[int, ...] = (200,)
    blocks: list[str] | None = None  # exact, in order
    block_set: list[str] | None = None  # all present, any order
    check: Callable[[httpx.Response], None] | None = None


@dataclass
class Served:
    url: str
    fx: dict[str, Fixture]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("conf")
    vault_dir = base / "vault"
    vault = make_vault(vault_dir)
    fx = {}
    try:
        for name in IMPORTED:
            fx[name] = Fixture(FIXTURES / name)
            got = run(vault.ipfs.import_car(FIXTURES / name, name=name, publish_it=True))
            assert got.root == str(fx[name].root)
    finally:
        run(vault.close())
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    with serve_process(vault_dir, env, base / "serve.err") as served:
        yield Served(served.url, fx)


def _cache_control_ok(r: httpx.Response) -> None:
    d = dict(
        ([*p.split("="), ""])[:2] for p in r.headers["cache-control"].replace(" ", "").split(",")
    )
    assert "public" in d and "immutable" in d and int(d["max-age"]) >= 29030400


def cases(s: Served) -> list[Case]:
    raw = s.fx["gateway-raw-block.car"]
    two = s.fx["subdir-with-two-single-block-files.car"]
    hamt = s.fx["single-layer-hamt-with-multi-block-files.car"]
    mixed = s.fx["subdir-with-mixed-block-files.car"]
    dups = s.fx["dir-with-duplicate-files.car"]
    ascii_raw = raw.blocks[CID.parse(raw.cid("dir", "ascii.txt"))]
    mb = mixed.descendants("subdir", "multiblock.txt")
    mbcid = mixed.cid("subdir", "multiblock.txt")
    multiblock = [
        "bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm",
        "bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq",
        "bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue",
        "bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe",
        "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm",
    ]
    assert mb == multiblock  # the suite's spec-level CIDs agree with the fixture walk
    dirblock = raw.blocks[CID.parse(raw.cid("dir"))]
    root2, rooth, rootm, rootd = two.cid(), hamt.cid(), mixed.cid(), dups.cid()

    def body_is(data: bytes) -> Callable[[httpx.Response], None]:
        def check(r: httpx.Response) -> None:
            assert r.content == data

        return check

    def raw_headers(r: httpx.Response) -> None:
        assert r.headers["content-type"] == RAW
        assert r.headers["content-length"] == str(len(ascii_raw))
        assert "attachment;" in r.headers["content-disposition"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content == ascii_raw

    def raw_filename(r: httpx.Response) -> None:
        cd = r.headers["content-disposition"]
        assert "attachment;" in cd and 'filename="foobar.bin' in cd

    def raw_caching(r: httpx.Response) -> None:
        assert r.headers["etag"]
        assert r.headers["x-ipfs-path"] == f"/ipfs/{raw.cid('dir', 'ascii.txt')}"
        assert raw.cid("dir", "ascii.txt") in r.headers["x-ipfs-roots"]
        _cache_control_ok(r)

    def ctype_has(*parts: str) -> Callable[[httpx.Response], None]:
        def check(r: httpx.Response) -> None:
            for part in parts:
                assert part in r.headers["content-type"], (part, r.headers["content-type"])

        return check

    dup_all = [
        rootd,
        dups.cid("ascii.txt"),
        dups.cid("ascii-copy.txt"),
        dups.cid("hello.txt"),
        dups.cid("multiblock.txt"),
        *multiblock,
    ]
    dup_once = [
        rootd,
        dups.cid("ascii.txt"),
        dups.cid("hello.txt"),
        dups.cid("multiblock.txt"),
        *multiblock,
    ]
    eb = {"dag-scope": "entity"}
    return [
        # -- trustless_gateway_raw_test.go ------------------------------------------------------
        Case(
            "GET with format=raw param returns a raw block",
            f"/ipfs/{raw.cid('dir')}",
            {"format": "raw"},
            car=False,
            check=body_is(dirblock),
        ),
        Case(
            "GET with application/vnd.ipld.raw header returns a raw block",
            f"/ipfs/{raw.cid('dir')}",
            headers={"Accept": RAW},
            car=False,
            check=body_is(dirblock),
        ),
        Case(
            "GET with application/vnd.ipld.raw header returns expected response headers",
            f"/ipfs/{raw.cid('dir', 'ascii.txt')}",
            headers={"Accept": RAW},
            car=False,
            check=raw_headers,
        ),
        Case(
            "GET with application/vnd.ipld.raw header and filename param returns expected Content-Disposition header with custom filename",
            f"/ipfs/{raw.cid('dir', 'ascii.txt')}",
            {"filename": "foobar.bin"},
            {"Accept": RAW},
            car=False,
            check=raw_filename,
        ),
        Case(
            "GET with application/vnd.ipld.raw header returns expected caching headers",
            f"/ipfs/{raw.cid('dir', 'ascii.txt')}",
            headers={"Accept": RAW},
            car=False,
            check=raw_caching,
        ),
        # (the range case is test_raw_ranges below: random single and multi ranges)
        # -- trustless_gateway_car_test.go: pathing ----------------------------------------------
        Case(
            "GET default CAR response with pathing through UnixFS Directory",
            f"/ipfs/{root2}/subdir/ascii.txt",
            blocks=[root2, two.cid("subdir"), two.cid("subdir", "ascii.txt")],
        ),
        Case(
            "GET default CAR response of UnixFS file on a path with HAMT-sharded directory",
            f"/ipfs/{rooth}/685.txt",
            blocks=[
                rooth,
                *hamt.hamt_traversal("685.txt"),
                hamt.cid("685.txt"),
                *hamt.descendants("685.txt"),
            ],
        ),
        Case(
            "GET default CAR response for non-existing file",
            f"/ipfs/{root2}/subdir/i-do-not-exist",
            status=(404, 200),
            check=lambda r: None if r.status_code == 404 else _exact(r, [root2, two.cid("subdir")]),
        ),
        # dag-scope=block
        Case(
            "GET CAR with dag-scope=block of UnixFS directory on a path",
            f"/ipfs/{root2}/subdir",
            {"dag-scope": "block"},
            blocks=[root2, two.cid("subdir")],
        ),
        Case(
            "GET CAR with dag-scope=block of UnixFS file on a path",
            f"/ipfs/{root2}/subdir/ascii.txt",
            {"dag-scope": "block"},
            blocks=[root2, two.cid("subdir"), two.cid("subdir", "ascii.txt")],
        ),
        Case(
            "GET CAR with dag-scope=block of UnixFS file on a path with sharded directory",
            f"/ipfs/{rooth}/1.txt",
            {"dag-scope": "block"},
            blocks=[rooth, *hamt.hamt_traversal("1.txt"), hamt.cid("1.txt")],
        ),
        # dag-scope=entity
        Case(
            "GET CAR with dag-scope=entity of a UnixFS directory",
            f"/ipfs/{root2}",
            eb,
            blocks=[root2],
        ),
        Case(
            "GET CAR with dag-scope=entity of a UnixFS sharded directory",
            f"/ipfs/{rooth}",
            eb,
            blocks=[rooth, *hamt.hamt_nodes()],
        ),
        Case(
            "GET CAR with dag-scope=entity of a UnixFS file",
            f"/ipfs/{rootm}/subdir/ascii.txt",
            eb,
            blocks=[rootm, mixed.cid("subdir"), mixed.cid("subdir", "ascii.txt")],
        ),
        Case(
            "GET CAR with dag-scope=entity of a chunked UnixFS file",
            f"/ipfs/{rootm}/subdir/multiblock.txt",
            eb,
            blocks=[rootm, mixed.cid("subdir"), mbcid, *mb],
        ),
        # dag-scope=all
        Case(
            "GET CAR with dag-scope=all of UnixFS directory with multiple files",
            f"/ipfs/{rootm}/subdir",
            {"dag-scope": "all"},
            blocks=[rootm, mixed.cid("subdir"), *mixed.descendants("subdir")],
        ),
        Case(
            "GET CAR with dag-scope=all of a chunked UnixFS file",
            f"/ipfs/{rootm}/subdir/multiblock.txt",
            {"dag-scope": "all"},
            blocks=[rootm, mixed.cid("subdir"), mbcid, *mb],
        ),
        # entity-bytes
        Case(
            "GET CAR with entity-bytes of a full UnixFS file",
            f"/ipfs/{rootm}/subdir/multiblock.txt",
            {**eb, "entity-bytes": "0:*"},
            blocks=[rootm, mixed.cid("subdir"), mbcid, *mb],
        ),
        Case(
            "GET CAR with entity-bytes of a UnixFS directory",
            f"/ipfs/{rooth}",
            {**eb, "entity-bytes": "0:*"},
            blocks=[rooth, *hamt.hamt_nodes()],
        ),
        Case(
            "GET CAR with entity-bytes equivalent to a HTTP Range Request from the middle of a file to the end",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "512:*"},
            blocks=[mbcid, *mb[2:]],
        ),
        Case(
            "GET CAR with entity-bytes equivalent to a HTTP Range Request for the middle of a file",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "512:1023"},
            blocks=[mbcid, *mb[2:4]],
        ),
        Case(
            "GET CAR with entity-bytes equivalent to a HTTP Range Request for the middle of a file (negative ending)",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "512:-256"},
            blocks=[mbcid, *mb[2:4]],
        ),
        Case(
            "GET CAR with entity-bytes equivalent to HTTP Suffix Range Request for part of a file",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "-5:*"},
            blocks=[mbcid, *mb[3:]],
        ),
        Case(
            "GET CAR with entity-bytes requesting a negative range bigger than the length of a file",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "-9999:*"},
            blocks=[mbcid, *multiblock],
        ),
        Case(
            "GET CAR with entity-bytes requesting a range from the end of a file that is bigger than a file itself",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "-9999:-3"},
            blocks=[mbcid, *multiblock[:4]],
        ),
        Case(
            "GET CAR with entity-bytes requesting only the blocks for the first byte of a file",
            f"/ipfs/{mbcid}",
            {**eb, "entity-bytes": "0:0"},
            blocks=[mbcid, mb[0]],
        ),
        # order and duplicates (no format transform in the suite: Accept as written)
        Case(
            "GET CAR with order=dfs and dups=y of UnixFS Directory With Duplicate Files",
            f"/ipfs/{rootd}",
            headers={"Accept": f"{CAR}; version=1; order=dfs; dups=y"},
            transforms=False,
            blocks=dup_all,
            check=ctype_has(CAR, "order=dfs", "dups=y"),
        ),
        Case(
            "GET CAR with order=dfs and dups=n of UnixFS Directory With Duplicate Files",
            f"/ipfs/{rootd}",
            headers={"Accept": f"{CAR}; version=1; order=dfs; dups=n"},
            transforms=False,
            blocks=dup_once,
            check=ctype_has(CAR, "order=dfs", "dups=n"),
        ),
        Case(
            "GET CAR smoke-test with order=unk of UnixFS Directory",
            f"/ipfs/{rootd}",
            headers={"Accept": f"{CAR}; version=1; order=unk"},
            transforms=False,
            block_set=dup_all,
            check=ctype_has(CAR, "order="),
        ),
        Case(
            "GET CAR with order=dfs and dups=y of identity CID",
            "/ipfs/bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa",
            headers={"Accept": f"{CAR}; dups=y"},
            transforms=False,
            blocks=[],
            check=ctype_has(CAR, "dups=y"),
        ),
        Case(
            "GET CAR with ?format=car respects Accept header order and dups params",
            f"/ipfs/{rootd}",
            {"format": "car"},
            {"Accept": f"{CAR}; version=1; order=dfs; dups=y"},
            transforms=False,
            blocks=dup_all,
            check=ctype_has(CAR, "order=dfs", "dups=y"),
        ),
        Case(
            "GET CAR with ?car-order=dfs takes precedence over order=unk in Accept",
            f"/ipfs/{rootd}",
            {"format": "car", "car-order": "dfs"},
            {"Accept": f"{CAR}; order=unk"},
            transforms=False,
            check=ctype_has(CAR, "order=dfs"),
        ),
        Case(
            "GET CAR with ?car-dups=y takes precedence over dups=n in Accept",
            f"/ipfs/{rootd}",
            {"format": "car", "car-dups": "y"},
            {"Accept": f"{CAR}; dups=n"},
            transforms=False,
            check=ctype_has(CAR, "dups=y"),
        ),
        # format precedence
        Case(
            "GET with format=car query parameter takes precedence over Accept header",
            f"/ipfs/{raw.cid('dir')}",
            {"format": "car"},
            {"Accept": RAW},
            transforms=False,
            check=ctype_has(CAR),
        ),
        Case(
            "GET with format=raw query parameter takes precedence over Accept header",
            f"/ipfs/{raw.cid('dir')}",
            {"format": "raw"},
            {"Accept": CAR},
            car=False,
            check=lambda r: _eq(r.headers["content-type"], RAW),
        ),
    ]


def _eq(a: object, b: object) -> None:
    assert a == b


def _exact(r: httpx.Response, want: list[str]) -> None:
    got = [str(b.cid) for b in CarReader([r.content])]
    assert got == want, (got, want)


def _standard_car_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["accept-ranges"] == "none"
    assert CAR in r.headers["content-type"]
    cd = r.headers["content-disposition"]
    assert cd.startswith('attachment; filename="') and cd.endswith('.car"'), cd
    assert r.headers["etag"]


def _variants(case: Case) -> list[tuple[dict[str, str], dict[str, str]]]:
    if not case.car or not case.transforms:
        return [(case.query, case.headers)]
    no_format = {k: v for k, v in case.query.items() if k != "format"}
    return [
        ({"format": "car", **no_format}, case.headers),
        (no_format, {**case.headers, "Accept": CAR}),
    ]


def test_replayed_trustless_cases(served: Served) -> None:
    replayed = cases(served)
    failures = []
    for case in replayed:
        for query, headers in _variants(case):
            r = httpx.get(served.url + case.path, params=query, headers=headers, timeout=30)
            try:
                assert r.status_code in case.status, (r.status_code, r.text)
                if r.status_code == 200 and case.car:
                    if case.transforms:
                        _standard_car_headers(r)
                    got = [str(b.cid) for b in CarReader([r.content])]
                    if case.blocks is not None:
                        assert got == case.blocks, (got, case.blocks)
                    if case.block_set is not None:
                        assert set(case.block_set) <= set(got)
                if case.check is not None:
                    case.check(r)
            except AssertionError as exc:
                failures.append(f"{case.name} {query} {headers}: {exc}")
    assert failures == []
    names = [c.name for c in replayed] + [
        "GET with application/vnd.ipld.raw with range request includes correct bytes"
    ]
    assert len(set(names)) == len(names) and not set(names) & set(SKIPPED)
    assert len(names) + len(SKIPPED) == SUITE_CASE_COUNT


def test_raw_ranges(served: Served) -> None:
    """'GET with application/vnd.ipld.raw with range request includes correct bytes'
    (helpers.OnlyRandomRangeTests: a random single range must be a correct 206; a multi-range
    request must be answered correctly, here with the whole block, which HTTP allows)."""
    raw = served.fx["gateway-raw-block.car"]
    cid = raw.cid("dir", "ascii.txt")
    data = raw.blocks[CID.parse(cid)]
    rnd = random.Random(412)
    for _ in range(8):
        a = rnd.randrange(len(data))
        b = rnd.randrange(a, len(data))
        r = httpx.get(
            served.url + f"/ipfs/{cid}",
            headers={"Accept": RAW, "Range": f"bytes={a}-{b}"},
            timeout=30,
        )
        assert r.status_code == 206 and r.content == data[a : b + 1]
        assert r.headers["content-range"] == f"bytes {a}-{b}/{len(data)}"
        assert r.headers["content-type"] == RAW
    r = httpx.get(
        served.url + f"/ipfs/{cid}", headers={"Accept": RAW, "Range": "bytes=0-1,3-4"}, timeout=30
    )
    assert (r.status_code, r.content) == (200, data)
