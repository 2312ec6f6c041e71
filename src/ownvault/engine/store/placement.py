"""The placement policy, and choosing which providers hold the n shares of a piece.

The policy is a named frozen value stored in the catalog (``meta.policy``, JSON):

* ``k``, ``n``: any k of the n shares rebuild a piece;
* ``jurisdictions``: if not empty, only providers in these jurisdictions are eligible;
* ``exclude``: providers in these jurisdictions are never eligible;
* ``max_per_jurisdiction``: at most this many shares of a piece per jurisdiction;
* ``max_per_provider``: at most this many shares of a piece per provider (default 1);
* ``survive_jurisdiction_loss``: losing every provider of any one jurisdiction still
  leaves at least k shares of every piece, i.e. at most n-k shares per jurisdiction.

A provider with no jurisdiction set counts as the single jurisdiction ``unknown``: its
location cannot be vouched for, so it is not eligible when an allow-list or an exclusion
list is set, and all such providers share one jurisdiction cap.

Placement fills the n slots greedily, least-loaded provider first, skipping providers and
jurisdictions that reached their cap. Per-jurisdiction caps form a partition matroid, so
the greedy fill places n shares whenever any placement can. When none can, the error says
which rule cannot be met and what would fix it; a policy is never weakened silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ownvault.errors import PolicyError, UsageError

__all__ = ["UNKNOWN", "Candidate", "Policy", "check_placement", "eligible", "place"]

UNKNOWN = "unknown"
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

    def jurisdiction_cap(self) -> int:
        cap = self.n
        if self.max_per_jurisdiction is not None:
            cap = min(cap, self.max_per_jurisdiction)
        if self.survive_jurisdiction_loss:
            cap = min(cap, self.n - self.k)
        return cap

    def to_dict(self) -> dict[str, object]:
        return {
            "k": self.k,
            "n": self.n,
            "jurisdictions": list(self.jurisdictions),
            "exclude": list(self.exclude),
            "max_per_jurisdiction": self.max_per_jurisdiction,
            "max_per_provider": self.max_per_provider,
            "survive_jurisdiction_loss": self.survive_jurisdiction_loss,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        d = json.loads(text)
        return cls(
            int(d["k"]),
            int(d["n"]),
            tuple(d.get("jurisdictions", ())),
            tuple(d.get("exclude", ())),
            d.get("max_per_jurisdiction"),
            int(d.get("max_per_provider", 1)),
            bool(d.get("survive_jurisdiction_loss", False)),
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
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Candidate:
    id: int
    name: str
    jurisdiction: str | None
    load: int = 0
    active: bool = True

    @property
    def region(self) -> str:
        return self.jurisdiction or UNKNOWN


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
            why = "no jurisdiction set" if c.jurisdiction is None else f"{c.region} not in the allowed list"
            refused.append((c, why))
        elif policy.exclude and c.jurisdiction is None:
            refused.append((c, "no jurisdiction set, so it cannot be shown to be outside the excluded ones"))
        elif c.region in policy.exclude:
            refused.append((c, f"{c.region} is excluded"))
        else:
            ok.append(c)
    return Eligibility(ok, refused)


def _explain(policy: Policy, elig: Eligibility, unusable: set[int]) -> str:
    usable = [c for c in elig.eligible if c.id not in unusable]
    cap = policy.jurisdiction_cap()
    by_region = Counter(c.region for c in usable)
    slots_providers = len(usable) * policy.max_per_provider
    slots = sum(min(cap, cnt * policy.max_per_provider) for cnt in by_region.values())
    lines = [f"cannot place {policy.n} shares of a piece under the policy ({policy.describe()})"]
    if slots_providers < policy.n:
        lines.append(
            f"only {len(usable)} usable provider(s) x {policy.max_per_provider} share(s) each = "
            f"{slots_providers} slot(s) for n={policy.n}"
        )
        if elig.refused:
            lines.append(
                "not eligible: " + "; ".join(f"{c.name} ({why})" for c, why in elig.refused)
            )
        failed = [c.name for c in elig.eligible if c.id in unusable]
        if failed:
            lines.append("unreachable or failed now: " + ", ".join(failed))
        lines.append("fix: add providers, or lower --n (and --k)")
    else:
        rules = []
        if policy.max_per_jurisdiction is not None:
            rules.append(f"--max-per-jurisdiction {policy.max_per_jurisdiction}")
        if policy.survive_jurisdiction_loss:
            rules.append(f"--survive-jurisdiction-loss (at most n-k={policy.n - policy.k} per jurisdiction)")
        spread = ", ".join(f"{r}: {cnt} provider(s)" for r, cnt in sorted(by_region.items()))
        lines.append(
            f"the jurisdiction rule ({' and '.join(rules)}) allows at most {cap} share(s) per "
            f"jurisdiction, {slots} in all over {spread}"
        )
        lines.append(
            "fix: add providers in other jurisdictions, or relax the per-jurisdiction limit, or lower --n"
        )
    return "; ".join(lines)


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
    against the caps. ``unusable`` providers (unreachable, failed) are skipped.
    """
    want = policy.n if count is None else count
    elig = eligible(policy, candidates)
    cap = policy.jurisdiction_cap()
    per_region: Counter[str] = Counter(c.region for c in fixed)
    per_provider: Counter[int] = Counter(c.id for c in fixed)
    chosen: list[int] = []
    pool = sorted(
        (c for c in elig.eligible if c.id not in unusable), key=lambda c: (c.load, c.id)
    )
    # Round-robin over providers so that max_per_provider > 1 still spreads first.
    for _round in range(policy.max_per_provider):
        for c in pool:
            if len(chosen) == want:
                return chosen
            if per_provider[c.id] >= policy.max_per_provider or per_region[c.region] >= cap:
                continue
            chosen.append(c.id)
            per_provider[c.id] += 1
            per_region[c.region] += 1
    if len(chosen) < want:
        raise PolicyError(_explain(policy, elig, set(unusable)))
    return chosen


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
    per_provider = Counter(h.name for h in present)
    for name, cnt in sorted(per_provider.items()):
        if cnt > policy.max_per_provider:
            problems.append(f"{cnt} shares on {name} (at most {policy.max_per_provider})")
    return problems
