from __future__ import annotations

import asyncio
import errno
import os
import random
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownvault.engine.vault import Vault
from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    NotFoundError,
    ProviderError,
    StorageFullError,
    UsageError,
    VaultStateError,
)

from .helpers import PASS, Vaults, make_vault, run, tree_state, write_random_tree


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), files=st.integers(1, 25))
def test_random_trees_round_trip(
    vaults: Vaults, tmp_path_factory: pytest.TempPathFactory, seed: int, files: int
) -> None:
    base = tmp_path_factory.mktemp("rt")
    src = base / "src"
    write_random_tree(src, seed, files)
    (src / "link").symlink_to("some/target")
    vault = vaults.create(base / "vault")
    res = run(vault.files.put([src]))
    assert res[0].kind == "tree"
    run(vault.files.get("src", base / "out"))
    assert tree_state(base / "out") == tree_state(src)


def test_file_versions_ranges_and_reopen(vaults: Vaults, tmp_path: Path) -> None:
    data1 = random.Random(1).randbytes(5_000_000)
    data2 = data1[:1000] + b"changed" + data1[1007:]
    f = tmp_path / "doc.bin"
    f.write_bytes(data1)
    vault = make_vault(tmp_path / "v")
    run(vault.files.put([f], tags=["health"]))
    f.write_bytes(data2)
    r2 = run(vault.files.put([f]))[0]
    assert r2.version == 2 and r2.new_bytes < 5_000_000
    run(vault.close())
    vault = vaults.open(tmp_path / "v", PASS)
    assert [v.version for v in run(vault.files.versions("doc.bin"))] == [1, 2]
    run(vault.files.get("doc.bin", tmp_path / "o1", version=1))
    run(vault.files.get("doc.bin", tmp_path / "o2"))
    assert (tmp_path / "o1").read_bytes() == data1
    assert (tmp_path / "o2").read_bytes() == data2
    run(vault.files.get("doc.bin", tmp_path / "r", byte_range=(999, 2_000_001)))
    assert (tmp_path / "r").read_bytes() == data2[999:2_000_001]
    listing = run(vault.files.ls()).objects
    assert listing[0].tags == ["health"] and listing[0].cid.startswith("bafy")
    with pytest.raises(NotFoundError):
        run(vault.files.get("doc.bin", tmp_path / "x", version=9))
    run(vault.files.rm("doc.bin", version=1))
    assert [v.version for v in run(vault.files.versions("doc.bin"))] == [2]
    run(vault.files.rm("doc.bin"))
    assert run(vault.files.ls()).objects == []
    usage = run(vault.files.du())
    assert usage.stored_bytes == 0 and usage.packs == 0


def test_empty_file_and_names(vaults: Vaults, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    vault = vaults.create(tmp_path / "v")
    r = run(vault.files.put([tmp_path / "empty"], name="a/b/empty"))[0]
    assert r.cid == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    run(vault.files.get("a/b/empty", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b""
    for bad in ["", "/", "a/../b", "./x"]:
        with pytest.raises(UsageError):
            run(vault.files.put([tmp_path / "empty"], name=bad))


def _provider_dirs(vault_path: Path) -> list[Path]:
    return sorted((vault_path / "providers").iterdir())


def test_survives_losing_any_n_minus_k_providers(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_random_tree(src, 7, 15, 2_000_000)
    vault = make_vault(tmp_path / "v")
    run(vault.files.put([src]))
    run(vault.close())
    dirs = _provider_dirs(tmp_path / "v")
    for lost in ([0, 1, 2], [3, 4, 5], [0, 2, 4]):
        for i in lost:
            dirs[i].rename(dirs[i].with_suffix(".gone"))
        vault = vaults.open(tmp_path / "v", PASS)
        out = tmp_path / f"out-{'-'.join(map(str, lost))}"
        run(vault.files.get("src", out))
        assert tree_state(out) == tree_state(src)
        report = run(vault.health.check()).to_json()
        assert report["readable"] and not report["healthy"]
        assert {m["provider"] for f in report["files"] for m in f["missing"]} == {
            f"local-{i + 1}" for i in lost
        }
        vaults.close(vault)
        for i in lost:
            dirs[i].with_suffix(".gone").rename(dirs[i])
    # One more than n-k: unreadable, with a clear error, nothing written.
    for i in [0, 1, 2, 3]:
        shutil.rmtree(dirs[i])
    vault = vaults.open(tmp_path / "v", PASS)
    with pytest.raises(DataUnavailableError):
        run(vault.files.get("src", tmp_path / "fail"))
    assert not run(vault.health.check()).to_json()["readable"]


def test_tampered_and_truncated_shares_are_detected_and_routed_around(
    vaults: Vaults, tmp_path: Path
) -> None:
    data = random.Random(3).randbytes(3_000_000)
    (tmp_path / "f").write_bytes(data)
    vault = make_vault(tmp_path / "v")
    run(vault.files.put([tmp_path / "f"]))
    run(vault.close())
    shares = sorted((tmp_path / "v" / "providers").glob("local-*/objects/shares/*/*"))
    by_index = {int(p.name.rsplit(".", 1)[1]): p for p in shares}
    # Flip a byte in data share 0, truncate data share 1 (the ones read first).
    blob = bytearray(by_index[0].read_bytes())
    blob[len(blob) // 2] ^= 1
    by_index[0].write_bytes(bytes(blob))
    # (Cutting only the tail would cut the Merkle tree after the data, which reads skip:
    # deep checks and audits find that; here the data part itself is cut.)
    by_index[1].write_bytes(by_index[1].read_bytes()[: len(blob) // 2])
    vault = vaults.open(tmp_path / "v", PASS)
    problems: list[tuple[str, str, str]] = []
    vault.on_problem = lambda p: problems.append((p.provider, p.share, p.kind))
    run(vault.files.get("f", tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == data
    kinds = {(prov, kind) for prov, _share, kind in problems}
    assert ("local-1", "corrupt") in kinds and ("local-2", "corrupt") in kinds
    assert all(share.startswith("shares/") for _p, share, _k in problems)


def test_bad_input(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "v")
    with pytest.raises(UsageError, match="no such file"):
        run(vault.files.put([tmp_path / "missing"]))
    with pytest.raises(NotFoundError):
        run(vault.files.get("unknown", tmp_path / "o"))
    with pytest.raises(NotFoundError):
        run(vault.files.rm("unknown"))
    vaults.close(vault)
    with pytest.raises(AuthError):
        Vault.open(tmp_path / "v", "wrong")
    with pytest.raises(VaultStateError):
        Vault.open(tmp_path / "nothing", PASS)
    with pytest.raises(VaultStateError):
        make_vault(tmp_path / "v")


def test_missing_provider_folder_blocks_put_cleanly(vaults: Vaults, tmp_path: Path) -> None:
    # Six embedded folders, happy = 5 by default: two gone leave 4, below happy.
    (tmp_path / "f").write_bytes(os.urandom(100_000))
    vault = make_vault(tmp_path / "v")
    shutil.rmtree(tmp_path / "v" / "providers" / "local-3")
    shutil.rmtree(tmp_path / "v" / "providers" / "local-5")
    vaults.track(vault)
    with pytest.raises(ProviderError) as info:
        run(vault.files.put([tmp_path / "f"]))
    assert "local-3" in str(info.value) and "local-5" in str(info.value)
    assert "needed" in str(info.value)
    assert run(vault.files.ls()).objects == []
    assert vault.catalog.pending_packs() == []
    assert vault.catalog.underrep.count() == 0
    leftovers = list((tmp_path / "v" / "providers").glob("local-*/objects/shares/*/*"))
    assert leftovers == []


def test_missing_provider_folder_is_a_degraded_put(vaults: Vaults, tmp_path: Path) -> None:
    # One folder gone: 5 of 6 shares (= happy) are placed, the put succeeds and says so.
    (tmp_path / "f").write_bytes(os.urandom(100_000))
    vault = make_vault(tmp_path / "v")
    shutil.rmtree(tmp_path / "v" / "providers" / "local-3")
    vaults.track(vault)
    [res] = run(vault.files.put([tmp_path / "f"]))
    assert [u["placed"] for u in res.under_replicated] == [5]
    assert len(res.to_json()["under_replicated"][0]["missing"]) == 1
    assert vault.catalog.underrep.count() >= 1
    assert run(_read_all(vault, "f")) == (tmp_path / "f").read_bytes()


async def _read_all(vault: Vault, name: str) -> bytes:
    return b"".join([piece async for piece in vault.files.read(name)])


def test_full_disk_is_a_clear_error_and_loses_nothing(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").write_bytes(os.urandom(200_000))
    (tmp_path / "b").write_bytes(os.urandom(200_000))
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([tmp_path / "a"]))
    real_write = os.write

    def full(fd: int, data: bytes | memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(StorageFullError):
        run(vault.files.put([tmp_path / "b"]))
    monkeypatch.setattr(os, "write", real_write)
    assert [o.name for o in run(vault.files.ls()).objects] == ["a"]
    run(vault.files.get("a", tmp_path / "a.out"))
    assert (tmp_path / "a.out").read_bytes() == (tmp_path / "a").read_bytes()
    run(vault.files.put([tmp_path / "b"]))
    run(vault.files.get("b", tmp_path / "b.out"))
    assert (tmp_path / "b.out").read_bytes() == (tmp_path / "b").read_bytes()


def test_second_writer_is_refused(vaults: Vaults, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    v1 = vaults.create(tmp_path / "v")
    v2 = vaults.open(tmp_path / "v", PASS)

    async def go() -> None:
        async with v1.ctx.write():
            with pytest.raises(VaultStateError, match="in use"):
                await v2.files.put([tmp_path / "f"])

    run(go())


def test_writers_in_one_process_wait_for_each_other(vaults: Vaults, tmp_path: Path) -> None:
    """Tasks of one process queue on the write lock (the API and the daemon share a vault)."""
    for i in range(3):
        (tmp_path / f"f{i}").write_bytes(bytes([i]) * 1000)
    vault = make_vault(tmp_path / "v")
    inside: list[int] = []
    overlap: list[int] = []

    async def writer(i: int) -> None:
        async with vault.ctx.write():
            if inside:
                overlap.append(i)
            inside.append(i)
            await vault.files.put([tmp_path / f"f{i}"])  # nested write() joins the outer one
            await asyncio.sleep(0)
            inside.remove(i)

    async def go() -> None:
        await asyncio.gather(*(writer(i) for i in range(3)))

    vaults.track(vault)
    run(go())
    assert overlap == []
    assert sorted(o.name for o in run(vault.files.ls()).objects) == ["f0", "f1", "f2"]


def test_providers_see_no_names_and_uniform_sizes(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "secret-name-dir"
    write_random_tree(src, 11, 30, 50_000)
    vault = vaults.create(tmp_path / "v")
    run(vault.files.put([src]))
    vaults.close(vault)
    sizes = set()
    for p in (tmp_path / "v" / "providers").rglob("*"):
        rel = str(p.relative_to(tmp_path / "v" / "providers"))
        assert "secret" not in rel
        if p.is_file() and "/shares/" in str(p):
            assert re.fullmatch(r"local-\d/objects/shares/[0-9a-f]{2}/[0-9a-f]{32}\.\d", rel), rel
            sizes.add(p.stat().st_size)
            assert b"secret-name" not in p.read_bytes()
    # All data shares of one pack size class have one size.
    assert len(sizes) == 1
