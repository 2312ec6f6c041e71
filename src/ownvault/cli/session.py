"""The one vault session of a command: open (``--vault`` or ``$OWNVAULT_HOME``, passphrase
from ``$OWNVAULT_PASSPHRASE`` or a prompt), run the engine call, close.

``asyncio.run`` happens here and nowhere else in the command modules that use a vault.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from ownvault.cli.app import Ctx
from ownvault.cli.render import report_problem, warn
from ownvault.errors import UsageError

if TYPE_CHECKING:
    from ownvault.core.crypto import Argon2Params
    from ownvault.engine.store.catalog import Catalog
    from ownvault.engine.vault import Vault

__all__ = [
    "kdf_params",
    "new_passphrase",
    "open_vault",
    "read_catalog",
    "read_vault",
    "run_open",
    "run_with_vault",
]

T = TypeVar("T")


def kdf_params() -> Argon2Params:
    """The passphrase KDF cost for a new keystore.

    ``OWNVAULT_INSECURE_FAST_KDF=1`` is for test suites only (documented in the README;
    never for real data): the cost is stored in each keystore, so the format is unchanged."""
    from ownvault.core.crypto import Argon2Params  # noqa: PLC0415 - crypto libraries, lazily

    if os.environ.get("OWNVAULT_INSECURE_FAST_KDF") == "1":
        return Argon2Params(1, 8192, 1)
    return Argon2Params()


def new_passphrase(env: str) -> str:
    """A new passphrase from ``$env`` or a confirmed prompt on a terminal."""
    value = os.environ.get(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise UsageError(f"no new passphrase: set {env} or run on a terminal")
    entered: str = click.prompt(
        "New passphrase", hide_input=True, confirmation_prompt=True, err=True
    )
    return entered


def open_vault(ctx: Ctx, passphrase: str | None = None) -> Vault:
    """The vault of ``ctx``, its warnings and share problems reported on standard error."""
    from ownvault.engine.vault import Vault  # noqa: PLC0415 - the engine, lazily (see read_catalog)

    vault = Vault.open(ctx.vault, ctx.passphrase() if passphrase is None else passphrase)
    vault.warn = warn
    vault.on_problem = report_problem
    return vault


def run_open(vault: Vault, fn: Callable[[Vault], Awaitable[T]]) -> T:
    """Pull what other devices committed, run ``fn(vault)`` to completion, then close the
    vault (also on errors)."""

    import asyncio  # noqa: PLC0415 - not for the commands that only read the catalog

    async def go() -> T:
        try:
            await vault.pull()  # a command first sees what other devices committed
            return await fn(vault)
        finally:
            await vault.close()

    return asyncio.run(go())


def run_with_vault(
    ctx: Ctx, fn: Callable[[Vault], Awaitable[T]], *, passphrase: str | None = None
) -> T:
    """Open the vault of ``ctx``, await ``fn(vault)``, close it; the result of ``fn``."""
    return run_open(open_vault(ctx, passphrase), fn)


def read_vault(ctx: Ctx, fn: Callable[[Vault], T]) -> T:
    """Like :func:`run_with_vault` for a synchronous look (keys, catalog rows)."""

    async def go(vault: Vault) -> T:
        return fn(vault)

    return run_with_vault(ctx, go)


def read_catalog(ctx: Ctx, fn: Callable[[Catalog], T]) -> T:
    """``fn`` of the vault's local catalog (``ls``, ``du``), opened without the passphrase
    when it is current: the catalog is plaintext on disk (docs/design.md "Threat model"),
    and neither the keystore nor the engine beyond the catalog is loaded. When the
    providers may hold what other devices committed since (``journal_behind``), the
    command pulls first like every other one, which takes the passphrase."""
    from ownvault.engine.files.listing import journal_behind, open_listing  # noqa: PLC0415

    with open_listing(ctx.vault) as catalog:
        if journal_behind(catalog, ctx.vault.absolute()) is None:
            return fn(catalog)
    return read_vault(ctx, lambda vault: fn(vault.catalog))
