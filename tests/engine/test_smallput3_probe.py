"""``ownvault put`` first asks the local catalog whether the put is unchanged
(``engine.files.reput.unchanged_put``); what cannot be unchanged (a name with no version,
as every name of a new vault; a tag to add) is answered before the probe scans the tree,
which the full put then scans again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ownvault.engine.files import reput
from ownvault.engine.files.reput import unchanged_put

from .helpers import Vaults, run


def _tree(root: Path) -> Path:
    for i in range(12):
        d = root / f"d{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:02d}").write_bytes(os.urandom(100 + 50 * i))
    return root


def _scans(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = reput.scan_path

    def counting(path: Path, *args: object, **kwargs: object) -> object:
        seen.append(path)
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reput, "scan_path", counting)
    return seen


def test_the_probe_does_not_scan_a_tree_whose_name_has_no_version_or_lacks_a_tag(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = _tree(tmp_path / "docs")
    at = tmp_path / "v"
    vault = vaults.create(at, providers=2, k=1, n=2)
    scans = _scans(monkeypatch)
    assert unchanged_put(at, [tree]) is None  # a new vault: no version of "docs"
    assert unchanged_put(at, [tree], name="other") is None
    assert scans == []

    run(vault.files.put([tree], tags=["kept"]))
    vaults.close(vault)  # the probe takes the vault's write lock itself
    assert unchanged_put(at, [tree], name="other") is None  # still no version of "other"
    assert unchanged_put(at, [tree], tags=["new"]) is None  # a tag to add: a change
    assert scans == []
    # "docs" has a version with the tag: the probe scans (and may find it unchanged:
    # whether it does depends on the files' age against the cache's granularity).
    unchanged_put(at, [tree], tags=["kept"])
    assert scans == [tree]
