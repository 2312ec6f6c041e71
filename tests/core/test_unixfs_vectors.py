"""The shared known-answer vectors (computed by the JS reference importer)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from ownvault.core.cid import CID
from ownvault.core.unixfs import PROFILES, FileImporter, import_bytes
from ownvault.engine.ipfs.localcid import cid_of_path
from tests.core.ipfs_inputs import load_vectors, shake, write_tree

VECTORS = load_vectors()
FILES = [v for v in VECTORS["vectors"] if v["kind"] == "file"]
TREES = [v for v in VECTORS["vectors"] if v["kind"] == "tree"]
# The Kubo 0.22 profiles differ from kubo-v1/-v0 only in sharding a directory whose estimate
# is exactly the HAMT threshold (tests/core/test_unixfs_oracle.py); the vectors' trees are far
# below it, so their CIDs are the same profile's without the version pin.
VECTOR_KEY = {name: name.replace("kubo-0.22-", "kubo-") for name in PROFILES}


def test_vector_trees_are_below_the_hamt_threshold() -> None:
    for vector in TREES:
        names = sum(len(rel.encode()) + 36 for rel, _ in vector["entries"])
        assert names < PROFILES["kubo-0.22-v1"].hamt_threshold


def file_data(vector: dict[str, Any]) -> bytes:
    data = shake(f"{VECTORS['seed']}/{vector['name']}", vector["size"])
    assert hashlib.sha256(data).hexdigest() == vector["sha256"]
    return data


def test_fixture_copy_matches_shared() -> None:
    copy = Path(__file__).resolve().parents[1] / "fixtures" / "ipfs" / "ipfs-cids.json"

    assert json.loads(copy.read_text()) == VECTORS


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("vector", FILES, ids=[v["name"] for v in FILES])
def test_file_vectors(vector: dict[str, Any], profile: str) -> None:
    root = import_bytes(file_data(vector), PROFILES[profile])
    assert str(root.cid) == vector[VECTOR_KEY[profile]]
    assert root.size == vector["size"]
    assert root.profile is PROFILES[profile]
    assert CID.parse(vector[VECTOR_KEY[profile]]) == root.cid


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_streaming_split_does_not_matter(profile: str) -> None:
    vector = next(v for v in FILES if v["name"] == "w175")
    data = memoryview(file_data(vector))
    rng = random.Random(profile)
    imp = FileImporter(PROFILES[profile])
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 7, 4096, 262143, 262145, 1 << 20, 3_000_001])
        imp.update(data[pos : pos + step])
        pos += step
    assert str(imp.finish().cid) == vector[VECTOR_KEY[profile]]


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("vector", TREES, ids=[v["name"] for v in TREES])
def test_tree_vectors(vector: dict[str, Any], profile: str, tmp_path: Path) -> None:
    root = write_tree(
        tmp_path / vector["name"],
        [(rel, size) for rel, size in vector["entries"]],
        f"{VECTORS['seed']}/{vector['name']}",
    )
    got = cid_of_path(root, PROFILES[profile])
    assert str(got.cid) == vector[VECTOR_KEY[profile]]
    assert got.kind == "directory"
    assert got.size == sum(size for _, size in vector["entries"])
