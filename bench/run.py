"""`make bench`: every benchmark, one after the other, each printing its own figures.

Figures are ratios against ceilings measured in the same run (and against peers where
installed); they are read by people, never asserted by the test suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# (script, arguments): the core first; the rest as their areas exist. Every script with a
# main is here or run by one that is (ceilings.py by vault.py): tests/test_bench.py checks.
BENCHES = [
    ("vault.py", ["--install-peers"]),
    ("filescache.py", []),
    ("journal.py", []),
    ("scale.py", []),
    ("sharewrite.py", []),
    ("putab.py", ["--size-mib", "256", "--rounds", "3", "--bare"]),
    ("erasure.py", []),
    ("network.py", []),
    ("audit.py", []),
    ("node.py", []),
    ("cid.py", []),
    ("ingest_cid.py", []),
    ("s3.py", []),
    ("ipfs.py", []),
    ("drive.py", []),
    ("startup.py", []),
]


def main() -> int:
    failed = []
    for script, args in BENCHES:
        path = HERE / script
        if not path.exists():
            continue
        print(f"\n### bench/{script}", flush=True)
        rc = subprocess.run([sys.executable, str(path), *args]).returncode
        if rc != 0:
            failed.append(script)
    if failed:
        print(f"\nbenchmarks that failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
