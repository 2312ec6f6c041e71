"""The one way packs and shares are written: :class:`PackWriter`, with provider failover.

Ingest, pack rewriting (revocation, shredding), rebalancing and repair all write through
it, so a provider that fails during any of them is handled the same way: the share goes to
another provider the placement policy allows (given where the pack's other shares are), the
failed provider is avoided for the rest of the operation, and the catalog records where the
share really is. Only when no eligible provider is left does the share fail.

Degraded writes: a share with no provider left is recorded as missing
(``catalog.underrep``) instead of failing the pack, as long as at least ``Policy.happy``
shares of the pack are durable; repair places the missing ones later.

Visibility rule (crash safety): :meth:`write_pack` records the pack ``pending`` with its
planned shares (and the ones it cannot place) before any share is written and returns
once every share it could place is durable, at least ``happy`` of them; the caller makes it
``live`` (``Catalog.commit_pack`` or its own transaction). A pack that fails is deleted (its
written shares and its rows); a crash leaves a pending pack that the next ``ctx.write()``
removes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from ownvault.core.pack import new_pack_id
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.placement import Candidate, Policy, explain, place, place_upto
from ownvault.engine.store.shares import RemoteEncode, ShareParts, ShareStore, data_share_name
from ownvault.errors import ObjectExistsError, OwnvaultError, PolicyError, ProviderError

__all__ = ["PackWriter", "WrittenPack"]


@dataclass(frozen=True, slots=True)
class WrittenPack:
    """A pack whose shares (all n but ``missing``, at least ``happy``) are durable; still
    ``pending`` until the caller commits it."""

    pack: int
    pack_id: bytes
    size: int
    missing: tuple[int, ...] = ()


@dataclass
class PackWriter:
    """Writes packs and single shares for one operation (load and failures are remembered)."""

    catalog: Catalog
    store: ShareStore
    policy: Policy
    candidates: list[Candidate]
    load: dict[int, int] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    errors: dict[int, ProviderError] = field(default_factory=dict)  # the first of each failed one
    packs_written: int = 0
    remote: RemoteEncode | None = None  # codes packs in a worker process (a large put)

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

    async def write_pack(
        self, data: bytes | memoryview, *, pack_id: bytes | None = None
    ) -> WrittenPack:
        """Erasure-code ``data`` with the policy's k/n, place and write its shares.

        Succeeds once at least ``policy.happy_shares`` shares are durable; the shares that
        could not be placed anywhere are recorded in ``catalog.underrep`` (``missing``).
        Fewer than that: everything written is deleted and the error names the providers
        that failed (their error class: ``ProviderUnavailableError``, ``StorageFullError``,
        ...), or says which policy rule cannot be met (``PolicyError``) when none failed."""
        k, n, happy = self.policy.k, self.policy.n, self.policy.happy_shares
        pack_id = pack_id or new_pack_id()
        enc = await self.store.encode(pack_id, data, k, n, self.remote)
        chosen = place_upto(self.policy, self._cands(), unusable=self.failed)
        if len(chosen) < happy:
            raise self._too_few(len(chosen), None)
        # Missing shares are the last ones (parity): reading data shares is a copy.
        targets: list[int | None] = [*chosen, *([None] * (n - len(chosen)))]
        sizes = [len(s) for s in enc.pieces]
        for i, pid in enumerate(chosen):
            self.load[pid] = self.load.get(pid, 0) + sizes[i]
        pack = self.catalog.begin_pack(
            pack_id,
            len(data),
            k,
            n,
            [(i, pid, sizes[i], enc.roots[i]) for i, pid in enumerate(chosen)],
        )
        if len(chosen) < n:
            self.catalog.underrep.add(
                pack,
                pack_id,
                [(i, sizes[i], enc.roots[i]) for i in range(len(chosen), n)],
                self._why_unplaced(len(chosen)),
            )
        written: list[tuple[int, str]] = []
        missing: list[int] = list(range(len(chosen), n))
        by_id = self._by_id()

        async def put_one(i: int, first: int) -> None:
            def others() -> list[Candidate]:
                # Read at failover time: concurrent failovers see each other's choices.
                return [by_id[t] for j, t in enumerate(targets) if j != i and t in by_id]

            name = data_share_name(pack_id, i)

            def claim(t: int) -> None:
                targets[i] = t

            try:
                await self.put_share(
                    pack, i, enc.pieces[i], first, others, name=name, claim=claim, pending=True
                )
            except ObjectExistsError:
                raise
            except ProviderError as exc:
                # No provider left for this share: the piece may still reach `happy`.
                targets[i] = None
                missing.append(i)
                self.catalog.underrep.mark_missing(pack, i, exc.message)
                return
            held = targets[i]
            written.append((first if held is None else held, name))

        # Let every write finish (no cancellation mid-write), then judge: a cancelled
        # thread could otherwise complete a write nobody records.
        outcomes = await asyncio.gather(
            *(put_one(i, pid) for i, pid in enumerate(chosen)), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors or n - len(missing) < happy:
            for pid, name in written:
                await self.store.delete_share(pid, name)
            self.catalog.drop_pack(pack)
            if errors:
                raise errors[0]
            raise self._too_few(n - len(missing), pack_id)
        self.store.release(enc)  # every write returned: no thread reads its parity any more
        self.packs_written += 1
        return WrittenPack(pack, pack_id, len(data), tuple(sorted(missing)))

    def _why_unplaced(self, placed: int) -> str:
        failed = ", ".join(sorted(self.store.names.get(p, str(p)) for p in self.failed))
        if failed:
            return f"{placed} of {self.policy.n} placed; failed during this operation: {failed}"
        return explain(self.policy, self._cands())

    def _too_few(self, placed: int, pack_id: bytes | None) -> OwnvaultError:
        """The error of a piece below ``happy``: the failed providers' error class naming
        them all, or the policy's explanation when no provider failed."""
        piece = "a piece" if pack_id is None else f"pack {pack_id.hex()}"
        need = (
            f"only {placed} of {self.policy.n} shares of {piece} could be stored and "
            f"at least {self.policy.happy_shares} are needed (the policy's happy)"
        )
        if not self.errors:
            return PolicyError(
                f"{need}; {explain(self.policy, self._cands(), unusable=self.failed)}"
            )
        down = "; ".join(
            f"{self.store.names.get(p, str(p))} ({e.message})"
            for p, e in sorted(self.errors.items(), key=lambda pe: self.store.names.get(pe[0], ""))
        )
        first = next(iter(self.errors.values()))
        return type(first)(
            f"{need}; providers down or failing: {down}. Nothing was stored: bring them back, "
            "add providers (provider add), or lower the policy's --happy",
            provider=", ".join(sorted(self.store.names.get(p, str(p)) for p in self.errors)),
        )

    # -- single shares ----------------------------------------------------------------------

    async def put_share(
        self,
        pack: int,
        idx: int,
        blob: bytes | ShareParts,
        target: int,
        fixed: list[Candidate] | Callable[[], list[Candidate]],
        *,
        name: str,
        replace: bool = False,
        recorded: int | None = None,
        claim: Callable[[int], None] | None = None,
        pending: bool = False,
        resumes: int | None = None,
    ) -> int:
        """Write one share of a recorded pack to ``target``, failing over to a provider the
        policy allows next to ``fixed`` (the pack's other holders, or a function giving them). The share row is switched
        to the provider that took it. ``replace``: an object of that name already at the
        target (a bad copy) is deleted first. ``recorded``: the provider the share row names now
        (default: ``target``). ``claim(provider)`` is told each failover target when chosen.
        ``pending``: the pack is not live yet, so the row is switched *before* each write (an
        interrupted writer's cleanup then finds the share); for a live pack it is switched
        only after the share is durable (nothing visible names a share not yet written).
        Returns the provider.

        A live pack's share written where its row does not place it (a move) never adopts
        or replaces an object already there: it is someone else's copy, maybe one an orphan
        sweep of another device is about to delete (docs/design.md, "The orphan sweep");
        the write fails over instead. ``resumes``: the provider an interrupted attempt of
        this device wrote this share to (a completion's ``tried``): its copy is its own."""
        first = target
        placed_at = recorded
        recorded = target if recorded is None else recorded
        occupied: set[int] = set()
        while True:
            own = pending or target in (placed_at, resumes)
            try:
                await self._put(target, name, blob, replace and own, adopt=own)
            except (ObjectExistsError, ProviderError) as exc:
                if isinstance(exc, ObjectExistsError):
                    if own:
                        raise
                    occupied.add(target)
                    self.store.report(target, name, "unavailable", "a copy no row names is there")
                else:
                    self.failed.add(target)
                    self.errors.setdefault(target, exc)
                    self.store.report(target, name, "unavailable", f"write failed: {exc.message}")
                try:
                    holders = fixed() if callable(fixed) else fixed
                    target = place(
                        self.policy,
                        self._cands(),
                        unusable=self.failed | occupied,
                        fixed=holders,
                        count=1,
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

    async def _put(
        self, target: int, name: str, blob: bytes | ShareParts, replace: bool, *, adopt: bool
    ) -> None:
        try:
            await self.store.put_share(target, name, blob, adopt=adopt)
        except ObjectExistsError:
            if not replace:
                raise
            await self.store.providers[target].delete(name)
            await self.store.put_share(target, name, blob)
