"""What the fleet feature answers: a provider added, changed, removed or probed, a policy set.

Frozen values whose fields are the JSON documents' keys (``ownvault provider ... --json``,
the API's ``/providers`` and ``/policy`` routes), so a result turns into its document field
by field (``cli.render.jsonable``, ``dataclasses.asdict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ownvault.engine.store.catalog.rows import ProviderState
from ownvault.engine.store.placement import Policy

__all__ = [
    "PolicySet",
    "ProviderAbandoned",
    "ProviderAdded",
    "ProviderChanged",
    "ProviderDrained",
    "ProviderRemoval",
    "ProviderStatus",
]


@dataclass(frozen=True, slots=True)
class ProviderAdded:
    """A provider just added; ``domain`` is its effective failure domain (None: one of its
    own)."""

    name: str
    kind: str
    url: str
    jurisdiction: str | None
    domain: str | None
    labels: dict[str, str]
    location: str
    free_bytes: int | None


@dataclass(frozen=True, slots=True)
class ProviderChanged:
    """A provider after ``provider set``: ``domain`` is effective, ``domain_label`` the label
    given (None: the default); ``packs_out_of_policy`` the pieces ``rebalance`` would move."""

    name: str
    jurisdiction: str | None
    domain: str | None
    domain_label: str | None
    labels: dict[str, str]
    packs_out_of_policy: int


@dataclass(frozen=True, slots=True)
class ProviderDrained:
    """A provider removed after its shares were moved (or regenerated) elsewhere."""

    name: str
    removed: Literal[True]
    shares_moved: int
    shares_regenerated: int


@dataclass(frozen=True, slots=True)
class ProviderAbandoned:
    """A provider removed at once (``--force``): the shares it held are abandoned, and the
    names that became degraded or unreadable without them."""

    name: str
    removed: Literal[True]
    shares_abandoned: int
    degraded: list[str]
    unreadable: list[str]


ProviderRemoval = ProviderDrained | ProviderAbandoned


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A placement policy just stored, and how many stored pieces it leaves out of line."""

    policy: Policy
    describe: str
    packs_out_of_policy: int

    def to_json(self) -> dict[str, object]:
        """The document: the policy as ``Policy.to_dict`` (not its stored text)."""
        return {
            "policy": self.policy.to_dict(),
            "describe": self.describe,
            "packs_out_of_policy": self.packs_out_of_policy,
        }


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """One provider as probed: catalog facts, usage, and whether ``info()`` answered
    (``error`` says why not; ``latency_ms`` and ``free_bytes`` only when it did)."""

    name: str
    kind: str
    url: str
    location: str
    jurisdiction: str | None
    domain: str | None
    labels: dict[str, str]
    state: ProviderState
    shares: int
    bytes: int
    reachable: bool
    free_bytes: int | None
    error: str | None
    latency_ms: float | None
