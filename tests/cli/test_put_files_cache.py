"""`ownvault put` with the files cache: a re-put of an unchanged tree reads no file, says
so, and `--force-read` reads every byte (real CLI processes, the real clock)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ownvault.engine.store.filescache import GRANULARITY_NS

from .test_cli_tour import js, ov, vault  # noqa: F401 - the vault fixture


def test_put_reuses_unchanged_files_and_force_read_reads_all(
    vault: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    sizes = {"a.bin": 10_000, "sub/b.bin": 700_000, "sub/c.bin": 0}
    for rel, size in sizes.items():
        (docs / rel).write_bytes(os.urandom(size))
    time.sleep(GRANULARITY_NS / 1e9 + 0.2)  # older than the cache's timestamp granularity
    total = sum(sizes.values())

    first = js(ov(vault, "put", str(docs), "--json"))["stored"][0]
    assert (first["unchanged"], first["read_bytes"]) == (0, total)
    second = js(ov(vault, "put", str(docs), "--json"))["stored"][0]
    assert (second["unchanged"], second["read_bytes"], second["new_bytes"]) == (3, 0, 0)
    # The tree is v1 already: no version is made (docs/design.md, "Unchanged puts").
    assert second["cid"] == first["cid"] and (second["version"], second["new_version"]) == (
        1,
        False,
    )
    human = ov(vault, "put", str(docs)).stdout
    assert "unchanged docs v1" in human and "3 unchanged not read" in human
    forced = js(ov(vault, "put", "--force-read", str(docs), "--json"))["stored"][0]
    assert (forced["unchanged"], forced["read_bytes"], forced["new_bytes"]) == (0, total, 0)
    assert (forced["version"], forced["new_version"]) == (1, False)

    (docs / "a.bin").write_bytes(os.urandom(10_000))  # same size, new ctime
    changed = js(ov(vault, "put", str(docs), "--json"))["stored"][0]
    assert (changed["unchanged"], changed["read_bytes"]) == (2, 10_000)
    assert (changed["version"], changed["new_version"]) == (2, True)
    ov(vault, "get", "docs/a.bin", "-o", str(tmp_path / "a.out"))
    assert (tmp_path / "a.out").read_bytes() == (docs / "a.bin").read_bytes()
