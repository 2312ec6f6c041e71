"""Would the vault survive losing this machine? (docs/design.md, "Failure domains")

Losing this machine takes the vault directory, the embedded folders inside it and every
provider in the ``this-machine`` failure domain. What is left is recoverable from the
recovery phrase when every stored piece and the newest catalog snapshot have at least k
shares in other domains. Cheap: reads the catalog only (share placement, and the
snapshot's placement recorded in ``meta.snapshot_placement`` when it was written).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.domains import candidate_of
from ownvault.engine.store.placement import THIS_MACHINE, capacity

__all__ = ["MachineLoss", "machine_loss"]


@dataclass(frozen=True, slots=True)
class MachineLoss:
    """The verdict: ``survives`` is true when every piece and the catalog have k shares
    off this machine; ``advice`` says what to do when not."""

    survives: bool
    k: int
    pieces: int
    pieces_lost: int
    lost_names: tuple[str, ...]
    catalog_survives: bool
    providers_elsewhere: int
    capacity_elsewhere: int
    advice: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "survives": self.survives,
            "k": self.k,
            "pieces": self.pieces,
            "pieces_lost": self.pieces_lost,
            "lost_names": list(self.lost_names),
            "catalog_survives": self.catalog_survives,
            "providers_elsewhere": self.providers_elsewhere,
            "capacity_elsewhere": self.capacity_elsewhere,
            "advice": self.advice,
            "summary": self.line(),
        }

    def line(self) -> str:
        """One line for people."""
        if self.survives:
            return (
                "losing this machine: survivable (every piece and the catalog have at least "
                f"{self.k} shares on other machines)"
            )
        what = []
        if self.pieces_lost:
            what.append(f"{self.pieces_lost} of {self.pieces} piece(s)")
        if not self.catalog_survives:
            what.append("the catalog")
        return (
            f"losing this machine: NOT survivable ({' and '.join(what)} would have fewer than "
            f"{self.k} shares left); {self.advice}"
        )


def machine_loss(ctx: VaultContext) -> MachineLoss:
    """Would every piece and the catalog survive losing this machine (see the module)?"""
    cat = ctx.catalog
    policy = ctx.policy
    zone = {r.id: candidate_of(r, ctx.path).zone for r in cat.providers(include_removed=True)}
    removed = {r.id for r in cat.providers(include_removed=True) if r.state == "removed"}
    packs = cat.live_packs()
    lost = 0
    names: set[str] = set()
    for pack in packs:
        _pid, _size, k, _n = cat.pack_info(pack)
        off = sum(
            1
            for s in cat.shares_of(pack)
            if s.provider not in removed and zone.get(s.provider, THIS_MACHINE) != THIS_MACHINE
        )
        if off < k:
            lost += 1
            names |= cat.names_of_pack(pack)
    placed = json.loads(cat.meta("snapshot_placement") or "null")
    catalog_ok = (
        isinstance(placed, dict)
        and str(placed.get("seq")) == cat.meta("snapshot_seq")
        and int(placed.get("off_machine", 0)) >= int(placed.get("k", 1))
    )
    cands = ctx.candidates()
    elsewhere = [c for c in cands if c.active and c.zone != THIS_MACHINE]
    cap = capacity(policy, cands, without_domain=THIS_MACHINE)
    survives = lost == 0 and catalog_ok
    advice = None
    if not survives:
        if cap < policy.k:
            advice = (
                f"add at least {policy.k - cap} provider(s) on other machines or disks (a storage "
                "node, an S3 bucket, a folder on another disk: `ownvault provider add NAME URL`; "
                "`--domain` labels where it is), then run `ownvault rebalance`"
            )
        else:
            advice = (
                "the providers on other machines can hold enough shares now: run "
                "`ownvault rebalance` (it moves shares and writes the catalog there)"
            )
    return MachineLoss(
        survives, policy.k, len(packs), lost, tuple(sorted(names)[:10]), catalog_ok,
        len(elsewhere), cap, advice,
    )  # fmt: skip
