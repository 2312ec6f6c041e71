"""``ownvault nft``: preserve, verify, ls, reverify (engine: ``engine/nft*.py``)."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ownvault.cli.app import Ctx, cli, common, get_ctx
from ownvault.cli.parse import parse_fetch_size
from ownvault.cli.render import emit, err_console
from ownvault.cli.session import read_vault, run_with_vault
from ownvault.engine.nft import preserve as nft
from ownvault.engine.nft.collect import NftOptions
from ownvault.engine.nft.results import CollectionRun
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError
from ownvault.providers.webfetch import FetchLimits, NetworkPolicy

__all__ = ["nft_group"]

Command = Callable[..., None]


@dataclass(frozen=True, slots=True)
class FetchArgs:
    """The fetch options of a command, as given (parsed by :meth:`options`)."""

    rpc: str | None
    gateways: tuple[str, ...]
    arweave_gateway: str
    allow_private_network: bool
    networks: tuple[str, ...]
    max_asset_size: str
    max_token_size: str
    timeout: float

    def options(self, concurrency: int = 4) -> NftOptions:
        limits = FetchLimits(
            max_asset_bytes=parse_fetch_size(self.max_asset_size),
            max_token_bytes=parse_fetch_size(self.max_token_size),
            fetch_timeout=self.timeout,
        )
        return NftOptions(
            gateways=self.gateways,
            rpc=self.rpc,
            arweave_gateway=self.arweave_gateway,
            network=NetworkPolicy.parse(self.allow_private_network, self.networks),
            limits=limits,
            concurrency=concurrency,
        )


def fetch_options(f: Command) -> Command:
    """The options every command that fetches takes, given to it as ``fetch: FetchArgs``."""
    options = [
        click.option(
            "--rpc", metavar="URL", help="Ethereum JSON-RPC endpoint, to read eth:… tokens."
        ),
        click.option(
            "--gateway",
            "gateways",
            multiple=True,
            metavar="URL",
            help="IPFS trustless gateway (repeatable; tried in order, never trusted).",
        ),
        click.option(
            "--arweave-gateway",
            default="https://arweave.net",
            show_default=True,
            metavar="URL",
            help="Where ar:// content is fetched from.",
        ),
        click.option(
            "--allow-private-network",
            is_flag=True,
            help="Let fetches reach loopback/private/link-local addresses (off: a hostile "
            "token cannot make ownvault read local services).",
        ),
        click.option(
            "--allow-network",
            "networks",
            multiple=True,
            metavar="CIDR",
            help="Allow one private network range (repeatable), e.g. 192.168.1.0/24.",
        ),
        click.option("--max-asset-size", default="256M", show_default=True, help="Per asset."),
        click.option(
            "--max-token-size", default="1G", show_default=True, help="All parts of one token."
        ),
        click.option(
            "--timeout",
            type=float,
            default=300.0,
            show_default=True,
            help="Seconds for one fetch, redirects included.",
        ),
    ]

    @functools.wraps(f)
    def command(
        *,
        rpc: str | None,
        gateways: tuple[str, ...],
        arweave_gateway: str,
        allow_private_network: bool,
        networks: tuple[str, ...],
        max_asset_size: str,
        max_token_size: str,
        timeout: float,
        **rest: object,
    ) -> None:
        fetch = FetchArgs(
            rpc,
            tuple(gateways),
            arweave_gateway,
            allow_private_network,
            tuple(networks),
            max_asset_size,
            max_token_size,
            timeout,
        )
        f(fetch=fetch, **rest)

    wrapped: Command = command
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped


@cli.group("nft")
def nft_group() -> None:
    """Keep NFTs' metadata and media alive, verifiably, beyond their marketplace."""


_MARK = {
    "verified": "verified",
    "embedded": "embedded",
    "unverifiable_origin": "unverifiable origin",
    "unreachable": "UNREACHABLE",
    "too_large": "TOO LARGE",
    "wrong_type": "WRONG TYPE",
    "refused": "REFUSED",
    "mismatch": "CID MISMATCH",
}


def _render_token(doc: dict[str, Any]) -> None:
    head = doc.get("url") or ""
    click.echo(f"{doc['source']}  {doc.get('standard') or ''}  {head}".rstrip())
    if doc.get("name") and doc.get("root"):
        click.echo(f"  stored as {doc['name']} v{doc['version']}")
    for p in doc["parts"]:
        where = ", ".join(p.get("pinned") or []) or "-"
        uri = p["uri"] if len(p["uri"]) <= 70 else p["uri"][:67] + "..."
        risk = "  AT RISK (one HTTPS server)" if p["at_risk"] else ""
        click.echo(
            f"  {p['role']:<9} {_MARK.get(p['status'], p['status']):<19} {p['cid'] or '-'}  {uri}{risk}"
        )
        if p.get("cid") and "pinned" in p:
            click.echo(f"            pinned: {where}")
        if p["error"]:
            click.echo(f"            {p['error']}")
    for pin in doc.get("pins", []):
        if not pin["ok"]:
            click.echo(f"  pin {pin['target']}: FAILED: {pin['error']}")


@nft_group.command("preserve")
@common
@click.argument("source", required=False)
@click.option(
    "--collection",
    "collection_file",
    type=click.Path(dir_okay=False, exists=True),
    help="A file of SOURCEs, one a line, or ranges eth:CHAIN:CONTRACT:FIRST-LAST.",
)
@click.option(
    "--pin",
    "pins",
    multiple=True,
    metavar="TARGET",
    help="Pin the preserved folder: a Kubo RPC URL (http://HOST:5001) or an IPFS provider name.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 32),
    default=4,
    show_default=True,
    help="Tokens (collections) and parts fetched at once.",
)
@click.option(
    "--refresh", is_flag=True, help="Collections: preserve tokens already preserved again."
)
@fetch_options
def preserve_cmd(
    source: str | None,
    collection_file: str | None,
    pins: tuple[str, ...],
    concurrency: int,
    refresh: bool,
    fetch: FetchArgs,
) -> None:
    """Fetch, verify and store an NFT's metadata and media; publish and pin the folder.

    SOURCE is a token eth:CHAIN_ID:CONTRACT:TOKEN_ID (with --rpc), a token URI (ipfs://,
    https://, ar://, data:) or a local metadata JSON file.
    """
    ctx = get_ctx()
    opts = fetch.options(concurrency)
    if (source is None) == (collection_file is None):
        raise UsageError("give a SOURCE or --collection FILE (one of them)")
    if collection_file is not None:
        _collection(ctx, Path(collection_file), opts, list(pins), refresh, concurrency)
        return
    assert source is not None
    done = run_with_vault(ctx, lambda v: v.nft.preserve_token(source, opts, pins=pins))
    doc = done.to_json()
    emit(ctx, doc, lambda: _render_token(doc))


def _collection(
    ctx: Ctx, path: Path, opts: NftOptions, pins: list[str], refresh: bool, concurrency: int
) -> None:
    sources = nft.parse_collection(path.read_text(encoding="utf-8"))
    label = str(path.resolve())
    show = not ctx.json and sys.stderr.isatty()

    async def go(vault: Vault) -> CollectionRun:
        if not show:

            def quiet(source: str, outcome: str) -> None:
                if not ctx.json:
                    err_console.print(f"{outcome:<9} {source}", highlight=False)

            return await vault.nft.preserve_collection(
                sources,
                opts,
                pins=pins,
                refresh=refresh,
                concurrency=concurrency,
                collection=label,
                progress=quiet,
            )
        with Progress(
            TextColumn("preserving"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task("", total=len(sources))

            def tick(source: str, outcome: str) -> None:
                bar.update(task, advance=1, description=f"{outcome} {source[-40:]}")

            return await vault.nft.preserve_collection(
                sources,
                opts,
                pins=pins,
                refresh=refresh,
                concurrency=concurrency,
                collection=label,
                progress=tick,
            )

    doc = run_with_vault(ctx, go)

    def human() -> None:
        for t in doc.tokens:
            if t.outcome == "failed":
                click.echo(f"failed     {t.source}: {t.error}")
        click.echo(
            f"{doc.preserved} preserved, {doc.skipped} already preserved, "
            f"{doc.failed} failed, of {doc.total}"
        )

    emit(ctx, doc, human)
    if doc.failed:
        raise click.exceptions.Exit(6)


@nft_group.command("verify")
@common
@click.argument("source")
@fetch_options
def verify_cmd(source: str, fetch: FetchArgs) -> None:
    """Check, storing nothing, that a token's metadata and assets are reachable and match
    their CIDs; name every part that depends on a single HTTPS server (at risk).

    Exit 0 when every part is reachable and verified (or embedded, or only unverifiable),
    5 when some content does not match its CID, 6 when some part could not be fetched.
    """
    ctx = get_ctx()
    opts = fetch.options()
    check = asyncio.run(nft.verify_token(source, opts))
    doc = check.to_json()
    statuses = {p.status for p in check.collected.parts}

    def human() -> None:
        _render_token(doc)
        if doc["at_risk"]:
            click.echo(f"at risk (depend on a single HTTPS server): {len(doc['at_risk'])}")
            for uri in doc["at_risk"]:
                click.echo(f"  {uri}")
        else:
            click.echo("no part depends on a single HTTPS server")

    emit(ctx, doc, human)
    if "mismatch" in statuses:
        raise click.exceptions.Exit(5)
    if not check.ok:
        raise click.exceptions.Exit(6)


@nft_group.command("ls")
@common
def ls_cmd() -> None:
    """List the tokens this vault preserved (or tried to), with their health."""
    ctx = get_ctx()

    rows = read_vault(ctx, lambda v: v.nft.list_preserved())

    def human() -> None:
        for r in rows:
            health = r.health or {}
            state = (
                "ok"
                if r.state == "preserved" and health.get("ok", True)
                else ("DEGRADED" if r.state == "preserved" else r.state)
            )
            counts = ", ".join(
                f"{n} {s}" for s, n in sorted(((r.summary or {}).get("statuses") or {}).items())
            )
            click.echo(f"{state:<9} {r.source}  {r.url or '-'}  {counts}")
            if r.error:
                click.echo(f"          last error: {r.error}")

    emit(ctx, {"tokens": rows}, human)


@nft_group.command("reverify")
@common
@click.option("--no-repin", is_flag=True, help="Only verify the stored copies.")
@fetch_options
def reverify_cmd(no_repin: bool, fetch: FetchArgs) -> None:
    """Re-verify every preserved token's stored folder and pin it again where it was pinned."""
    ctx = get_ctx()
    opts = fetch.options()
    out = run_with_vault(ctx, lambda v: v.nft.reverify_preserved(opts, repin=not no_repin))

    def human() -> None:
        for r in out:
            h = r.health
            pins = (
                ", ".join(f"{p.target} {'ok' if p.ok else 'FAILED'}" for p in h.pins) or "no pins"
            )
            click.echo(f"{'ok      ' if h.ok else 'DEGRADED'} {r.source}  copy {h.copy}; {pins}")

    emit(ctx, {"tokens": out}, human)
    if any(not r.health.ok for r in out):
        raise click.exceptions.Exit(5)
