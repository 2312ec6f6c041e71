"""A publication is served by every device of the vault (``engine.ipfs.dagindex``): its
``dags`` row travels in the journal, its block index does not, and a device that did not
publish it rebuilds the index from the version's content the first time it serves it,
checked against the published root. Two vault directories on shared local folders."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import httpx
import pytest

from ownvault.core.car import CarReader, dfs_blocks, write_car
from ownvault.core.cid import CID
from ownvault.core.unixfs import ImportProfile
from ownvault.engine.ipfs import dagindex
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.engine.ipfs.publish import dag_blocks, dag_index
from ownvault.engine.store.catalog.ipfs import DagRow
from ownvault.engine.vault import Vault
from ownvault.errors import IntegrityError, NotFoundError
from tests.server.apiserver import serve_process

from .helpers import run
from .test_journalsync import _recover, two  # noqa: F401 - the fixture


def _car(v: Vault, target: str) -> bytes:
    out = io.BytesIO()
    run(v.ipfs.export_car(target, out.write))
    return out.getvalue()


def _row(v: Vault, name: str) -> DagRow:
    rows = [r for r in v.catalog.dags.published() if r.label == name]
    assert len(rows) == 1, (name, rows)
    return rows[0]


async def _pin_source(v: Vault, name: str) -> list[tuple[CID, bytes]]:
    _version, _path, index = await dag_index(v.ctx, name)
    return [(cid, block) async for cid, block in dag_blocks(v.ctx, index)]


def _index_cids(v: Vault, name: str) -> set[bytes]:
    return set(v.catalog.dags.load(_row(v, name).id).blocks)


def _site(tmp: Path) -> tuple[Path, Path]:
    """A file of three leaves and a folder (a subfolder, a file inside, a symlink)."""
    rnd = random.Random(16)
    big = tmp / "big.bin"
    big.write_bytes(rnd.randbytes(700_000))
    site = tmp / "site"
    (site / "docs").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><p>hello</p>\n")
    (site / "docs" / "notes.txt").write_text("notes from device A\n" * 50)
    (site / "docs" / "data.bin").write_bytes(rnd.randbytes(300_000))
    os.symlink("index.html", site / "home")
    return big, site


def _published_on_a(a: Vault, tmp: Path) -> dict[str, str]:
    big, site = _site(tmp)
    run(a.files.put([big]))
    run(a.files.put([site]))
    return {name: run(a.ipfs.publish(name)).dag.root for name in ("big.bin", "site")}


def _car_of_another_layout(tmp: Path) -> Path:
    """A CAR no import profile reproduces (1,000-byte chunks): a ``'car'`` DAG record."""
    src = tmp / "odd.bin"
    src.write_bytes(random.Random(3).randbytes(5_000))
    blocks: dict[CID, bytes] = {}
    profile = ImportProfile("chunk1000", 1, True, 1000, 174)
    root = cid_of_path(src, profile, hidden=True, on_block=blocks.__setitem__)
    out = tmp / "odd.car"
    out.write_bytes(b"".join(write_car([root.cid], dfs_blocks(root.cid, blocks.__getitem__))))
    return out


def test_the_other_device_exports_the_same_car_and_keeps_the_rebuilt_index(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    roots = _published_on_a(a, tmp)
    run(b.ctx.pull())
    assert b.catalog.dags.unindexed() == [_row(b, "big.bin"), _row(b, "site")]
    for name, root in roots.items():
        mine = _car(a, name)
        assert _car(b, name) == mine, name  # byte-identical CARv1
        assert _car(b, root) == mine, name  # by CID too
        assert [str(c) for c in CarReader([mine]).roots] == [root]
        # the rebuilt index is stored here, block for block the publisher's
        assert _index_cids(b, name) == _index_cids(a, name), name
        # pinning's block source (what `publish --pin` hands the IPFS node) is the CAR's
        assert run(_pin_source(b, name)) == [(k.cid, k.data) for k in CarReader([mine])]
    assert b.catalog.dags.unindexed() == []


def test_an_unpublish_drops_the_index_on_the_other_device_and_a_republish_rebuilds(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    _published_on_a(a, tmp)
    run(b.ctx.pull())
    _car(b, "site")
    assert _index_cids(b, "site") == _index_cids(a, "site")
    dag = _row(b, "site").id
    run(a.ipfs.unpublish("site"))
    run(b.ctx.pull())
    assert b.catalog.dags.block_count(dag) == 0
    assert [d.name for d in b.ipfs.dags(published=True)] == ["big.bin"]
    run(a.ipfs.publish("site"))
    run(b.ctx.pull())
    assert _row(b, "site").id == dag and b.catalog.dags.block_count(dag) == 0
    assert _car(b, "site") == _car(a, "site")
    assert _index_cids(b, "site") == _index_cids(a, "site")


def test_a_rebuilt_root_that_differs_is_refused_naming_the_publication(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    _published_on_a(a, tmp)
    run(b.ctx.pull())
    # B's row says another import profile: its rebuild gives another root
    b.catalog.conn.execute("UPDATE dags SET profile = 'kubo-v0' WHERE path = ''")
    with pytest.raises(IntegrityError, match=r"publication big\.bin \(version 1, ipfs://"):
        _car(b, "big.bin")
    with pytest.raises(IntegrityError, match=r"publication site .*not the published one"):
        _car(b, "site")
    assert b.catalog.dags.block_count(_row(b, "site").id) == 0  # nothing stored


def test_an_imported_car_of_another_layout_is_refused_on_the_other_device_saying_why(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    imp = run(a.ipfs.import_car(_car_of_another_layout(tmp), name="odd", publish_it=True))
    assert imp.source == "car"
    run(b.ctx.pull())
    assert [(d.name, d.cid, d.source) for d in b.ipfs.dags(published=True)] == [
        ("odd", imp.root, "car")
    ]
    with pytest.raises(NotFoundError, match=r"publication odd .* is an imported CAR .* kept only"):
        _car(b, "odd")
    with pytest.raises(NotFoundError, match=r"odd .* is an imported CAR"):
        run(b.ipfs.publish("odd", profile="car-import"))
    check = run(b.ipfs.verify_cid("odd"))
    assert not check.ok and "is an imported CAR" in check.checks[-1].computed
    # B holds the version's bytes: its own profile's DAG of them is exportable by that CID
    assert imp.stored_cid is not None and _car(b, imp.stored_cid)


def test_the_other_devices_gateway_serves_the_publications(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    roots = _published_on_a(a, tmp)
    (tmp / "page.html").write_text("<p>tampered on B</p>\n")
    run(a.files.put([tmp / "page.html"]))
    page = run(a.ipfs.publish("page.html")).dag.root
    odd = run(a.ipfs.import_car(_car_of_another_layout(tmp), name="odd", publish_it=True)).root
    run(b.ctx.pull())
    b.catalog.conn.execute(
        "UPDATE dags SET profile = 'kubo-v0' WHERE root = ?", (page,)
    )  # rebuilds to another root
    env = {**os.environ, "OWNVAULT_PASSPHRASE": "pw"}
    with serve_process(b.path, env, tmp / "serve.err") as served:

        def get(path: str) -> httpx.Response:
            return httpx.get(served.url + path, timeout=60)

        big, site = roots["big.bin"], roots["site"]
        r = get(f"/ipfs/{big}?format=car")
        assert r.status_code == 200 and r.content == _car(a, "big.bin")
        assert get(f"/ipfs/{big}").content == (tmp / "big.bin").read_bytes()
        r = get(f"/ipfs/{site}?format=raw")
        assert r.status_code == 200 and CID.parse(site).verify(r.content)
        r = get(f"/ipfs/{site}/docs/notes.txt")
        assert r.status_code == 200 and r.content == (tmp / "site/docs/notes.txt").read_bytes()
        r = get(f"/ipfs/{site}/docs/data.bin?format=car&dag-scope=entity")
        assert r.status_code == 200
        sent = {blk.cid for blk in CarReader([r.content])}
        assert {blk.cid for blk in CarReader([_car(a, "site/docs/data.bin")])} <= sent
        r = get(f"/ipfs/{page}")
        assert r.status_code == 500 and "publication page.html" in r.text
        r = get(f"/ipfs/{odd}?format=raw")
        assert r.status_code == 404 and "imported CAR" in r.text
        assert get(f"/ipfs/{site}/index.html").status_code == 200  # the others still served
    assert _index_cids(b, "site") == _index_cids(a, "site")
    assert b.catalog.dags.block_count(_row(b, "page.html").id) == 0


def test_a_row_changed_while_its_index_was_rebuilt_keeps_the_change(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b, tmp = two
    _published_on_a(a, tmp)
    run(b.ctx.pull())
    row = _row(b, "site")
    real = dagindex.index_version

    async def unpublished_meanwhile(*args: object, **kw: object) -> object:
        built = await real(*args, **kw)  # type: ignore[arg-type]
        # another process of this device unpublishes while the rebuild runs
        b.catalog.conn.execute("UPDATE dags SET published_at = NULL WHERE id = ?", (row.id,))
        return built

    monkeypatch.setattr(dagindex, "index_version", unpublished_meanwhile)
    assert run(dagindex.indexed(b.ctx, row)).root == CID.parse(row.root)
    assert b.catalog.dags.block_count(row.id) == 0
    assert [d.name for d in b.ipfs.dags(published=True)] == ["big.bin"]
