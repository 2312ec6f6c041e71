"""Applying another device's put (``catalog.jrows.insert``, ``engine.store.journalsync``)
runs a bounded number of statements per batch of rows, not a query or two per chunk and
content, and leaves the same catalog rows the writer has."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store import journalrows, journalsync
from ownvault.engine.store.journalsync import apply_records

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run

FILES = 2_000


def test_a_put_of_2000_files_applies_with_batched_queries(
    tmp_path: Path, vaults: Vaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also: the rows are decoded with Python's cyclic collector paused (it walked the
    decoder's millions of objects again at each generation), and it runs again after."""
    a, _dirs = vault_with_external(tmp_path)
    vaults.track(a)
    ext = [p.url for p in a.catalog.providers() if p.name.startswith("ext-")]
    run(recover_vault(tmp_path / "b", phrase_to_entropy(a.keys.phrase), "pw", ext, kdf=FAST_KDF))
    b = vaults.open(tmp_path / "b", "pw")
    src = tmp_path / "src"
    for i in range(FILES):
        folder = src / f"d{i % 20:02}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}").write_bytes(i.to_bytes(4, "big") * 16)  # 64 bytes, none alike
    run(a.files.put([src]))
    records = [r for r in run(a.ctx.journal.history()) if r.device == a.ctx.journal.device.id]
    traced: list[str] = []
    collector: list[bool] = []
    decode = journalrows.decode_rows

    def decode_noting_the_collector(blob: bytes) -> journalrows.VersionRows:
        collector.append(gc.isenabled())
        return decode(blob)

    monkeypatch.setattr(journalsync, "decode_rows", decode_noting_the_collector)
    with b.catalog.transaction():
        b.catalog.conn.set_trace_callback(traced.append)
        try:
            touched = apply_records(b.catalog, records)
        finally:
            b.catalog.conn.set_trace_callback(None)
    assert touched == {"src"}
    assert collector == [False]
    assert gc.isenabled()
    reads = [s for s in traced if s.lstrip().upper().startswith("SELECT")]
    per_chunk = [s for s in traced if "FROM chunks WHERE chunk_id =" in s]
    # per-row statements made >= 2 reads per chunk (4,000 here); batches make a few dozen
    assert len(reads) <= 100, len(reads)
    assert per_chunk == []
    (va,) = a.catalog.versions("src")
    (vb,) = b.catalog.versions("src")
    assert b.catalog.jrows.export(vb.id) == a.catalog.jrows.export(va.id)
    assert len(b.catalog.jrows.export(vb.id).chunks) >= FILES
