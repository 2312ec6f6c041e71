"""``ownvault serve`` (the vault API, the web UI and the gateway) and ``ownvault ui``."""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
import webbrowser
from pathlib import Path

import click

from ownvault.cli.app import Ctx, cli, common, get_ctx
from ownvault.cli.parse import parse_listen
from ownvault.cli.render import warn
from ownvault.cli.session import open_vault
from ownvault.errors import UsageError

__all__ = ["read_token_file", "write_launch_page"]

DEFAULT_LISTEN = "127.0.0.1:8787"


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


def write_launch_page(directory: Path, launch_url: str) -> Path:
    """``ownvault ui``'s way into the browser: an HTML file (mode 0600) that sends the
    browser to the one-time launch link. The browser's command line (which ``ps`` shows to
    every local user) holds only the file's path; the link inside works once, for a
    minute, and the file is removed after that minute."""
    page = directory / "launch.html"
    target = html.escape(launch_url, quote=True)
    text = (
        '<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
        f'<meta http-equiv="refresh" content="0;url={target}"><title>ownvault</title>'
        f'<p><a href="{target}">Open ownvault</a></p>\n'
    )
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return page


def _run(
    ctx: Ctx, listen: str, token_file: str | None, gateway_only: bool, open_browser: bool
) -> None:
    import uvicorn

    from ownvault.server.api.state import LAUNCH_SECONDS
    from ownvault.server.app import LAUNCH_PATH, create_app
    from ownvault.server.listener import uvicorn_config

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
        server = uvicorn.Server(uvicorn_config(app, host, port))
        launch_dir: Path | None = None
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
            if open_browser and app.launches is not None:
                launch_dir = Path(tempfile.mkdtemp(prefix="ownvault-ui-"))  # mode 0700

                def forget(where: Path = launch_dir) -> None:
                    shutil.rmtree(where, ignore_errors=True)

                nonce = app.launches.new(redeemed=forget)  # the page goes once it has served
                page = write_launch_page(launch_dir, f"{url}{LAUNCH_PATH}{nonce}")
                asyncio.get_running_loop().call_later(LAUNCH_SECONDS, forget)
                await asyncio.to_thread(webbrowser.open, page.as_uri())
        try:
            await task
        finally:
            if launch_dir is not None:
                shutil.rmtree(launch_dir, ignore_errors=True)
            await vault.close()

    # uvicorn stops gracefully on SIGINT/SIGTERM and then raises the signal again, to its
    # previous handler: with the default ones the process died right there, before the
    # launch page's folder was removed and the vault closed. These handlers only note it.
    stopped: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: stopped.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        asyncio.run(go())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:
        sys.exit(128 + stopped[0])  # as the shell reports a command a signal stopped


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
    """Start `ownvault serve` and open the web UI in the default browser.

    The browser gets a file (mode 0600) holding a one-time launch link, valid for a
    minute: no token ever appears on its command line, which every local user can read.
    """
    _run(get_ctx(), listen, token_file, False, open_browser=True)
