"""Throughput of `ownvault cid` vs raw hashlib SHA-256 (same run, same file) and the JS oracle.

    .venv/bin/python bench/cid.py [--size-mib 1024] [--file PATH] [--no-oracle]

Writes a random file (page-cache warm), then times, on one core:
  * sha256:  hashlib.sha256 over the file, read in 4 MiB pieces (the floor of any CID);
  * ownvault: cid_of_path() for each import profile;
  * js:      the reference importer (tests/oracle/ipfs-oracle.mjs, wall time incl. start-up).
Prints MiB/s and the ratios the project targets (>= 0.8x SHA-256, >= 3x the JS reference).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ownvault.core.unixfs import PROFILES  # noqa: E402
from ownvault.engine.ipfs.localcid import cid_of_path  # noqa: E402


def best_of(n: int, fn: object) -> tuple[float, object]:
    assert callable(fn)
    best = float("inf")
    result = None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--file", type=Path)
    ap.add_argument("--no-oracle", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = None
    if args.file is None:
        tmp = tempfile.mkdtemp(prefix="ownvault-bench-")
        path = Path(tmp) / "random.bin"
        with open(path, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(os.urandom(1 << 20))
    else:
        path = args.file
    size = path.stat().st_size
    mib = size / (1 << 20)
    try:
        sha256_file(path)  # warm the page cache
        t_sha, _ = best_of(args.repeat, lambda: sha256_file(path))
        print(f"file: {mib:.0f} MiB   sha256: {mib / t_sha:8.1f} MiB/s")
        results = {}
        for name, profile in PROFILES.items():
            t, root = best_of(args.repeat, lambda p=profile: cid_of_path(path, p))
            results[name] = t
            print(
                f"ownvault {name:15s} {mib / t:8.1f} MiB/s  = {t_sha / t:5.2f}x sha256   {root.cid}"  # type: ignore[attr-defined]
            )
        node = shutil.which("node")
        script = ROOT / "tests" / "oracle" / "ipfs-oracle.mjs"
        if args.no_oracle or node is None or not (script.parent / "node_modules").is_dir():
            print("js oracle: not run (install with scripts/setup.d/ipfs-oracle.sh)")
            return
        for name in ("kubo-v1", "kubo-v0"):
            t0 = time.perf_counter()
            out = subprocess.run(
                [node, str(script), "cid", str(path), "--profile", name, "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            t_js = time.perf_counter() - t0
            doc = json.loads(out)
            print(
                f"js       {name:15s} {mib / t_js:8.1f} MiB/s  -> ownvault is "
                f"{t_js / results[name]:5.2f}x faster   {doc['cid']}"
            )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
