"""kill -9 at random moments during `ownvault put`: the vault must stay consistent."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ownvault.core.pack import share_name
from ownvault.engine.store.shares import DATA_PREFIX

from .helpers import PASS, Vaults, run, tree_state, write_random_tree


def cli(vault: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def assert_consistent(
    vaults: Vaults, vault_path: Path, sources: dict[str, Path], out: Path
) -> set[str]:
    """Every visible version reads back byte-identical; every live share exists on disk."""
    vault = vaults.open(vault_path, PASS)
    cat = vault.catalog
    for pack in cat.live_packs():
        pack_id, _size, _k, _n = cat.pack_info(pack)
        for s in cat.shares_of(pack):
            row = next(p for p in cat.providers() if p.id == s.provider)
            path = (
                vault_path
                / row.url.removeprefix("file:")
                / "objects"
                / share_name(DATA_PREFIX, pack_id, s.idx)
            )
            assert path.is_file() and path.stat().st_size == s.size, f"live share missing: {path}"
    visible = {o.name for o in run(vault.files.ls()).objects}
    for name in visible:
        dest = out / f"{name}-{time.monotonic_ns()}"
        run(vault.files.get(name, dest))
        src = sources[name]
        if src.is_dir():
            assert tree_state(dest) == tree_state(src)
        else:
            assert dest.read_bytes() == src.read_bytes()
    vaults.close(vault)
    return visible


def wait_ok(proc: subprocess.Popen[bytes], timeout: float) -> None:
    _out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()


def kill_after(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL ``proc`` after ``delay`` seconds unless it ended; True if it was killed."""
    try:
        proc.wait(delay)
        proc.communicate()
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        return True


@pytest.mark.slow
def test_kill_during_put_leaves_vault_consistent(vaults: Vaults, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(5).randbytes(48 * 1024 * 1024))
    tree = tmp_path / "tree"
    write_random_tree(tree, 9, 60, 400_000)
    sources = {"big.bin": big, "tree": tree}

    def fresh(i: int) -> Path:
        vault = tmp_path / f"vault{i}"
        wait_ok(cli(vault, "init", "--phrase-file", str(tmp_path / f"phrase{i}")), 60)
        return vault

    # The length of an uninterrupted put sets the window the kills fall in.
    t0 = time.monotonic()
    wait_ok(cli(fresh(0), "put", str(big), str(tree)), 300)
    window = time.monotonic() - t0
    rnd = random.Random(1234)
    kills = 0
    # At least 8 rounds, and more (up to 16) until 6 puts were really killed mid-way:
    # under a loaded machine some puts finish before their random kill time.
    attempt = 0
    while attempt < 8 or (kills < 6 and attempt < 16):
        attempt += 1
        vault = fresh(attempt)
        kills += kill_after(cli(vault, "put", str(big), str(tree)), rnd.uniform(0.1, 0.7 * window))
        assert_consistent(vaults, vault, sources, tmp_path / f"out{attempt}")
        if attempt % 2:
            # Kill the re-run too, then finish.
            kills += kill_after(
                cli(vault, "put", str(big), str(tree)), rnd.uniform(0.1, window / 2)
            )
            assert_consistent(vaults, vault, sources, tmp_path / f"out{attempt}b")
        # Running the same put again finishes the job, and leaves nothing behind.
        wait_ok(cli(vault, "put", str(big), str(tree)), 300)
        assert assert_consistent(vaults, vault, sources, tmp_path / f"final{attempt}") == {
            "big.bin",
            "tree",
        }
        v = vaults.open(vault, PASS)
        assert v.catalog.pending_packs() == []
        live = set()
        for pack in v.catalog.live_packs():
            pack_id, *_ = v.catalog.pack_info(pack)
            live.update(share_name(DATA_PREFIX, pack_id, s.idx) for s in v.catalog.shares_of(pack))
        on_disk = {
            str(p.relative_to(p.parents[3] / "objects"))
            for p in (vault / "providers").glob("local-*/objects/shares/*/*")
        }
        assert on_disk <= live, "orphan shares left by a killed put"
        vaults.close(v)
    assert kills >= 6
