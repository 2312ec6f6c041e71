"""File commands: init, put, get, versions, rm, providers (``ls`` and ``du`` are in
``cli.listing``, ``check`` in ``cli.check``)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from ownvault.cli.app import Ctx, cli, common, get_ctx
from ownvault.cli.parse import parse_range
from ownvault.cli.render import (
    emit,
    human_size,
    print_table,
    progress_bar,
    timestamp,
    warn,
)
from ownvault.cli.session import kdf_params, run_open, run_with_vault
from ownvault.cli.textfiles import claim_new_file, write_claimed
from ownvault.errors import UsageError

if TYPE_CHECKING:
    from ownvault.engine.files.results import Restored
    from ownvault.engine.vault import Vault

# The engine and the passphrase checks are imported by the commands that need them: a put
# the files cache finds unchanged loads neither (``engine.files.reput``; the modules it
# must not load are listed in tests/cli/test_startup.py).


@cli.command()
@common
@click.option(
    "--phrase-file",
    type=click.Path(dir_okay=False),
    help="Write the recovery phrase to this file instead of showing it.",
)
@click.option(
    "--providers",
    "providers",
    type=int,
    default=6,
    show_default=True,
    help="Embedded local-folder providers to create.",
)
@click.option("--k", "k", type=int, default=3, show_default=True, help="Shares needed to read (k).")
@click.option(
    "--n", "n", type=int, default=None, help="Shares written per piece (n; default: --providers)."
)
@click.option(
    "--jurisdiction",
    help="Two-letter code of where this machine is: the embedded folders' jurisdiction.",
)
@click.option(
    "--device-name", help="This copy's name among the vault's devices (default: host name)."
)
def init(
    phrase_file: str | None,
    providers: int,
    k: int,
    n: int | None,
    jurisdiction: str | None,
    device_name: str | None,
) -> None:
    """Create a vault: a recovery phrase, keys, and the embedded default providers."""
    from ownvault.cli.strength import passphrase_warning  # noqa: PLC0415 - lazily, see above
    from ownvault.engine.vault import Vault, VaultOptions  # noqa: PLC0415

    ctx = get_ctx()
    if ctx.json and not phrase_file:
        raise UsageError(
            "with --json, use --phrase-file: the phrase is never written to JSON output"
        )
    passphrase = ctx.passphrase(confirm=True)
    # Claim the phrase file first: a vault whose phrase could not be written is not created.
    phrase_fd = claim_new_file(phrase_file, "--phrase-file") if phrase_file else None
    kdf = kdf_params()
    try:
        vault = Vault.create(
            ctx.vault,
            passphrase,
            VaultOptions(
                providers=providers,
                k=k,
                n=n,
                kdf=kdf,
                jurisdiction=jurisdiction,
                device_name=device_name,
            ),
        )
    except BaseException:
        if phrase_fd is not None:
            os.close(phrase_fd)
            os.unlink(phrase_file or "")
        raise
    phrase = vault.keys.phrase
    if phrase_fd is not None:
        write_claimed(phrase_fd, phrase + "\n")
    weak = passphrase_warning(passphrase, kdf)
    if weak:
        warn(weak)

    async def push(v: Vault) -> dict[str, Any]:
        await v.ctx.push_catalog_safely()
        return {
            "vault": str(v.path),
            "did": v.did,
            "providers": providers,
            "k": v.policy.k,
            "n": v.policy.n,
            "phrase_file": phrase_file,
            "warnings": [weak] if weak else [],
        }

    doc = run_open(vault, push)

    def human() -> None:
        click.echo(f"Created vault at {doc['vault']}")
        click.echo(f"Identity: {doc['did']}")
        click.echo(f"Policy: any {doc['k']} of {doc['n']} shares on {providers} local folders")
        if phrase_file:
            click.echo(
                f"Recovery phrase written to {phrase_file}. Keep it offline; it is the only way back."
            )
        else:
            click.echo("\nRecovery phrase (shown once; write it down and keep it offline):\n")
            click.echo("  " + phrase)
            click.echo()

    emit(ctx, doc, human)


@cli.command()
@common
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--as", "as_name", help="Store under this name (one path only).")
@click.option("--tag", "tags", multiple=True, help="Tag the stored name (repeatable).")
@click.option(
    "--force-read",
    is_flag=True,
    help="Read every file, even those the files cache knows unchanged since the last put.",
)
def put(
    paths: tuple[str, ...], as_name: str | None, tags: tuple[str, ...], force_read: bool
) -> None:
    """Store files and directory trees, each a new version of its name unless it is that
    name's latest version already (then nothing is written). A file whose size, mtime,
    ctime and inode are those a put read it with is not read again (the files cache)."""
    ctx = get_ctx()
    for p in paths:
        if not os.path.lexists(p):
            raise UsageError(f"no such file or directory: {p}")

    async def go(vault: Vault) -> list[dict[str, Any]]:
        with progress_bar(ctx, "put") as (advance, set_total):
            results = await vault.files.put(
                list(paths),
                name=as_name,
                tags=list(tags),
                progress=advance,
                on_total=set_total,
                force_read=force_read,
                if_changed=True,
            )
        return [r.to_json() for r in results]

    from ownvault.engine.files.reput import unchanged_put  # noqa: PLC0415 - lazily, see above

    found = None if force_read else unchanged_put(ctx.vault, paths, name=as_name, tags=tags)
    results = [r.to_json() for r in found] if found is not None else run_with_vault(ctx, go)

    def human() -> None:
        for r in results:
            verb = "stored" if r["new_version"] else "unchanged"
            click.echo(
                f"{verb} {r['name']} v{r['version']} ({r['kind']}, {r['files']} file(s), "
                f"{human_size(r['size'])}; new {human_size(r['new_bytes'])}"
                + (f", {r['unchanged']} unchanged not read" if r["unchanged"] else "")
                + ")"
                + (f"  {r['cid']}" if r["cid"] else "")
            )
            for u in r["under_replicated"]:
                click.echo(
                    f"  under-replicated: pack {u['pack'][:16]} has {u['placed']} of "
                    f"{u['wanted']} shares (missing {', '.join(map(str, u['missing']))}); "
                    "`ownvault repair` or the daemon completes it",
                    err=True,
                )

    emit(ctx, {"stored": results}, human)


def _get_to_stdout(
    ctx: Ctx, name: str, version: int | None, rng: tuple[int, int | None] | None
) -> None:
    """Stream one stored file to standard output (nothing else is written there)."""
    import asyncio  # noqa: PLC0415 - lazily (see the imports above)

    async def go(vault: Vault) -> None:
        start, end = rng or (0, None)
        if start < 0:
            size = (await vault.files.stat(name, version=version)).size
            start = max(0, size + start)
        out = sys.stdout.buffer
        async for piece in vault.files.read(name, version=version, start=start, end=end):
            await asyncio.to_thread(out.write, piece)
        await asyncio.to_thread(out.flush)

    run_with_vault(ctx, go)


@cli.command()
@common
@click.argument("name")
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Where to write (default: ./NAME's last part)."
)
@click.option("--version", "version", type=int, help="Version number (default: latest).")
@click.option(
    "--range", "byte_range", help="Bytes A-B (inclusive) of a file; A- to the end; -N the last N."
)
@click.option(
    "--overwrite", is_flag=True, help="Replace existing files (never directories or devices)."
)
def get(
    name: str, out: str | None, version: int | None, byte_range: str | None, overwrite: bool
) -> None:
    """Restore a file or tree, byte-identical, verifying everything read (-o - : to stdout)."""
    ctx = get_ctx()
    rng = parse_range(byte_range)
    if out == "-":
        _get_to_stdout(ctx, name, version, rng)
        return

    async def go(vault: Vault) -> Restored:
        with progress_bar(ctx, "get") as (advance, set_total):
            return await vault.files.get(
                name,
                out,
                version=version,
                byte_range=rng,
                progress=advance,
                on_total=set_total,
                overwrite=overwrite,
            )

    result = run_with_vault(ctx, go)
    emit(
        ctx,
        result,
        lambda: click.echo(
            f"restored {result.name} v{result.version} -> {result.path} "
            f"({result.files} file(s), {human_size(result.bytes)})"
        ),
    )


@cli.command()
@common
@click.argument("name")
def versions(name: str) -> None:
    """List the versions of a stored name."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.versions(name))

    def human() -> None:
        for v in result:
            when = timestamp(v.created)
            click.echo(
                f"v{v.version:<4} {when}  {v.kind:<4} {human_size(v.size):>10}  {v.cid or ''}"
            )

    emit(ctx, {"name": name, "versions": result}, human)


@cli.command()
@common
@click.argument("name")
@click.option("--version", "version", type=int, help="Remove only this version.")
def rm(name: str, version: int | None) -> None:
    """Remove a stored name (or one version); unneeded shares are deleted."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.rm(name, version=version))
    emit(
        ctx,
        result,
        lambda: click.echo(
            f"removed {result.versions_removed} version(s) of {name}; {result.packs_deleted} pack(s) freed"
        ),
    )


@cli.command()
@common
def providers() -> None:
    """Each provider: kind, location, shares held, bytes, reachable or not."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.fleet.provider_status())

    def human() -> None:
        print_table(
            ("name", "kind", "jurisdiction", "reachable", "shares", "bytes", "free", "location"),
            (
                (
                    p.name,
                    p.kind,
                    p.jurisdiction or "-",
                    "yes" if p.reachable else f"NO ({p.error})",
                    str(p.shares),
                    human_size(p.bytes),
                    human_size(p.free_bytes),
                    p.location,
                )
                for p in result
            ),
        )

    emit(ctx, {"providers": result}, human)
