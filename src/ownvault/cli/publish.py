"""Publishing commands: publish, unpublish, published, verify-cid (serve: cli/serve.py)."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit
from ownvault.cli.session import read_vault, run_with_vault
from ownvault.core.unixfs import PROFILES
from ownvault.engine.ipfs.pinning import pin_report
from ownvault.engine.vault import Vault
from ownvault.errors import OwnvaultError, UsageError


@cli.command("publish")
@common
@click.argument("target")
@click.option("--as", "as_name", help="When TARGET is a local path: store it under this name.")
@click.option("--version", "version", type=int, help="Version of NAME (default: latest).")
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default=None,
    help="Import profile of the published DAG (default: the one its CID was recorded with).",
)
@click.option(
    "--pin",
    "pins",
    multiple=True,
    metavar="PROVIDER",
    help="Also pin the plain DAG to this IPFS provider (repeatable).",
)
@click.option(
    "--wait", type=float, default=0.0, help="With --pin: wait up to this many seconds for 'pinned'."
)
def publish_cmd(
    target: str,
    as_name: str | None,
    version: int | None,
    profile: str | None,
    pins: tuple[str, ...],
    wait: float,
) -> None:
    """Make a stored file or tree public and print its ipfs:// address.

    TARGET is a stored NAME (or NAME/path inside a stored tree), or a local PATH, which
    is stored first (a new version) and then published; a stored NAME wins. Published content stays
    encrypted and erasure-coded on the providers; `ownvault serve` serves it.
    """
    ctx = get_ctx()

    async def go(vault: Vault) -> dict[str, Any]:
        name = target
        stored: dict[str, Any] | None = None
        if os.path.lexists(target) and not _is_stored(vault, target):
            results = await vault.files.put([target], name=as_name)
            stored = results[0].to_json()
            name = results[0].name
            p = await vault.ipfs.publish(name, version=results[0].version, profile=profile)
        else:
            if as_name is not None:
                raise UsageError("--as applies to a local PATH only")
            p = await vault.ipfs.publish(name, version=version, profile=profile)
        doc = p.to_json()
        if stored is not None:
            doc["stored"] = stored
        pinned: list[dict[str, str]] = []
        for provider in pins:
            status = await vault.ipfs.pin_published(str(doc["cid"]), provider, wait=wait)
            pinned.append({"provider": provider, "cid": str(status.cid), "state": status.state})
        doc["pins"] = pinned
        return doc

    doc = run_with_vault(ctx, go)

    def human() -> None:
        click.echo(doc["url"])
        for p in doc["pins"]:
            click.echo(f"pinned to {p['provider']}: {p['state']}")

    emit(ctx, doc, human)


@cli.command("pins")
@common
def pins_cmd() -> None:
    """Where each published CID is pinned on the vault's IPFS providers, and its status."""
    ctx = get_ctx()

    async def go(vault: Vault) -> list[dict[str, Any]]:
        rows = await pin_report(vault.ipfs.ipfs_providers())
        return [
            {
                "provider": r.provider,
                "cid": str(r.status.cid) if r.status else None,
                "state": r.status.state if r.status else None,
                "name": r.status.name if r.status else None,
                "error": r.error,
            }
            for r in rows
        ]

    rows = run_with_vault(ctx, go)

    def human() -> None:
        if not rows:
            click.echo("no pins (no IPFS providers, or nothing pinned)")
        for r in rows:
            click.echo(
                f"{r['provider']:<16} {r['state'] or 'error':<8} {r['cid'] or ''} {r['error'] or ''}"
            )

    emit(ctx, {"pins": rows}, human)


def _is_stored(vault: Vault, name: str) -> bool:
    try:
        vault.ctx.resolve(name, None)
    except OwnvaultError:
        return False
    return True


@cli.command("unpublish")
@common
@click.argument("target")
@click.option("--version", "version", type=int, help="Only this version of NAME.")
def unpublish_cmd(target: str, version: int | None) -> None:
    """Stop publishing a NAME (or one root CID); the content stays stored."""
    ctx = get_ctx()
    rows = run_with_vault(ctx, lambda v: v.ipfs.unpublish(target, version=version))
    docs = [asdict(r) for r in rows]

    def human() -> None:
        for d in docs:
            click.echo(f"unpublished {d['name']} v{d['version']}  {d['cid']}")

    emit(ctx, {"unpublished": docs}, human)


@cli.command("published")
@common
def published_cmd() -> None:
    """List published content (and imported DAGs kept for their root CID)."""
    ctx = get_ctx()

    rows = read_vault(ctx, lambda v: [asdict(r) for r in v.ipfs.dags()])

    def human() -> None:
        for r in rows:
            state = "public " if r["published"] else "private"
            click.echo(f"{state}  {r['url']}  {r['name']} v{r['version']}  ({r['profile']})")

    emit(ctx, {"published": [r for r in rows if r["published"]], "dags": rows}, human)


@cli.command("verify-cid")
@common
@click.argument("target")
@click.option("--version", "version", type=int, help="Version of NAME (default: latest).")
def verify_cid_cmd(target: str, version: int | None) -> None:
    """Recompute the IPFS CIDs of a stored file or tree from its stored bytes and compare."""
    ctx = get_ctx()
    doc = run_with_vault(ctx, lambda v: v.ipfs.verify_cid(target, version=version))

    def human() -> None:
        for c in doc.checks:
            mark = "ok " if c.ok else "BAD"
            click.echo(
                f"{mark} {c.what} ({c.profile}): {c.computed}"
                + ("" if c.ok else f" != recorded {c.recorded}")
            )
        click.echo(f"{doc.name} v{doc.version}: " + ("CIDs verified" if doc.ok else "CID MISMATCH"))

    emit(ctx, doc, human)
    if not doc.ok:
        raise click.exceptions.Exit(5)
