"""Load on storage nodes from concurrent clients, with one node killed (kill -9) mid-run.

Starts NODES node processes on 127.0.0.1 (loopback only), runs CLIENTS concurrent client
tasks that each put an object of SIZE bytes to a node (round robin) and read it back, for
at most SECONDS seconds and at most MAX_REQUESTS requests, kills one node halfway, and
prints requests/s, p50/p99 latency and errors, before and after the kill, as JSON.

    python bench/node.py [--nodes 3] [--clients 16] [--seconds 10] [--size 65536]

``--write`` measures the node's write path instead: one node, CLIENTS concurrent clients
each putting objects of SIZE bytes (default: a share of a 16 MiB pack at 3-of-6, 5.6 MB)
until OBJECTS are stored, in interleaved ``--rounds``; per round the MB/s of the puts and
the node process's CPU seconds (user and system, ``/proc/PID/stat``) per GiB stored.
``--ab LABEL=DIR`` adds a node run from another source tree (``DIR/src``) to every round,
with the ratio round by round: an A/B of two versions of the node's code.

    python bench/node.py --write [--rounds 5] [--clients 4] [--objects 48] [--ab main=DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ownvault.errors import OwnvaultError
from ownvault.providers.node import NodeProvider, SeedSigner
from tests.server.nodes import Node, NodeCluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rounds import interleave, ratio, summary

SHARE = 16 * 1024 * 1024 // 3 + 16 * 1024  # about one share of a 16 MiB pack at 3-of-6


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    by_op: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0

    def summary(self) -> dict[str, object]:
        n = len(self.latencies) + sum(self.errors.values())
        secs = max(self.ended - self.started, 1e-9)
        lat = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else None

        per_op = {}
        for op, values in sorted(self.by_op.items()):
            values = sorted(values)
            per_op[op] = {
                "ok": len(values),
                "p50_ms": round(values[len(values) // 2] * 1000, 2),
                "p99_ms": round(values[min(len(values) - 1, int(0.99 * len(values)))] * 1000, 2),
            }
        return {
            "requests": n,
            "ok": len(lat),
            "seconds": round(secs, 2),
            "requests_per_second": round(n / secs, 1),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None,
            "errors": dict(sorted(self.errors.items())),
            "by_operation": per_op,
        }


async def client(
    cid: int,
    providers: list[NodeProvider],
    phases: dict[str, Phase],
    state: dict[str, object],
    deadline: float,
    budget: list[int],
    size: int,
) -> None:
    payload = os.urandom(size)
    i = 0
    while time.monotonic() < deadline and budget[0] > 0:
        p = providers[(cid + i) % len(providers)]
        name = f"bench/{cid:03d}/{i:06d}"
        for op in ("put", "get"):
            budget[0] -= 1
            phase = phases[str(state["phase"])]
            t0 = time.perf_counter()
            try:
                if op == "put":
                    await p.put(name, payload)
                else:
                    assert await p.get(name) == payload
            except OwnvaultError as exc:
                key = f"{op}:{type(exc).__name__}"
                phase.errors[key] = phase.errors.get(key, 0) + 1
                break
            elapsed = time.perf_counter() - t0
            phase.latencies.append(elapsed)
            phase.by_op.setdefault(op, []).append(elapsed)
        i += 1


async def run(args: argparse.Namespace, urls: list[str], kill: object) -> dict[str, object]:
    signer = SeedSigner.generate()
    providers = [NodeProvider(u, signer, timeout=5, connect_timeout=2) for u in urls]
    for p in providers:
        await p.node_info()  # learn node ids before the clock starts
    phases = {"before_kill": Phase(), "after_kill": Phase()}
    state: dict[str, object] = {"phase": "before_kill"}
    start = time.monotonic()
    deadline = start + args.seconds
    budget = [args.max_requests]
    phases["before_kill"].started = time.monotonic()

    async def killer() -> None:
        await asyncio.sleep(args.seconds / 2)
        phases["before_kill"].ended = time.monotonic()
        await asyncio.to_thread(kill)  # type: ignore[arg-type]
        state["phase"] = "after_kill"
        phases["after_kill"].started = time.monotonic()

    async with asyncio.TaskGroup() as tg:
        k = tg.create_task(killer())
        for cid in range(args.clients):
            tg.create_task(client(cid, providers, phases, state, deadline, budget, args.size))
    if not k.done():
        k.cancel()
    end = time.monotonic()
    if not phases["before_kill"].ended:
        phases["before_kill"].ended = end
    phases["after_kill"].ended = end
    for p in providers:
        await p.close()
    total = Phase(started=start, ended=end)
    for ph in phases.values():
        total.latencies += ph.latencies
        for op, values in ph.by_op.items():
            total.by_op.setdefault(op, []).extend(values)
        for key, v in ph.errors.items():
            total.errors[key] = total.errors.get(key, 0) + v
    return {
        "config": {
            "nodes": args.nodes,
            "clients": args.clients,
            "object_bytes": args.size,
            "seconds": args.seconds,
            "cores": os.cpu_count(),
        },
        "total": total.summary(),
        **{name: ph.summary() for name, ph in phases.items()},
    }


def _cpu_seconds(node: Node) -> tuple[float, float]:
    """User and system CPU seconds of the node's process so far."""
    assert node.process is not None
    fields = Path(f"/proc/{node.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def _write_round(url: str, clients: int, objects: int, size: int) -> float:
    """Put ``objects`` objects of ``size`` bytes with ``clients`` at once; the seconds."""
    signer = SeedSigner.generate()
    payloads = [os.urandom(size) for _ in range(clients)]
    providers = [NodeProvider(url, signer, timeout=60) for _ in range(clients)]
    await providers[0].node_info()
    left = list(range(objects))

    async def put(c: int) -> None:
        while left:
            i = left.pop()
            await providers[c].put(f"w/{i:06d}", payloads[c])

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for c in range(clients):
            tg.create_task(put(c))
    elapsed = time.perf_counter() - t0
    for p in providers:
        await p.close()
    return elapsed


def write_bench(args: argparse.Namespace) -> dict[str, object]:
    """``--write``: the node's write path, this source tree against the ``--ab`` ones."""
    trees = {"this": Path(__file__).resolve().parent.parent}
    for spec in args.ab:
        label, _, path = spec.partition("=")
        if not (Path(path) / "src" / "ownvault").is_dir():
            raise SystemExit(f"--ab wants LABEL=DIR with DIR/src/ownvault: {spec!r}")
        trees[label] = Path(path)
    mb = args.objects * args.size / 1e6
    cpu: dict[str, list[float]] = {label: [] for label in trees}
    user: dict[str, list[float]] = {label: [] for label in trees}
    gib = mb / 1073.741824

    def case(label: str, tree: Path) -> Callable[[], float]:
        def one() -> float:
            saved = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(tree / "src")
            try:
                with (
                    tempfile.TemporaryDirectory(prefix="ownvault-bench-") as tmp,
                    NodeCluster(Path(tmp)) as cluster,
                ):
                    [node] = cluster.start_many(1)
                    before = _cpu_seconds(node)
                    secs = asyncio.run(
                        _write_round(node.url, args.clients, args.objects, args.size)
                    )
                    after = _cpu_seconds(node)
                    user[label].append((after[0] - before[0]) / gib)
                    cpu[label].append((sum(after) - sum(before)) / gib)
            finally:
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
            return mb / secs

        return one

    rates = interleave({label: case(label, tree) for label, tree in trees.items()}, args.rounds)
    out: dict[str, object] = {
        "config": {
            "clients": args.clients,
            "objects": args.objects,
            "object_bytes": args.size,
            "rounds": args.rounds,
            "load_average": os.getloadavg(),
        },
    }
    for label in trees:
        out[label] = {
            "MBps": summary(rates[label]).as_dict(),
            "cpu_s_per_GiB": summary(cpu[label]).as_dict(),
            "user_s_per_GiB": summary(user[label]).as_dict(),
            "sys_s_per_GiB": summary(
                [c - u for c, u in zip(cpu[label], user[label], strict=True)]
            ).as_dict(),
        }
        if label != "this":
            out[f"this/{label}"] = {
                "MBps": ratio(rates["this"], rates[label]).as_dict(),
                "cpu": ratio(cpu["this"], cpu[label]).as_dict(),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=0, help="object bytes (64 KiB; --write: 5.6 MB)")
    ap.add_argument("--max-requests", type=int, default=50_000)
    ap.add_argument("--write", action="store_true", help="measure the node's write path")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--objects", type=int, default=48)
    ap.add_argument("--ab", action="append", default=[], metavar="LABEL=DIR")
    args = ap.parse_args()
    if args.write:
        args.size = args.size or SHARE
        args.clients = min(args.clients, 4) if args.clients == 16 else args.clients
        print(json.dumps(write_bench(args), indent=2))
        return
    args.size = args.size or 64 * 1024
    args.seconds = min(args.seconds, 120.0)
    args.max_requests = min(args.max_requests, 500_000)
    with (
        tempfile.TemporaryDirectory(prefix="ownvault-bench-") as tmp,
        NodeCluster(Path(tmp)) as cluster,
    ):
        nodes = cluster.start_many(args.nodes, jurisdictions=["CH", "DE", "NL"])
        victim = nodes[-1]
        result = asyncio.run(run(args, [n.url for n in nodes], lambda: cluster.kill(victim)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
