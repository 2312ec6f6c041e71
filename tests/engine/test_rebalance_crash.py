"""kill -9 during the rebalance that moves shares off this machine (issue 14): nothing is
lost, the next run finishes, and the vault then survives losing this machine."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.placement import THIS_MACHINE
from ownvault.engine.vault import Vault

from .helpers import FAST_KDF, PASS, Vaults, make_vault, run, tree_state, write_random_tree


def _cli(vault: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _reads_back(vault: Vault, sources: dict[str, Path], out: Path) -> None:
    for name, src in sources.items():
        target = out / f"{name}-{time.monotonic_ns()}"
        run(vault.files.get(name, target))
        assert tree_state(target) == tree_state(src), name


def test_kill_during_rebalance_then_finish_and_lose_this_machine(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault_path = tmp_path / "v"
    vault = make_vault(vault_path)  # six embedded folders, 3-of-6
    sources = {}
    for i in range(8):  # one put each: several packs to move
        src = tmp_path / f"src{i}"
        write_random_tree(src, 100 + i, files=4, max_size=120_000)
        run(vault.files.put([src], name=f"t{i}"))
        sources[f"t{i}"] = src
    remote = []
    for i in range(3):
        d = tmp_path / f"usb-{i}"
        run(vault.fleet.add_provider(f"usb-{i}", d.as_uri(), domain=f"usb-{i}"))
        remote.append(d)
    phrase = vault.keys.phrase
    run(vault.close())

    def moved() -> int:
        """Data shares on the remote folders (catalog snapshots not counted)."""
        return sum(
            1
            for d in remote
            for p in (d / "objects").rglob("*")
            if p.is_file() and "catalog" not in p.relative_to(d / "objects").parts
        )

    rnd = random.Random(14)
    kills = 0
    for _attempt in range(3):
        before = moved()
        proc = _cli(vault_path, "rebalance")
        # kill -9 once the moves have begun (plus a random few milliseconds)
        while proc.poll() is None and moved() == before:
            time.sleep(0.002)
        time.sleep(rnd.uniform(0, 0.05))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
        # After every interruption: everything still reads back, nothing is half-visible.
        vault = vaults.open(vault_path, PASS)
        _reads_back(vault, sources, tmp_path / "out")
        vaults.close(vault)
    assert kills >= 1  # at least one rebalance was interrupted in the middle of its moves
    proc = _cli(vault_path, "rebalance")
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err

    vault = vaults.open(vault_path)
    zone = {c.id: c.zone for c in vault.candidates()}
    for pack in vault.catalog.live_packs():
        shares = vault.catalog.shares_of(pack)
        assert sum(1 for s in shares if zone[s.provider] == THIS_MACHINE) == 3
        assert len({s.idx for s in shares}) == 6
    assert run(vault.health.check()).to_json()["healthy"]
    assert run(vault.health.status()).to_json()["machine_loss"]["survives"]
    run(vault.close())
    # The machine is lost; one remote folder is enough.
    shutil.rmtree(vault_path)
    run(
        recover_vault(
            tmp_path / "new", phrase_to_entropy(phrase), "n", [remote[2].as_uri()], kdf=FAST_KDF
        )
    )
    _reads_back(vaults.open(tmp_path / "new", "n"), sources, tmp_path / "back")
