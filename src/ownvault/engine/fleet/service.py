"""The fleet feature: adding and removing providers, the placement policy, rebalancing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ownvault.engine.fleet.rebalance import RebalanceReport, rebalance
from ownvault.engine.fleet.results import (
    PolicySet,
    ProviderAbandoned,
    ProviderAdded,
    ProviderChanged,
    ProviderDrained,
    ProviderRemoval,
    ProviderStatus,
)
from ownvault.engine.store.catalog import ProviderRow
from ownvault.engine.store.context import PacksRewritten, ProvidersChanged, VaultContext
from ownvault.engine.store.domains import candidate_of, default_domain, domain_of, validate_domain
from ownvault.engine.store.layout import validate_provider_name
from ownvault.engine.store.placement import Policy, place
from ownvault.errors import NotFoundError, OwnvaultError, PolicyError, UsageError
from ownvault.providers.local import LocalProvider
from ownvault.providers.registry import kind_of_url, local_path_of, open_provider
from ownvault.providers.wrappers import unwrap

if TYPE_CHECKING:
    from ownvault.providers.node.protocol import NodeInfo

__all__ = ["MAX_LABELS", "Fleet", "retired_name"]

MAX_LABELS = 32


@runtime_checkable
class _AnnouncesNode(Protocol):
    """A storage node (``providers.node.NodeProvider``) says where it is. Declared here, so
    this module does not import the node client (and httpx) for every command."""

    async def node_info(self) -> NodeInfo: ...


def retired_name(name: str, provider: int) -> str:
    """The name a removed provider keeps when a new one takes ``name``: ``NAME~ID``, which
    ``validate_provider_name`` never accepts, so it cannot clash with a provider's name."""
    return f"{name}~{provider}"


class Fleet:
    """``vault.fleet``: the providers a vault stores on, and where its shares go."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx

    async def add_provider(
        self,
        name: str,
        url: str,
        *,
        jurisdiction: str | None = None,
        labels: Mapping[str, str] | None = None,
        config: Mapping[str, Any] | None = None,
        create: bool = False,
        domain: str | None = None,
        override_jurisdiction: bool = False,
    ) -> ProviderAdded:
        """Add a provider by URL (``file:///path`` creates the folder); it must be reachable.

        ``create`` asks a provider that can (an S3 bucket) to create its container first.
        ``domain`` labels its failure domain (default: ``engine.store.domains``). A storage
        node announces its jurisdiction: it is used when none is given, and a different one
        given is refused unless ``override_jurisdiction``."""
        ctx = self.ctx
        validate_provider_name(name)
        if any(r.name == name for r in ctx.catalog.providers()):
            raise UsageError(f"a provider named {name!r} exists already")
        if jurisdiction is not None:
            jurisdiction = jurisdiction.strip().upper()
            Policy(1, 2, (jurisdiction,))  # validates the code
        if domain is not None:
            domain = validate_domain(domain)
        kind = kind_of_url(url)
        if kind == "local":
            LocalProvider.create(local_path_of(url))
        cfg = dict(config or {})
        provider = open_provider(kind, url, cfg, ctx.keys, name, ctx.path)
        try:
            maker = getattr(provider, "create_bucket", None)
            if create and maker is not None:
                await maker()
            elif create:
                raise UsageError(f"a {kind} provider has nothing to create")
            info = await asyncio.wait_for(provider.info(), 30)
            inner = unwrap(provider)
            if isinstance(inner, _AnnouncesNode):
                announced = (await asyncio.wait_for(inner.node_info(), 30)).jurisdiction
                announced = announced.upper() if announced else None
                if jurisdiction is None:
                    jurisdiction = announced
                elif announced and announced != jurisdiction and not override_jurisdiction:
                    raise UsageError(
                        f"the node at {url} announces jurisdiction {announced}, not {jurisdiction}: "
                        f"leave out --jurisdiction to use {announced}, or add "
                        "--override-jurisdiction if you know better"
                    )
        finally:
            await provider.close()
        async with ctx.write():
            with ctx.catalog.transaction():
                for gone in ctx.catalog.providers(include_removed=True):
                    if gone.name == name and gone.state == "removed":
                        # The removed provider keeps its row (audits, faults and shares
                        # recorded under its id) under a name no user can give.
                        ctx.catalog.rename_provider(gone.id, retired_name(name, gone.id))
                ctx.catalog.add_provider(
                    name, kind, url, jurisdiction, dict(labels or {}), cfg, domain
                )
            await ctx.providers.reset()
            await ctx.events.emit(ProvidersChanged())
        effective = domain or default_domain(kind, url, cfg, ctx.path)
        return ProviderAdded(
            name,
            kind,
            url,
            jurisdiction,
            effective,
            dict(labels or {}),
            info.location,
            info.free_bytes,
        )

    async def set_provider(
        self,
        name: str,
        *,
        jurisdiction: str | None = None,
        domain: str | None = None,
        default_domain_: bool = False,
        labels: Mapping[str, str] | None = None,
        unlabel: Sequence[str] = (),
    ) -> ProviderChanged:
        """Change where a provider is said to be: ``jurisdiction`` (a code), ``domain`` (a
        failure-domain label) or ``default_domain_`` (drop the label: the default again);
        and its free-form labels (``labels`` set or replace keys, ``unlabel`` drops keys).
        Placement uses the new values at once; stored pieces move on ``rebalance``."""
        ctx = self.ctx
        row = next((r for r in ctx.catalog.providers() if r.name == name), None)
        if row is None:
            raise NotFoundError(f"no such provider: {name}", provider=name)
        if domain is not None and default_domain_:
            raise UsageError("give either --domain or --default-domain, not both")
        code = row.jurisdiction
        if jurisdiction is not None:
            code = jurisdiction.strip().upper()
            Policy(1, 2, (code,))  # validates the code
        label = row.domain
        if domain is not None:
            label = validate_domain(domain)
        elif default_domain_:
            label = None
        for key, value in (labels or {}).items():
            if not 1 <= len(key) <= 64 or len(value) > 256:
                raise UsageError("a label is KEY=VALUE, KEY 1-64 and VALUE at most 256 characters")
        tags = dict(row.labels)
        for key in unlabel:
            if key not in tags:
                raise UsageError(f"{name} has no label {key!r}")
            del tags[key]
        tags.update(labels or {})
        if len(tags) > MAX_LABELS:
            raise UsageError(f"a provider has at most {MAX_LABELS} labels")
        moved = replace(row, jurisdiction=code, domain=label)
        # Refuse a change under which no piece could be placed (as `policy set` does).
        place(
            ctx.policy,
            [
                candidate_of(moved, ctx.path, c.load, c.active) if c.id == row.id else c
                for c in ctx.candidates()
            ],
        )
        async with ctx.write():
            ctx.catalog.set_provider_place(row.id, code, label)
            if tags != row.labels:
                ctx.catalog.set_provider_labels(row.id, tags)
            await ctx.providers.reset()
            await ctx.events.emit(ProvidersChanged())
        plan = await rebalance(ctx, dry_run=True)
        effective = label or default_domain(row.kind, row.url, row.config, ctx.path)
        return ProviderChanged(name, code, effective, label, tags, plan.packs_changed)

    async def remove_provider(
        self, name: str, *, force: bool = False, progress: Callable[[int, int], None] | None = None
    ) -> ProviderRemoval:
        """Move a provider's shares elsewhere, then remove it (``force``: remove at once)."""
        ctx = self.ctx
        cat = ctx.catalog
        row = next((r for r in cat.providers() if r.name == name), None)
        if row is None:
            raise NotFoundError(f"no such provider: {name}", provider=name)
        async with ctx.write():
            held = cat.usage.by_provider().get(row.id, (0, 0))[0]
            if force:
                degraded, unreadable = self._at_risk_without(row.id)
                cat.set_provider_state(row.id, "removed")
                await ctx.providers.reset()
                await ctx.events.emit(ProvidersChanged())
                return ProviderAbandoned(name, True, held, degraded, unreadable)
            cat.set_provider_state(row.id, "draining")
            report = await rebalance(ctx, progress=progress)
            if report.packs_changed:
                await ctx.events.emit(PacksRewritten())
            left = cat.usage.by_provider().get(row.id, (0, 0))[0]
            if left:
                raise PolicyError(
                    f"{name} still holds {left} share(s) that could not be moved "
                    f"({'; '.join(report.failures[:3]) or 'no eligible provider'}); it stays draining. "
                    "Fix the cause and run `ownvault provider rm` again, or use --force."
                )
            cat.set_provider_state(row.id, "removed")
            await ctx.providers.reset()
            await ctx.events.emit(ProvidersChanged())
        return ProviderDrained(name, True, report.shares_moved, report.shares_regenerated)

    def _at_risk_without(self, provider: int) -> tuple[list[str], list[str]]:
        """Which names become degraded, and which unreadable, if ``provider``'s shares
        vanish."""
        cat = self.ctx.catalog
        degraded: list[str] = []
        unreadable: list[str] = []
        for v in cat.latest_versions(""):
            worst: tuple[int, int, int] | None = None
            for pack in cat.packs_of_version(v.id):
                _pid, _size, k, n = cat.pack_info(pack)
                left = sum(1 for s in cat.shares_of(pack) if s.provider != provider)
                worst = (left, k, n) if worst is None or left < worst[0] else worst
            if worst is None:
                continue
            if worst[0] < worst[1]:
                unreadable.append(v.name)
            elif worst[0] < worst[2]:
                degraded.append(v.name)
        return degraded, unreadable

    async def set_policy(self, policy: Policy) -> PolicySet:
        """Store a new placement policy; say how many stored pieces it leaves out of line."""
        ctx = self.ctx
        place(policy, ctx.candidates())  # refuse a policy no piece could ever meet
        async with ctx.write():
            with ctx.catalog.transaction():
                ctx.catalog.set_meta("policy", policy.to_json())
        plan = await rebalance(ctx, policy=policy, dry_run=True)
        return PolicySet(policy, policy.describe(), plan.packs_changed)

    async def rebalance(
        self, *, progress: Callable[[int, int], None] | None = None, dry_run: bool = False
    ) -> RebalanceReport:
        """Bring every stored piece in line with the policy (``engine.fleet.rebalance``)."""
        async with self.ctx.write():
            report = await rebalance(self.ctx, progress=progress, dry_run=dry_run)
            if not dry_run and report.packs_changed:
                await self.ctx.events.emit(PacksRewritten())
        return report

    async def provider_status(self) -> list[ProviderStatus]:
        """Each provider: usage, reachability, free space, latency."""
        ctx = self.ctx
        usage = ctx.catalog.usage.by_provider()
        store = ctx.store

        async def one(row: ProviderRow) -> ProviderStatus:
            shares, used = usage.get(row.id, (0, 0))
            p = store.providers.get(row.id)
            reachable = False
            free: int | None = None
            latency: float | None = None
            error: str | None = None
            if p is None:
                error = "cannot be opened"
            else:
                try:
                    t0 = asyncio.get_running_loop().time()
                    info = await asyncio.wait_for(p.info(), 10)
                    latency = round((asyncio.get_running_loop().time() - t0) * 1000, 1)
                    reachable = True
                    free = info.free_bytes
                except (OwnvaultError, TimeoutError) as exc:
                    error = getattr(exc, "message", "timed out")
            return ProviderStatus(
                name=row.name,
                kind=row.kind,
                url=row.url,
                location=p.location if p is not None else row.url,
                jurisdiction=row.jurisdiction,
                domain=domain_of(row, ctx.path),
                labels=row.labels,
                state=row.state,
                shares=shares,
                bytes=used,
                reachable=reachable,
                free_bytes=free,
                error=error,
                latency_ms=latency,
            )

        return list(await asyncio.gather(*(one(r) for r in ctx.catalog.providers())))
