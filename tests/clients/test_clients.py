"""Real IPFS clients against a real `ownvault serve` on loopback (issue 17).

* ``@helia/verified-fetch`` over a gateway-only Helia (tests/clients/clients.mjs): files whole
  and ranged, a tar of a tree, directory listings (a HAMT flattened), every HAMT entry;
* ``ipfs-car`` (the CLI): unpacks the CARs ``ownvault car export`` writes and the gateway
  serves (``?format=car``) byte-identically, and packs CARs that ``ownvault car import`` takes
  and serves back equal;
* ``@ipld/car`` + ``ipfs-unixfs-exporter`` (the oracle's ``gateway-fetch`` walker): every CAR
  the gateway serves for the published items and each of their paths, re-hashed and unpacked.

Installed by scripts/setup.d/ipfs-clients.sh (``npm ci`` into tests/clients/node_modules).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.engine.helpers import PASS, make_vault, run
from tests.oracle.oracle import require_oracle
from tests.server.apiserver import serve_process

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "clients.mjs"
IPFS_CAR = HERE / "node_modules" / ".bin" / "ipfs-car"
HAMT_ENTRIES = 300  # with a shard threshold of 1 KiB: a root shard and 2 levels of sub-shards
SUFFIXES = [".txt", ".bin", ".json"]


def _require_clients() -> str:
    node = shutil.which("node")
    if node is None or not (HERE / "node_modules" / "@helia" / "verified-fetch").is_dir():
        msg = "IPFS clients not installed: run scripts/setup.d/ipfs-clients.sh"
        if os.environ.get("OWNVAULT_SKIP_ORACLE") == "1":
            pytest.skip(msg)
        pytest.fail(msg)
    return node


@dataclass
class Served:
    url: str
    vault: Path
    base: Path
    tree: Path  # published as "site" -> root
    root: str
    one: Path  # a multi-block file published on its own -> one_cid
    one_cid: str
    hamt_src: Path
    hamt: str
    env: dict[str, str] = field(default_factory=dict)


def _make_tree(root: Path) -> None:
    rnd = random.Random(17)
    (root / "docs" / "deep" / "er").mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("alpha\n")
    (root / "docs" / "deep" / "er" / "z.json").write_text('{"z": 1}\n')
    (root / "big.bin").write_bytes(rnd.randbytes(700_000))  # 3 raw leaves + a node
    (root / "empty.txt").write_bytes(b"")
    (root / "ünï cödé").mkdir()
    (root / "ünï cödé" / "日本語 ファイル.txt").write_text("unicode name\n")
    (root / "ünï cödé" / "100% ok #1?.txt").write_text("reserved characters\n")
    (root / "site").mkdir()
    (root / "site" / "index.html").write_text("<!doctype html><p>hello</p>\n")


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def ov(s: Served, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(s.vault), *args]
    proc = subprocess.run(cmd, env=s.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    _require_clients()
    base = tmp_path_factory.mktemp("clients")
    tree = base / "tree"
    _make_tree(tree)
    one = base / "one.bin"
    one.write_bytes(random.Random(18).randbytes(1_300_000))  # 5 leaves
    hamt_src = base / "hamt"
    hamt_src.mkdir()
    for i in range(HAMT_ENTRIES):
        (hamt_src / f"entry-{i:03d}{SUFFIXES[i % 3]}").write_text(f"entry {i}\n" * (i % 7 + 1))
    require_oracle().batch(
        [{"path": str(hamt_src), "shard-threshold": 1024, "car": str(base / "hamt.car")}]
    )
    vault_dir = base / "vault"
    vault = make_vault(vault_dir)
    try:
        run(vault.files.put([tree], name="site"))
        run(vault.files.put([one], name="one.bin"))
        root = run(vault.ipfs.publish("site")).dag.root
        one_cid = run(vault.ipfs.publish("one.bin")).dag.root
        hamt = run(vault.ipfs.import_car(base / "hamt.car", name="hamt", publish_it=True)).root
    finally:
        run(vault.close())
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    with serve_process(vault_dir, env, base / "serve.err") as served:
        yield Served(
            served.url,
            vault_dir,
            base,
            tree,
            str(root),
            one,
            str(one_cid),
            hamt_src,
            str(hamt),
            env,
        )


def verified_fetch(s: Served, jobs: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    node = _require_clients()
    for i, job in enumerate(jobs):
        job["out"] = str(tmp / f"body-{i}")
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run(
        [node, str(SCRIPT), "verified-fetch", s.url, str(tmp / "jobs.json")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=HERE,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: list[dict[str, Any]] = json.loads(proc.stdout)
    assert len(out) == len(jobs)
    return out


def quote(rel: str) -> str:
    return "/".join(urllib.parse.quote(part, safe="") for part in rel.split("/"))


def test_verified_fetch_files_ranges_and_listings(served: Served, tmp_path: Path) -> None:
    files = _files(served.tree)
    big = files["big.bin"]
    one = served.one.read_bytes()
    jobs: list[dict[str, Any]] = [
        {"resource": f"ipfs://{served.root}/{quote(rel)}"} for rel in files
    ]
    ranged = [
        (f"ipfs://{served.root}/big.bin", "bytes=1000-300000", big[1000:300001]),
        (f"ipfs://{served.root}/big.bin", "bytes=262144-524287", big[262144:524288]),
        (f"ipfs://{served.one_cid}", "bytes=1048570-1048580", one[1048570:1048581]),
        (f"ipfs://{served.one_cid}", "bytes=-17", one[-17:]),
    ]
    jobs += [{"resource": r, "headers": {"Range": h}} for r, h, _ in ranged]
    jobs.append({"resource": f"ipfs://{served.one_cid}"})
    jobs.append({"resource": f"ipfs://{served.root}"})  # listing (no index.html at the top)
    jobs.append({"resource": f"ipfs://{served.root}/site/"})  # a directory with index.html
    results = verified_fetch(served, jobs, tmp_path)
    for (rel, want), got in zip(files.items(), results, strict=False):
        assert got["status"] == 200, (rel, got)
        assert got["sha256"] == hashlib.sha256(want).hexdigest(), rel
    for i, (_r, header, want) in enumerate(ranged, start=len(files)):
        assert results[i]["status"] == 206, (header, results[i])
        assert results[i]["headers"]["content-range"].startswith("bytes "), header
        assert (tmp_path / f"body-{i}").read_bytes() == want, header
    whole, listing, index = results[-3:]
    assert whole["status"] == 200 and whole["sha256"] == hashlib.sha256(one).hexdigest()
    assert sorted(listing["names"]) == sorted(p.name for p in served.tree.iterdir())
    assert (
        index["status"] == 200
        and index["sha256"] == hashlib.sha256(files["site/index.html"]).hexdigest()
    )


def test_verified_fetch_tar_of_a_tree(served: Served, tmp_path: Path) -> None:
    [got] = verified_fetch(
        served,
        [{"resource": f"ipfs://{served.root}", "headers": {"Accept": "application/x-tar"}}],
        tmp_path,
    )
    assert got["status"] == 200, got
    unpacked: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO((tmp_path / "body-0").read_bytes())) as tar:
        for member in tar.getmembers():
            if member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None
                unpacked[member.name.split("/", 1)[1]] = fh.read()
    assert unpacked == _files(served.tree)


def test_verified_fetch_every_hamt_entry(served: Served, tmp_path: Path) -> None:
    names = sorted(p.name for p in served.hamt_src.iterdir())
    jobs: list[dict[str, Any]] = [{"resource": f"ipfs://{served.hamt}"}]
    jobs += [{"resource": f"ipfs://{served.hamt}/{n}"} for n in names]
    jobs.append({"resource": f"ipfs://{served.hamt}/not-there.txt"})
    results = verified_fetch(served, jobs, tmp_path)
    assert sorted(results[0]["names"]) == names  # the listing, every shard walked
    for name, got in zip(names, results[1:-1], strict=True):
        want = (served.hamt_src / name).read_bytes()
        assert got["status"] == 200 and got["sha256"] == hashlib.sha256(want).hexdigest(), name
    assert results[-1]["status"] == 404


def ipfs_car(*args: str) -> subprocess.CompletedProcess[str]:
    node = _require_clients()
    proc = subprocess.run([node, str(IPFS_CAR), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_ipfs_car_unpacks_exported_and_served_cars(served: Served, tmp_path: Path) -> None:
    items = [
        ("site", served.root, served.tree),
        ("one.bin", served.one_cid, served.one),
        ("hamt", served.hamt, served.hamt_src),
    ]
    for name, cid, source in items:
        exported = tmp_path / f"{cid}.export.car"
        ov(served, "car", "export", name, str(exported))
        fetched = tmp_path / f"{cid}.gw.car"
        r = httpx.get(f"{served.url}/ipfs/{cid}?format=car", timeout=60)
        assert r.status_code == 200
        fetched.write_bytes(r.content)
        assert fetched.read_bytes() == exported.read_bytes(), name  # one DAG, one order
        for car in (exported, fetched):
            assert ipfs_car("roots", str(car)).stdout.split() == [cid]
            out = tmp_path / f"{car.name}.out"
            ipfs_car("unpack", str(car), "--output", str(out))
            if source.is_dir():
                assert _files(out) == _files(source), (name, car.name)
            else:
                assert out.read_bytes() == source.read_bytes(), (name, car.name)
    # a sub-path's CAR carries the path's blocks too; ipfs-car unpacks the file at its end
    r = httpx.get(
        f"{served.url}/ipfs/{served.root}/{quote('ünï cödé/日本語 ファイル.txt')}?format=car"
    )
    sub = tmp_path / "sub.car"
    sub.write_bytes(r.content)
    leaf = ipfs_car("blocks", str(sub)).stdout.split()[-1]
    ipfs_car("unpack", str(sub), "--root", leaf, "--output", str(tmp_path / "sub.out"))
    assert (tmp_path / "sub.out").read_bytes() == b"unicode name\n"


def test_ipfs_car_packs_what_ownvault_imports(served: Served, tmp_path: Path) -> None:
    src = tmp_path / "packme"
    _make_tree(src)
    (src / "big.bin").write_bytes(random.Random(19).randbytes(3 * 1024 * 1024 + 5))  # 1 MiB chunks
    car = tmp_path / "packed.car"
    ipfs_car("pack", str(src), "--no-wrap", "--output", str(car))
    root = ipfs_car("roots", str(car)).stdout.split()[0]
    doc = json.loads(
        ov(served, "car", "import", str(car), "--as", "packed", "--publish", "--json").stdout
    )
    assert doc["root"] == root
    out = tmp_path / "restored"
    ov(served, "get", "packed", "-o", str(out))
    assert _files(out) == _files(src)
    # the gateway serves it back: the same CAR ipfs-car wrote, block for block, and the bytes
    back = tmp_path / "back.car"
    back.write_bytes(httpx.get(f"{served.url}/ipfs/{root}?format=car", timeout=60).content)
    assert sorted(ipfs_car("blocks", str(back)).stdout.split()) == sorted(
        ipfs_car("blocks", str(car)).stdout.split()
    )
    r = httpx.get(f"{served.url}/ipfs/{root}/big.bin", timeout=60)
    assert r.content == (src / "big.bin").read_bytes()
    exported = tmp_path / "exported.car"
    ov(served, "car", "export", "packed", str(exported))
    ipfs_car("unpack", str(exported), "--output", str(tmp_path / "again"))
    assert _files(tmp_path / "again") == _files(src)


def _paths(root: Path) -> list[str]:
    return ["", *(p.relative_to(root).as_posix() for p in sorted(root.rglob("*")))]


def test_reference_walker_on_every_served_car(served: Served) -> None:
    """@ipld/car + ipfs-unixfs-exporter on the CAR of every published item and of each path."""
    oracle = require_oracle()
    targets = [(served.root, rel, served.tree / rel) for rel in _paths(served.tree)]
    targets += [(served.one_cid, "", served.one), (served.hamt, "", served.hamt_src)]
    targets += [(served.hamt, p.name, p) for p in sorted(served.hamt_src.iterdir())[:5]]
    walked = 0
    for cid, rel, source in targets:
        url = f"{served.url}/ipfs/{cid}" + (f"/{quote(rel)}" if rel else "")
        doc = oracle.gateway_fetch(url)
        assert doc["status"] == 200 and doc.get("error") is None, (rel, doc)
        prefix = f"{cid}/{rel}".rstrip("/")
        # the exporter names a file reached by path "CID/PATH", a tree's entries "/ipfs/CID/..."
        got = {
            e["path"].removeprefix("/ipfs/"): e["sha256"]
            for e in doc["entries"]
            if e["type"] in ("file", "raw")
        }
        want = _files(source) if source.is_dir() else {"": source.read_bytes()}
        assert got == {
            f"{prefix}/{sub}" if sub else prefix: hashlib.sha256(data).hexdigest()
            for sub, data in want.items()
        }, rel
        walked += 1
    assert walked == len(targets)
