"""Put/get of a large file to 8 storage nodes on loopback (real node processes).

Usage: ``python bench/network.py [--size-mib 1024]``. Prints throughput and peak RSS of
the client, and for reference the same put to 8 local folders in the same run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.server.nodes import NodeCluster

MiB = 1024 * 1024
ENV = {**os.environ, "OWNVAULT_PASSPHRASE": "bench passphrase"}


def ov(vault: Path, *args: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "failed")
    return time.perf_counter() - t0, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-netbench-"))
    try:
        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
        size = big.stat().st_size
        with NodeCluster(work / "nodes") as cluster:
            nodes = cluster.start_many(8, jurisdictions=["CH", "DE", "FR", "IS"])
            vault = work / "vault"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ownvault",
                    "--vault",
                    str(vault),
                    "init",
                    "--providers",
                    "0",
                    "--phrase-file",
                    str(work / "phrase"),
                ],
                env=ENV,
                check=True,
                capture_output=True,
            )
            for i, node in enumerate(nodes):
                ov(
                    vault,
                    "provider",
                    "add",
                    f"node-{i}",
                    node.url,
                    "--jurisdiction",
                    ["CH", "DE", "FR", "IS"][i % 4],
                )
            t_put, rss_put = ov(vault, "put", str(big))
            t_get, rss_get = ov(vault, "get", "big.bin", "-o", str(work / "out.bin"))
            same = subprocess.run(["cmp", "-s", str(big), str(work / "out.bin")]).returncode == 0
        local = work / "local-vault"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ownvault",
                "--vault",
                str(local),
                "init",
                "--providers",
                "8",
                "--n",
                "6",
                "--phrase-file",
                str(work / "phrase2"),
            ],
            env=ENV,
            check=True,
            capture_output=True,
        )
        t_lput, _ = ov(local, "put", str(big))
        print(f"== 8 storage nodes on loopback, k=3 n=6, {size / MiB:,.0f} MiB file ==")
        print(
            f"put {size / t_put / 1e6:,.0f} MB/s (peak RSS {rss_put / 1e6:,.0f} MB), "
            f"get {size / t_get / 1e6:,.0f} MB/s (peak RSS {rss_get / 1e6:,.0f} MB), byte-identical: {same}"
        )
        print(
            f"same put to 8 local folders: {size / t_lput / 1e6:,.0f} MB/s (nodes reach {t_lput / t_put:.0%} of it)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
