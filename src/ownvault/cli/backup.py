"""``ownvault backup``: add, ls, run, rm, forget, install-timer (engine: ``engine/backup``)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import ago, emit, human_size, print_table, timestamp
from ownvault.cli.session import read_vault, run_with_vault
from ownvault.cli.timer import ownvault_command, timer_files
from ownvault.core.retention import Duration, RetentionPolicy
from ownvault.engine.backup.conditions import Conditions
from ownvault.engine.backup.profile import BackupProfile
from ownvault.engine.backup.prune import ForgetResult
from ownvault.engine.backup.scheduler import parse_command
from ownvault.engine.backup.service import ProfileState
from ownvault.engine.store.catalog.backups import RunRow
from ownvault.engine.vault import Vault

__all__ = ["backup_group", "backup_line"]

Command = Callable[..., None]
KEEPS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


_KEEP_HELP = {
    "last": "Keep the N newest versions",
    "hourly": "Keep the newest version of each of the last N hours",
    "daily": "Keep the newest version of each of the last N days",
    "weekly": "Keep the newest version of each of the last N ISO weeks",
    "monthly": "Keep the newest version of each of the last N months",
    "yearly": "Keep the newest version of each of the last N years",
}


def retention_options(f: Command) -> Command:
    """``--keep-last N`` ... ``--keep-yearly N`` and ``--keep-within D``, as restic's."""
    for name in reversed(KEEPS):
        f = click.option(
            f"--keep-{name}",
            type=int,
            default=0,
            metavar="N",
            help=f"{_KEEP_HELP[name]} (-1: all).",
        )(f)
    return click.option(
        "--keep-within",
        default="",
        metavar="DURATION",
        help="Keep every version within this of the newest (e.g. 7d, 2m, 1y6m).",
    )(f)


def _policy(kw: dict[str, int | str]) -> RetentionPolicy:
    c = {n: int(kw[f"keep_{n}"]) for n in KEEPS}
    return RetentionPolicy(
        last=c["last"],
        hourly=c["hourly"],
        daily=c["daily"],
        weekly=c["weekly"],
        monthly=c["monthly"],
        yearly=c["yearly"],
        within=Duration.parse(str(kw["keep_within"])),
    )


def backup_line(run: RunRow) -> None:
    """One JSON line per backup run of ``ownvault daemon`` on standard output."""
    sys.stdout.write(json.dumps({"backup": run.to_json()}, sort_keys=True) + "\n")
    sys.stdout.flush()


@cli.group("backup")
def backup_group() -> None:
    """Folders kept safe on a schedule, pruned like ``restic forget --keep-*``."""


@backup_group.command("add")
@common
@click.argument("name")
@click.argument("source", type=click.Path(file_okay=False))
@click.option("--every", default="24h", show_default=True, help="Interval: 6h, 1d, 90m, 1h30m.")
@click.option("--as", "dest", metavar="NAME", help="Name in the vault (default: the profile's).")
@click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help="gitignore pattern.")
@click.option(
    "--exclude-file",
    type=click.Path(dir_okay=False),
    help="File of gitignore patterns (read at each run).",
)
@click.option(
    "--only-on-ac-power", is_flag=True, help="Scheduled runs wait while on battery power."
)
@click.option(
    "--only-if",
    metavar="CMD",
    help="Scheduled runs wait unless CMD (no shell) exits 0, e.g. a home-network check.",
)
@retention_options
def add(
    name: str,
    source: str,
    every: str,
    dest: str | None,
    excludes: tuple[str, ...],
    exclude_file: str | None,
    only_on_ac_power: bool,
    only_if: str | None,
    **keep: int | str,
) -> None:
    """Define a backup profile: SOURCE folder stored as NAME every --every."""
    ctx = get_ctx()
    policy = _policy(keep)
    conditions = Conditions(
        only_on_ac_power, parse_command(only_if, "--only-if") if only_if else ()
    )

    async def go(v: Vault) -> BackupProfile:
        return await v.backups.add(
            name,
            source,
            every=every,
            dest=dest,
            excludes=excludes,
            exclude_file=exclude_file,
            retention=policy,
            conditions=conditions,
        )

    p = run_with_vault(ctx, go)
    emit(
        ctx,
        p,
        lambda: click.echo(
            f"backup {p.name}: {p.source} -> {p.dest} every {p.to_json()['every']}, "
            f"{p.to_json()['retention_text']}"
        ),
    )


def _changed(run: dict[str, Any] | None) -> str:
    if run is None or run["result"] != "ok":
        return "-"
    return f"+{run['added']} ~{run['changed']} -{run['removed']}"


def _result(s: dict[str, Any]) -> str:
    run = s["last_run"]
    if run is None:
        return "never run"
    text = "ok" if run["result"] == "ok" else f"FAILED: {run['error']}"
    return text + (" (OVERDUE)" if s["overdue"] else "")


@backup_group.command("ls")
@common
def ls() -> None:
    """Profiles: last run, result, next run, size and what changed."""
    ctx = get_ctx()
    states: list[ProfileState] = read_vault(ctx, lambda v: v.backups.ls())
    doc = {"profiles": [s.to_json() for s in states]}
    now = time.time()

    def human() -> None:
        if not states:
            click.echo("no backup profiles (add one: ownvault backup add NAME FOLDER --every 6h)")
            return
        print_table(
            ("profile", "source", "every", "last run", "result", "next run", "size", "changed"),
            [
                (
                    p["name"],
                    p["source"],
                    p["every"],
                    "-" if p["last_run"] is None else ago(p["last_run"]["started"], now),
                    _result(p),
                    timestamp(p["next_run"], sep=" ", timespec="minutes"),
                    "-" if p["last_run"] is None else human_size(p["last_run"]["bytes"]),
                    _changed(p["last_run"]),
                )
                for p in doc["profiles"]
            ],
        )

    emit(ctx, doc, human)


@backup_group.command("run")
@common
@click.argument("name", required=False)
def run_cmd(name: str | None) -> None:
    """Run NAME now, or every profile that is due and whose conditions (--only-on-ac-power,
    --only-if) hold. Exit 1 if a run failed."""
    ctx = get_ctx()
    deferred: dict[str, str] = {}

    async def go(v: Vault) -> list[RunRow]:
        if name is not None:
            return [await v.backups.run(name)]
        out = []
        for s in v.backups.due():
            why = await v.backups.blocked(s.profile.name)
            if why is not None:
                deferred[s.profile.name] = why
            else:
                out.append(await v.backups.run(s.profile.name))
        return out

    runs = run_with_vault(ctx, go)

    def human() -> None:
        for n, why in deferred.items():
            click.echo(f"{n}: waiting: {why}")
        if not runs and not deferred:
            click.echo("no profile is due")
        for r in runs:
            if r.result == "ok":
                click.echo(
                    f"{r.profile}: version {r.version}, {r.files} files, {human_size(r.bytes)} "
                    f"({human_size(r.new_bytes)} new), +{r.added} ~{r.changed} -{r.removed}"
                    + (f", {r.forgotten} old version(s) forgotten" if r.forgotten else "")
                )
            else:
                click.echo(f"{r.profile}: FAILED: {r.error}", err=True)

    emit(ctx, {"runs": [r.to_json() for r in runs], "deferred": deferred}, human)
    if any(r.result == "failed" for r in runs):
        raise click.exceptions.Exit(1)


@backup_group.command("rm")
@common
@click.argument("name")
def rm(name: str) -> None:
    """Remove a profile and its run history (what it stored stays: `ownvault rm NAME`)."""
    ctx = get_ctx()
    run_with_vault(ctx, lambda v: v.backups.rm(name))
    emit(ctx, {"removed": name}, lambda: click.echo(f"removed backup profile {name}"))


@backup_group.command("forget")
@common
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Only show what would be kept and removed.")
def forget(name: str, dry_run: bool) -> None:
    """Apply NAME's retention now; --dry-run previews it."""
    ctx = get_ctx()
    res: ForgetResult = run_with_vault(ctx, lambda v: v.backups.forget(name, dry_run=dry_run))

    def human() -> None:
        click.echo(f"{res.name}: {res.policy}")
        print_table(
            ("version", "time", "", "why"),
            [
                (
                    str(k["version"]),
                    timestamp(k["time"], sep=" ", timespec="minutes"),
                    "keep",
                    ", ".join(k.get("reasons", [])),
                )
                for k in res.keep
            ]
            + [
                (
                    str(k["version"]),
                    timestamp(k["time"], sep=" ", timespec="minutes"),
                    "would remove" if res.dry_run else "removed",
                    "",
                )
                for k in res.remove
            ],
        )
        if not res.dry_run:
            click.echo(
                f"{res.packs_deleted} pack(s) deleted, {res.packs_repacked} repacked, "
                f"{human_size(res.bytes_freed)} freed"
            )

    emit(ctx, res, human)


@backup_group.command("install-timer")
@common
@click.option(
    "--check-every",
    default="15m",
    show_default=True,
    help="How often the timer runs `backup run` (each profile keeps its own interval).",
)
@click.option("--print", "to_stdout", is_flag=True, help="Print the files instead of writing them.")
@click.option(
    "--system",
    type=click.Choice(["auto", "systemd", "launchd"]),
    default="auto",
    show_default=True,
    help="Which service manager to write for (auto: launchd on macOS, else systemd).",
)
def install_timer(check_every: str, to_stdout: bool, system: str) -> None:
    """Write a systemd user timer (or a launchd agent on macOS) that runs due backups."""
    ctx = get_ctx()
    kind = system if system != "auto" else ("launchd" if sys.platform == "darwin" else "systemd")
    exe = ownvault_command(sys.argv[0], os.environ.get("OWNVAULT_EXE"))
    files = timer_files(kind, exe, Path(ctx.vault).absolute(), check_every)
    if to_stdout:
        for path, text in files:
            click.echo(f"# {path}\n{text}")
        return
    for path, text in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    doc = {"system": kind, "files": [str(p) for p, _ in files]}
    enable = (
        "systemctl --user daemon-reload && systemctl --user enable --now ownvault-backup.timer"
        if kind == "systemd"
        else f"launchctl load -w {files[0][0]}"
    )
    emit(
        ctx,
        {**doc, "enable": enable},
        lambda: click.echo(
            "wrote " + ", ".join(doc["files"]) + f"\nput OWNVAULT_PASSPHRASE=... in "
            f"{Path('~/.config/ownvault/backup.env')} (chmod 600), then: {enable}"
        ),
    )
