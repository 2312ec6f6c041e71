"""Does computing IPFS CIDs at ingest slow `put`? And what do publishing and the gateway cost?

    .venv/bin/python bench/ingest_cid.py [--size-mib 256] [--rounds 3]

Same data, same run, alternating:
  * put with the CID importer (what ships: kubo-v1 on a second thread, per 8 MiB block);
  * put with the importer replaced by a no-op (everything else identical);
each into a fresh vault (embedded default providers, fast KDF), in interleaved rounds
(bench/rounds.py); medians with ranges, and the time ratio taken round by round.

Then, on the vault with CIDs: publish (builds the block index by streaming the plaintext
once), its index size, and the latency of one raw block regenerated through the block
index, cold (pack not cached) and warm, against rebuilding the file's whole DAG for one
block (what a gateway without an index would have to do).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

sys.path.insert(0, str(ROOT / "bench"))

from rounds import ratio, summary  # noqa: E402

from ownvault.core.cid import CID  # noqa: E402
from ownvault.core.crypto import Argon2Params  # noqa: E402
from ownvault.core.unixfs import PROFILES, FileRoot, ImportProfile  # noqa: E402
from ownvault.engine.ipfs.dagstore import BlockReader  # noqa: E402
from ownvault.engine.ipfs.publish import index_version  # noqa: E402
from ownvault.engine.store import ingest  # noqa: E402
from ownvault.engine.vault import Vault, VaultOptions  # noqa: E402

FAST = Argon2Params(1, 8192, 1)


class NoImporter:
    """Stands in for FileImporter: accepts the bytes, hashes nothing."""

    def __init__(
        self, profile: ImportProfile, on_block: Callable[[bytes, bytes], None] | None = None
    ) -> None:
        self.profile = profile
        self.n = 0

    def update(self, data: bytes | memoryview) -> None:
        self.n += len(data)

    def finish(self) -> FileRoot:
        return FileRoot(CID.parse("bafkqaaa"), self.n, self.n, self.profile)


async def put_once(work: Path, src: Path, with_cid: bool) -> float:
    vdir = work / f"v-{with_cid}-{time.monotonic_ns()}"
    vault = Vault.create(vdir, "bench", VaultOptions(kdf=FAST))
    real = ingest.FileImporter
    if not with_cid:
        ingest.FileImporter = NoImporter  # type: ignore[misc,assignment]
    try:
        t0 = time.perf_counter()
        await vault.files.put([src])
        return time.perf_counter() - t0
    finally:
        ingest.FileImporter = real  # type: ignore[misc]
        await vault.close()
        shutil.rmtree(vdir)


async def gateway_costs(work: Path, src: Path) -> dict[str, float]:
    vault = Vault.create(work / "pub", "bench", VaultOptions(kdf=FAST))
    try:
        await vault.files.put([src], name="f")
        t0 = time.perf_counter()
        pub = await vault.ipfs.publish("f")
        t_pub = time.perf_counter() - t0
        store = vault.catalog.dags
        index = store.load(pub.dag.id)
        leaves = [k for k, r in index.blocks.items() if r.kind == "leaf"]
        target = CID.from_bytes(leaves[len(leaves) // 2])
        reader = BlockReader(vault.ctx, store.lookup)
        t0 = time.perf_counter()
        await reader.get(target)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(20):
            await reader.get(target)
        warm = (time.perf_counter() - t0) / 20
        await reader.close()
        v = vault.catalog.version("f")
        t0 = time.perf_counter()
        await index_version(vault.ctx, v, "", PROFILES["kubo-v1"])
        rebuild = time.perf_counter() - t0
        return {
            "publish_s": t_pub,
            "blocks": pub.blocks,
            "index_bytes": pub.index_bytes,
            "raw_block_cold_ms": cold * 1000,
            "raw_block_warm_ms": warm * 1000,
            "rebuild_dag_s": rebuild,
        }
    finally:
        await vault.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ownvault-bench-"))
    try:
        src = work / "data.bin"
        rnd = random.Random(1)
        with open(src, "wb") as fh:
            for _ in range(args.size_mib):
                fh.write(rnd.randbytes(1 << 20))
        with_cid: list[float] = []
        without: list[float] = []
        for _ in range(args.rounds):  # interleaved: a slow spell hits both cases alike
            without.append(await put_once(work, src, False))
            with_cid.append(await put_once(work, src, True))
        mib = args.size_mib
        print(f"put {mib} MiB, {os.cpu_count()} cores, {args.rounds} interleaved rounds:")
        print(f"  without CID importer: {summary([mib / t for t in without]).text(' MiB/s', 1)}")
        print(f"  with CID importer:    {summary([mib / t for t in with_cid]).text(' MiB/s', 1)}")
        print(f"  time with / without:  {ratio(with_cid, without).text('x')}")
        g = await gateway_costs(work, src)
        print(
            f"publish (block index, one plaintext pass): {g['publish_s']:.2f} s = {mib / g['publish_s']:.0f} MiB/s; "
            f"{g['blocks']} blocks, index {g['index_bytes'] / 1024:.1f} KiB "
            f"({100 * g['index_bytes'] / (mib << 20):.4f}% of the data)"
        )
        print(
            f"one raw block via the index: cold {g['raw_block_cold_ms']:.1f} ms, warm {g['raw_block_warm_ms']:.2f} ms; "
            f"rebuilding the DAG instead: {g['rebuild_dag_s'] * 1000:.0f} ms"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
