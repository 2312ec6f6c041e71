"""The catalog journal's core at scale: checkpoints of a million versions, one-file puts,
two devices' concurrent changes merged, and recovery from a checkpoint plus records.

    .venv/bin/python bench/journal.py [--versions 1000000] [--changes 1000] [--rounds 3] [--quick]

A vault state of ``--versions`` tiny one-file puts from four devices is generated directly
(no records are signed for it: signing a million records takes ~12 minutes and measures
nothing here), compacted as a checkpoint stores it. Then, in interleaved rounds
(bench/rounds.py), medians with ranges:

* checkpoint version 1 (one document) and version 2 (pages): size, encode and decode time;
* a checkpoint after one one-file put, given the previous root: bytes and pages written;
* the record of a one-file put: its size, and the time to make and to open one;
* two devices each committing ``--changes`` small changes concurrently (neither sees the
  other's), merged into the big state in both orders, which must converge;
* recovery: open the version 2 checkpoint and merge the ``--changes`` records after it.

And the peak RSS (VmHWM) of each phase: the generated state, the checkpoints, the rest.
Core only: no providers, no I/O.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from rounds import interleave, summary  # noqa: E402

from ownvault.core.checkpoint import decode_checkpoint, encode_checkpoint  # noqa: E402
from ownvault.core.checkpointpages import decode_pages, encode_paged, open_root  # noqa: E402
from ownvault.core.journal import (  # noqa: E402
    ChainHead,
    DeviceKey,
    JournalKeys,
    Record,
    certify_device,
    encode_record,
    open_record,
)
from ownvault.core.journalops import Body, Dot, Hlc, Put, Tag  # noqa: E402
from ownvault.core.keys import VaultKeys  # noqa: E402
from ownvault.core.merge import State, Version, compact, heads, live_versions, merge  # noqa: E402

KEYS = JournalKeys.of(VaultKeys(bytes(32)))
DEVICES = [DeviceKey(bytes([i + 1]) * 32) for i in range(4)]
WALL = 1_764_000_000_000
ROWS = 64  # bytes of a tiny file's rows: its one chunk's id and wrapped key (random)


def _cid(rng: random.Random) -> str:
    return "bafkrei" + base64.b32encode(rng.randbytes(35)).decode().lower()[:52]


def generate(n: int) -> State:
    """A compacted state of ``n`` one-file puts, spread over four devices."""
    rng = random.Random(7)
    members = {
        d.id: (d.public, f"device-{i}", certify_device(KEYS, d.public, f"device-{i}").sig)
        for i, d in enumerate(DEVICES)
    }
    versions = {}
    last: dict[bytes, int] = {}
    for i in range(n):
        device = DEVICES[i % len(DEVICES)].id
        seq = i // len(DEVICES) + 1
        dot = Dot(device, seq, 0)
        versions[dot] = Version(
            Hlc(WALL + i, 0),
            dot,
            f"photos/{i // 1000:04d}/img_{i:07d}.jpg",
            "file",
            rng.randrange(1, 4096),
            _cid(rng),
            (rng.randbytes(16),),
            rng.randbytes(ROWS),
        )
        last[device] = seq
    floor = {
        d: ChainHead(seq, rng.randbytes(32), Hlc(WALL + n + j, 0))
        for j, (d, seq) in enumerate(sorted(last.items()))
    }
    seen = {d: (seq, dict(last)) for d, seq in last.items()}
    return compact(State(floor=floor, members=members, versions=versions, seen=seen))


def one_put(device: DeviceKey, head: ChainHead, i: int, seen: dict[bytes, int]) -> Record:
    put = Put(f"new/file{i}.txt", "file", 100, "bafkrei" + "a" * 52, (bytes(16),), bytes(ROWS))
    body = Body(Hlc(head.hlc.wall_ms + 1 + i, 0), (put,), tuple(sorted(seen.items())))
    return encode_record(KEYS, device, head, body)[1]


def concurrent_changes(state: State, count: int) -> tuple[list[Record], list[Record]]:
    """Two devices each committing ``count`` records, neither seeing the other's."""
    out = []
    vector = {d: h.seq for d, h in heads(state).items()}
    for device, kind in ((DEVICES[0], "put"), (DEVICES[1], "tag")):
        head, records = heads(state)[device.id], []
        for i in range(count):
            if kind == "put":
                record = one_put(device, head, i, vector)
            else:
                body = Body(Hlc(head.hlc.wall_ms + 1, 0), (Tag(f"photos/{i:04d}", "trip"),), ())
                record = encode_record(KEYS, device, head, body)[1]
            records.append(record)
            head = record.head
        out.append(records)
    return out[0], out[1]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mib() -> float:
    """The process's peak RSS since the last :func:`reset_peak` (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Start the peak RSS over from the current RSS (Linux: "5" to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def checkpoints(state: State, rounds: int) -> None:
    """Long: one block per figure of the two formats, printed as they come."""
    signer = DEVICES[0]
    v1 = encode_checkpoint(KEYS, signer, state)
    v2 = encode_paged(KEYS, signer, state)
    pages = sum(len(p) for p in v2.pages.values())
    n = len(state.versions)
    print(f"v1: {len(v1):,} bytes ({len(v1) / n:.0f} per version)")
    print(
        f"v2: {len(v2.root) + pages:,} bytes ({(len(v2.root) + pages) / n:.0f} per version) "
        f"in {len(v2.pages)} pages and a root of {len(v2.root):,} bytes"
    )
    figures = interleave(
        {
            "v1 encode": lambda: timed(lambda: encode_checkpoint(KEYS, signer, state)),
            "v1 decode": lambda: timed(lambda: decode_checkpoint(KEYS, v1)),
            "v2 encode": lambda: timed(lambda: encode_paged(KEYS, signer, state)),
            "v2 decode": lambda: timed(
                lambda: decode_pages(KEYS, open_root(KEYS, v2.root), v2.pages)
            ),
        },
        rounds,
    )
    for name, values in figures.items():
        print(f"{name}: {summary(values).text(' s')}")
    record = one_put(
        signer, heads(state)[signer.id], 0, {d: h.seq for d, h in heads(state).items()}
    )
    after = merge(state, [record])
    written = interleave(
        {"after one put": lambda: float(encode_paged(KEYS, signer, after, v2.opened).written)},
        rounds,
    )["after one put"]
    again = encode_paged(KEYS, signer, after, v2.opened)
    print(
        f"checkpoint after a one-file put: {summary(written).text(' bytes', 0)} written, "
        f"{len(again.pages)} of {len(again.opened.page_names)} pages and the root"
    )


def records(state: State, changes: int, rounds: int) -> None:
    """Long: the record figures, the concurrent merge and the recovery, printed in turn."""
    signer = DEVICES[0]
    vector = {d: h.seq for d, h in heads(state).items()}
    record = one_put(signer, heads(state)[signer.id], 0, vector)
    members = {d.id: d.public for d in DEVICES}
    print(f"record of a one-file put: {len(record.raw)} bytes")
    a, b = concurrent_changes(state, changes)
    raws = [r.raw for r in a + b]
    v2 = encode_paged(KEYS, signer, state)

    def open_all() -> list[Record]:
        return [open_record(KEYS, raw, members=members, revoked={}) for raw in raws]

    results: dict[str, State] = {}

    def merge_in(order: str) -> float:
        first, second = (a, b) if order == "ab" else (b, a)
        start = time.perf_counter()
        results[order] = merge(merge(state, first), second)
        return time.perf_counter() - start

    def recover() -> float:
        start = time.perf_counter()
        checkpoint = decode_pages(KEYS, open_root(KEYS, v2.root), v2.pages)
        merge(checkpoint.state, open_all())
        return time.perf_counter() - start

    figures = interleave(
        {
            "make a record": lambda: timed(lambda: one_put(signer, record.head, 1, vector)),
            "open a record": lambda: timed(
                lambda: open_record(KEYS, record.raw, members=members, revoked={})
            ),
            f"open {2 * changes} records": lambda: timed(open_all),
            "merge a then b": lambda: merge_in("ab"),
            "merge b then a": lambda: merge_in("ba"),
            f"recover: v2 checkpoint + {2 * changes} records": recover,
        },
        rounds,
    )
    assert results["ab"] == results["ba"], "the two orders did not converge"
    live = live_versions(results["ab"])
    assert sum(len(v) for v in live.values()) == len(state.versions) + changes
    for name, values in figures.items():
        unit, scale = (" ms", 1000.0) if "a record" in name else (" s", 1.0)
        print(f"{name}: {summary([v * scale for v in values]).text(unit, 3)}")
    print("the two merge orders converge: yes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=None, help="versions (1,000,000; quick 20,000)")
    ap.add_argument("--changes", type=int, default=None, help="per device (1,000; quick 100)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3; quick 2)")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a first look")
    args = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    n = args.versions or (20_000 if args.quick else 1_000_000)
    changes = args.changes or (100 if args.quick else 1_000)
    rounds = args.rounds or (2 if args.quick else 3)
    start = time.perf_counter()
    state = generate(n)
    print(f"generated {n:,} versions on 4 devices in {time.perf_counter() - start:.1f} s")
    print(f"peak RSS, the generated state: {peak_rss_mib():,.0f} MiB")
    reset_peak()
    checkpoints(state, rounds)
    print(f"peak RSS, checkpoints v1 and v2: {peak_rss_mib():,.0f} MiB")
    reset_peak()
    records(state, changes, rounds)
    print(f"peak RSS, records, merges and recovery (v2): {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
