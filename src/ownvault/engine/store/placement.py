"""The placement policy, and choosing which providers hold the n shares of a piece.

The policy is a named frozen value stored in the catalog (``meta.policy``, JSON):

* ``k``, ``n``: any k of the n shares rebuild a piece;
* ``jurisdictions``: if not empty, only providers in these jurisdictions are eligible;
* ``exclude``: providers in these jurisdictions are never eligible;
* ``max_per_jurisdiction``: at most this many shares of a piece per jurisdiction;
* ``max_per_provider``: at most this many shares of a piece per provider (default 1);
* ``survive_jurisdiction_loss``: losing every provider of any one jurisdiction still
  leaves at least k shares of every piece, i.e. at most n-k shares per jurisdiction;
* ``survive_domain_loss``: the same for failure domains, as a hard rule (a placement that
  cannot meet it fails). Without it the rule is a preference: placement puts at most n-k
  shares in any one domain whenever the providers allow it, and ``status`` says when they
  do not;
* ``happy`` (Tahoe-LAFS's ``shares.happy``): a write succeeds while at least this many
  shares of each piece are durably placed under the caps (k <= happy <= n; None: the
  default n-1). The shares it could not place are recorded (``catalog.underrep``) and
  completed later by repair. The stored JSON carries ``"version": 2`` since ``happy``;
  version 1 (no version key) reads as happy = None.

A failure domain is what one accident takes out at once: a machine, a disk. Providers on
one machine share a domain (the embedded folders inside the vault directory are all
``this-machine``); a provider without a domain label is a domain of its own.

A provider with no jurisdiction set counts as the single jurisdiction ``unknown``: its
location cannot be vouched for, so it is not eligible when an allow-list or an exclusion
list is set, and all such providers share one jurisdiction cap.

Per-jurisdiction and per-domain caps are two partition matroids; their intersection is not
a matroid, so a greedy fill can fail where a placement exists. Placement is therefore a
small min-cost flow (source -> jurisdiction -> provider -> domain -> sink, the caps as
capacities): it places n shares whenever any placement can, and among those prefers the
fewest shares above n-k per domain, then distinct providers, then the least loaded. When
none can, the error says which rule cannot be met and what would fix it; a policy is never
weakened silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ownvault.errors import FormatError, PolicyError, UsageError

__all__ = [
    "POLICY_VERSION",
    "THIS_MACHINE",
    "UNKNOWN",
    "Candidate",
    "Policy",
    "best_overflow",
    "capacity",
    "check_placement",
    "domain_overflow",
    "eligible",
    "explain",
    "place",
    "place_upto",
]

POLICY_VERSION = 2
UNKNOWN = "unknown"
THIS_MACHINE = "this-machine"
_CC = re.compile(r"^[A-Z]{2}\Z")


def _codes(values: Sequence[str]) -> tuple[str, ...]:
    out = []
    for v in values:
        code = v.strip().upper()
        if not _CC.match(code):
            raise UsageError(f"not a two-letter jurisdiction code: {v!r}")
        out.append(code)
    return tuple(sorted(set(out)))


@dataclass(frozen=True, slots=True)
class Policy:
    k: int
    n: int
    jurisdictions: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_per_jurisdiction: int | None = None
    max_per_provider: int = 1
    survive_jurisdiction_loss: bool = False
    survive_domain_loss: bool = False
    happy: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.k < self.n <= 32:
            raise UsageError(f"policy needs 1 <= k < n <= 32 (got k={self.k}, n={self.n})")
        object.__setattr__(self, "jurisdictions", _codes(self.jurisdictions))
        object.__setattr__(self, "exclude", _codes(self.exclude))
        if set(self.jurisdictions) & set(self.exclude):
            raise UsageError("a jurisdiction cannot be both allowed and excluded")
        if self.max_per_jurisdiction is not None and not 1 <= self.max_per_jurisdiction <= self.n:
            raise UsageError("--max-per-jurisdiction must be between 1 and n")
        if not 1 <= self.max_per_provider <= self.n:
            raise UsageError("--max-per-provider must be between 1 and n")
        if self.max_per_provider > self.n - self.k and self.max_per_provider > 1:
            raise UsageError(
                f"--max-per-provider {self.max_per_provider} would let one provider's loss take "
                f"more than n-k={self.n - self.k} shares of a piece"
            )
        if self.happy is not None and not self.k <= self.happy <= self.n:
            raise UsageError(
                f"--happy must be between k and n (got {self.happy} with k={self.k}, n={self.n})"
            )

    @property
    def happy_shares(self) -> int:
        """Shares of a piece that must be durably placed for a write to succeed."""
        return self.happy if self.happy is not None else max(self.k, self.n - 1)

    def jurisdiction_cap(self) -> int:
        cap = self.n
        if self.max_per_jurisdiction is not None:
            cap = min(cap, self.max_per_jurisdiction)
        if self.survive_jurisdiction_loss:
            cap = min(cap, self.n - self.k)
        return cap

    def domain_cap(self) -> int:
        """The hard per-domain cap (n-k with ``survive_domain_loss``, else none: n)."""
        return self.n - self.k if self.survive_domain_loss else self.n

    def to_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "n": self.n,
            "jurisdictions": list(self.jurisdictions),
            "exclude": list(self.exclude),
            "max_per_jurisdiction": self.max_per_jurisdiction,
            "max_per_provider": self.max_per_provider,
            "survive_jurisdiction_loss": self.survive_jurisdiction_loss,
            "survive_domain_loss": self.survive_domain_loss,
            "happy": self.happy,
        }

    def to_json(self) -> str:
        return json.dumps({"version": POLICY_VERSION, **self.to_dict()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        d = json.loads(text)
        version = d.get("version", 1)
        if version not in (1, POLICY_VERSION):
            raise FormatError(
                f"placement policy version {version!r} is newer than this ownvault; upgrade it"
            )
        happy = d.get("happy")
        return cls(
            int(d["k"]),
            int(d["n"]),
            tuple(d.get("jurisdictions", ())),
            tuple(d.get("exclude", ())),
            d.get("max_per_jurisdiction"),
            int(d.get("max_per_provider", 1)),
            bool(d.get("survive_jurisdiction_loss", False)),
            bool(d.get("survive_domain_loss", False)),
            None if happy is None else int(happy),
        )

    def describe(self) -> str:
        parts = [f"any {self.k} of {self.n} shares"]
        if self.jurisdictions:
            parts.append("only in " + ",".join(self.jurisdictions))
        if self.exclude:
            parts.append("never in " + ",".join(self.exclude))
        if self.max_per_jurisdiction is not None:
            parts.append(f"at most {self.max_per_jurisdiction} per jurisdiction")
        parts.append(f"at most {self.max_per_provider} per provider")
        if self.survive_jurisdiction_loss:
            parts.append("survives losing any one jurisdiction")
        if self.survive_domain_loss:
            parts.append("survives losing any one failure domain")
        parts.append(
            f"a write needs {self.happy_shares} placed"
            + (" (default n-1)" if self.happy is None else "")
        )
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    name: str
    jurisdiction: str | None
    load: int = 0
    active: bool = True
    domain: str | None = None

    @property
    def region(self) -> str:
        return self.jurisdiction or UNKNOWN

    @property
    def zone(self) -> str:
        """The failure domain (a provider without a label is a domain of its own)."""
        return self.domain or f"provider:{self.name}"


@dataclass(frozen=True, slots=True)
class Eligibility:
    eligible: list[Candidate]
    refused: list[tuple[Candidate, str]] = field(default_factory=list)


def eligible(policy: Policy, candidates: Sequence[Candidate]) -> Eligibility:
    ok: list[Candidate] = []
    refused: list[tuple[Candidate, str]] = []
    for c in candidates:
        if not c.active:
            refused.append((c, "not active (draining or removed)"))
        elif policy.jurisdictions and c.region not in policy.jurisdictions:
            why = (
                "no jurisdiction set"
                if c.jurisdiction is None
                else f"{c.region} not in the allowed list"
            )
            refused.append((c, why))
        elif policy.exclude and c.jurisdiction is None:
            refused.append(
                (c, "no jurisdiction set, so it cannot be shown to be outside the excluded ones")
            )
        elif c.region in policy.exclude:
            refused.append((c, f"{c.region} is excluded"))
        else:
            ok.append(c)
    return Eligibility(ok, refused)


def _explain(
    policy: Policy, elig: Eligibility, unusable: set[int], fixed: Sequence[Candidate], want: int
) -> str:
    usable = [c for c in elig.eligible if c.id not in unusable]
    cap = policy.jurisdiction_cap()
    by_region = Counter(c.region for c in usable)
    slots_providers = len(
        _solve(policy, usable, fixed, want, jurisdiction_caps=False, domain_caps=False)
    )
    slots = len(_solve(policy, usable, fixed, want, domain_caps=False))
    lines = [f"cannot place {want} shares of a piece under the policy ({policy.describe()})"]
    if slots_providers < want:
        lines.append(
            f"only {len(usable)} usable provider(s) x {policy.max_per_provider} share(s) each = "
            f"{slots_providers} slot(s) for "
            + (f"n={policy.n}" if want == policy.n and not fixed else f"{want} more share(s)")
        )
        if elig.refused:
            lines.append(
                "not eligible: " + "; ".join(f"{c.name} ({why})" for c, why in elig.refused)
            )
        failed = [c.name for c in elig.eligible if c.id in unusable]
        if failed:
            lines.append("unreachable or failed now: " + ", ".join(failed))
        lines.append("fix: add providers, or lower --n (and --k)")
    elif slots >= want:
        by_zone = Counter(c.zone for c in usable)
        spread = ", ".join(f"{z}: {cnt} provider(s)" for z, cnt in sorted(by_zone.items()))
        lines.append(
            f"the failure-domain rule (--survive-domain-loss: at most n-k={policy.n - policy.k} "
            f"share(s) per domain) cannot be met over {spread}"
        )
        lines.append(
            "fix: add providers on other machines (provider add ... --domain), or drop "
            "--survive-domain-loss, or lower --n"
        )
    else:
        rules = []
        if policy.max_per_jurisdiction is not None:
            rules.append(f"--max-per-jurisdiction {policy.max_per_jurisdiction}")
        if policy.survive_jurisdiction_loss:
            rules.append(
                f"--survive-jurisdiction-loss (at most n-k={policy.n - policy.k} per jurisdiction)"
            )
        spread = ", ".join(f"{r}: {cnt} provider(s)" for r, cnt in sorted(by_region.items()))
        lines.append(
            f"the jurisdiction rule ({' and '.join(rules)}) allows at most {cap} share(s) per "
            f"jurisdiction, {slots} in all over {spread}"
        )
        lines.append(
            "fix: add providers in other jurisdictions, or relax the per-jurisdiction limit, or lower --n"
        )
    return "; ".join(lines)


class _Flow:
    """A tiny min-cost flow network (unit augmentations, Bellman-Ford): n <= 32 shares."""

    def __init__(self) -> None:
        self.graph: list[list[int]] = [[], []]  # node -> edge indexes; 0 = source, 1 = sink
        self.to: list[int] = []
        self.cap: list[int] = []
        self.cost: list[int] = []

    def node(self) -> int:
        self.graph.append([])
        return len(self.graph) - 1

    def edge(self, a: int, b: int, cap: int, cost: int) -> int:
        """Add a->b; returns the forward edge's index (its flow is the reverse edge's cap)."""
        for x, y, c, w in ((a, b, cap, cost), (b, a, 0, -cost)):
            self.graph[x].append(len(self.to))
            self.to.append(y)
            self.cap.append(max(0, c))
            self.cost.append(w)
        return len(self.to) - 2

    def flow(self, e: int) -> int:
        return self.cap[e ^ 1]

    def augment(self) -> bool:
        """Push one unit along a cheapest source-sink path; False when none is left."""
        inf = float("inf")
        dist: list[float] = [inf] * len(self.graph)
        via = [-1] * len(self.graph)
        dist[0] = 0
        for _ in range(len(self.graph)):
            changed = False
            for u, edges in enumerate(self.graph):
                if dist[u] == inf:
                    continue
                for e in edges:
                    v = self.to[e]
                    if self.cap[e] > 0 and dist[u] + self.cost[e] < dist[v]:
                        dist[v], via[v], changed = dist[u] + self.cost[e], e, True
            if not changed:
                break
        if dist[1] == inf:
            return False
        v = 1
        while v != 0:
            e = via[v]
            self.cap[e] -= 1
            self.cap[e ^ 1] += 1
            v = self.to[e ^ 1]
        return True


def _solve(
    policy: Policy,
    pool: Sequence[Candidate],
    fixed: Sequence[Candidate],
    want: int,
    *,
    jurisdiction_caps: bool = True,
    domain_caps: bool = True,
) -> list[int]:
    """The best placement of up to ``want`` more shares on ``pool`` next to ``fixed``.

    Every share is a unit of flow source -> jurisdiction -> (provider) -> domain -> sink, so
    the per-jurisdiction, per-provider and per-domain caps are capacities and a maximum
    flow is a largest placement (two partition matroids intersect: a plain greedy fill can
    miss one). Costs rank the placements: first as few shares as possible above n-k in any
    one domain (the soft domain rule), then as few of those on this machine as possible,
    then one share per provider before a second one, then the least-loaded providers.
    """
    pool = sorted(pool, key=lambda c: (c.load, c.id))
    net = _Flow()
    jcap = policy.jurisdiction_cap() if jurisdiction_caps else policy.n
    soft = policy.n - policy.k
    hard = policy.domain_cap() if domain_caps else policy.n
    per_region: Counter[str] = Counter(c.region for c in fixed)
    per_zone: Counter[str] = Counter(c.zone for c in fixed)
    per_provider: Counter[int] = Counter(c.id for c in fixed)
    step = len(pool) + 1
    # Costs, each level dominating all of the next: a share above n-k in a domain (over),
    # a share above n-k on this machine (here: among equal overflow, keep this machine's
    # share lowest, since its loss is the likeliest), then round and load (below `here`).
    here = (policy.n + 1) * policy.max_per_provider * step + 1
    over = (policy.n + 1) * here + 1
    regions: dict[str, int] = {}
    zones: dict[str, int] = {}
    edges: list[tuple[int, int, int, int]] = []  # (round, rank, provider id, edge)
    for rank, c in enumerate(pool):
        if c.region not in regions:
            regions[c.region] = net.node()
            net.edge(0, regions[c.region], jcap - per_region[c.region], 0)
        if c.zone not in zones:
            zones[c.zone] = node = net.node()
            have = per_zone[c.zone]
            net.edge(node, 1, soft - have, 0)
            extra = here if c.zone == THIS_MACHINE else 0
            net.edge(node, 1, hard - max(soft, have), over + extra)
        for t in range(policy.max_per_provider - per_provider[c.id]):
            e = net.edge(regions[c.region], zones[c.zone], 1, t * step + rank)
            edges.append((t, rank, c.id, e))
    placed = 0
    while placed < want and net.augment():
        placed += 1
    return [pid for _t, _r, pid, e in sorted(edges) if net.flow(e)]


def place(
    policy: Policy,
    candidates: Sequence[Candidate],
    *,
    unusable: set[int] | frozenset[int] = frozenset(),
    fixed: Sequence[Candidate] = (),
    count: int | None = None,
) -> list[int]:
    """Provider ids for ``count`` (default n) shares, respecting the policy's caps.

    ``fixed`` are providers already holding other shares of the same piece: they count
    against the caps. ``unusable`` providers (unreachable, failed) are skipped. Among the
    placements the caps allow, one with at most n-k shares in each failure domain is
    chosen whenever there is one (so losing any one machine leaves k shares).
    """
    want = policy.n if count is None else count
    chosen = place_upto(policy, candidates, unusable=unusable, fixed=fixed, count=want)
    if len(chosen) < want:
        raise PolicyError(explain(policy, candidates, unusable=unusable, fixed=fixed, want=want))
    return chosen


def place_upto(
    policy: Policy,
    candidates: Sequence[Candidate],
    *,
    unusable: set[int] | frozenset[int] = frozenset(),
    fixed: Sequence[Candidate] = (),
    count: int | None = None,
) -> list[int]:
    """Like :func:`place`, but the largest placement of at most ``count`` shares the caps
    allow, never an error (a degraded write places what it can: ``Policy.happy``)."""
    want = policy.n if count is None else count
    pool = [c for c in eligible(policy, candidates).eligible if c.id not in unusable]
    return _solve(policy, pool, fixed, want)


def explain(
    policy: Policy,
    candidates: Sequence[Candidate],
    *,
    unusable: set[int] | frozenset[int] = frozenset(),
    fixed: Sequence[Candidate] = (),
    want: int | None = None,
) -> str:
    """Why ``want`` (default n) shares cannot be placed, and what would fix it."""
    want = policy.n if want is None else want
    return _explain(policy, eligible(policy, candidates), set(unusable), fixed, want)


def capacity(
    policy: Policy, candidates: Sequence[Candidate], *, without_domain: str | None = None
) -> int:
    """How many shares of one piece (at most n) the eligible providers can take under the
    policy's caps, leaving out the providers of domain ``without_domain``."""
    pool = [c for c in eligible(policy, candidates).eligible if c.zone != without_domain]
    return len(_solve(policy, pool, (), policy.n))


def domain_overflow(policy: Policy, holders: Sequence[Candidate | None]) -> int:
    """Shares above n-k in any one failure domain (0: losing any one domain leaves k)."""
    zones = Counter(h.zone for h in holders if h is not None)
    return sum(max(0, cnt - (policy.n - policy.k)) for cnt in zones.values())


def best_overflow(policy: Policy, candidates: Sequence[Candidate]) -> int | None:
    """The least :func:`domain_overflow` a fresh placement can reach (None: cannot place)."""
    by_id = {c.id: c for c in candidates}
    try:
        chosen = place(policy, candidates)
    except PolicyError:
        return None
    return domain_overflow(policy, [by_id[i] for i in chosen])


def check_placement(
    policy: Policy, k: int, n: int, holders: Sequence[Candidate | None]
) -> list[str]:
    """Why one piece's placement (holder of each share index; None = missing) breaks the policy."""
    problems: list[str] = []
    if (k, n) != (policy.k, policy.n):
        problems.append(f"coded {k}-of-{n}, policy is {policy.k}-of-{policy.n}")
    present = [h for h in holders if h is not None]
    elig_ids = {c.id for c in eligible(policy, present).eligible}
    for h in present:
        if h.id not in elig_ids:
            problems.append(f"share on {h.name}, which is not eligible")
    regions = Counter(h.region for h in present)
    cap = policy.jurisdiction_cap()
    for region, cnt in sorted(regions.items()):
        if cnt > cap:
            problems.append(f"{cnt} shares in {region} (at most {cap})")
    zones = Counter(h.zone for h in present)
    dcap = policy.domain_cap()
    for zone, cnt in sorted(zones.items()):
        if cnt > dcap:
            problems.append(f"{cnt} shares in failure domain {zone} (at most {dcap})")
    per_provider = Counter(h.name for h in present)
    for name, cnt in sorted(per_provider.items()):
        if cnt > policy.max_per_provider:
            problems.append(f"{cnt} shares on {name} (at most {policy.max_per_provider})")
    return problems
