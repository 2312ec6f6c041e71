"""Deterministic inputs for the IPFS tests: the shared vectors' generator and trees."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "ipfs-cids.json"
FIXTURE_VECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "ipfs" / "ipfs-cids.json"


def load_vectors() -> dict[str, Any]:
    """The shared vectors (a copy lives in tests/fixtures so a clone can run without shared/)."""
    path = VECTORS_PATH if VECTORS_PATH.exists() else FIXTURE_VECTORS
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def shake(label: str, size: int) -> bytes:
    return hashlib.shake_256(label.encode()).digest(size)


def write_tree(root: Path, entries: list[tuple[str, int]], label: str) -> Path:
    """Create ``entries`` ([relpath, size], a trailing '/' = empty dir) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, size in entries:
        path = root / rel
        if rel.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(shake(f"{label}/{rel}", size))
    return root


def random_bytes(seed: int, size: int) -> bytes:
    return shake(f"ownvault-test/{seed}", size) if size < 1 << 20 else os.urandom(size)
