"""Version numbers are positions in the merge order on every device (docs/design.md,
"Applying records"): a removal applied from another device renumbers the name's versions,
so the device that removed them must number what is left the same way. Found by three
devices on storage nodes: the device that removed ``x`` v1 showed the version left as v2,
the others as v1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ownvault.core.retention import RetentionPolicy
from ownvault.engine.backup.prune import forget_versions
from ownvault.engine.vault import Vault

from .helpers import run
from .test_journalsync import _put, _view, two  # noqa: F401 - the fixture


@pytest.mark.parametrize("how", ["rm", "forget"])
def test_the_device_that_removes_a_version_numbers_the_rest_like_the_others(
    two: tuple[Vault, Vault, Path],  # noqa: F811
    how: str,
) -> None:
    """``rm`` and crypto-shredding ``forget`` delete versions by different paths: both
    renumber what is left."""
    a, b, tmp = two
    for i in range(3):
        _put(a, tmp / "x", f"version {i}".encode() * 100, name="x")
    run(b.ctx.pull())
    if how == "rm":
        run(b.files.rm("x", version=2))
    else:
        run(b.keyring.forget("x", version=2))
    assert [v.version for v in run(b.files.versions("x"))] == [1, 2]
    run(a.ctx.pull())
    assert _view(a) == _view(b)
    out = tmp / "v2"
    run(b.files.get("x", out, version=2))
    assert out.read_bytes() == b"version 2" * 100


def test_a_retention_forget_on_two_devices_removes_the_versions_it_chose(
    two: tuple[Vault, Vault, Path],  # noqa: F811
) -> None:
    a, b, tmp = two
    run(b.ctx.pull())  # a second device: removals renumber
    for i in range(4):
        _put(a, tmp / "x", f"version {i}".encode() * 100, name="x")

    async def keep_last() -> None:
        async with a.ctx.write():
            await forget_versions(a.ctx, "x", RetentionPolicy(last=1), time.time())

    run(keep_last())  # removes 3, 2, 1 (newest first: each removal renumbers those above it)
    assert [v.version for v in run(a.files.versions("x"))] == [1]
    out = tmp / "kept"
    run(a.files.get("x", out))
    assert out.read_bytes() == b"version 3" * 100
