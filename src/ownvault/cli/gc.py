"""``ownvault gc [--dry-run]``: give back the space of removed versions that no device's
committed state references any more, sweep the share objects no device names (orphans),
and say which devices hold back the rest.

Thin: ``vault.files.gc`` (``engine.store.gc``, docs/design.md "GC in the engine").
"""

from __future__ import annotations

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit, human_size, print_table
from ownvault.cli.session import run_with_vault


@cli.command(name="gc")
@common
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def gc_cmd(dry_run: bool) -> None:
    """Delete packs of removed versions once every device has seen the removal, and share
    objects no device's catalog names (orphans) once every device has seen them listed."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.gc(dry_run=dry_run))

    def human() -> None:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {len(result.packs)} pack(s), {human_size(result.bytes)}")
        swept = result.sweep
        if swept is not None and swept.providers:
            click.echo(
                f"orphan shares: {verb} {swept.objects} ({human_size(swept.bytes)}), "
                f"{swept.waiting} waiting for every device to write a record after the listing"
            )
            print_table(
                ("provider", "objects", "bytes", "waiting", "waiting bytes"),
                (
                    (
                        p.provider,
                        str(p.objects),
                        human_size(p.bytes),
                        str(p.waiting),
                        human_size(p.waiting_bytes),
                    )
                    for p in swept.providers
                ),
            )
        if not result.held_back:
            return
        click.echo("held back until these devices write a record after seeing the removals:")
        print_table(
            ("device", "name", "packs", "bytes"),
            (
                (
                    h.device[:12] + (" (this device)" if h.this_device else ""),
                    h.name,
                    str(h.packs),
                    human_size(h.bytes),
                )
                for h in result.held_back
            ),
        )
        click.echo("A device that will not come back: `ownvault devices revoke DEVICE`.")

    emit(ctx, result, human)
