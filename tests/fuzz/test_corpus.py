"""Replay the stored corpus of every fuzz target, and a short coverage-guided run.

* Every file under ``tests/fixtures/corrupt/<target>/`` goes through its target: only the
  decoder's own errors may come out, within a memory bound (tracemalloc peak).
* Every target's seeds (valid encodings from the project's encoders) decode cleanly and
  survive their round trip.
* ``test_short_fuzz_run`` runs every target under atheris for a few seconds
  (``FUZZ_SHORT_SECONDS``, default 2) and fails on any crash, printing the crashing input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "corrupt"
MEMORY_BOUND = 256 * 1024 * 1024  # bytes a single input may make its decoder allocate


def _fixtures() -> list[tuple[str, Path]]:
    out = []
    for name in TARGETS:
        folder = FIXTURES / name
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file():
                out.append((name, path))
    return out


def _id(case: tuple[str, Path]) -> str:
    return f"{case[0]}/{case[1].name}"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_target_has_corrupt_fixtures(name: str) -> None:
    folder = FIXTURES / name
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    assert len(files) >= 5, (
        f"{folder} needs hand-made corrupt fixtures (tests/fuzz/make_fixtures.py)"
    )


@pytest.mark.parametrize("case", _fixtures(), ids=_id)
def test_corrupt_fixture(case: tuple[str, Path]) -> None:
    name, path = case
    data = path.read_bytes()
    tracemalloc.start()
    try:
        TARGETS[name].run(data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{name}/{path.name}: the decoder allocated {peak} bytes"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_decode_and_round_trip(name: str) -> None:
    target = TARGETS[name]
    seeds = target.seeds()
    clean = 0
    for seed in seeds:
        target.run(seed)  # the property holds
        try:
            target.decode(seed)
        except target.allowed:
            continue
        clean += 1  # decoded, and its round trip (inside decode) held
    assert clean >= 1, f"no seed of {name} decodes: the round trip is never exercised"


@pytest.mark.fuzz
def test_short_fuzz_run() -> None:
    seconds = os.environ.get("FUZZ_SHORT_SECONDS", "2")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.engine", "--seconds", seconds, "--jobs", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    per_target = {r["target"]: r for r in results if "target" in r}
    summary = next((r for r in results if "total_executions" in r), None)
    report = "\n".join(
        f"{r['target']:18} {r.get('number_of_executed_units', 0):>9} execs  status {r['status']}"
        for r in per_target.values()
    )
    print(report)
    print(summary)
    crashed = {n: r for n, r in per_target.items() if r["status"] != 0 or r["crashes"]}
    assert not crashed, "\n\n".join(
        f"{n}: input {r.get('input_hex', '?')}\n{r.get('log', '')}" for n, r in crashed.items()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(per_target) == set(TARGETS)
    assert all(r.get("number_of_executed_units", 0) > 0 for r in per_target.values())
