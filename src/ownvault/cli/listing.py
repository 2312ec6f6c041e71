"""Listing commands that read only the local catalog: ``ls`` and ``du``.

They run without the passphrase (no key is needed to read the plaintext local catalog;
docs/design.md, "Threat model") and import neither the crypto libraries nor the engine
beyond the catalog, so they start fast.
"""

from __future__ import annotations

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit, human_size, print_table
from ownvault.cli.session import read_catalog
from ownvault.engine.files.listing import list_objects, usage
from ownvault.engine.files.results import TreeListing


@cli.command(name="ls")
@common
@click.argument("prefix", required=False, default="")
def ls_cmd(prefix: str) -> None:
    """List stored names (or the entries of a stored tree)."""
    ctx = get_ctx()
    result = read_catalog(ctx, lambda catalog: list_objects(catalog, prefix))

    def human() -> None:
        if isinstance(result, TreeListing):
            for e in result.entries:
                suffix = (
                    "/" if e.kind == "dir" else (f" -> {e.target}" if e.kind == "symlink" else "")
                )
                click.echo(
                    f"{human_size(e.size) if e.kind == 'file' else '':>10}  {e.path}{suffix}"
                )
            return
        print_table(
            ("name", "kind", "size", "versions", "tags", "cid"),
            (
                (o.name, o.kind, human_size(o.size), str(o.versions), ",".join(o.tags), o.cid or "")
                for o in result.objects
            ),
        )

    emit(ctx, result, human)


@cli.command()
@common
def du() -> None:
    """Logical bytes, stored bytes, dedup ratio and expansion."""
    ctx = get_ctx()
    result = read_catalog(ctx, usage)

    def human() -> None:
        click.echo(f"names:          {result.objects} ({result.versions} versions)")
        click.echo(f"logical bytes:  {human_size(result.logical_bytes)} (all versions)")
        click.echo(f"unique bytes:   {human_size(result.unique_bytes)} (after dedup)")
        click.echo(f"stored bytes:   {human_size(result.stored_bytes)} (all shares, all providers)")
        click.echo(f"dedup ratio:    {result.dedup_ratio:.2f}x")
        click.echo(
            f"expansion:      {result.expansion:.2f}x stored per unique byte "
            f"(k={result.policy.k}, n={result.policy.n}, pack padding included)"
        )

    emit(ctx, result, human)
