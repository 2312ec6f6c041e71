"""``ownvault node``: run a storage node (protocol: docs/node-protocol.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ownvault.cli.app import cli
from ownvault.cli.parse import parse_listen, parse_size
from ownvault.errors import UsageError
from ownvault.server.node import (
    CHAOS_MODES,
    DEFAULT_MAX_OBJECT,
    NodeConfig,
    parse_allowlist,
    serve,
)

__all__ = ["node"]


@cli.group()
def node() -> None:
    """Run an ownvault storage node."""


@node.command("serve")
@click.option(
    "--data", "data", required=True, type=click.Path(file_okay=False), help="Data directory."
)
@click.option(
    "--listen",
    default="127.0.0.1:8650",
    show_default=True,
    help="HOST:PORT (port 0: any free port).",
)
@click.option(
    "--jurisdiction", default=None, help="ISO 3166-1 alpha-2 country code the data is kept in."
)
@click.option(
    "--quota-per-account",
    default="1GiB",
    show_default=True,
    help="Bytes each account may store (e.g. 10GiB), or 'unlimited'.",
)
@click.option(
    "--accounts",
    type=click.Choice(["open", "allowlist"]),
    default=None,
    help="Required: 'allowlist' serves only the did:keys in --allowlist; 'open' serves any "
    "key that signs, so anyone may store up to the quota per key (keys are free: bound the "
    "disk by other means).",
)
@click.option(
    "--allowlist", default=None, type=click.Path(dir_okay=False), help="File of did:key lines."
)
@click.option("--max-object-size", default=None, help="Largest object accepted (default 64MiB).")
@click.option(
    "--window", default=120, show_default=True, help="Seconds a signed request stays valid."
)
@click.option(
    "--max-connections",
    default=256,
    show_default=True,
    help="Open connections; beyond it the longest-idle one is closed.",
)
@click.option(
    "--upload-budget",
    default="512MiB",
    show_default=True,
    help="Upload bytes in flight, all accounts; beyond it uploads get 503 + Retry-After.",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    help="Seconds a new connection has to send a complete request head.",
)
@click.option(
    "--idle-timeout",
    default=30.0,
    show_default=True,
    help="Seconds a connection may idle between requests, or an upload between bytes.",
)
@click.option(
    "--max-nonces-per-account",
    default=100_000,
    show_default=True,
    help="Signed requests per account per replay window (2 x --window).",
)
@click.option(
    "--chaos", multiple=True, hidden=True, help=f"Testing only: {', '.join(sorted(CHAOS_MODES))}."
)
def serve_cmd(
    data: str,
    listen: str,
    jurisdiction: str | None,
    quota_per_account: str,
    accounts: str | None,
    allowlist: str | None,
    max_object_size: str | None,
    window: int,
    max_connections: int,
    upload_budget: str,
    header_timeout: float,
    idle_timeout: float,
    max_nonces_per_account: int,
    chaos: tuple[str, ...],
) -> None:
    """Serve shares for did:key accounts until interrupted.

    Safe by default: you choose whom to serve (--accounts, required), each account may
    store 1 GiB unless --quota-per-account says otherwise, and connections, uploads in
    flight and slow clients are bounded. Prints one JSON line ({"listening": URL,
    "node_id": ...}) on stdout when ready.
    """
    host, port = parse_listen(listen, example="127.0.0.1:8650")
    if accounts is None:
        raise UsageError(
            "choose whom to serve: --accounts allowlist --allowlist FILE (only those did:keys), "
            "or --accounts open (any key that signs, each up to --quota-per-account)"
        )
    unlimited = quota_per_account.strip().lower() == "unlimited"
    quota = None if unlimited else parse_size(quota_per_account)
    allowed: frozenset[str] = frozenset()
    if accounts == "allowlist":
        if allowlist is None:
            raise UsageError("--accounts allowlist needs --allowlist FILE")
        try:
            allowed = parse_allowlist(Path(allowlist).read_text())
        except OSError as exc:
            raise UsageError(f"cannot read allowlist {allowlist}: {exc.strerror}") from None
    config = NodeConfig(
        data=Path(data).absolute(),
        jurisdiction=jurisdiction.upper() if jurisdiction else None,
        quota_per_account=quota,
        accounts="allowlist" if accounts == "allowlist" else "open",
        allowlist=allowed,
        max_object_size=parse_size(max_object_size) if max_object_size else DEFAULT_MAX_OBJECT,
        window=window,
        chaos=frozenset(chaos),
        max_connections=max_connections,
        upload_budget=parse_size(upload_budget),
        header_timeout=header_timeout,
        idle_timeout=idle_timeout,
        nonces_per_account=max_nonces_per_account,
    )
    if chaos:
        click.echo(f"ownvault node: CHAOS MODE {sorted(chaos)} (testing only)", err=True)

    def ready(doc: dict[str, object]) -> None:
        sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        sys.stdout.flush()

    try:
        serve(config, host, port, ready=ready)
    except OSError as exc:
        raise UsageError(f"cannot listen on {listen}: {exc.strerror}") from None
