"""What get reads: with every share intact, exactly the k data shares of each pack (their
data parts only: no parity share, no Merkle tree), so nothing is decoded; with a data
share lost, one parity share replaces it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ownvault.core.pack import ShareLayout
from ownvault.providers.local import LocalProvider

from .helpers import Vaults, run

Read = tuple[str, int, int | None]


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> list[Read]:
    reads: list[Read] = []
    real = LocalProvider._get_sync  # noqa: SLF001  recorded, not changed

    def get_sync(self: LocalProvider, name: str, offset: int, length: int | None) -> bytes:
        if name.startswith("shares/"):
            reads.append((name, offset, length))
        return real(self, name, offset, length)

    real_into = LocalProvider._read_into_sync  # noqa: SLF001  recorded, not changed

    def read_into_sync(self: LocalProvider, name: str, offset: int, buffer: memoryview) -> int:
        if name.startswith("shares/"):
            reads.append((name, offset, buffer.nbytes))
        return real_into(self, name, offset, buffer)

    monkeypatch.setattr(LocalProvider, "_get_sync", get_sync)
    monkeypatch.setattr(LocalProvider, "_read_into_sync", read_into_sync)
    return reads


def _stored(vault_dir: Path) -> dict[str, Path]:
    """Every stored share file by its object name (``shares/ab/<pack>.<index>``)."""
    return {"/".join(p.parts[-3:]): p for p in vault_dir.rglob("objects/shares/*/*")}


def test_get_reads_the_data_shares_only_and_a_parity_share_for_a_lost_one(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(40_000_000)  # 3 packs
    (tmp_path / "f.bin").write_bytes(data)
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([tmp_path / "f.bin"]))
    k = vault.policy.k
    stored = _stored(tmp_path / "v")
    reads = _record_reads(monkeypatch)
    run(vault.files.get("f.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == data
    indexes = sorted(int(name.rsplit(".", 1)[1]) for name, _, _ in reads)
    assert indexes == sorted(list(range(k)) * 3)
    for name, offset, length in reads:  # the data part (in whole pages), not the tree after it
        data_len = ShareLayout.for_total(stored[name].stat().st_size).data_len
        assert offset == 0 and length == -(-data_len // 4096) * 4096

    lost = sorted(name for name in stored if name.endswith(".1"))[0]
    stored[lost].unlink()
    reads.clear()
    run(vault.files.get("f.bin", tmp_path / "again"))
    assert (tmp_path / "again").read_bytes() == data
    pack = lost.rsplit(".", 1)[0]
    of_pack = sorted(int(n.rsplit(".", 1)[1]) for n, _, _ in reads if n.startswith(pack + "."))
    assert len(of_pack) == k + 1 and of_pack[:k] == [0, 1, 2][:k] and of_pack[k] >= k
