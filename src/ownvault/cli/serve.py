"""``ownvault serve`` (the vault API, the web UI and the gateway) and ``ownvault ui``."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import sys
import webbrowser
from pathlib import Path

import click

from ownvault.cli.app import Ctx, cli, common, get_ctx
from ownvault.cli.files import open_vault, warn
from ownvault.errors import UsageError

__all__ = ["parse_listen", "read_token_file"]

DEFAULT_LISTEN = "127.0.0.1:8787"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise UsageError(f"--listen wants HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"--listen: bad port {port!r}") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"--listen: port out of range: {number}")
    return host, number


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token_file(path: str) -> str:
    """The session token in FILE; a new random one is written there (mode 0600) if absent."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    except OSError as exc:
        raise UsageError(f"cannot create --token-file {path}: {exc.strerror}") from None
    if fd < 0:
        if p.stat().st_mode & 0o077:
            raise UsageError(f"--token-file {path} is readable by others: chmod 600 it")
        token = p.read_text().strip()
        if len(token) < 32:
            raise UsageError(f"--token-file {path}: the token needs at least 32 characters")
        return token
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _run(
    ctx: Ctx, listen: str, token_file: str | None, gateway_only: bool, open_browser: bool
) -> None:
    import uvicorn

    from ownvault.server.app import create_app

    host, port = parse_listen(listen)
    loopback = is_loopback(host)
    if not loopback and token_file is None and not gateway_only:
        raise UsageError(
            f"listening on {host} (not loopback) needs --token-file FILE: the vault's API would be "
            "reachable from the network, and its token must be one you keep"
        )
    if not loopback:
        warn(
            f"listening on {host}: published content is served to whoever can reach it"
            + ("" if gateway_only else "; the vault API needs the token in --token-file")
        )
    token = read_token_file(token_file) if token_file else None
    vault = open_vault(ctx)

    async def go() -> None:
        app = create_app(vault, token=token, loopback=loopback, api=not gateway_only)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            h11_max_incomplete_event_size=64 * 1024,
        )
        server = uvicorn.Server(config)
        task = asyncio.ensure_future(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            sock = server.servers[0].sockets[0].getsockname()
            bound = f"[{sock[0]}]" if ":" in sock[0] else sock[0]
            url = f"http://{bound}:{sock[1]}"
            doc: dict[str, object] = {"listening": url, "gateway": f"{url}/ipfs/"}
            if not gateway_only:
                doc["ui"] = f"{url}/#token={app.token}" if token_file is None else f"{url}/"
                doc["api"] = f"{url}/api/v1/openapi.json"
                doc["token_file"] = token_file
            sys.stdout.write(json.dumps(doc) + "\n")
            sys.stdout.flush()
            if not gateway_only and not ctx.json and sys.stderr.isatty():
                click.echo(
                    f"Open {doc['ui']} in your browser (the link holds the session token).",
                    err=True,
                )
            if open_browser:
                webbrowser.open(f"{url}/#token={app.token}")
        try:
            await task
        finally:
            await vault.close()

    asyncio.run(go())


_listen = click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    help="HOST:PORT to listen on (port 0 picks a free port). Not loopback: needs --token-file.",
)
_token = click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="Read the session token from FILE (created with a new token, mode 0600, if absent).",
)


@cli.command("serve")
@common
@_listen
@_token
@click.option(
    "--gateway-only", is_flag=True, help="Serve only the IPFS gateway (/ipfs/), no API or web UI."
)
def serve_cmd(listen: str, token_file: str | None, gateway_only: bool) -> None:
    """Open the vault over HTTP: the web UI (/), the vault API (/api/v1) and the gateway (/ipfs/).

    Prints one JSON line {"listening", "ui", "api", "gateway"} on stdout when ready; "ui" is
    the link to open, with the session token in its #fragment. The API needs that token (or
    a login with the passphrase); the gateway at /ipfs/ serves published content to anyone
    and unpublished content to no one. Stop with Ctrl-C.
    """
    _run(get_ctx(), listen, token_file, gateway_only, open_browser=False)


@cli.command("ui")
@common
@_listen
@_token
def ui_cmd(listen: str, token_file: str | None) -> None:
    """Start `ownvault serve` and open the web UI in the default browser."""
    _run(get_ctx(), listen, token_file, False, open_browser=True)
