"""Stage benchmark: erasure-code packs and write their shares to local-folder providers.

What ``PackWriter.write_pack`` does for each pack of a put, without the catalog: encode a
16 MiB pack into n shares (``ShareStore.encode_sync``), then write the n shares at once,
one per provider folder (temp file, write, fsync, link, fsync of the folder). Cases, run
in interleaved rounds (``bench/rounds.py``), each into fresh folders:

* ``join + write``: each share joined into one ``bytes`` first (what the share store did
  before providers took buffer sequences), then written buffered;
* ``parts + writev``: the share's parts (header, views of the pack and parity, tree) written
  with ``writev``, buffered;
* ``parts + O_DIRECT``: the same parts copied into reused aligned buffers and written with
  ``O_DIRECT`` (``providers.directio``).

Printed per case: MB/s of pack bytes (wall) and CPU seconds per GiB of packs (user + sys of
this process, all threads: what the rest of a put competes for), medians and ranges.

    PYTHONPATH=src python bench/sharewrite.py [--rounds 7] [--packs 16] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rounds import interleave, summary

from ownvault.core.pack import new_pack_id
from ownvault.engine.store.shares import ShareStore, data_share_name
from ownvault.providers.base import Provider
from ownvault.providers.local import LocalProvider

PACK = 16 * 1024 * 1024
GIB = 1024**3


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--packs", type=int, default=16, help="16 MiB packs per case and round")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--dir", type=Path, default=None, help="where the provider folders go")
    args = ap.parse_args()
    k, n = args.k, args.n
    packs = [bytearray(os.urandom(PACK)) for _ in range(min(args.packs, 4))]
    work = Path(tempfile.mkdtemp(prefix="ownvault-sharewrite-", dir=args.dir))
    cpu_s: dict[str, list[float]] = {}

    def case(name: str, direct: bool, join: bool) -> Callable[[], float]:
        cpu_s[name] = []

        def run() -> float:
            root = work / name.replace(" ", "")
            provs: list[Provider] = [
                LocalProvider(LocalProvider.create(root / str(i)).root, direct=direct)
                for i in range(n)
            ]
            store = ShareStore(dict(enumerate(provs)), {i: str(i) for i in range(n)})

            async def go() -> None:
                for j in range(args.packs):
                    pack_id = new_pack_id()
                    enc = await store.encode(pack_id, memoryview(packs[j % len(packs)]), k, n)
                    shares = [bytes(s) for s in enc.pieces] if join else enc.pieces
                    await asyncio.gather(
                        *(
                            store.put_share(i, data_share_name(pack_id, i), shares[i])
                            for i in range(n)
                        )
                    )
                    store.release(enc)

            c0, t0 = cpu(), time.perf_counter()
            asyncio.run(go())
            seconds, used = time.perf_counter() - t0, cpu() - c0
            shutil.rmtree(root)
            amount = args.packs * PACK
            cpu_s[name].append(used * GIB / amount)
            return amount / seconds / 1e6

        return run

    cases = {
        "join + write": case("join + write", direct=False, join=True),
        "parts + writev": case("parts + writev", direct=False, join=False),
        "parts + O_DIRECT": case("parts + O_DIRECT", direct=True, join=False),
    }
    try:
        for c in cases.values():  # warm-up, untimed
            c()
        for name in cpu_s:
            cpu_s[name].clear()
        figures = interleave(cases, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.packs} packs of 16 MiB, {k}-of-{n}, {args.rounds} interleaved rounds")
    for name, mbps in figures.items():
        print(
            f"  {name:18} {summary(mbps).text(' MB/s', 0)}; "
            f"CPU {summary(cpu_s[name]).text(' s/GiB', 2)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
