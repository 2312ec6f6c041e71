"""File commands: init, put, get, ls, versions, rm, du, providers, check."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ownvault.cli.app import Ctx, cli, common, emit, get_ctx
from ownvault.core.crypto import Argon2Params
from ownvault.engine.store.shares import Problem
from ownvault.engine.vault import Vault, VaultOptions
from ownvault.errors import UsageError, exit_code_for_faults

T = TypeVar("T")

err_console = Console(stderr=True)
out_console = Console()


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def report_problem(p: Problem) -> None:
    warn(f"{p.kind} share {p.share} at provider {p.provider}: {p.message}")


def open_vault(ctx: Ctx) -> Vault:
    vault = Vault.open(ctx.vault, ctx.passphrase())
    vault.warn = warn
    vault.on_problem = report_problem
    return vault


def run_with_vault(ctx: Ctx, fn: Callable[[Vault], Awaitable[T]]) -> T:
    vault = open_vault(ctx)

    async def go() -> T:
        try:
            return await fn(vault)
        finally:
            await vault.close()

    return asyncio.run(go())


@contextlib.contextmanager
def progress_bar(ctx: Ctx, label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]] | tuple[None, None]]:
    """(advance, set_total) callbacks driving a progress bar on a terminal; none otherwise."""
    if ctx.json or not sys.stderr.isatty():
        yield None, None
        return
    with Progress(
        TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=err_console, transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield (lambda n: bar.advance(task, n)), (lambda t: bar.update(task, total=t))


def human_size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


@cli.command()
@common
@click.option("--phrase-file", type=click.Path(dir_okay=False), help="Write the recovery phrase to this file instead of showing it.")
@click.option("--providers", "providers", type=int, default=6, show_default=True, help="Embedded local-folder providers to create.")
@click.option("--k", "k", type=int, default=3, show_default=True, help="Shares needed to read (k).")
@click.option("--n", "n", type=int, default=None, help="Shares written per piece (n; default: --providers).")
def init(phrase_file: str | None, providers: int, k: int, n: int | None) -> None:
    """Create a vault: a recovery phrase, keys, and the embedded default providers."""
    ctx = get_ctx()
    if ctx.json and not phrase_file:
        raise UsageError("with --json, use --phrase-file: the phrase is never written to JSON output")
    passphrase = ctx.passphrase(confirm=True)
    kdf = Argon2Params()
    if os.environ.get("OWNVAULT_INSECURE_FAST_KDF") == "1":
        # For test suites only: documented in the README; never use for real data.
        kdf = Argon2Params(1, 8192, 1)
    phrase_fd = None
    if phrase_file:
        # Claim the file first: a vault whose phrase could not be written is not created.
        try:
            phrase_fd = os.open(phrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UsageError(f"--phrase-file exists already (never overwritten): {phrase_file}") from None
        except OSError as exc:
            raise UsageError(f"cannot create --phrase-file {phrase_file}: {exc.strerror}") from None
    try:
        vault = Vault.create(ctx.vault, passphrase, VaultOptions(providers=providers, k=k, n=n, kdf=kdf))
    except BaseException:
        if phrase_fd is not None:
            os.close(phrase_fd)
            os.unlink(phrase_file or "")
        raise
    phrase = vault.keys.phrase
    if phrase_fd is not None:
        with os.fdopen(phrase_fd, "w") as f:
            f.write(phrase + "\n")
            f.flush()
            os.fsync(f.fileno())
    try:
        asyncio.run(vault.ctx.push_catalog_safely())
        doc = {
            "vault": str(vault.path),
            "did": vault.did,
            "providers": providers,
            "k": vault.policy.k,
            "n": vault.policy.n,
            "phrase_file": phrase_file,
        }
    finally:
        asyncio.run(vault.close())

    def human() -> None:
        click.echo(f"Created vault at {doc['vault']}")
        click.echo(f"Identity: {doc['did']}")
        click.echo(f"Policy: any {doc['k']} of {doc['n']} shares on {providers} local folders")
        if phrase_file:
            click.echo(f"Recovery phrase written to {phrase_file}. Keep it offline; it is the only way back.")
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
def put(paths: tuple[str, ...], as_name: str | None, tags: tuple[str, ...]) -> None:
    """Store files and directory trees (a new version each time)."""
    ctx = get_ctx()
    for p in paths:
        if not os.path.lexists(p):
            raise UsageError(f"no such file or directory: {p}")

    async def go(vault: Vault) -> list[dict[str, Any]]:
        with progress_bar(ctx, "put") as (advance, set_total):
            results = await vault.files.put(list(paths), name=as_name, tags=list(tags), progress=advance, on_total=set_total)
        return [r.to_json() for r in results]

    results = run_with_vault(ctx, go)

    def human() -> None:
        for r in results:
            click.echo(
                f"stored {r['name']} v{r['version']} ({r['kind']}, {r['files']} file(s), "
                f"{human_size(r['size'])}; new {human_size(r['new_bytes'])})"
                + (f"  {r['cid']}" if r["cid"] else "")
            )

    emit(ctx, {"stored": results}, human)


def parse_range(text: str | None) -> tuple[int, int | None] | None:
    if text is None:
        return None
    try:
        a, _, b = text.partition("-")
        if not a:  # -N: the last N bytes, as in HTTP
            n = int(b)
            if n <= 0:
                raise ValueError
            return -n, None
        start = int(a)
        end = int(b) + 1 if b else None
    except ValueError:
        raise UsageError(f"--range wants A-B, A- or -N (bytes, inclusive), got {text!r}") from None
    if start < 0 or (end is not None and end <= start):
        raise UsageError(f"empty or invalid --range {text!r}")
    return start, end


def _get_to_stdout(ctx: Any, name: str, version: int | None, rng: tuple[int, int | None] | None) -> None:
    """Stream one stored file to standard output (nothing else is written there)."""

    async def go(vault: Vault) -> None:
        start, end = rng or (0, None)
        if start < 0:
            size = int((await vault.files.stat(name, version=version))["size"])
            start = max(0, size + start)
        out = sys.stdout.buffer
        async for piece in vault.files.read(name, version=version, start=start, end=end):
            await asyncio.to_thread(out.write, piece)
        await asyncio.to_thread(out.flush)

    run_with_vault(ctx, go)


@cli.command()
@common
@click.argument("name")
@click.option("-o", "--output", "out", type=click.Path(), help="Where to write (default: ./NAME's last part).")
@click.option("--version", "version", type=int, help="Version number (default: latest).")
@click.option("--range", "byte_range", help="Bytes A-B (inclusive) of a file; A- to the end; -N the last N.")
@click.option("--overwrite", is_flag=True, help="Replace existing files (never directories or devices).")
def get(name: str, out: str | None, version: int | None, byte_range: str | None, overwrite: bool) -> None:
    """Restore a file or tree, byte-identical, verifying everything read (-o - : to stdout)."""
    ctx = get_ctx()
    rng = parse_range(byte_range)
    if out == "-":
        _get_to_stdout(ctx, name, version, rng)
        return

    async def go(vault: Vault) -> dict[str, Any]:
        with progress_bar(ctx, "get") as (advance, set_total):
            return await vault.files.get(
                name, out, version=version, byte_range=rng, progress=advance,
                on_total=set_total, overwrite=overwrite,
            )

    result = run_with_vault(ctx, go)
    emit(ctx, result, lambda: click.echo(
        f"restored {result['name']} v{result['version']} -> {result['path']} "
        f"({result['files']} file(s), {human_size(result['bytes'])})"
    ))


@cli.command(name="ls")
@common
@click.argument("prefix", required=False, default="")
def ls_cmd(prefix: str) -> None:
    """List stored names (or the entries of a stored tree)."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.ls(prefix))

    def human() -> None:
        if "entries" in result:
            for e in result["entries"]:
                suffix = "/" if e["kind"] == "dir" else (f" -> {e['target']}" if e["kind"] == "symlink" else "")
                click.echo(f"{human_size(e['size']) if e['kind'] == 'file' else '':>10}  {e['path']}{suffix}")
            return
        table = Table(box=None)
        for col in ("name", "kind", "size", "versions", "tags", "cid"):
            table.add_column(col)
        for o in result["objects"]:
            table.add_row(o["name"], o["kind"], human_size(o["size"]), str(o["versions"]), ",".join(o["tags"]), o["cid"] or "")
        out_console.print(table)

    emit(ctx, result, human)


@cli.command()
@common
@click.argument("name")
def versions(name: str) -> None:
    """List the versions of a stored name."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.versions(name))

    def human() -> None:
        import datetime

        for v in result:
            when = datetime.datetime.fromtimestamp(v["created"]).isoformat(timespec="seconds")
            click.echo(f"v{v['version']:<4} {when}  {v['kind']:<4} {human_size(v['size']):>10}  {v['cid'] or ''}")

    emit(ctx, {"name": name, "versions": result}, human)


@cli.command()
@common
@click.argument("name")
@click.option("--version", "version", type=int, help="Remove only this version.")
def rm(name: str, version: int | None) -> None:
    """Remove a stored name (or one version); unneeded shares are deleted."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.rm(name, version=version))
    emit(ctx, result, lambda: click.echo(
        f"removed {result['versions_removed']} version(s) of {name}; {result['packs_deleted']} pack(s) freed"
    ))


@cli.command()
@common
def du() -> None:
    """Logical bytes, stored bytes, dedup ratio and expansion."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.files.du())

    def human() -> None:
        click.echo(f"names:          {result['objects']} ({result['versions']} versions)")
        click.echo(f"logical bytes:  {human_size(result['logical_bytes'])} (all versions)")
        click.echo(f"unique bytes:   {human_size(result['unique_bytes'])} (after dedup)")
        click.echo(f"stored bytes:   {human_size(result['stored_bytes'])} (all shares, all providers)")
        click.echo(f"dedup ratio:    {result['dedup_ratio']:.2f}x")
        click.echo(
            f"expansion:      {result['expansion']:.2f}x stored per unique byte "
            f"(k={result['policy']['k']}, n={result['policy']['n']}, pack padding included)"
        )

    emit(ctx, result, human)


@cli.command()
@common
def providers() -> None:
    """Each provider: kind, location, shares held, bytes, reachable or not."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.fleet.provider_status())

    def human() -> None:
        table = Table(box=None)
        for col in ("name", "kind", "jurisdiction", "reachable", "shares", "bytes", "free", "location"):
            table.add_column(col)
        for p in result:
            table.add_row(
                p["name"], p["kind"], p["jurisdiction"] or "-",
                "yes" if p["reachable"] else f"NO ({p['error']})",
                str(p["shares"]), human_size(p["bytes"]), human_size(p["free_bytes"]), p["location"],
            )
        out_console.print(table)

    emit(ctx, {"providers": result}, human)


@cli.command()
@common
@click.argument("name", required=False)
@click.option("--deep", is_flag=True, help="Read every share whole and verify it (slow: reads everything).")
def check(name: str | None, deep: bool) -> None:
    """Per file: shares present / needed, healthy or not, and what is missing where."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.health.deep_check(name) if deep else v.health.check(name))

    def human() -> None:
        for f in result["files"]:
            state = "healthy" if f["healthy"] else ("DEGRADED" if f["readable"] else "UNREADABLE")
            click.echo(
                f"{state:<10} {f['name']} v{f['version']}: {f['shares_present']}/{f['shares_total']} shares "
                f"(need {f['shares_needed']})"
            )
            for m in f["missing"]:
                click.echo(f"           {m.get('kind', 'missing')} share {m['share']} of pack {m['pack'][:12]} at {m['provider']}: {m['reason']}")
            if not f["policy_ok"]:
                click.echo("           placement breaks the policy: " + "; ".join(f["policy_violations"]))
        if result.get("deep"):
            click.echo(f"deep check: {result['shares_verified']} share(s) read whole, {result['shares_bad']} bad, "
                       f"{human_size(result['bytes_read'])} in {result['seconds']:.1f} s"
                       + ("; run `ownvault repair`" if result["shares_bad"] else ""))
        click.echo("vault: " + ("healthy" if result["healthy"] else "readable but degraded" if result["readable"] else "DATA AT RISK"))
        click.echo("policy: " + result["policy"] + (" (satisfied)" if result["policy_ok"] else " (NOT satisfied: run `ownvault rebalance`)"))

    emit(ctx, result, human)
    if not result["readable"]:
        raise click.exceptions.Exit(7)
    if result.get("deep") and (code := exit_code_for_faults(b["kind"] for b in result["bad"])):
        raise click.exceptions.Exit(code)
