"""Vaults written by each released format keep opening (tests/fixtures/golden)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from ownvault.engine.store.catalog import SCHEMA_VERSION, Catalog

from .helpers import Vaults, run

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def test_golden_v1_opens_and_reads(vaults: Vaults, tmp_path: Path) -> None:
    copy = tmp_path / "moved-vault"
    shutil.copytree(GOLDEN / "vault-v1", copy)
    vault = vaults.open(copy, "golden")
    assert vault.keys.entropy == bytes(range(32))
    assert vault.catalog.meta("schema_version") == str(SCHEMA_VERSION)
    names = [o.name for o in run(vault.files.ls()).objects]
    assert names == ["note.txt", "tree"]
    run(vault.files.get("note.txt", tmp_path / "note"))
    assert (tmp_path / "note").read_bytes() == b"ownvault golden vault v1\n" * 40
    run(vault.files.get("tree", tmp_path / "tree"))
    assert (tmp_path / "tree" / "sub" / "b.txt").read_bytes() == b"b" * 10
    digest = hashlib.sha256((tmp_path / "tree" / "a.bin").read_bytes()).hexdigest()
    assert digest == GOLDEN_A_BIN_SHA256
    assert run(vault.health.check()).to_json()["healthy"]


GOLDEN_A_BIN_SHA256 = "1254e926f69816c380cd5cdc7e01e1c7a8517cd36adb6df1d999f2adef48d795"


def test_catalog_image_round_trip(vaults: Vaults, tmp_path: Path) -> None:
    """The snapshot image of a (WAL-mode) catalog opens as a catalog again."""

    copy = tmp_path / "v"
    shutil.copytree(GOLDEN / "vault-v1", copy)
    vault = vaults.open(copy, "golden")
    image = vault.catalog.image()
    restored = Catalog.from_image(tmp_path / "restored.db", image)
    assert restored.meta("vault_id") == vault.catalog.meta("vault_id")
    assert [v.name for v in restored.latest_versions("")] == ["note.txt", "tree"]
    restored.close()
