"""The benchmarks do not rot: every bench script `make bench` runs still starts.

CI never runs the benchmarks (they are read by people, not asserted), so a moved module
could break one unseen; this starts each with ``--help`` (imports and argument parsing,
no work) and checks that none with a main is left out of ``bench/run.py``.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from ownvault.core.unixfs import PROFILES, import_bytes

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUN = runpy.run_path(str(BENCH / "run.py"), run_name="bench_run")
LISTED = [script for script, _args in RUN["BENCHES"]]
RUN_BY_OTHERS = {"ceilings.py": "vault.py", "putbare.py": "vault.py", "run.py": "make bench"}


def test_every_bench_script_with_a_main_is_run_by_make_bench() -> None:
    mains = sorted(
        p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text()
    )
    missing = [m for m in mains if m not in LISTED and m not in RUN_BY_OTHERS]
    assert missing == [], f"bench scripts that make bench never runs: {missing}"


@pytest.mark.parametrize("script", [*LISTED, "ceilings.py", "putbare.py"])
def test_bench_script_starts(script: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_the_tools_run_the_source_tree_the_benchmark_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bench_env`` puts this tree's ``src`` first on ``PYTHONPATH`` and makes inherited
    entries absolute: from another worktree (or with ``PYTHONPATH=src`` resolved against a
    tool's own working folder) the benchmark measured the installed code instead."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", "src")
    peers = runpy.run_path(str(BENCH / "peers.py"), run_name="bench_peers")
    path = peers["bench_env"](tmp_path)["PYTHONPATH"].split(":")
    assert path == [str(BENCH.parent / "src"), str(tmp_path / "src")]


def test_the_bare_put_does_a_puts_work_and_leaves_nothing(tmp_path: Path) -> None:
    """``putbare.py`` (the put's per-byte work alone, two processes) runs to the end on a
    file of several packs, gives the file's ``kubo-v1`` CID, as a put records it, and
    removes the shares it wrote."""
    data = os.urandom(40 * 1024 * 1024 + 12345)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    out = tmp_path / "bare"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "putbare.py"), str(src), str(out), "--cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(import_bytes(data, PROFILES["kubo-v1"]).cid)
    assert "reader: user" in proc.stderr and "coder: user" in proc.stderr
    assert not out.exists()


def test_interleaved_groups_take_turns_at_going_first_and_keep_their_order() -> None:
    """With ``group``, round i starts with group i mod g; a group's cases stay together
    and in order (a tool's get after its put). Without it the order is the given one."""
    rounds = runpy.run_path(str(BENCH / "rounds.py"), run_name="bench_rounds")
    names = ["a put", "a get", "b put", "b get", "c put"]
    order = rounds["round_order"](names, 4, lambda n: n.split()[0])
    assert order == [
        *["a put", "a get", "b put", "b get", "c put"],
        *["b put", "b get", "c put", "a put", "a get"],
        *["c put", "a put", "a get", "b put", "b get"],
        *["a put", "a get", "b put", "b get", "c put"],
    ]
    assert rounds["round_order"](names, 2, None) == names + names
    ran: list[str] = []
    figures = rounds["interleave"](
        {n: (lambda n=n: ran.append(n) or 1.0) for n in names}, 3, group=lambda n: n[0]
    )
    assert ran == rounds["round_order"](names, 3, lambda n: n[0])
    assert all(len(v) == 3 for v in figures.values())
