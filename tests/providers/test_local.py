from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.errors import ProviderPermanentError, ProviderUnavailableError
from ownvault.providers import directio, durable, local
from ownvault.providers.local import LocalProvider
from ownvault.providers.memory import MemoryProvider

from .contract import ProviderContract, run


class TestLocalContract(ProviderContract):
    """O_DIRECT writes (the default; sizes of every alignment: the suite's)."""

    @pytest.fixture
    def provider(self, tmp_path: Path) -> Iterator[LocalProvider]:
        yield LocalProvider.create(tmp_path / "p")


class TestLocalBufferedContract(ProviderContract):
    """The same contract with buffered writes (``writev``)."""

    @pytest.fixture
    def provider(self, tmp_path: Path) -> Iterator[LocalProvider]:
        LocalProvider.create(tmp_path / "p")
        yield LocalProvider(tmp_path / "p", direct=False)


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
    monkeypatch.setattr(local, "fsync_dir", synced.append)
    monkeypatch.setattr(durable, "fsync_dir", synced.append)
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


def test_write_parts_resumes_after_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # writev may write less than asked (and takes at most IOV_MAX buffers): the rest of a
    # part that was cut, and every part after it, must still go down in order.
    real = os.writev
    write = os.write
    calls: list[int] = []

    def short(fd: int, buffers: list[memoryview]) -> int:
        calls.append(len(buffers))
        return write(fd, b"".join(buffers)[:7])  # a prefix of what was asked, 7 bytes

    monkeypatch.setattr(local.os, "writev", short)
    monkeypatch.setattr(local, "IOV_MAX", 4)
    parts = [b"abcdefghijkl", b"", b"mn", bytearray(b"opqrstuvwxyz0123456789"), b"!"]
    p = LocalProvider(LocalProvider.create(tmp_path / "p").root, direct=False)
    run(p.put("x", parts))
    monkeypatch.setattr(local.os, "writev", real)
    assert run(p.get("x")) == b"".join(parts)
    assert max(calls) <= 4 and len(calls) > 3


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, directio.CHUNK, 2 * directio.CHUNK + 77])
def test_direct_writes_store_exactly_the_parts(tmp_path: Path, size: int) -> None:
    # Objects across the aligned buffers' boundaries, padded and cut back to their size.
    LocalProvider.create(tmp_path / "p")
    p = LocalProvider(tmp_path / "p", direct=True)
    data = bytearray(os.urandom(size))  # the middle part: a writable view, as a pack's
    cut = size // 3
    run(p.put("o/x", [bytes(data[:cut]), memoryview(data)[cut : 2 * cut + 1], data[2 * cut + 1 :]]))
    assert run(p.get("o/x")) == data and (tmp_path / "p/objects/o/x").stat().st_size == size
    assert p.direct or size == 0  # nothing refused it here (ext4)


def test_direct_refused_at_open_falls_back_to_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.open

    def no_direct(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & directio.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # what tmpfs says
        return real(path, flags, mode)

    monkeypatch.setattr(directio.os, "open", no_direct)
    LocalProvider.create(tmp_path / "p")
    p = LocalProvider(tmp_path / "p", direct=True)
    run(p.put("a", [b"x" * 5000, b"y"]))
    assert not p.direct and run(p.get("a")) == b"x" * 5000 + b"y"
    run(p.put("b", b"z"))
    assert run(p.get("b")) == b"z"
    assert list((tmp_path / "p/tmp").iterdir()) == []


def test_direct_refused_at_first_write_rewrites_the_same_file_buffered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(fd: int, data: memoryview) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(directio.os, "write", refuse)
    LocalProvider.create(tmp_path / "p")
    p = LocalProvider(tmp_path / "p", direct=True)
    data = os.urandom(directio.CHUNK + 10)
    run(p.put("a", [data[:100], data[100:]]))
    assert not p.direct and run(p.get("a")) == data
    assert list((tmp_path / "p/tmp").iterdir()) == []
