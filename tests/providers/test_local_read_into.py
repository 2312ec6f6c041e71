"""``LocalProvider.read_into``: what ``get`` returns, into the caller's buffer; ``O_DIRECT``
when the offset, the buffer's address and its length are whole pages, buffered otherwise
and where the file system refuses it."""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import pytest

from ownvault.errors import ObjectNotFoundError
from ownvault.providers import local
from ownvault.providers.local import LocalProvider

from ..engine.helpers import run


@pytest.fixture
def provider(tmp_path: Path) -> LocalProvider:
    p = LocalProvider.create(tmp_path / "p")
    run(p.put("shares/ab/x.0", DATA))
    return p


DATA = os.urandom(3 * 4096 + 123)


def _opens(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    seen: list[bool] = []
    real = local._open_read  # noqa: SLF001  recorded, not changed

    def record(path: Path, *, direct: bool) -> int:
        seen.append(direct)
        return real(path, direct=direct)

    monkeypatch.setattr(local, "_open_read", record)
    return seen


def test_read_into_gives_what_get_gives(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens = _opens(monkeypatch)
    page = mmap.mmap(-1, 4 * 4096)  # page-aligned, whole pages: O_DIRECT
    got = run(provider.read_into("shares/ab/x.0", 0, memoryview(page)))
    assert got == len(DATA) and page[:got] == DATA
    odd = bytearray(5000)  # not whole pages: buffered
    got = run(provider.read_into("shares/ab/x.0", 4096, memoryview(odd)))
    assert bytes(odd[:got]) == run(provider.get("shares/ab/x.0", 4096, 5000))
    assert opens == [True, False]


def test_a_file_system_without_o_direct_is_read_buffered(
    provider: LocalProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.open

    def no_direct(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", no_direct)
    page = mmap.mmap(-1, 4 * 4096)
    got = run(provider.read_into("shares/ab/x.0", 0, memoryview(page)))
    assert page[:got] == DATA


def test_a_missing_object_is_not_found(provider: LocalProvider) -> None:
    with pytest.raises(ObjectNotFoundError):
        run(provider.read_into("shares/ab/y.0", 0, memoryview(bytearray(10))))
    with pytest.raises(ObjectNotFoundError):
        run(provider.read_into("shares/ab", 0, memoryview(bytearray(10))))  # a directory
