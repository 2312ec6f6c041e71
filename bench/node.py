"""Load on storage nodes from concurrent clients, with one node killed (kill -9) mid-run.

Starts NODES node processes on 127.0.0.1 (loopback only), runs CLIENTS concurrent client
tasks that each put an object of SIZE bytes to a node (round robin) and read it back, for
at most SECONDS seconds and at most MAX_REQUESTS requests, kills one node halfway, and
prints requests/s, p50/p99 latency and errors, before and after the kill, as JSON.

    python bench/node.py [--nodes 3] [--clients 16] [--seconds 10] [--size 65536]
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ownvault.errors import OwnvaultError
from ownvault.providers.node import NodeProvider, SeedSigner
from tests.server.nodes import NodeCluster


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--size", type=int, default=64 * 1024)
    ap.add_argument("--max-requests", type=int, default=50_000)
    args = ap.parse_args()
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
