"""The vault directory is private: 0700, its files 0600, no planted symlink followed."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from ownvault.engine.store.layout import PRIVATE_FILES, atomic_write
from ownvault.engine.vault import Vault
from ownvault.errors import VaultStateError

from .helpers import PASS, make_vault, run


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def _put_something(vault: Vault, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_bytes(b"hello" * 1000)
    run(vault.files.put([src]))


def test_new_vault_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        vault = make_vault(tmp_path / "v", providers=3, k=2)
        _put_something(vault, tmp_path)
        root = vault.path
        present = [n for n in PRIVATE_FILES if (root / n).exists()]
        # the WAL and its index exist while the catalog is open
        assert {"catalog.db", "catalog.db-wal", "catalog.db-shm", "keystore.json"} <= set(present)
        assert _mode(root) == 0o700
        assert {n: _mode(root / n) for n in present} == dict.fromkeys(present, 0o600)
        run(vault.close())
    finally:
        os.umask(old)


def test_an_existing_vault_with_loose_modes_is_tightened_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vault = make_vault(tmp_path / "v", providers=3, k=2)
    _put_something(vault, tmp_path)
    run(vault.close())
    root = vault.path
    os.chmod(root, 0o755)  # what an older ownvault made
    loose = [n for n in PRIVATE_FILES if (root / n).exists()]
    for n in loose:
        os.chmod(root / n, 0o644)
    with caplog.at_level(logging.WARNING, logger="ownvault.vault"):
        again = Vault.open(root, PASS)
    assert _mode(root) == 0o700
    assert {n: _mode(root / n) for n in loose} == dict.fromkeys(loose, 0o600)
    lines = [r.getMessage() for r in caplog.records if r.name == "ownvault.vault"]
    assert len(lines) == 1 + len(loose) and all("tightened" in m for m in lines)
    run(again.close())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ownvault.vault"):
        third = Vault.open(root, PASS)
    assert not [r for r in caplog.records if r.name == "ownvault.vault"]  # once
    run(third.close())


@pytest.mark.parametrize("name", ["catalog.db-wal", "catalog.db-shm", "lock", "keystore.json"])
def test_a_planted_symlink_in_the_vault_directory_is_refused(tmp_path: Path, name: str) -> None:
    vault = make_vault(tmp_path / "v", providers=3, k=2)
    run(vault.close())
    root = vault.path
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.chmod(victim, 0o644)
    if (root / name).exists():
        (root / name).rename(tmp_path / "moved")
    (root / name).symlink_to(victim)
    with pytest.raises(VaultStateError, match="is a symlink"):
        Vault.open(root, PASS)
    assert victim.read_bytes() == b"precious" and _mode(victim) == 0o644


def test_planted_catalog_symlink_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    vault = make_vault(tmp_path / "v", providers=3, k=2)
    run(vault.close())
    root = vault.path
    victim = tmp_path / "victim.db"
    (root / "catalog.db").rename(victim)
    os.chmod(victim, 0o644)
    (root / "catalog.db").symlink_to(victim)
    before = victim.read_bytes()
    with pytest.raises(VaultStateError, match=r"catalog\.db is a symlink"):
        Vault.open(root, PASS)
    assert victim.read_bytes() == before and _mode(victim) == 0o644


def test_atomic_write_replaces_a_symlink_and_never_writes_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "keystore.json"
    link.symlink_to(victim)
    old = os.umask(0)
    try:
        atomic_write(link, b"{}")
    finally:
        os.umask(old)
    assert victim.read_bytes() == b"precious"
    assert not link.is_symlink() and link.read_bytes() == b"{}" and _mode(link) == 0o600


def test_the_keystore_stays_0600_after_a_passphrase_change(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        vault = make_vault(tmp_path / "v", providers=3, k=2)
        run(vault.keyring.change_passphrase(PASS, "another passphrase"))
        assert _mode(vault.path / "keystore.json") == 0o600
        run(vault.close())
    finally:
        os.umask(old)
