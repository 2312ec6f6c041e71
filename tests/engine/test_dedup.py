from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from .helpers import Vaults, run


@pytest.mark.slow
def test_small_edits_to_a_large_file_store_little_anew(vaults: Vaults, tmp_path: Path) -> None:
    """Re-putting a 512 MiB file with 1% changed in a few regions stores < 5% anew."""
    size = 512 * 1024 * 1024
    rnd = random.Random(42)
    data = bytearray(os.urandom(size))
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    first = run(vault.files.put([f]))[0]
    assert first.new_bytes == size
    usage1 = run(vault.files.du())
    # 1% of the bytes, in 5 contiguous regions: overwrite 3, insert 1, delete 1.
    region = size // 100 // 5
    for start in (10_000_000, 200_000_000, 400_000_000):
        data[start : start + region] = rnd.randbytes(region)
    data[300_000_000:300_000_000] = rnd.randbytes(region)
    del data[450_000_000 : 450_000_000 + region]
    f.write_bytes(data)
    second = run(vault.files.put([f]))[0]
    usage2 = run(vault.files.du())
    new_packed = usage2.packed_bytes - usage1.packed_bytes
    new_stored = usage2.stored_bytes - usage1.stored_bytes
    expansion = vault.policy.n / vault.policy.k
    # The figures, for the record (pytest -s shows them).
    print(
        f"new plaintext {second.new_bytes / size:.2%}, new packs {new_packed / size:.2%}, "
        f"new shares {new_stored / size:.2%} (= packs x {expansion:.1f} expansion)"
    )
    assert second.new_bytes < 0.05 * size
    assert new_packed < 0.05 * size
    run(vault.files.get("big.bin", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == bytes(data)
