from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.errors import ProviderPermanentError, ProviderUnavailableError
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
