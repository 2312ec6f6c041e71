"""Choosing which providers hold the n shares of a pack.

The policy is a named frozen value stored in the catalog. This module keeps the rule
simple and total: n distinct active providers, least-filled first, so that shares spread
evenly; a policy that cannot be met is refused with the reason, never weakened silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from ownvault.errors import PolicyError, UsageError

__all__ = ["Policy", "place"]


@dataclass(frozen=True, slots=True)
class Policy:
    k: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.k < self.n <= 32:
            raise UsageError(f"policy needs 1 <= k < n <= 32 (got k={self.k}, n={self.n})")

    def to_json(self) -> str:
        return json.dumps({"k": self.k, "n": self.n}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        d = json.loads(text)
        return cls(int(d["k"]), int(d["n"]))


def place(
    policy: Policy,
    candidates: Sequence[int],
    load: dict[int, int],
    exclude: set[int] | frozenset[int] = frozenset(),
) -> list[int]:
    """n distinct providers from ``candidates`` (ids), least loaded first."""
    usable = [c for c in candidates if c not in exclude]
    if len(usable) < policy.n:
        raise PolicyError(
            f"the policy needs {policy.n} distinct providers for each piece but only "
            f"{len(usable)} are usable; add providers or lower n (k={policy.k}, n={policy.n})"
        )
    ranked = sorted(usable, key=lambda c: (load.get(c, 0), c))
    return ranked[: policy.n]
