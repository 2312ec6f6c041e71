"""The catalog makes each table group, and imports its module, on first use
(``engine/store/catalog/groups.py``; docs/design.md, "Engine architecture", start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ownvault.engine.store.catalog import Catalog

SRC = Path(__file__).resolve().parents[2] / "src"

# Every table group a catalog had as an attribute when it made them all at construction,
# with its class: none may be lost by making them lazily.
GROUPS = {
    "fleet": "FleetTables",
    "healthlog": "HealthLogTables",
    "keys": "KeyTables",
    "packs": "PackTables",
    "usage": "UsageTables",
    "journal": "JournalTables",
    "backups": "BackupTables",
    "contacts": "ContactTables",
    "grants": "GrantTables",
    "dags": "DagTables",
    "nft": "NftTables",
    "underrep": "UnderReplicated",
    "filescache": "FilesCache",
    "jrows": "JournalRowTables",
    "jns": "JournalNamespace",
    "contents": "ContentTables",
    "gc": "GcTables",
    "late": "LateRevocations",
    "sweep": "SweepTables",
    "jplaces": "JournalPlaces",
    "jsettings": "JournalSettings",
}


def test_every_table_group_is_made_once_on_first_use(tmp_path: Path) -> None:
    cat = Catalog.create(tmp_path / "catalog.db", {"cid_profile": "unixfs-v1-2025"})
    try:
        assert not set(GROUPS) & set(vars(cat))  # nothing made by opening
        for name, cls in GROUPS.items():
            group = getattr(cat, name)
            assert type(group).__name__ == cls, name
            assert getattr(cat, name) is group, name  # one object per catalog
        # The groups that take the catalog's transactions run them on its one connection.
        for group in (cat.backups, cat.underrep):
            with group.transaction() as c:
                assert c is cat.conn
    finally:
        cat.close()


PROBE = """
import json, sys
from pathlib import Path
from ownvault.engine.store.catalog import Catalog
cat = Catalog.open(Path(sys.argv[1]))
opened = sorted(sys.modules)
cat.packs, cat.jrows
print(json.dumps({"opened": opened, "after": sorted(sys.modules)}))
cat.close()
"""

# What opening a catalog must not import: the groups' modules that schema migrations do not
# name, and the journal's op vocabulary (only when a record is built or applied).
UNUSED = ("backups", "contents", "fleet", "healthlog", "ipfs", "journal", "journalplaces")
UNUSED += ("journalrevoke", "journalrows", "journalsettings", "nft", "packs", "sharing")
UNUSED += ("underrep", "usage", "filescache")
OPS = ("ownvault.core.journalops", "ownvault.core.journalplaces", "ownvault.core.cid")


def test_opening_a_catalog_imports_no_group_it_does_not_reach(tmp_path: Path) -> None:
    Catalog.create(tmp_path / "catalog.db", {}).close()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    ran = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "catalog.db")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(ran.stdout)
    lazy = {f"ownvault.engine.store.catalog.{m}" for m in UNUSED} | set(OPS)
    assert lazy & set(doc["opened"]) == set()
    # Reaching a group imports its module (and packs' rows the op vocabulary): the check
    # above can fail.
    assert {
        "ownvault.engine.store.catalog.packs",
        "ownvault.engine.store.catalog.journalrows",
        "ownvault.core.journalops",
    } <= set(doc["after"])
