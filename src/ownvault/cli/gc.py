"""``ownvault gc [--dry-run]``: give back the space of removed versions that no device's
committed state references any more, and say which devices hold back the rest.

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
    """Delete packs of removed versions once every device has seen the removal."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.gc(dry_run=dry_run))

    def human() -> None:
        verb = "would delete" if dry_run else "deleted"
        click.echo(f"{verb} {len(result.packs)} pack(s), {human_size(result.bytes)}")
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
