from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.errors import ProviderPermanentError, ProviderUnavailableError
from ownvault.providers import local
from ownvault.providers.local import LocalProvider
from ownvault.providers.memory import MemoryProvider

from .contract import ProviderContract, run


class TestLocalContract(ProviderContract):
    @pytest.fixture
    def provider(self, tmp_path: Path) -> Iterator[LocalProvider]:
        yield LocalProvider.create(tmp_path / "p")


class TestMemoryContract(ProviderContract):
    @pytest.fixture
    def provider(self) -> Iterator[MemoryProvider]:
        yield MemoryProvider()


def test_missing_folder_is_unavailable_not_recreated(tmp_path: Path) -> None:
    p = LocalProvider.create(tmp_path / "p")
    run(p.put("x", b"1"))
    os.rename(tmp_path / "p", tmp_path / "moved")
    with pytest.raises(ProviderUnavailableError):
        run(p.put("y", b"2"))
    with pytest.raises(ProviderUnavailableError):
        run(p.get("x"))
    assert not (tmp_path / "p").exists()


def test_foreign_folder_refused(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "ownvault-provider.json").write_text('{"format": "other"}')
    with pytest.raises(ProviderPermanentError):
        LocalProvider.create(tmp_path / "f")


def test_no_temp_files_left(tmp_path: Path) -> None:
    p = LocalProvider.create(tmp_path / "p")
    run(p.put("a/b", b"x" * 1000))
    assert os.listdir(tmp_path / "p" / "tmp") == []


def test_directories_a_write_creates_are_fsynced_into_their_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first share in shares/ab/ creates two directories: each is made durable in its
    parent, and the share's own directory after the link; the next share there, only that."""
    p = LocalProvider.create(tmp_path / "p")
    objects = tmp_path / "p" / "objects"
    synced: list[Path] = []
    monkeypatch.setattr(local, "_fsync_dir", synced.append)
    run(p.put("shares/ab/ab01.0", b"x"))
    assert synced == [objects, objects / "shares", objects / "shares" / "ab"]
    synced.clear()
    run(p.put("shares/ab/ab02.0", b"y"))
    assert synced == [objects / "shares" / "ab"]


def test_a_marker_replaced_after_it_was_checked_is_checked_again(tmp_path: Path) -> None:
    """The marker is parsed once while it stays the same file; a different one (here a
    foreign folder's) is checked again before the next write."""
    p = LocalProvider.create(tmp_path / "p")
    run(p.put("x", b"1"))
    marker = tmp_path / "p" / "ownvault-provider.json"
    other = tmp_path / "p" / "other.json"
    other.write_text('{"format": "other"}')
    os.replace(other, marker)
    with pytest.raises(ProviderPermanentError):
        run(p.put("y", b"2"))
