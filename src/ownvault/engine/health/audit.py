"""Storage audits: prove, cheaply and at any time, that each provider still holds its shares.

For each provider, an audit (1) lists the provider's ``shares/`` objects and compares them
with the catalog (a share that is absent or has the wrong size is a fault), then (2)
challenges it on blocks chosen uniformly at random, without replacement, from all the
16 KiB blocks of the shares it holds, with the OS CSPRNG (``secrets.SystemRandom``): a
provider cannot predict which blocks will be asked for.

* A storage node answers the challenges itself (``POST /v1/audit``): each block with its
  Merkle path, computed from the leaf level stored with the share. The client checks the
  path against the share's root from the catalog (``core.merkle.verify_proof``).
* Any other provider (local folder, S3, IPFS) is read by range: the share's leaf level
  (accepted only if it hashes up to the catalog's root) and each challenged block (accepted
  only if its leaf hash is the stored leaf at its index).

A challenge passes, fails (wrong bytes, bad proof, object missing) or is unreachable
(transport trouble). If a provider has lost a fraction f of its blocks, c challenges
miss every lost block with probability at most (1-f)^c (exactly C(N-d, c)/C(N, c) for d
lost blocks out of N), so the audit detects the loss with probability at least
1 - (1-f)^c: 99.88 % for f = 10 % and the default c = 64. After an audit in which x of c
answered challenges failed, ``holds_at_least`` is the one-sided 95 % Clopper-Pearson lower
bound on the fraction of its blocks the provider still holds (1 - 0.05^(1/c) lost at most
when none failed: 95.4 % held for c = 64).

Results are recorded in the catalog's health record (``catalog.healthlog``): one run, per-provider counts,
and every failed share as a fault for ``repair``.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from ownvault.core.merkle import leaf_hash, root_from_leaves, verify_proof
from ownvault.core.pack import ShareLayout
from ownvault.core.proofs import Answer
from ownvault.engine.store.catalog import ProviderRow
from ownvault.engine.store.catalog.healthlog import AuditResultRow, FaultKind
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.shares import DATA_PREFIX, data_share_name
from ownvault.errors import (
    FormatError,
    NotFoundError,
    ObjectNotFoundError,
    OwnvaultError,
    ProviderError,
    ProviderPermanentError,
    UsageError,
)
from ownvault.providers.base import Provider
from ownvault.providers.wrappers import unwrap

__all__ = [
    "CONFIDENCE",
    "DEFAULT_BLOCKS",
    "AuditFault",
    "AuditReport",
    "AuditSample",
    "ProviderAudit",
    "audit",
    "detection_probability",
    "holds_at_least",
]

DEFAULT_BLOCKS = 64
CONFIDENCE = 0.95
RANGE_CONCURRENCY = 8
PROVE_ATTEMPTS = 3
MAX_FAULTS_SHOWN = 50


@dataclass(frozen=True, slots=True)
class AuditSample:
    """How many blocks to challenge per provider: ``blocks`` of them, or a ``fraction``."""

    blocks: int | None = DEFAULT_BLOCKS
    fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.blocks is None) == (self.fraction is None):
            raise UsageError("give either a block count or a fraction to sample")
        if self.blocks is not None and self.blocks < 1:
            raise UsageError("--blocks must be at least 1")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise UsageError("--sample must be a fraction in (0, 1]")

    def count(self, total: int) -> int:
        if self.blocks is not None:
            return min(total, self.blocks)
        assert self.fraction is not None
        return min(total, max(1, math.ceil(self.fraction * total))) if total else 0

    def to_json(self) -> dict[str, Any]:
        return {"blocks": self.blocks} if self.blocks is not None else {"fraction": self.fraction}


def detection_probability(challenges: int, lost_fraction: float) -> float:
    """Lower bound on P(an audit of ``challenges`` blocks hits a lost block): 1-(1-f)^c."""
    return 1.0 - (1.0 - lost_fraction) ** challenges


def _binom_cdf(x: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(x + 1))


def holds_at_least(answered: int, failed: int, confidence: float = CONFIDENCE) -> float | None:
    """Lower confidence bound on the fraction of blocks still held (Clopper-Pearson)."""
    if answered <= 0:
        return None
    if failed >= answered:
        return 0.0
    alpha = 1 - confidence
    if failed == 0:
        return float(alpha ** (1 / answered))
    lo, hi = failed / answered, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _binom_cdf(failed, answered, mid) > alpha:
            lo = mid
        else:
            hi = mid
    return 1 - hi


@dataclass(frozen=True, slots=True)
class _Share:
    pack: int
    pack_id: bytes
    idx: int
    size: int
    root: bytes

    @property
    def name(self) -> str:
        return data_share_name(self.pack_id, self.idx)


@dataclass(frozen=True, slots=True)
class AuditFault:
    """A share an audit found missing or corrupt (or that it could not check), and why."""

    share: str
    kind: FaultKind
    detail: str


@dataclass
class ProviderAudit:
    """One provider's result in one audit."""

    provider: str
    provider_id: int
    method: str = "ranges"
    shares: int = 0
    blocks: int = 0
    challenges: int = 0
    passed: int = 0
    failed: int = 0
    unreachable: int = 0
    missing_shares: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    faults: list[AuditFault] = field(default_factory=list)

    @property
    def holds_at_least(self) -> float | None:
        return holds_at_least(self.passed + self.failed, self.failed)

    @property
    def verdict(self) -> str:
        if self.failed or self.missing_shares:
            return "failing"
        if self.unreachable or self.error:
            return "unreachable"
        return "ok" if self.shares else "empty"

    def row(self) -> AuditResultRow:
        """What the health record keeps of this result."""
        held = self.holds_at_least
        return AuditResultRow(
            self.provider_id, self.method, self.shares, self.blocks, self.challenges,
            self.passed, self.failed, self.unreachable, self.missing_shares, self.bytes,
            round(self.seconds, 3), None if held is None else round(held, 6), self.error,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        held = self.holds_at_least
        return {
            "provider": self.provider,
            "provider_id": self.provider_id,
            "method": self.method,
            "verdict": self.verdict,
            "shares": self.shares,
            "blocks": self.blocks,
            "challenges": self.challenges,
            "passed": self.passed,
            "failed": self.failed,
            "unreachable": self.unreachable,
            "missing_shares": self.missing_shares,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "holds_at_least": None if held is None else round(held, 6),
            "confidence": CONFIDENCE,
            "detects_loss_of_10pct": round(
                detection_probability(self.passed + self.failed, 0.10), 6
            ),
            "error": self.error,
            "faults": [asdict(f) for f in self.faults[:MAX_FAULTS_SHOWN]],
            "faults_total": len(self.faults),
        }


@dataclass
class AuditReport:
    run: int | None
    started_at: float
    seconds: float
    sample: AuditSample
    providers: list[ProviderAudit]

    @property
    def at_fault(self) -> list[str]:
        """Providers that failed a challenge or lost a share (not merely unreachable)."""
        return sorted(p.provider for p in self.providers if p.verdict == "failing")

    @property
    def unreachable(self) -> list[str]:
        return sorted(p.provider for p in self.providers if p.verdict == "unreachable")

    @property
    def ok(self) -> bool:
        return all(p.verdict in ("ok", "empty") for p in self.providers)

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "sample": self.sample.to_json(),
            "ok": self.ok,
            "at_fault": self.at_fault,
            "unreachable": self.unreachable,
            "challenges": sum(p.challenges for p in self.providers),
            "bytes": sum(p.bytes for p in self.providers),
            "providers": [p.to_json() for p in self.providers],
        }


@runtime_checkable
class _Prover(Protocol):
    """What the audit needs of a storage node (``providers.node.NodeProvider``): answers to
    challenges, computed where the shares are. Declared here, so the audit module does not
    import the node client (and httpx) into every command that opens a vault."""

    async def prove(self, challenges: Sequence[tuple[str, int]]) -> Sequence[Answer]: ...


def _node_of(provider: Provider) -> _Prover | None:
    """The storage node under any wrappers (it can answer challenges itself), or None."""
    adapter = unwrap(provider)
    return adapter if isinstance(adapter, _Prover) else None


class _Auditor:
    def __init__(self, provider: Provider, result: ProviderAudit) -> None:
        self.p = provider
        self.r = result
        self.fault_rows: list[tuple[_Share, FaultKind, str]] = []

    def fail(self, share: _Share, kind: FaultKind, detail: str, count: int = 1) -> None:
        self.r.failed += count
        self.fault(share, kind, detail)

    def fault(self, share: _Share, kind: FaultKind, detail: str) -> None:
        if all(f[0] != share for f in self.fault_rows):
            self.fault_rows.append((share, kind, detail))
            self.r.faults.append(AuditFault(share.name, kind, detail))

    async def listing(self, shares: list[_Share]) -> set[_Share]:
        """Shares absent from the provider's listing (or listed with the wrong size)."""
        listed: dict[str, int] = {}
        async for o in self.p.list(DATA_PREFIX + "/"):
            listed[o.name] = o.size
        self.r.bytes += 64 * len(listed)
        bad = set()
        for s in shares:
            size = listed.get(s.name)
            if size is None:
                self.fault(s, "missing", "not in the provider's listing")
            elif size != s.size:
                self.fault(s, "corrupt", f"listed with {size} bytes, expected {s.size}")
            else:
                continue
            bad.add(s)
        self.r.missing_shares = len(bad)
        return bad

    async def by_node(self, node: _Prover, todo: list[tuple[_Share, int]]) -> None:
        self.r.method = "node"
        answers = None
        for attempt in range(PROVE_ATTEMPTS):
            try:
                answers = await node.prove([(s.name, b) for s, b in todo])
                break
            except ProviderPermanentError:
                raise
            except ProviderError as exc:
                if not exc.retryable or attempt + 1 == PROVE_ATTEMPTS:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        assert answers is not None
        self.r.bytes += sum(80 + 32 + len(s.name) for s, _b in todo)
        for (share, block), ans in zip(todo, answers, strict=True):
            self.r.bytes += 6 + len(ans.block) + 32 * len(ans.path)
            layout = ShareLayout.for_total(share.size)
            if ans.status != 0:
                kind: FaultKind = "missing" if ans.status == 1 else "corrupt"
                self.fail(share, kind, f"block {block}: node says {ans.reason}")
            elif verify_proof(share.root, layout.data_len, block, ans.block, list(ans.path)):
                self.r.passed += 1
            else:
                self.fail(
                    share,
                    "corrupt",
                    f"block {block}: proof does not verify against the recorded root",
                )

    async def by_ranges(self, todo: list[tuple[_Share, int]]) -> None:
        self.r.method = "ranges"
        per_share: dict[_Share, list[int]] = {}
        for s, b in todo:
            per_share.setdefault(s, []).append(b)
        sem = asyncio.Semaphore(RANGE_CONCURRENCY)

        async def one_share(share: _Share, blocks: list[int]) -> None:
            layout = ShareLayout.for_total(share.size)
            try:
                async with sem:
                    raw = await self.p.get(share.name, layout.leaves_offset, layout.leaves_len)
                self.r.bytes += len(raw)
                leaves = [raw[i : i + 32] for i in range(0, len(raw), 32)]
                if len(raw) != layout.leaves_len or root_from_leaves(leaves) != share.root:
                    self.fail(
                        share,
                        "corrupt",
                        "stored Merkle tree does not match the recorded root",
                        len(blocks),
                    )
                    return
            except OwnvaultError as exc:
                self._error(share, exc, len(blocks))
                return

            async def one_block(block: int) -> None:
                start, length = layout.block_range(block)
                try:
                    async with sem:
                        data = await self.p.get(share.name, start, length)
                except OwnvaultError as exc:
                    self._error(share, exc, 1)
                    return
                self.r.bytes += len(data)
                if len(data) == length and leaf_hash(data) == leaves[block]:
                    self.r.passed += 1
                else:
                    self.fail(share, "corrupt", f"block {block} does not match its Merkle leaf")

            await asyncio.gather(*(one_block(b) for b in blocks))

        await asyncio.gather(*(one_share(s, bs) for s, bs in per_share.items()))

    def _error(self, share: _Share, exc: OwnvaultError, count: int) -> None:
        if isinstance(exc, ObjectNotFoundError):
            self.fail(share, "missing", exc.message, count)
        elif isinstance(exc, ProviderError) and exc.retryable:
            self.r.unreachable += count
        else:
            self.fail(share, "corrupt", exc.message, count)


def _held_shares(ctx: VaultContext, provider: int) -> list[_Share]:
    return [
        _Share(s.pack, s.pack_id, s.idx, s.size, s.root)
        for s in ctx.catalog.fleet.held_shares(provider)
    ]


def choose_blocks(
    shares: Sequence[_Share], sample: AuditSample, rng: random.Random
) -> list[tuple[_Share, int]]:
    """Distinct (share, block) pairs, uniform over every block of ``shares``."""
    ends: list[int] = []
    total = 0
    for s in shares:
        total += ShareLayout.for_total(s.size).blocks
        ends.append(total)
    picks = sorted(rng.sample(range(total), sample.count(total))) if total else []
    out = []
    for g in picks:
        i = bisect.bisect_right(ends, g)
        out.append((shares[i], g - (ends[i - 1] if i else 0)))
    return out


async def _audit_one(
    ctx: VaultContext, row: ProviderRow, sample: AuditSample, rng: random.Random
) -> tuple[ProviderAudit, list[tuple[_Share, FaultKind, str]]]:
    result = ProviderAudit(row.name, row.id)
    t0 = time.monotonic()
    shares = _held_shares(ctx, row.id)
    result.shares = len(shares)
    try:
        result.blocks = sum(ShareLayout.for_total(s.size).blocks for s in shares)
    except FormatError as exc:
        result.error = exc.message
        return result, []
    p = ctx.store.providers.get(row.id)
    todo = choose_blocks(shares, sample, rng)
    result.challenges = len(todo)
    if p is None:
        result.error = "provider cannot be opened"
        result.unreachable = len(todo)
        return result, []
    auditor = _Auditor(p, result)
    node = _node_of(p)
    if node is not None:
        result.method = "node"
    try:
        missing = await auditor.listing(shares) if shares else set()
        for s, _b in todo:
            if s in missing:
                result.failed += 1
        asked = [(s, b) for s, b in todo if s not in missing]
        if asked:
            if node is not None:
                try:
                    await auditor.by_node(node, asked)
                except ProviderPermanentError as exc:
                    # A node without the audit endpoint: fall back to reading ranges.
                    result.error = f"audit endpoint refused ({exc.message}); read ranges instead"
                    await auditor.by_ranges(asked)
            else:
                await auditor.by_ranges(asked)
    except ProviderError as exc:
        result.unreachable = result.challenges - result.passed - result.failed
        result.error = exc.message
    except OwnvaultError as exc:
        # Malformed answers: the provider is at fault for every challenge left.
        result.error = exc.message
        result.failed = result.challenges - result.passed
        for s, _b in todo:
            auditor.fault(s, "corrupt", f"malformed audit answer: {exc.message}")
    result.seconds = time.monotonic() - t0
    return result, auditor.fault_rows


async def audit(
    ctx: VaultContext,
    *,
    providers: Sequence[str] | None = None,
    sample: AuditSample | None = None,
    rng: random.Random | None = None,
    record: bool = True,
) -> AuditReport:
    """Audit the named providers (default: every provider holding shares); record the run."""
    sample = sample or AuditSample()
    rng = rng or secrets.SystemRandom()
    rows = [r for r in ctx.catalog.providers() if r.state != "removed"]
    if providers:
        unknown = set(providers) - {r.name for r in rows}
        if unknown:
            raise NotFoundError(
                f"no such provider: {', '.join(sorted(unknown))}", provider=sorted(unknown)[0]
            )
        rows = [r for r in rows if r.name in providers]
    started = time.time()
    t0 = time.monotonic()
    outcomes = await asyncio.gather(*(_audit_one(ctx, r, sample, rng) for r in rows))
    results = [o[0] for o in outcomes]
    report = AuditReport(None, started, time.monotonic() - t0, sample, results)
    if record:
        summary = {k: v for k, v in report.to_json().items() if k != "providers"}
        log = ctx.catalog.healthlog
        report.run = log.record_run("audit", started, summary, [p.row() for p in results])
        for result, faults in outcomes:
            for share, kind, detail in faults:
                log.add_fault(share.pack, share.idx, result.provider_id, kind, detail, report.run)
    return report
