"""The HAMT switch at exactly the threshold: the named profiles decide it.

A directory of 1024 empty files with 220-byte names has a links estimate (name bytes +
CID bytes) of exactly 1024 * (220 + 36) = 262,144 bytes. Current boxo and the JS importer
keep it a basic directory (estimate > threshold shards); Kubo 0.22 shards it (>=): the
``kubo-0.22-*`` profiles reproduce that, ``kubo-v*`` the current rule.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES
from ownvault.engine.ipfs.localcid import cid_of_path
from tests.oracle.oracle import require_oracle


@pytest.fixture(scope="module")
def exact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hamt") / "exact"
    root.mkdir()
    for i in range(1024):
        (root / (f"{i:04d}" + "x" * 216)).write_bytes(b"")
    return root


def test_estimate_at_threshold_by_profile(exact: Path, tmp_path: Path) -> None:
    oracle = require_oracle()
    names = [p.name for p in exact.iterdir()]
    empty = CID.for_block(0x55, b"")
    assert sum(len(n.encode()) + len(empty.bytes) for n in names) == 262_144
    current = cid_of_path(exact, PROFILES["kubo-v1"])
    legacy = cid_of_path(exact, PROFILES["kubo-0.22-v1"])
    assert str(current.cid) != str(legacy.cid)
    js = oracle.batch(
        [{"path": str(exact), "profile": "kubo-v1", "car": str(tmp_path / "js.car")}]
    )[0]
    assert js == str(current.cid)  # the JS importer: not sharded at exactly 256 KiB
    # one byte more: every profile shards, and they agree again
    bigger = tmp_path / "exact"
    bigger.mkdir()
    for n in names:
        (bigger / n).write_bytes(b"")
    (bigger / ("0000" + "x" * 216)).rename(bigger / ("0000" + "x" * 217))
    a = cid_of_path(bigger, PROFILES["kubo-v1"])
    b = cid_of_path(bigger, PROFILES["kubo-0.22-v1"])
    assert (
        str(a.cid) == str(b.cid) == oracle.batch([{"path": str(bigger), "profile": "kubo-v1"}])[0]
    )
    assert str(cid_of_path(exact, PROFILES["kubo-0.22-v0"]).cid).startswith("Qm")
