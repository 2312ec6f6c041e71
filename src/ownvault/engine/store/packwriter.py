"""The one way packs and shares are written: :class:`PackWriter`, with provider failover.

Ingest, pack rewriting (revocation, shredding), rebalancing and repair all write through
it, so a provider that fails during any of them is handled the same way: the share goes to
another provider the placement policy allows (given where the pack's other shares are), the
failed provider is avoided for the rest of the operation, and the catalog records where the
share really is. Only when no eligible provider is left does the write fail.

Visibility rule (crash safety): :meth:`write_pack` records the pack ``pending`` with its
planned shares before any share is written and returns once all n shares are durable; the
caller makes it ``live`` (``Catalog.commit_pack`` or its own transaction). A pack that fails
is deleted (its written shares and its rows); a crash leaves a pending pack that the next
``ctx.write()`` removes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ownvault.core.pack import new_pack_id
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.placement import Candidate, Policy, place
from ownvault.engine.store.shares import ShareStore, data_share_name
from ownvault.errors import ObjectExistsError, OwnvaultError, ProviderError

__all__ = ["PackWriter", "WrittenPack"]


@dataclass(frozen=True, slots=True)
class WrittenPack:
    """A pack whose n shares are durable; still ``pending`` until the caller commits it."""

    pack: int
    pack_id: bytes
    size: int
    targets: tuple[int, ...]


@dataclass
class PackWriter:
    """Writes packs and single shares for one operation (load and failures are remembered)."""

    catalog: Catalog
    store: ShareStore
    policy: Policy
    candidates: list[Candidate]
    load: dict[int, int] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    packs_written: int = 0

    def __post_init__(self) -> None:
        for c in self.candidates:
            self.load.setdefault(c.id, c.load)

    def _cands(self) -> list[Candidate]:
        return [
            Candidate(c.id, c.name, c.jurisdiction, self.load.get(c.id, 0), c.active, c.domain)
            for c in self.candidates
        ]

    def _by_id(self) -> dict[int, Candidate]:
        return {c.id: c for c in self.candidates}

    # -- whole packs ------------------------------------------------------------------------

    async def write_pack(self, data: bytes, *, pack_id: bytes | None = None) -> WrittenPack:
        """Erasure-code ``data`` with the policy's k/n, place and write its shares."""
        k, n = self.policy.k, self.policy.n
        pack_id = pack_id or new_pack_id()
        enc = await self.store.encode(pack_id, data, k, n)
        targets = place(self.policy, self._cands(), unusable=self.failed)
        for i, pid in enumerate(targets):
            self.load[pid] = self.load.get(pid, 0) + len(enc.shares[i])
        pack = self.catalog.begin_pack(
            pack_id,
            len(data),
            k,
            n,
            [(i, targets[i], len(enc.shares[i]), enc.roots[i]) for i in range(n)],
        )
        written: list[tuple[int, str]] = []

        by_id = self._by_id()

        async def put_one(i: int) -> None:
            def others() -> list[Candidate]:
                # Read at failover time: concurrent failovers see each other's choices.
                return [by_id[t] for j, t in enumerate(targets) if j != i and t in by_id]

            name = data_share_name(pack_id, i)

            def claim(t: int) -> None:
                targets[i] = t

            await self.put_share(
                pack, i, enc.shares[i], targets[i], others, name=name, claim=claim, pending=True
            )
            written.append((targets[i], name))

        # Let every write finish (no cancellation mid-write), then judge: a cancelled
        # thread could otherwise complete a write nobody records.
        outcomes = await asyncio.gather(*(put_one(i) for i in range(n)), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            for pid, name in written:
                await self.store.delete_share(pid, name)
            self.catalog.drop_pack(pack)
            raise errors[0]
        self.packs_written += 1
        return WrittenPack(pack, pack_id, len(data), tuple(targets))

    # -- single shares ----------------------------------------------------------------------

    async def put_share(
        self,
        pack: int,
        idx: int,
        blob: bytes,
        target: int,
        fixed: list[Candidate] | Callable[[], list[Candidate]],
        *,
        name: str,
        replace: bool = False,
        recorded: int | None = None,
        claim: Callable[[int], None] | None = None,
        pending: bool = False,
    ) -> int:
        """Write one share of a recorded pack to ``target``, failing over to a provider the
        policy allows next to ``fixed`` (the pack's other holders, or a function giving them). The share row is switched
        to the provider that took it. ``replace``: an object of that name already at the
        target (a bad copy) is deleted first. ``recorded``: the provider the share row names now
        (default: ``target``). ``claim(provider)`` is told each failover target when chosen.
        ``pending``: the pack is not live yet, so the row is switched *before* each write (an
        interrupted writer's cleanup then finds the share); for a live pack it is switched
        only after the share is durable (nothing visible names a share not yet written).
        Returns the provider."""
        first = target
        recorded = target if recorded is None else recorded
        while True:
            try:
                await self._put(target, name, blob, replace)
            except ObjectExistsError:
                raise
            except ProviderError as exc:
                self.failed.add(target)
                self.store.report(target, name, "unavailable", f"write failed: {exc.message}")
                try:
                    holders = fixed() if callable(fixed) else fixed
                    target = place(
                        self.policy, self._cands(), unusable=self.failed, fixed=holders, count=1
                    )[0]
                except OwnvaultError as why:
                    # Keep the error's class (full disk, unreachable, ...); say why it is final.
                    raise type(exc)(
                        f"could not store share {idx} of a pack: provider "
                        f"{self.store.names.get(first)} failed ({exc.message}) and no "
                        f"other provider is eligible ({why.message})",
                        provider=self.store.names.get(first),
                        share=name,
                    ) from exc
                self.load[target] = self.load.get(target, 0) + len(blob)
                if claim is not None:
                    claim(target)
                if pending:
                    self.catalog.move_share(pack, idx, target)
                    recorded = target
                continue
            if target != recorded:
                self.catalog.move_share(pack, idx, target)
            return target

    async def _put(self, target: int, name: str, blob: bytes, replace: bool) -> None:
        try:
            await self.store.put_share(target, name, blob)
        except ObjectExistsError:
            if not replace:
                raise
            await self.store.providers[target].delete(name)
            await self.store.put_share(target, name, blob)
