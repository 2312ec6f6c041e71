"""The trustless gateway, as a real `ownvault serve` process on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import unicodedata
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES, import_bytes
from ownvault.engine.vault import Vault
from tests.engine.helpers import PASS, make_vault, run
from tests.oracle.oracle import require_oracle
from tests.server.apiserver import serve_process

RAW = {"Accept": "application/vnd.ipld.raw"}
# names a header cannot carry as they are: above U+00FF, NFD (e + combining acute), Latin-1, '%'
HEADER_NAMES = [
    "日本.txt",
    unicodedata.normalize("NFD", "é-nfd.txt"),
    "caf\u00e9-latin1.txt",
    "100% ok.txt",
]


@dataclass
class Served:
    url: str
    root: str  # the published tree
    hamt: str  # a published HAMT directory (imported CAR, small shard threshold)
    tree: Path
    secret: bytes
    vault: Path
    proc: subprocess.Popen[str]


def _tree(root: Path) -> None:
    rnd = random.Random(7)
    (root / "site").mkdir(parents=True)
    (root / "site" / "index.html").write_text("<!doctype html><p>hello</p>\n")
    (root / "site" / "style.css").write_text("p { color: red }\n")
    (root / "empty").mkdir()
    (root / "big.bin").write_bytes(rnd.randbytes(700_000))  # 3 raw leaves + a node
    (root / "notes.txt").write_text("plain text, no extension needed\n" * 3)
    (root / "noext").write_bytes(b"just words\n")
    (root / "ünï cödé.txt").write_text("unicode name\n")
    for name in HEADER_NAMES:
        (root / name).write_text(f"named {name}\n")
    os.symlink("notes.txt", root / "link")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    base = tmp_path_factory.mktemp("gw")
    tree = base / "tree"
    _tree(tree)
    hamt_src = base / "hamt"
    hamt_src.mkdir()
    for i in range(40):
        (hamt_src / f"entry-{i:02d}.txt").write_text(f"entry {i}\n")
    oracle = require_oracle()
    oracle.batch([{"path": str(hamt_src), "shard-threshold": 64, "car": str(base / "hamt.car")}])
    secret = random.Random(8).randbytes(300_000)
    (base / "secret.bin").write_bytes(secret)
    vault_dir = base / "vault"
    vault = make_vault(vault_dir)
    try:
        run(vault.files.put([tree], name="site"))
        run(vault.files.put([base / "secret.bin"], name="secret.bin"))
        root = run(vault.ipfs.publish("site")).dag.root
        imp = run(vault.ipfs.import_car(base / "hamt.car", name="hamt", publish_it=True))
    finally:
        run(vault.close())
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    with serve_process(vault_dir, env, base / "serve.err") as served:
        yield Served(served.url, root, imp.root, tree, secret, vault_dir, served.proc)


def get(s: Served, path: str, **kw: object) -> httpx.Response:
    return httpx.get(s.url + path, timeout=30, **kw)  # type: ignore[arg-type]


def blocks_of(body: bytes) -> tuple[list[CID], list[tuple[CID, bytes]]]:
    reader = CarReader([body])
    return list(reader.roots), [(b.cid, b.data) for b in reader]


def test_raw_block_and_headers(served: Served) -> None:
    r = get(served, f"/ipfs/{served.root}", headers=RAW)
    assert r.status_code == 200
    assert CID.parse(served.root).verify(r.content)
    assert r.headers["content-type"] == "application/vnd.ipld.raw"
    assert r.headers["etag"] == f'"{served.root}.raw"'
    assert r.headers["cache-control"] == "public, max-age=29030400, immutable"
    assert r.headers["content-disposition"] == f'attachment; filename="{served.root}.bin"'
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-location"] == f"/ipfs/{served.root}?format=raw"
    assert r.headers["x-ipfs-roots"] == served.root
    r2 = get(served, f"/ipfs/{served.root}?format=raw")
    assert r2.content == r.content and "content-location" not in r2.headers
    assert (
        get(
            served, f"/ipfs/{served.root}?format=raw", headers={"If-None-Match": r.headers["etag"]}
        ).status_code
        == 304
    )
    h = httpx.head(served.url + f"/ipfs/{served.root}?format=raw")
    assert (
        h.status_code == 200
        and h.content == b""
        and int(h.headers["content-length"]) == len(r.content)
    )


def test_every_block_of_a_leafy_file_by_cid(served: Served) -> None:
    data = (served.tree / "big.bin").read_bytes()
    blocks: dict[CID, bytes] = {}
    root = import_bytes(data, PROFILES["kubo-v1"], blocks.__setitem__)
    for cid, block in blocks.items():
        r = get(served, f"/ipfs/{cid}?format=raw")
        assert r.status_code == 200 and r.content == block, cid
    r = get(served, f"/ipfs/{root.cid}?format=raw", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == blocks[root.cid][:4]


def test_car_all_matches_export_and_reference(served: Served, tmp_path: Path) -> None:
    r = get(served, f"/ipfs/{served.root}", headers={"Accept": "application/vnd.ipld.car"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    assert r.headers["etag"].startswith(f'"{served.root}.car.')
    out = bytearray()
    vault = make_vault_open(served.vault)
    try:
        run(vault.ipfs.export_car(served.root, out.extend))
    finally:
        run(vault.close())
    assert r.content == bytes(out)
    (tmp_path / "ours.car").write_bytes(r.content)
    ls = require_oracle().car_ls(tmp_path / "ours.car")
    assert ls["exit"] == 0 and ls["missing"] == [] and ls["badHashes"] == 0


def make_vault_open(path: Path):  # type: ignore[no-untyped-def]

    return Vault.open(path, PASS)


def test_reference_client_verifies_and_unpacks(served: Served) -> None:
    oracle = require_oracle()
    doc = oracle.gateway_fetch(f"{served.url}/ipfs/{served.root}")
    assert doc["status"] == 200 and doc["roots"] == [served.root]
    files = {
        e["path"].split(served.root, 1)[1].lstrip("/"): e
        for e in doc["entries"]
        if e["type"] in ("file", "raw")
    }
    for rel, entry in files.items():
        if (served.tree / rel).is_symlink():
            continue  # the exporter lists a UnixFS symlink as an empty 'file'
        want = (served.tree / rel).read_bytes()
        assert entry["size"] == len(want) and entry["sha256"] == hashlib.sha256(want).hexdigest(), (
            rel
        )
    assert {"big.bin", "notes.txt", "site/index.html", "ünï cödé.txt"} <= set(files)
    one = oracle.gateway_fetch(f"{served.url}/ipfs/{served.root}/big.bin")
    assert (
        one["entries"][0]["sha256"]
        == hashlib.sha256((served.tree / "big.bin").read_bytes()).hexdigest()
    )
    hamt = oracle.gateway_fetch(f"{served.url}/ipfs/{served.hamt}")
    assert len([e for e in hamt["entries"] if e["type"] in ("file", "raw")]) == 40


def test_car_scopes_and_entity_bytes(served: Served) -> None:
    base = f"/ipfs/{served.root}/big.bin?format=car"
    _roots, all_blocks = blocks_of(get(served, base).content)
    path_and_file = [c for c, _ in all_blocks]
    assert len(path_and_file) == 1 + 4  # the root directory, then the file node and 3 leaves
    _r, block = blocks_of(get(served, base + "&dag-scope=block").content)
    assert [c for c, _ in block] == path_and_file[:2]
    _r, entity = blocks_of(get(served, base + "&dag-scope=entity").content)
    assert [c for c, _ in entity] == path_and_file
    _r, first = blocks_of(get(served, base + "&entity-bytes=0:10").content)
    assert [c for c, _ in first] == path_and_file[:3]
    _r, last = blocks_of(get(served, base + "&entity-bytes=-10:*").content)
    assert [c for c, _ in last] == [*path_and_file[:2], path_and_file[-1]]
    _r, middle = blocks_of(get(served, base + "&entity-bytes=262143:262144").content)
    assert [c for c, _ in middle] == path_and_file[:4]
    # a range outside the file: the CAR of dag-scope=block (trustless-gateway spec)
    _r, outside = blocks_of(get(served, base + "&entity-bytes=800000:*").content)
    assert [c for c, _ in outside] == path_and_file[:2]
    assert get(served, base + "&entity-bytes=x:1").status_code == 400
    assert get(served, base + "&dag-scope=nope").status_code == 400
    # a directory: entity = its own block; a HAMT: every shard node, no children
    _r, d = blocks_of(get(served, f"/ipfs/{served.root}?format=car&dag-scope=entity").content)
    assert [str(c) for c, _ in d] == [served.root]
    _r, h = blocks_of(get(served, f"/ipfs/{served.hamt}?format=car&dag-scope=entity").content)
    assert len(h) >= 2 and all(c.codec == 0x70 for c, _ in h)
    assert (
        get(
            served,
            f"/ipfs/{served.root}?format=car",
            headers={"Accept": "application/vnd.ipld.car; version=2"},
        ).status_code
        == 200
    )
    assert (
        get(
            served,
            f"/ipfs/{served.root}",
            headers={"Accept": "application/vnd.ipld.car; version=2"},
        ).status_code
        == 406
    )
    dups = get(served, base + "&car-dups=y")
    assert dups.headers["content-type"].endswith("dups=y")


def test_deserialized_files_ranges_and_directories(served: Served) -> None:
    r = get(served, f"/ipfs/{served.root}/notes.txt")
    assert r.status_code == 200 and r.content == (served.tree / "notes.txt").read_bytes()
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["x-ipfs-path"] == f"/ipfs/{served.root}/notes.txt"
    assert r.headers["x-ipfs-roots"].split(",")[0] == served.root
    assert (
        get(served, f"/ipfs/{served.root}/noext").headers["content-type"]
        == "text/plain; charset=utf-8"
    )
    assert (
        get(served, f"/ipfs/{served.root}/big.bin").headers["content-type"]
        == "application/octet-stream"
    )
    assert (
        get(served, f"/ipfs/{served.root}/site/style.css")
        .headers["content-type"]
        .startswith("text/css")
    )
    big = (served.tree / "big.bin").read_bytes()
    r = get(served, f"/ipfs/{served.root}/big.bin", headers={"Range": "bytes=262140-262150"})
    assert r.status_code == 206 and r.content == big[262140:262151]
    assert r.headers["content-range"] == f"bytes 262140-262150/{len(big)}"
    r = get(served, f"/ipfs/{served.root}/big.bin", headers={"Range": "bytes=-5"})
    assert r.content == big[-5:]
    assert (
        get(served, f"/ipfs/{served.root}/big.bin", headers={"Range": "bytes=900000-"}).status_code
        == 416
    )
    assert (
        get(served, f"/ipfs/{served.root}/%C3%BCn%C3%AF%20c%C3%B6d%C3%A9.txt").content
        == b"unicode name\n"
    )
    r = get(served, f"/ipfs/{served.root}/site")
    assert r.status_code == 301 and r.headers["location"] == f"/ipfs/{served.root}/site/"
    r = get(served, f"/ipfs/{served.root}/site/")
    assert (
        r.status_code == 200
        and b"hello" in r.content
        and r.headers["content-type"].startswith("text/html")
    )
    r = get(served, f"/ipfs/{served.root}/")
    assert r.status_code == 200 and b"notes.txt" in r.content and b"big.bin" in r.content
    r = get(served, f"/ipfs/{served.hamt}/entry-07.txt")
    assert r.status_code == 200 and r.content == b"entry 7\n"
    assert get(served, f"/ipfs/{served.hamt}/nope.txt").status_code == 404
    r = get(served, f"/ipfs/{served.root}/notes.txt", params={"download": "true"})
    assert r.headers["content-disposition"].startswith("attachment")


def test_status_codes_and_private_content(served: Served) -> None:
    assert get(served, "/ipfs/not-a-cid").status_code == 400
    assert get(served, f"/ipfs/{served.root}?format=tar").status_code == 406
    assert (
        get(served, f"/ipfs/{served.root}", headers={"Accept": "application/x-tar"}).status_code
        == 406
    )
    assert get(served, f"/ipfs/{served.root}?format=bogus").status_code == 400
    assert get(served, f"/ipfs/{served.root}/missing.txt").status_code == 404
    unknown = CID.for_block(0x55, b"never stored")
    assert get(served, f"/ipfs/{unknown}?format=raw").status_code == 404
    # stored but never published: every one of its blocks is 404, by root or by leaf CID
    blocks: dict[CID, bytes] = {}
    root = import_bytes(served.secret, PROFILES["kubo-v1"], blocks.__setitem__)
    for cid in [root.cid, *blocks]:
        for fmt in ("raw", "car"):
            assert get(served, f"/ipfs/{cid}?format={fmt}").status_code == 404
        assert get(served, f"/ipfs/{cid}").status_code == 404
    assert (
        get(served, f"/ipfs/{served.root}", headers={"Service-Worker": "script"}).status_code == 400
    )
    # the identity probe of the trustless gateway spec
    r = get(served, "/ipfs/bafkqaaa?format=raw")
    assert r.status_code == 200 and r.content == b""
    roots, blocks_ = blocks_of(get(served, "/ipfs/bafkqaaa?format=car").content)
    assert [str(c) for c in roots] == ["bafkqaaa"] and blocks_ == []


def test_unpublish_takes_effect_while_serving(served: Served) -> None:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(served.vault)]
    assert get(served, f"/ipfs/{served.hamt}?format=raw").status_code == 200
    subprocess.run(
        [*cmd, "unpublish", "hamt"], env=env, check=True, capture_output=True, timeout=60
    )
    assert get(served, f"/ipfs/{served.hamt}?format=raw").status_code == 404
    subprocess.run([*cmd, "publish", "hamt"], env=env, check=True, capture_output=True, timeout=60)
    assert get(served, f"/ipfs/{served.hamt}?format=raw").status_code == 200


def test_header_values_are_percent_encoded(served: Served) -> None:
    for name in HEADER_NAMES:
        want = f"/ipfs/{served.root}/" + urllib.parse.quote(name)
        url = f"/ipfs/{served.root}/" + urllib.parse.quote(name)
        for extra in ({}, RAW, {"Accept": "application/vnd.ipld.car"}):
            r = get(served, url, headers=extra)
            assert r.status_code == 200, (name, extra, r.text)
            value = r.headers["x-ipfs-path"]
            assert value.isascii() and value == want, (name, value)
            assert urllib.parse.unquote(value) == f"/ipfs/{served.root}/{name}"
            if extra:
                assert r.headers["content-location"].isascii()
        assert get(served, url).content == f"named {name}\n".encode()
    # the Latin-1 name: raw bytes in a header would be mojibake for every client
    r = httpx.head(
        served.url + f"/ipfs/{served.root}/" + urllib.parse.quote("caf\u00e9-latin1.txt")
    )
    assert (
        r.headers.raw[0] is not None
        and b"caf%C3%A9-latin1.txt" in dict(r.headers.raw)[b"x-ipfs-path"]
    )


def test_car_parameters_accept_and_query_priority(served: Served) -> None:
    url = f"/ipfs/{served.root}"
    car = "application/vnd.ipld.car"
    # format=car picks the kind; Accept still gives the CAR parameters
    r = get(served, url + "?format=car", headers={"Accept": f"{car}; version=1; order=dfs; dups=y"})
    assert r.headers["content-type"] == f"{car}; version=1; order=dfs; dups=y"
    # car-* query parameters win over Accept's
    r = get(served, url + "?format=car&car-dups=y", headers={"Accept": f"{car}; dups=n"})
    assert r.headers["content-type"].endswith("dups=y")
    r = get(served, url + "?format=car&car-order=dfs", headers={"Accept": f"{car}; order=unk"})
    assert "order=dfs" in r.headers["content-type"]
    r = get(served, url, headers={"Accept": f"{car}; order=unk"})
    assert "order=dfs" in r.headers["content-type"]  # unk: the gateway names the order it chose
    # format wins over Accept's media type, both ways
    assert get(served, url + "?format=car", headers=RAW).headers["content-type"].startswith(car)
    assert (
        get(served, url + "?format=raw", headers={"Accept": car}).headers["content-type"]
        == "application/vnd.ipld.raw"
    )
    assert (
        get(served, url + "?format=car", headers={"Accept": f"{car}; order=random"}).status_code
        == 406
    )
    assert get(served, url, headers={"Accept": "application/vnd.ipld.dag-json"}).status_code == 406


def test_filename_on_raw_and_car(served: Served) -> None:
    url = f"/ipfs/{served.root}"
    r = get(served, url + "?format=raw&filename=foobar.bin")
    assert r.headers["content-disposition"] == 'attachment; filename="foobar.bin"'
    r = get(served, url + "?format=car&filename=site.car")
    assert r.headers["content-disposition"] == 'attachment; filename="site.car"'
    r = get(served, url + "?format=car&filename=" + urllib.parse.quote("日本.car"))
    assert (
        r.headers["content-disposition"]
        == "attachment; filename=\"__.car\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.car"
    )


def test_if_none_match_lists_weak_and_star(served: Served) -> None:
    for query in ("?format=raw", "?format=car", "/notes.txt"):
        url = f"/ipfs/{served.root}{query}"
        etag = get(served, url).headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        for inm in (etag, f'"nope", {etag}', f"W/{etag}", f'W/"x",W/{etag}', "*"):
            r = get(served, url, headers={"If-None-Match": inm})
            assert r.status_code == 304 and r.content == b"", (url, inm)
            assert r.headers["etag"] == etag
        assert get(served, url, headers={"If-None-Match": '"other", W/"x"'}).status_code == 200


def test_head_on_car_has_no_length(served: Served) -> None:
    r = httpx.head(served.url + f"/ipfs/{served.root}?format=car", timeout=30)
    assert r.status_code == 200 and r.content == b""
    assert r.headers.get("content-length") != "0"
    assert r.headers["content-type"].startswith("application/vnd.ipld.car")
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["etag"]


def test_non_canonical_base32_cids_are_refused(served: Served) -> None:
    cid = served.root
    assert cid.startswith("b")
    assert get(served, f"/ipfs/{cid}?format=raw").status_code == 200
    assert (
        get(served, f"/ipfs/{cid.upper()}?format=raw").status_code == 200
    )  # base32upper: canonical
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    assert (len(cid) - 1) * 5 % 8, "the CID string must have unused trailing bits"
    trailing = cid[:-1] + alphabet[alphabet.index(cid[-1]) | 1]  # a non-zero unused bit: same bytes
    for bad in (cid + "=", cid + "====", trailing):
        r = get(served, f"/ipfs/{bad}?format=raw")
        assert r.status_code == 400 and "non-canonical" in r.text, bad


IMMUTABLE = "public, max-age=29030400, immutable"
CAR = "application/vnd.ipld.car"


def test_spec_headers_per_response_kind(served: Served) -> None:
    """Trustless and path gateway spec headers on every kind of 200 a client can get."""
    sub = f"/ipfs/{served.root}/site/style.css"
    path_blocks = blocks_of(
        get(served, f"/ipfs/{served.root}/site?format=car&dag-scope=block").content
    )[1]
    site_cid = str(path_blocks[1][0])
    kinds = {
        "raw": (get(served, sub, headers=RAW), "application/vnd.ipld.raw"),
        "car": (get(served, sub + "?format=car"), f"{CAR}; version=1; order=dfs; dups=n"),
        "file": (get(served, sub), "text/css; charset=utf-8"),
        "listing": (get(served, f"/ipfs/{served.root}/"), "text/html; charset=utf-8"),
        "index": (get(served, f"/ipfs/{served.root}/site/"), "text/html; charset=utf-8"),
    }
    for kind, (r, ctype) in kinds.items():
        assert r.status_code == 200, kind
        assert r.headers["content-type"] == ctype, kind
        assert r.headers["cache-control"] == IMMUTABLE, kind
        assert "Accept" in r.headers["vary"], kind
        assert r.headers["etag"].startswith('"') and r.headers["etag"].endswith('"'), kind
        assert r.headers["x-ipfs-path"].startswith(f"/ipfs/{served.root}/"), kind
        roots = r.headers["x-ipfs-roots"].split(",")
        assert roots[:2] == ([served.root] if kind == "listing" else [served.root, site_cid]), kind
    # verifiable responses must not be sniffed by browsers; a file's bytes keep their own type
    for kind in ("raw", "car"):
        assert kinds[kind][0].headers["x-content-type-options"] == "nosniff", kind
        assert kinds[kind][0].headers["content-disposition"].startswith("attachment;"), kind
    # ETag formats: "{cid}.raw", "{cid}.car.{hash}", "{cid}" of the file, "DirIndex-..._CID-{cid}"
    leaf = kinds["raw"][0].headers["x-ipfs-roots"].split(",")[-1]
    assert kinds["raw"][0].headers["etag"] == f'"{leaf}.raw"'
    assert kinds["car"][0].headers["etag"].startswith(f'"{served.root}.car.')
    assert kinds["file"][0].headers["etag"] == f'"{leaf}"'
    assert kinds["listing"][0].headers["etag"] == f'"DirIndex-ownvault1_CID-{served.root}"'
    assert kinds["index"][0].headers["x-ipfs-roots"].split(",")[-1] != site_cid  # the index.html
    # the CAR ETag names what is in it: scope, range and dups each change it; Range does not
    # change a file's
    etags = {
        get(served, sub + "?format=car" + extra).headers["etag"]
        for extra in (
            "",
            "&dag-scope=block",
            "&dag-scope=entity",
            "&entity-bytes=0:1",
            "&car-dups=y",
        )
    }
    assert len(etags) == 5
    ranged = get(served, sub, headers={"Range": "bytes=0-1"})
    assert ranged.status_code == 206 and ranged.headers["etag"] == kinds["file"][0].headers["etag"]
    assert ranged.headers["cache-control"] == IMMUTABLE


def test_conditional_requests_on_every_kind(served: Served) -> None:
    """If-None-Match gives 304 (no body, same validators and caching headers) everywhere an
    ETag is sent: raw, CAR, a file, a directory listing, an index.html, a symlink."""
    urls = [
        (f"/ipfs/{served.root}/notes.txt", RAW),
        (f"/ipfs/{served.root}/notes.txt?format=car", {}),
        (f"/ipfs/{served.root}/notes.txt", {}),
        (f"/ipfs/{served.root}/", {}),
        (f"/ipfs/{served.root}/site/", {}),
        (f"/ipfs/{served.root}/link", {}),
        (f"/ipfs/{served.hamt}/", {}),
    ]
    for url, extra in urls:
        first = get(served, url, headers=extra)
        assert first.status_code == 200, url
        etag = first.headers["etag"]
        for method in ("GET", "HEAD"):
            r = httpx.request(
                method, served.url + url, headers={**extra, "If-None-Match": etag}, timeout=30
            )
            assert r.status_code == 304 and r.content == b"", (method, url, r.status_code)
            assert r.headers["etag"] == etag, url
            assert r.headers["cache-control"] == IMMUTABLE, url
            assert r.headers["x-ipfs-path"] == first.headers["x-ipfs-path"], url
            assert "content-length" not in r.headers or r.headers["content-length"] == "0", url


def test_head_matches_get_without_a_body(served: Served) -> None:
    for url, extra in [
        (f"/ipfs/{served.root}/big.bin", {}),
        (f"/ipfs/{served.root}/big.bin", {"Range": "bytes=10-19"}),
        (f"/ipfs/{served.root}/", {}),
        (f"/ipfs/{served.root}/site/", {}),
        (f"/ipfs/{served.root}/link", {}),
        (f"/ipfs/{served.root}/big.bin", RAW),
    ]:
        g = get(served, url, headers=extra)
        h = httpx.head(served.url + url, headers=extra, timeout=30)
        assert h.status_code == g.status_code and h.content == b"", url
        for name in (
            "content-type",
            "etag",
            "cache-control",
            "x-ipfs-path",
            "x-ipfs-roots",
            "content-range",
            "accept-ranges",
            "x-content-type-options",
        ):
            assert h.headers.get(name) == g.headers.get(name), (url, name)
        assert int(h.headers["content-length"]) == len(g.content), url


def test_content_disposition_on_deserialized_files(served: Served) -> None:
    url = f"/ipfs/{served.root}/notes.txt"
    assert "content-disposition" not in get(served, url).headers
    r = get(served, url + "?filename=report.txt")
    assert r.headers["content-disposition"] == 'inline; filename="report.txt"'
    r = get(served, url + "?filename=" + urllib.parse.quote("日本.txt") + "&download=true")
    assert (
        r.headers["content-disposition"]
        == "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"
    )
    r = get(served, url + "?download=true")
    assert r.headers["content-disposition"] == 'attachment; filename="notes.txt"'


def test_accept_negotiation_406_and_fallthrough(served: Served) -> None:
    url = f"/ipfs/{served.root}/notes.txt"
    for accept in (
        "application/x-tar",
        "application/vnd.ipld.dag-json, application/vnd.ipld.dag-cbor;q=0.5",
        "application/json",
        "application/vnd.ipfs.ipns-record",
        f"{CAR}; version=2",
        f"{CAR}; order=random",
    ):
        r = get(served, url, headers={"Accept": accept})
        assert r.status_code == 406, accept
        assert r.headers["cache-control"] == "no-store", accept
    # an unsupported CAR range is passed over for the next acceptable type, as any other is
    r = get(served, url, headers={"Accept": f"{CAR}; version=2, application/vnd.ipld.raw;q=0.9"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.ipld.raw"
    # q-values rank; media types are case-insensitive
    r = get(served, url, headers={"Accept": f"application/vnd.ipld.raw;q=0.5, {CAR};q=0.9"})
    assert r.headers["content-type"].startswith(CAR)
    assert (
        get(served, url, headers={"Accept": "Application/VND.IPLD.RAW"}).headers["content-type"]
        == "application/vnd.ipld.raw"
    )
    # the car-* query parameters are named in the CAR Content-Type; version 2 is refused
    r = get(served, f"/ipfs/{served.root}?format=car&car-version=1&car-order=dfs&car-dups=y")
    assert r.headers["content-type"] == f"{CAR}; version=1; order=dfs; dups=y"
    assert get(served, f"/ipfs/{served.root}?format=car&car-version=2").status_code == 406
    assert get(served, f"/ipfs/{served.root}?format=car&car-order=random").status_code == 406
    assert get(served, f"/ipfs/{served.root}?format=car&car-dups=maybe").status_code == 400
