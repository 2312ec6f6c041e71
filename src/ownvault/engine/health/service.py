"""The health feature: check, audit, deep check, repair and the status verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ownvault.engine.health.audit import AuditReport, AuditSample, audit
from ownvault.engine.health.check import CheckReport, check
from ownvault.engine.health.deepcheck import DeepCheckReport, deep_check
from ownvault.engine.health.repair import RepairReport, repair
from ownvault.engine.health.status import VaultStatus, vault_status
from ownvault.engine.health.verdict import Verdict, assess
from ownvault.engine.store.context import PacksRewritten, VaultContext

__all__ = ["Health"]


class Health:
    """``vault.health``: is everything there, is it intact, and fix what is not."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx

    async def check(self, name: str | None = None) -> CheckReport:
        """Per file: shares present / needed, healthy or not, which provider misses what."""
        return await check(self.ctx, name)

    async def audit(
        self, *, providers: Sequence[str] | None = None, sample: AuditSample | None = None
    ) -> AuditReport:
        """Challenge providers on random blocks of their shares (``engine.health.audit``)."""
        return await audit(self.ctx, providers=providers, sample=sample)

    async def deep_check(self, name: str | None = None) -> DeepCheckReport:
        """``check``, plus every share read whole and verified (``engine.health.deepcheck``);
        its verdict is taken after the faults it found are recorded."""
        result = await deep_check(self.ctx, name)
        verdict, _probes = await assess(self.ctx)
        return replace(result, health=verdict)

    async def repair(
        self,
        *,
        dry_run: bool = False,
        unreachable_grace: float | None = None,
        max_bytes: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> RepairReport:
        """Regenerate missing and corrupt shares from k good ones (``engine.health.repair``)."""
        async with self.ctx.write():
            report = await repair(
                self.ctx,
                dry_run=dry_run,
                unreachable_grace=unreachable_grace,
                max_bytes=max_bytes,
                progress=progress,
            )
            if report.shares_moved or report.shares_completed:
                await self.ctx.events.emit(PacksRewritten())
        return report

    async def status(self) -> VaultStatus:
        """Healthy or not, what is at risk, what to do (``engine.health.status``)."""
        return await vault_status(self.ctx)

    async def verdict(self) -> Verdict:
        """The vault's one health verdict (``engine.health.verdict``), without the rest."""
        verdict, _probes = await assess(self.ctx)
        return verdict
