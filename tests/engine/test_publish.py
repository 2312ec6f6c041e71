"""Tree CIDs at ingest, publication records and their block index, verify-cid, car export."""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest

from ownvault.cli import run_cli
from ownvault.core.car import CarReader
from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.snapshots import find_latest_locator, restore_snapshot
from ownvault.errors import IntegrityError, NotFoundError
from tests.oracle.oracle import require_oracle

from .helpers import Vaults, run


def _tree(root: Path, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a" / "x.bin").write_bytes(rnd.randbytes(600_000))
    (root / "a" / "b" / "y.txt").write_text("why\n")
    (root / ".hidden").write_text("stored and in the DAG\n")
    (root / "zero").write_bytes(b"")
    return root


def test_tree_cid_at_ingest_matches_ipfs_add(vaults: Vaults, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    vault = vaults.create(tmp_path / "v")
    put = run(vault.files.put([tree]))[0]
    assert put.kind == "tree"
    assert put.cid == str(cid_of_path(tree, PROFILES["kubo-v1"], hidden=True).cid)
    assert put.cid == require_oracle().cid(tree, hidden=True)
    listing = run(vault.files.ls()).objects[0]
    assert listing.cid == put.cid and listing.cid_profile == "kubo-v1"
    os.symlink("a/x.bin", tree / "link")  # symlinks: UnixFS symlink nodes, as ipfs add -r
    put2 = run(vault.files.put([tree]))[0]
    assert put2.cid == str(cid_of_path(tree, PROFILES["kubo-v1"], hidden=True).cid) != put.cid


def test_publish_index_verify_export_unpublish(vaults: Vaults, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    vault = vaults.create(tmp_path / "v")
    put = run(vault.files.put([tree], name="docs"))[0]
    (tmp_path / "private.bin").write_bytes(random.Random(9).randbytes(400_000))
    run(vault.files.put([tmp_path / "private.bin"]))
    pub = run(vault.ipfs.publish("docs"))
    assert pub.dag.root == put.cid and pub.dag.published_at is not None
    # index: x.bin (3 leaves + node), 3 small files, 4 directories
    assert pub.blocks == 11
    store = vault.catalog.dags
    root = CID.parse(put.cid)
    assert store.lookup(root.bytes) is not None
    private = run(vault.files.ls("private.bin")).objects[0].cid
    assert store.lookup(CID.parse(private).bytes) is None  # stored, not published
    doc = run(vault.ipfs.verify_cid("docs"))
    assert doc.ok and {c.what for c in doc.checks} >= {"root", "file a/x.bin"}
    out = bytearray()
    info = run(vault.ipfs.export_car("docs", out.extend))
    assert info.root == put.cid and info.blocks == 11
    ref = tmp_path / "ref.car"

    assert run_cli(["cid", "--hidden", str(tree), "--car", str(ref)]) == 0
    assert bytes(out) == ref.read_bytes()  # byte-identical to the reference writer's order
    # a path inside a tree, a single file, and another profile
    sub = run(vault.ipfs.publish("docs/a"))
    assert sub.dag.path == "a" and sub.dag.root == str(
        cid_of_path(tree / "a", PROFILES["kubo-v1"], hidden=True).cid
    )
    v0 = run(vault.ipfs.publish("private.bin", profile="kubo-v0"))
    assert v0.dag.root.startswith("Qm")
    assert v0.dag.root == str(cid_of_path(tmp_path / "private.bin", PROFILES["kubo-v0"]).cid)
    # the catalog snapshot on the providers carries the records
    store_ = vault.store
    seq, locator = run(find_latest_locator(store_, list(store_.providers), vault.keys))
    names = {r.name: r.id for r in vault.catalog.providers()}
    (tmp_path / "copy.db").write_bytes(
        run(restore_snapshot(store_, names, vault.keys, seq, locator))
    )
    copy = Catalog(sqlite3.connect(tmp_path / "copy.db"), None)
    assert {r.root for r in copy.dags.published()} == {put.cid, sub.dag.root, v0.dag.root}
    copy.close()
    gone = run(vault.ipfs.unpublish("docs"))
    assert {r.cid for r in gone if not r.published} == {put.cid, sub.dag.root}
    assert store.lookup(root.bytes) is None
    with pytest.raises(NotFoundError):
        run(vault.ipfs.unpublish("docs"))
    run(vault.files.rm("private.bin"))
    assert vault.catalog.dags.published() == []  # rm drops its publications


def test_verify_cid_reports_a_wrong_recorded_cid(vaults: Vaults, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "t")
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([tree], name="docs"))
    with vault.catalog.transaction() as c:
        c.execute(
            "UPDATE contents SET cid = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' WHERE size = 4"
        )
    doc = run(vault.ipfs.verify_cid("docs"))
    assert not doc.ok
    bad = [c for c in doc.checks if not c.ok]
    assert [c.what for c in bad] == ["file a/b/y.txt"]
    with vault.catalog.transaction() as c:
        c.execute(
            "UPDATE versions SET cid = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'"
        )
    with pytest.raises(IntegrityError, match="differs from the recorded CID"):
        run(vault.ipfs.publish("docs"))


def test_export_of_a_large_file_streams_in_dfs_order(vaults: Vaults, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(3_000_000)
    (tmp_path / "f").write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    put = run(vault.files.put([tmp_path / "f"]))[0]
    out = bytearray()
    run(vault.ipfs.export_car(put.cid or "", out.extend))
    reader = CarReader([bytes(out)])
    blocks = list(reader)
    assert str(reader.roots[0]) == put.cid and str(blocks[0].cid) == put.cid
    assert b"".join(b.data for b in blocks[1:]) == data  # leaves follow the node, in order
