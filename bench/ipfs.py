"""Throughput of the IPFS providers against the loopback Helia node (tests/ipfsnode).

    .venv/bin/python bench/ipfs.py [--shares 16] [--size-mib 16] [--concurrency 4]

Starts one node (Kubo RPC + gateway + pinning service) on a temporary repo, then times, for
the Kubo provider and the pinning-service provider: ``put`` of N shares (blocks put, MFS
entry / pin request made and awaited), full ``get`` (every block re-hashed), and 64 KiB
ranged ``get`` at random offsets (one leaf each). Prints MiB/s and ms per range.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from ownvault.providers.base import Provider  # noqa: E402
from ownvault.providers.ipfs.kubo import KuboProvider  # noqa: E402
from ownvault.providers.ipfs.pinning import PinningProvider  # noqa: E402
from tests.ipfsnode.node import PIN_TOKEN, HeliaNode  # noqa: E402


async def bench(p: Provider, shares: int, size: int, conc: int) -> dict[str, float]:
    blobs = {f"shares/{i:02x}/s.{i}": os.urandom(size) for i in range(shares)}
    sem = asyncio.Semaphore(conc)

    async def limited(coro):  # type: ignore[no-untyped-def]
        async with sem:
            return await coro

    t0 = time.perf_counter()
    await asyncio.gather(*(limited(p.put(n, d)) for n, d in blobs.items()))
    t_put = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = await asyncio.gather(*(limited(p.get(n)) for n in blobs))
    t_get = time.perf_counter() - t0
    assert got == list(blobs.values())
    rng = random.Random(1)
    t0 = time.perf_counter()
    for _ in range(50):
        n = rng.choice(list(blobs))
        off = rng.randrange(0, size - 65536)
        assert await p.get(n, off, 65536) == blobs[n][off : off + 65536]
    t_range = (time.perf_counter() - t0) / 50
    mib = shares * size / 2**20
    return {"put MiB/s": mib / t_put, "get MiB/s": mib / t_get, "range64k ms": t_range * 1000}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shares", type=int, default=16)
    ap.add_argument("--size-mib", type=float, default=16)
    ap.add_argument("--concurrency", type=int, default=4)
    a = ap.parse_args()
    size = int(a.size_mib * 2**20)
    with tempfile.TemporaryDirectory() as tmp:
        node = HeliaNode(Path(tmp) / "repo", pinning=True).start()
        try:
            assert node.pinning_url is not None
            providers: dict[str, Provider] = {
                "kubo (MFS)": KuboProvider(node.url, root="/bench"),
                "pinning service": PinningProvider(
                    node.pinning_url, PIN_TOKEN, upload=node.url, gateways=[node.url]
                ),
            }
            print(f"{a.shares} shares x {a.size_mib:g} MiB, concurrency {a.concurrency}")
            for label, p in providers.items():
                r = asyncio.run(bench(p, a.shares, size, a.concurrency))
                print(f"  {label:16} " + "  ".join(f"{k} {v:8.1f}" for k, v in r.items()))
        finally:
            node.stop()


if __name__ == "__main__":
    main()
