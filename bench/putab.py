"""A/B of ``ownvault put`` between two source trees, with borg in the same rounds.

A reduced form of ``bench/vault.py``'s big-file case for comparing a change with the code
before it: one random file, put through the CLI into a fresh vault by each source tree
(``--tree NAME=SRC``, SRC a folder holding the ``ownvault`` package, used as
``PYTHONPATH``; the first is the base), and by ``borg create`` (repokey, the faster borg
mode on this CPU) as the yardstick, the cases of one round run one after the other
(``bench/rounds.py``). Each timed command starts after ``sync`` (no page cache is
dropped: the input file is cached alike for every case). Printed: MB/s (wall), user and
system CPU seconds per GiB (``wait4``), medians and ranges, and each tree's ratio to the
base and to borg, round by round.

    python bench/putab.py --tree base=/tmp/base/src --tree head=src [--size-mib 512]

(``git archive COMMIT src | tar -x -C /tmp/base`` makes a base tree.) ``make bench`` runs
it with this checkout alone: ownvault's put against borg's with their CPU split.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import Borg, Ownvault, Tool, bench_env
from rounds import interleave, ratio, summary

MiB = 1024 * 1024
GIB = 1024**3


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None) -> tuple[float, float, float]:
    """Wall seconds, user and system CPU seconds of one command (it must succeed)."""
    os.sync()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime, usage.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--tree",
        action="append",
        help="NAME=SRC (first: base; default: this checkout's src alone, against borg)",
    )
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-borg", action="store_true")
    ap.add_argument(
        "--bare",
        action="store_true",
        help="also time bench/putbare.py (the put's per-byte work alone) in the same rounds",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-putab-"))
    env = {**bench_env(work), "OWNVAULT_INSECURE_FAST_KDF": "1"}
    tools: dict[str, Tool] = {}
    for spec in args.tree or [f"head={Path(__file__).resolve().parents[1] / 'src'}"]:
        name, _, path = spec.partition("=")
        tools[f"ownvault {name}"] = Ownvault({**env, "PYTHONPATH": str(Path(path).resolve())})
    trees = list(tools)
    if not args.no_borg and shutil.which("borg"):
        tools["borg repokey"] = Borg(env, "repokey")
    size = args.size_mib * MiB
    src = work / "big.bin"
    with open(src, "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(MiB))
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}

    def case(name: str, tool: Tool) -> Callable[[], float]:
        def run() -> float:
            repo = work / name.replace(" ", "-")
            tool.init(repo)
            tool.puts += 1
            cmd, cwd = tool.put_cmd(repo, src)
            wall, user, system = timed(cmd, tool.env, cwd)
            shutil.rmtree(repo)
            cpu[name].append((user * GIB / size, system * GIB / size))
            return size / wall / 1e6

        return run

    def bare() -> float:
        out = work / "bare"
        cmd = [sys.executable, str(Path(__file__).resolve().parent / "putbare.py"), str(src)]
        wall, user, system = timed([*cmd, str(out)], env, None)
        shutil.rmtree(out, ignore_errors=True)
        cpu["bare"].append((user * GIB / size, system * GIB / size))
        return size / wall / 1e6

    cases = {n: case(n, t) for n, t in tools.items()}
    if args.bare:
        cpu["bare"] = []
        cases["bare"] = bare
    try:
        figures = interleave(cases, args.rounds, group=lambda name: name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"put of a {args.size_mib} MiB random file, {args.rounds} interleaved rounds")
    for name, mbps in figures.items():
        user = summary([u for u, _ in cpu[name]]).text(" s/GiB", 2)
        system = summary([s for _, s in cpu[name]]).text(" s/GiB", 2)
        print(f"  {name:14} {summary(mbps).text(' MB/s', 0)}; user {user}; sys {system}")
    for n in trees[1:]:
        print(f"  {n} / {trees[0]}: {ratio(figures[n], figures[trees[0]]).text('x')}")
    if "borg repokey" in figures:
        for n in [*trees, *(["bare"] if args.bare else [])]:
            print(f"  {n} / borg: {ratio(figures[n], figures['borg repokey']).text('x')}")
    cores = os.cpu_count() or 1
    for n in trees:
        if args.bare:
            print(f"  {n} / bare: {ratio(figures[n], figures['bare']).text('x')}")
        per_gib = [u + s for u, s in cpu[n]]
        bound = [GIB / (c / cores) / 1e6 for c in per_gib]
        print(
            f"  {n}'s CPU, {summary(per_gib).text(' s/GiB', 2)}, over {cores} cores with "
            f"none idle: {summary(bound).text(' MB/s', 0)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
