"""The erasure code's engines side by side: ISA-L by ctypes (``core.isal``) against pyeclib.

    .venv/bin/python bench/erasure.py [--rounds 7] [--packs 4] [--k 3 --n 6]

On 16 MiB random packs, in interleaved rounds (``bench/rounds.py``), MB/s of pack bytes:
  * ceiling:  ISA-L's ``ec_encode_data`` alone into preallocated parity (no headers);
  * encode:   ``encode_fragments`` (pieces, no joins) with parity into reused buffers (the
              pipeline's way) and into new ones, ``encode`` (joined bytes) with the isal
              engine, ``encode`` with pyeclib; one thread, then two threads each coding its
              own packs (the isal engine releases the GIL, so two threads can scale on two
              cores; pyeclib holds it);
  * decode:   all data shares there (the fast path: ``decode_pieces`` slices, ``decode``
              joins once), and share 0 missing (a real decode: pieces into reused scratch,
              or joined bytes), isal vs pyeclib;
  * the GIL:  how fast a pure-Python thread runs while another thread codes, as a fraction
              of its speed alone (pyeclib holds the GIL through each call: near 0).
The machine is shared: read the medians and ranges, not one round.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from rounds import interleave, ratio, summary  # noqa: E402

from ownvault.core.erasure import ErasureCode  # noqa: E402
from ownvault.core.fragment import payload_size  # noqa: E402
from ownvault.core.isal import buffer_address, system_isal  # noqa: E402

PACK = 16 << 20


def mbps(nbytes: int, fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return nbytes / (time.perf_counter() - t0) / 1e6


def threaded(threads: int, per_thread: Callable[[int], object]) -> Callable[[], object]:
    def run() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(per_thread, range(threads)))

    return run


def _spin(done: threading.Event, t0: float) -> float:
    """Iterations per second (from ``t0``) of a pure-Python loop until ``done`` is set."""
    n = 0
    while not done.is_set():
        n += 1
    return n / (time.perf_counter() - t0)


def python_progress(work: Callable[[], object]) -> float:
    """How far a pure-Python thread gets while ``work`` runs in another thread, as a fraction
    of its speed alone (measured just before): near 0 when ``work`` holds the GIL, up to 1
    when it releases it and a core is free (about 0.5 when the two share one core)."""
    done = threading.Event()
    timer = threading.Timer(0.3, done.set)
    t0 = time.perf_counter()
    timer.start()
    alone = _spin(done, t0)
    done = threading.Event()

    def run() -> None:
        try:
            until = time.perf_counter() + 0.3
            while time.perf_counter() < until:  # long enough to measure
                work()
        finally:
            done.set()

    worker = threading.Thread(target=run)
    t0 = time.perf_counter()  # before start(): a worker holding the GIL stalls start() too
    worker.start()
    during = _spin(done, t0)
    worker.join()
    return during / alone


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--packs", type=int, default=4, help="16 MiB packs per case and thread")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--n", type=int, default=6)
    args = ap.parse_args()
    k, n, count = args.k, args.n, args.packs
    isal = system_isal()
    if isal is None:
        print("no system ISA-L (libisal.so.2): install libisal2; nothing to compare")
        return 1
    fast = ErasureCode(k, n, engine="isal")
    slow = ErasureCode(k, n, engine="pyeclib")
    packs = [[os.urandom(PACK) for _ in range(count)] for _ in range(2)]  # one set per thread
    size = payload_size(PACK, k)
    parity = [[bytearray(size) for _ in range(n - k)] for _ in range(2)]
    tables = isal.init_tables(k, n - k, isal.cauchy_matrix(n, k)[k * k :])

    def raw(t: int) -> None:
        dst = [buffer_address(p) or 0 for p in parity[t]]
        for p in packs[t]:
            base = buffer_address(p) or 0
            isal.encode(size, tables, [base + i * size for i in range(k)], dst)

    frags = [fast.encode(p) for p in packs[0]]
    every = [dict(enumerate(f)) for f in frags]
    missing0 = [{i: f[i] for i in range(1, k + 1)} for f in frags]
    one, two = count * PACK, 2 * count * PACK

    def enc(code: ErasureCode, how: str) -> Callable[[int], object]:
        if how == "reused":  # the pipeline's way: parity into a pool of buffers
            return lambda t: [code.encode_fragments(p, parity=parity[t]) for p in packs[t]]
        if how == "pieces":
            return lambda t: [code.encode_fragments(p) for p in packs[t]]
        return lambda t: [code.encode(p) for p in packs[t]]

    scratch = [bytearray(size) for _ in range(k)]

    cases: dict[str, Callable[[], float]] = {
        "ceiling 1 thread (ec_encode_data only)": lambda: mbps(one, lambda: raw(0)),
        "ceiling 2 threads": lambda: mbps(two, threaded(2, raw)),
        "encode isal reused buffers 1 thread": lambda: mbps(one, lambda: enc(fast, "reused")(0)),
        "encode isal new buffers 1 thread": lambda: mbps(one, lambda: enc(fast, "pieces")(0)),
        "encode isal bytes 1 thread": lambda: mbps(one, lambda: enc(fast, "bytes")(0)),
        "encode pyeclib 1 thread": lambda: mbps(one, lambda: enc(slow, "bytes")(0)),
        "encode isal reused buffers 2 threads": lambda: mbps(two, threaded(2, enc(fast, "reused"))),
        "encode isal bytes 2 threads": lambda: mbps(two, threaded(2, enc(fast, "bytes"))),
        "encode pyeclib 2 threads": lambda: mbps(two, threaded(2, enc(slow, "bytes"))),
        "decode fast path isal pieces": lambda: mbps(
            one, lambda: [fast.decode_pieces(f) for f in every]
        ),
        "decode fast path isal bytes": lambda: mbps(one, lambda: [fast.decode(f) for f in every]),
        "decode all shares pyeclib": lambda: mbps(one, lambda: [slow.decode(f) for f in every]),
        "decode share 0 missing isal pieces reused": lambda: mbps(
            one, lambda: [fast.decode_pieces(f, scratch=scratch) for f in missing0]
        ),
        "decode share 0 missing isal bytes": lambda: mbps(
            one, lambda: [fast.decode(f) for f in missing0]
        ),
        "decode share 0 missing pyeclib": lambda: mbps(
            one, lambda: [slow.decode(f) for f in missing0]
        ),
    }
    print(
        f"erasure code {k}-of-{n}, {count} x 16 MiB packs per case and thread, "
        f"{args.rounds} interleaved rounds, {os.cpu_count()} cores (shared machine: noisy)"
    )
    results = interleave(cases, args.rounds)
    for name, values in results.items():
        print(f"  {name:44} {summary(values).text(' MB/s', 0)}")
    pairs = [
        ("encode isal reused buffers 1 thread", "encode pyeclib 1 thread"),
        ("encode isal bytes 1 thread", "encode pyeclib 1 thread"),
        ("encode isal reused buffers 1 thread", "ceiling 1 thread (ec_encode_data only)"),
        ("encode isal reused buffers 2 threads", "encode isal reused buffers 1 thread"),
        ("ceiling 2 threads", "ceiling 1 thread (ec_encode_data only)"),
        ("encode pyeclib 2 threads", "encode pyeclib 1 thread"),
        ("decode share 0 missing isal pieces reused", "decode share 0 missing pyeclib"),
        ("decode share 0 missing isal bytes", "decode share 0 missing pyeclib"),
        ("decode fast path isal bytes", "decode all shares pyeclib"),
    ]
    for a, b in pairs:
        print(f"  {a} / {b}: {ratio(results[a], results[b]).text('x')}")
    gil = interleave(
        {
            "isal encode": lambda: python_progress(lambda: enc(fast, "reused")(0)),
            "pyeclib encode": lambda: python_progress(lambda: enc(slow, "bytes")(0)),
            "isal decode, share 0 missing": lambda: python_progress(
                lambda: [fast.decode_pieces(f, scratch=scratch) for f in missing0]
            ),
            "pyeclib decode, share 0 missing": lambda: python_progress(
                lambda: [slow.decode(f) for f in missing0]
            ),
        },
        args.rounds,
    )
    print("  a pure-Python thread's speed while the other thread codes (1 = unhindered):")
    for name, values in gil.items():
        print(f"    during {name:34} {summary(values).text('', 2)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
