"""Unchanged re-put benchmark: the files cache against reading every byte, and against borg.

A tree of 64 random files (1 GiB by default) is stored once by ``ownvault put`` and once by
``borg create`` (``--encryption=repokey``, borg's fastest mode on CPUs with SHA
extensions). Then, in interleaved rounds (``bench/rounds.py``), each of these runs on the
unchanged tree, as real CLI processes with the vault's real passphrase KDF:

* ``ownvault put TREE``: the files cache knows every file (nothing is read);
* ``ownvault put --force-read TREE``: every byte read and chunked again (what every re-put
  did before the files cache);
* ``borg create`` of a second archive: borg's own files cache;
* ``ownvault ls`` and ``borg list``: start-up and unlock alone (imports, the passphrase
  KDF, opening the catalog or repository), which each re-put pays too;
* the re-put in this process, on a vault opened once (``Vault.files.put``): the put's own
  work, without start-up and unlock.

Printed: medians with ranges, and the round-by-round ratio borg / ownvault (above 1:
ownvault is faster). The machine is shared: single runs are noise.

Usage: ``python bench/filescache.py [--size-mib 1024] [--files 64] [--rounds 3] [--json OUT]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rounds import interleave, ratio, summary  # bench/ is the script's directory

from ownvault.engine.vault import Vault

MiB = 1024 * 1024
ENV = {**os.environ, "OWNVAULT_PASSPHRASE": "bench passphrase", "BORG_PASSPHRASE": "bench"}


def ownvault(vault: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "ownvault", "--vault", str(vault), *args]


def seconds(cmd: list[str], cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, env=ENV, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def make_tree(root: Path, files: int, size: int) -> None:
    per = size // files
    for i in range(files):
        d = root / f"d{i % 8}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"f{i:03d}.bin", "wb") as f:
            for _ in range(per // MiB):
                f.write(os.urandom(MiB))
            f.write(os.urandom(per % MiB))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ov-bench-filescache-"))
    try:
        tree = work / "tree"
        make_tree(tree, args.files, args.size_mib * MiB)
        time.sleep(2.5)  # older than the cache's timestamp granularity (GRANULARITY_NS)
        vault = work / "vault"
        subprocess.run(
            ownvault(vault, "init", "--phrase-file", str(work / "phrase")),
            env=ENV,
            check=True,
            capture_output=True,
        )
        first = seconds(ownvault(vault, "put", str(tree)))
        cases = {
            "ownvault re-put": lambda: seconds(ownvault(vault, "put", str(tree))),
            "ownvault re-put --force-read": lambda: seconds(
                ownvault(vault, "put", "--force-read", str(tree))
            ),
            "ownvault ls": lambda: seconds(ownvault(vault, "ls")),
        }
        opened = Vault.open(vault, ENV["OWNVAULT_PASSPHRASE"])

        def in_process() -> float:
            t0 = time.perf_counter()
            [r] = asyncio.run(opened.files.put([tree]))
            assert r.unchanged == args.files and r.read_bytes == 0, r
            return time.perf_counter() - t0

        cases["ownvault re-put in-process"] = in_process
        out: dict[str, Any] = {"bytes": args.size_mib * MiB, "files": args.files}
        out["ownvault first put s"] = first
        borg = shutil.which("borg")
        if borg:
            repo = work / "borg-repo"
            subprocess.run(
                [borg, "init", "--encryption=repokey", str(repo)],
                env=ENV,
                check=True,
                capture_output=True,
            )
            out["borg first create s"] = seconds([borg, "create", f"{repo}::a0", "tree"], work)
            n = iter(range(1, 1000))
            cases["borg second create"] = lambda: seconds(
                [borg, "create", f"{repo}::a{next(n)}", "tree"], work
            )
            cases["borg list"] = lambda: seconds([borg, "list", str(repo)])
        got = interleave(cases, args.rounds)
        asyncio.run(opened.close())
        for name, values in got.items():
            s = summary(values)
            out[name] = s.as_dict()
            print(f"{name}: {s.text(' s')}")
        cached = got["ownvault re-put"]
        r = ratio(got["ownvault re-put --force-read"], cached)
        out["speed-up over reading everything"] = r.as_dict()
        print(f"files cache speed-up over --force-read: {r.text('x')}")
        if borg:
            rb = ratio(got["borg second create"], cached)
            out["borg second create / ownvault re-put"] = rb.as_dict()
            print(f"ownvault unchanged re-put vs borg's second create: {rb.text('x')}")
        if borg:
            own = [a - b for a, b in zip(got["borg second create"], got["borg list"], strict=True)]
            out["borg second create minus borg list s"] = summary(own).as_dict()
            print(f"borg second create minus start-up (list): {summary(own).text(' s', 3)}")
            rw = ratio(own, got["ownvault re-put in-process"])
            out["borg own work / ownvault own work"] = rw.as_dict()
            print(f"without start-up and unlock, ownvault vs borg: {rw.text('x')}")
        print(f"(first put {first:.1f} s; shared machine: medians of {args.rounds} rounds)")
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
