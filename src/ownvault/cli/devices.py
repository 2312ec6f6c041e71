"""Device commands: ``devices`` (list), ``devices revoke DEVICE``, and ``log``.

Thin: each reads every device's journal chain from the providers through the engine
(``vault.keyring.devices``, ``revoke_device``, ``log``) and renders the result.
"""

from __future__ import annotations

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit, print_table, timestamp
from ownvault.cli.session import run_with_vault
from ownvault.errors import UsageError


def _when(wall_ms: int | None) -> str:
    return timestamp(None if wall_ms is None else wall_ms / 1000, sep=" ")


@cli.group(invoke_without_command=True)
@common
@click.pass_context
def devices(click_ctx: click.Context) -> None:
    """The vault's devices: id, name, last record, last seen, revoked (see `devices revoke`)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = get_ctx()
    found = run_with_vault(ctx, lambda v: v.keyring.devices())

    def human() -> None:
        print_table(
            ["DEVICE", "NAME", "LAST SEQ", "LAST SEEN", "STATE"],
            [
                [
                    d.id[:12],
                    d.name,
                    str(d.last_seq),
                    _when(d.last_seen),
                    (f"revoked after seq {d.revoked_after}" if d.revoked_after is not None else "")
                    + ("this device" if d.this_device else ""),
                ]
                for d in found
            ],
        )

    emit(ctx, {"devices": found}, human)


@devices.command("revoke")
@common
@click.argument("device")
def revoke(device: str) -> None:
    """Revoke DEVICE (an id prefix or a name): its later records are refused, and the
    content key is rotated. The recovery phrase itself is not revoked."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.keyring.revoke_device(device))

    def human() -> None:
        click.echo(
            f"Revoked device {result.device[:12]} ({result.name}) after its record "
            f"{result.last_seq}; content keys now at epoch {result.epoch}."
        )
        click.echo(
            "The recovery phrase is not revoked: whoever holds it derives every key of this "
            "vault. If the device held the phrase, move to a new vault."
        )

    emit(ctx, result, human)


@cli.command()
@common
@click.option("--limit", type=int, help="At most this many records (newest first).")
def log(limit: int | None) -> None:
    """Who changed what and when, newest first (one line per record)."""
    ctx = get_ctx()
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    entries = run_with_vault(ctx, lambda v: v.keyring.log(limit))

    def human() -> None:
        for e in entries:
            click.echo(
                f"{_when(e.wall_ms)}  {e.device_name} ({e.device[:8]}) #{e.seq}: "
                + "; ".join(e.ops)
            )

    emit(ctx, {"log": entries}, human)
