"""A put's chunk keys and nonces come from one random pool per put (docs/design.md, "Many
small files", round 4): a new chunk cost three ``getrandom`` calls (its key, its nonce,
its wrapped key's nonce), each letting the GIL go in the one thread that seals. The
stored bytes are the same format: the tree comes back byte for byte."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ownvault.core import crypto

from .helpers import Vaults, run, tree_state


def test_a_put_of_many_small_files_draws_randomness_in_batches(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"f{i:03d}.bin").write_bytes(crypto.random_bytes(1000 + i))
    vault = vaults.create(tmp_path / "v", providers=3, k=2, n=3)
    vault.clock = lambda: time.time() + 60
    draws: list[int] = []
    real = crypto.secrets.token_bytes

    def counted(n: int | None = None) -> bytes:
        draws.append(n or 0)
        return real(n)

    monkeypatch.setattr(crypto.secrets, "token_bytes", counted)
    [res] = run(vault.files.put([src]))
    assert res.files == 300
    # 300 new chunks: 900 draws of 12-32 bytes one by one; from the pool, 300 * 56 bytes
    # in draws of 4 KiB, plus the few other random values of a put (pack ids, ...)
    assert sum(1 for n in draws if n == 4096) >= 5
    assert len(draws) < 60, draws
    monkeypatch.undo()
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)
