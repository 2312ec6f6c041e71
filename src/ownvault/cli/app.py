"""The root click group, the options every command takes, and errors -> exit codes."""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ownvault.errors import OwnvaultError, UsageError, exit_code_for

__all__ = ["COMMAND_MODULES", "Ctx", "LazyGroup", "cli", "common", "get_ctx", "run_cli"]

F = TypeVar("F", bound=Callable[..., Any])


def default_vault_path() -> Path:
    """``$OWNVAULT_HOME``, else ``$XDG_DATA_HOME/ownvault``, else ``~/.local/share/ownvault``."""
    home = os.environ.get("OWNVAULT_HOME")
    if home:
        return Path(home)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(xdg) / "ownvault"


@dataclass
class Ctx:
    vault: Path
    json: bool
    wide: bool = False

    def passphrase(self, *, confirm: bool = False) -> str:
        """The passphrase from ``OWNVAULT_PASSPHRASE`` or a prompt (never echoed)."""
        env = os.environ.get("OWNVAULT_PASSPHRASE")
        if env is not None:
            return env
        if not sys.stdin.isatty():
            raise UsageError("no passphrase: set OWNVAULT_PASSPHRASE or run on a terminal")
        value: str = click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=confirm, err=True
        )
        return value


def _set_vault(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["vault"] = Path(value)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["json"] = True


def _set_wide(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["wide"] = True


def common(f: F) -> F:
    """Add ``--vault``, ``--json`` and ``--wide`` to a command (accepted on the group too)."""
    f = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="Tables at full width, whatever the terminal's (never folded into blocks).",
    )(f)
    f = click.option(
        "--json",
        "json_",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Machine-readable output: one JSON document on stdout.",
    )(f)
    f = click.option(
        "--vault",
        type=click.Path(file_okay=False),
        expose_value=False,
        callback=_set_vault,
        help="Vault directory (default: $OWNVAULT_HOME or the XDG data dir).",
    )(f)
    return f


def get_ctx() -> Ctx:
    obj = click.get_current_context().find_root().ensure_object(dict)
    sub = click.get_current_context().ensure_object(dict)
    merged = {**obj, **sub}
    return Ctx(
        vault=merged.get("vault") or default_vault_path(),
        json=bool(merged.get("json")),
        wide=bool(merged.get("wide")),
    )


# Every top-level command -> the module that registers it (with ``@cli.command()`` or
# ``@cli.group()``). A command's module is imported when the command runs, so ``ownvault ls``
# never imports the server, S3 or IPFS code (tests/cli/test_startup.py checks the map).
COMMAND_MODULES: Mapping[str, str] = {
    "audit": "ownvault.cli.health",
    "backup": "ownvault.cli.backup",
    "car": "ownvault.cli.ipfs",
    "check": "ownvault.cli.check",
    "cid": "ownvault.cli.ipfs",
    "completion": "ownvault.cli.completion",
    "contacts": "ownvault.cli.keys",
    "daemon": "ownvault.cli.health",
    "devices": "ownvault.cli.devices",
    "du": "ownvault.cli.listing",
    "forget": "ownvault.cli.keys",
    "gc": "ownvault.cli.gc",
    "get": "ownvault.cli.files",
    "grants": "ownvault.cli.keys",
    "identity": "ownvault.cli.keys",
    "log": "ownvault.cli.devices",
    "init": "ownvault.cli.files",
    "keys": "ownvault.cli.keys",
    "ls": "ownvault.cli.listing",
    "mount": "ownvault.cli.mount",
    "nft": "ownvault.cli.nft",
    "node": "ownvault.cli.node",
    "open": "ownvault.cli.keys",
    "pins": "ownvault.cli.publish",
    "policy": "ownvault.cli.admin",
    "provider": "ownvault.cli.admin",
    "providers": "ownvault.cli.files",
    "publish": "ownvault.cli.publish",
    "published": "ownvault.cli.publish",
    "put": "ownvault.cli.files",
    "rebalance": "ownvault.cli.admin",
    "recover": "ownvault.cli.keys",
    "repair": "ownvault.cli.health",
    "revoke": "ownvault.cli.keys",
    "rm": "ownvault.cli.files",
    "serve": "ownvault.cli.serve",
    "share": "ownvault.cli.keys",
    "status": "ownvault.cli.health",
    "tag": "ownvault.cli.keys",
    "ui": "ownvault.cli.serve",
    "unpublish": "ownvault.cli.publish",
    "verify-cid": "ownvault.cli.publish",
    "versions": "ownvault.cli.files",
}


class LazyGroup(click.Group):
    """A group whose commands are registered by modules imported on first use
    (:data:`COMMAND_MODULES`); ``--help`` and completion of the names import them all."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if cmd_name not in self.commands and module is not None:
            importlib.import_module(module)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@common
@click.version_option(package_name="ownvault")
def cli() -> None:
    """ownvault: keep your files encrypted, erasure-coded, on providers you choose."""


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among the options (before a ``--`` that ends them)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _fail(want_json: bool, code: str, message: str, exit_code: int, **context: str) -> int:
    """Report an error: ``ownvault: message`` on stderr, and with ``--json`` one document on
    stdout, ``{"error": {code, message, exit_code, ...context}}``. Returns ``exit_code``."""
    if want_json:
        body = {"error": {"code": code, "message": message, "exit_code": exit_code, **context}}
        sys.stdout.write(json.dumps(body, sort_keys=True) + "\n")
        sys.stdout.flush()
    click.echo(f"ownvault: {message}", err=True)
    return exit_code


def _usage_message(exc: click.UsageError) -> str:
    """Click's message, with the command it was about (``ownvault put: ...``)."""
    message = exc.format_message()
    if exc.ctx is not None and exc.ctx.command_path not in ("", "ownvault"):
        return f"{exc.ctx.command_path.removeprefix('ownvault ')}: {message}"
    return message


def run_cli(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code. The one place errors become exit codes.

    With ``--json``, every error (usage errors included) is one JSON document on stdout."""
    args = list(argv if argv is not None else sys.argv[1:])
    want_json = _wants_json(args)
    try:
        rv = cli.main(args=args, prog_name="ownvault", standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except click.exceptions.Abort:
        return _fail(want_json, "interrupted", "aborted", 130)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        if not want_json:  # a bare command group: its help, as click shows it
            click.echo(exc.format_message(), err=True)
            return 2
        return _fail(want_json, "usage", f"{exc.ctx.command_path}: missing command", 2)
    except click.UsageError as exc:
        return _fail(want_json, "usage", _usage_message(exc), 2)
    except click.ClickException as exc:
        return _fail(want_json, "usage", exc.format_message(), 2)
    except KeyboardInterrupt:
        return _fail(want_json, "interrupted", "interrupted", 130)
    except OwnvaultError as exc:
        return _fail(want_json, exc.code, exc.message, exit_code_for(exc), **exc.context())
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if not want_json:
            raise
        traceback.print_exc()
        return _fail(want_json, "internal", f"internal error (a bug: please report it): {exc!r}", 1)
    return 0
