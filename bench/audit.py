"""The cost of proving storage, and of repairing: a vault on 8 storage nodes (loopback).

Usage: ``python bench/audit.py [--size-mib 1024]``. Prints, for one file of that size
stored 3-of-6 on 8 real node processes:

* an audit at the default sample (64 blocks per provider): seconds, bytes transferred;
* a deep check (every share read whole, which is what "downloading everything" costs):
  seconds, bytes; and the ratio;
* after one node is killed: repair throughput (shares regenerated, bytes read and written,
  MB/s of regenerated shares).

How it scales: an audit sends 64 challenges per provider whatever the vault's size (its
cost grows only with the listing, one request per 1000 shares), so at 10 GiB it costs the
same ~1 MiB per provider; a deep check and a repair grow linearly with the bytes stored
(a deep check reads n/k times the data; a repair reads k data parts per damaged piece).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ownvault.core.crypto import Argon2Params
from ownvault.engine.vault import Vault, VaultOptions
from tests.server.nodes import NodeCluster

MiB = 1024 * 1024
JURISDICTIONS = ["CH", "DE", "FR", "IS"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-auditbench-"))
    try:
        big = work / "big.bin"
        with open(big, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(MiB))
        size = big.stat().st_size
        with NodeCluster(work / "nodes") as cluster:
            nodes = cluster.start_many(8)
            vault = Vault.create(
                work / "vault",
                "bench",
                VaultOptions(providers=0, k=3, n=6, kdf=Argon2Params(1, 8192, 1)),
            )

            async def setup() -> float:
                for i, node in enumerate(nodes):
                    await vault.fleet.add_provider(
                        f"node-{i}", node.url, jurisdiction=JURISDICTIONS[i % 4]
                    )
                t0 = time.perf_counter()
                await vault.files.put([big])
                return time.perf_counter() - t0

            t_put = asyncio.run(setup())
            stored = vault.catalog.usage()["stored_bytes"]
            shares = sum(len(vault.catalog.shares_of(p)) for p in vault.catalog.live_packs())

            t0 = time.perf_counter()
            audit = asyncio.run(vault.health.audit())
            t_audit = time.perf_counter() - t0
            t0 = time.perf_counter()
            deep = asyncio.run(vault.health.deep_check())
            t_deep = time.perf_counter() - t0

            cluster.kill(nodes[5])
            t0 = time.perf_counter()
            rep = asyncio.run(vault.health.repair())
            t_rep = time.perf_counter() - t0
            check = asyncio.run(vault.health.check())
            asyncio.run(vault.close())

        a = audit.to_json()
        print(
            f"== {size / MiB:,.0f} MiB file on 8 storage nodes (loopback), k=3 n=6: "
            f"{stored / MiB:,.0f} MiB in {shares} shares; put {size / t_put / 1e6:,.0f} MB/s =="
        )
        print(
            f"audit (64 blocks x 8 providers = {a['challenges']} challenges): {t_audit:.2f} s, "
            f"{a['bytes'] / MiB:.1f} MiB transferred; ok={a['ok']}; "
            f"each provider: holds >= 95.4% at 95% confidence, detects a 10% loss w.p. 99.88%"
        )
        print(
            f"deep check (every share read whole): {t_deep:.1f} s, {deep['bytes_read'] / MiB:,.0f} MiB; "
            f"the audit costs {a['bytes'] / deep['bytes_read']:.2%} of the bytes and "
            f"{t_audit / t_deep:.1%} of the time"
        )
        print(
            f"repair after killing node-5: {rep.shares_regenerated} share(s) regenerated in {t_rep:.1f} s "
            f"({rep.bytes_written / MiB:,.0f} MiB written, {rep.bytes_read / MiB:,.0f} MiB read: "
            f"{rep.bytes_written / t_rep / 1e6:,.0f} MB/s of regenerated shares, "
            f"{rep.bytes_read / t_rep / 1e6:,.0f} MB/s read); healthy afterwards: {check['healthy']}"
        )
        scale = 10 * 1024 * MiB / size
        print(
            f"at 10 GiB (x{scale:.0f}): audit ~the same {a['bytes'] / MiB:.0f} MiB and ~{t_audit:.1f} s "
            f"(+1 listing request per 1000 shares); deep check ~{deep['bytes_read'] * scale / 2**30:.0f} GiB, "
            f"~{t_deep * scale / 60:.0f} min; repair of one node ~{t_rep * scale / 60:.0f} min"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
