"""Health commands: audit, repair, status, daemon (engine: audit, repair, status, maintenance)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.backup import backup_line
from ownvault.cli.parse import parse_duration, parse_listen, parse_size
from ownvault.cli.render import (
    ago,
    echo_lines,
    emit,
    human_size,
    pct,
    print_table,
    render_verdict,
    step_progress,
    timestamp,
)
from ownvault.cli.session import run_with_vault
from ownvault.engine.backup.scheduler import parse_command
from ownvault.engine.health.audit import DEFAULT_BLOCKS, AuditSample
from ownvault.engine.health.status import VaultStatus
from ownvault.engine.maintenance import MaintenanceConfig, MaintenanceState, maintain
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError


def _when(ts: float | None) -> str:
    return timestamp(ts, sep=" ", none="never")


def _sample(blocks: int | None, sample: float | None) -> AuditSample:
    if blocks is not None and sample is not None:
        raise UsageError("give --blocks or --sample, not both")
    if sample is not None:
        return AuditSample(None, sample)
    return AuditSample(blocks if blocks is not None else DEFAULT_BLOCKS)


def _render_audit(result: dict[str, Any]) -> None:
    print_table(
        (
            "provider",
            "verdict",
            "passed",
            "failed",
            "unreach.",
            "missing",
            "holds >=",
            "bytes",
            "via",
        ),
        (
            (
                p["provider"],
                p["verdict"].upper() if p["verdict"] == "failing" else p["verdict"],
                f"{p['passed']}/{p['challenges']}",
                str(p["failed"]),
                str(p["unreachable"]),
                f"{p['missing_shares']}/{p['shares']}",
                pct(p["holds_at_least"]),
                human_size(p["bytes"]),
                p["method"],
            )
            for p in result["providers"]
        ),
        no_wrap=True,
    )
    for p in result["providers"]:
        for f in p["faults"][:5]:
            click.echo(f"  {p['provider']}: {f['kind']} share {f['share']}: {f['detail']}")
        if p["faults_total"] > 5:
            click.echo(f"  {p['provider']}: … {p['faults_total'] - 5} more")
        if p["error"]:
            click.echo(f"  {p['provider']}: {p['error']}")
    click.echo(
        f"audit #{result['run']}: {result['challenges']} challenge(s), {human_size(result['bytes'])} "
        f"in {result['seconds']:.1f} s; 'holds >=' is a {int(100 * 0.95)}% confidence lower bound"
    )
    if result["at_fault"]:
        click.echo(
            "AT FAULT: " + ", ".join(result["at_fault"]) + " (run `ownvault repair`)", err=True
        )
    if result["unreachable"]:
        click.echo("unreachable: " + ", ".join(result["unreachable"]), err=True)


@cli.command()
@common
@click.option(
    "--provider", "providers", multiple=True, help="Audit only this provider (repeatable)."
)
@click.option(
    "--blocks", type=int, help=f"Blocks to challenge per provider (default {DEFAULT_BLOCKS})."
)
@click.option("--sample", type=float, help="Fraction of each provider's blocks to challenge (0-1].")
def audit(providers: tuple[str, ...], blocks: int | None, sample: float | None) -> None:
    """Challenge providers on random blocks of their shares; record the results."""
    ctx = get_ctx()
    chosen = _sample(blocks, sample)

    async def go(v: Vault) -> dict[str, Any]:
        return (await v.health.audit(providers=list(providers) or None, sample=chosen)).to_json()

    result = run_with_vault(ctx, go)
    emit(ctx, result, lambda: _render_audit(result))
    if result["at_fault"]:
        raise click.exceptions.Exit(5)
    if result["unreachable"]:
        raise click.exceptions.Exit(6)


def _render_repair(result: dict[str, Any], dry_run: bool) -> None:
    verb = "would regenerate" if dry_run else "regenerated"
    echo_lines(
        f"{verb} share {a['share']} of pack {a['pack'][:12]} ({a['from']}: {a['reason']}) "
        + ("in place" if a["in_place"] else f"-> {a['to']}")
        for a in result["actions"]
    )
    if dry_run:
        click.echo(
            f"{result['packs_damaged']} damaged piece(s), {result['shares_bad']} bad share(s); nothing written"
        )
    else:
        click.echo(
            f"checked {result['packs_checked']} piece(s): {result['packs_damaged']} damaged, "
            f"{result['shares_regenerated']} share(s) regenerated ({result['shares_rewritten_in_place']} in place, "
            f"{result['shares_moved']} elsewhere), {result['shares_verified_ok']} suspect share(s) verified fine; "
            f"read {human_size(result['bytes_read'])}, wrote {human_size(result['bytes_written'])}"
        )
    if (
        result["shares_completed"]
        or result["under_replicated_left"]
        or result["snapshot_rewritten"]
    ):
        click.echo(
            f"under-replicated: {result['shares_completed']} share(s) completed, "
            f"{result['under_replicated_left']} piece(s) still short of n"
            + ("; catalog snapshot rewritten" if result["snapshot_rewritten"] else "")
        )
    if result["journal_records_copied"]:
        click.echo(
            f"journal: {result['journal_records_copied']} record(s) copied to stale providers"
        )
    echo_lines((f"failed: {f}" for f in result["failures"]), err=True)
    if result["lost"]:
        click.echo(
            f"DATA LOST: {len(result['lost'])} piece(s) have fewer than k good shares.", err=True
        )
        for p in result["lost"]:
            for v in p["versions"]:
                paths = f" ({', '.join(v['paths'][:5])})" if v["paths"] else ""
                click.echo(
                    f"  LOST {v['name']} v{v['version']}{paths}: pack {p['pack_id'][:12]} has "
                    f"{p['good_shares']} of {p['k']} shares needed",
                    err=True,
                )
        click.echo(
            "  If an unreachable provider comes back, run `ownvault repair` again.", err=True
        )


@cli.command()
@common
@click.option("--dry-run", is_flag=True, help="Only say what would be regenerated, and where.")
def repair(dry_run: bool) -> None:
    """Regenerate missing or corrupt shares from k good ones; report what is lost."""
    ctx = get_ctx()

    async def go(v: Vault) -> dict[str, Any]:
        with step_progress(ctx, "repair") as prog:
            report = await v.health.repair(dry_run=dry_run, progress=prog)
        return report.to_json()

    result = run_with_vault(ctx, go)
    emit(ctx, result, lambda: _render_repair(result, dry_run))
    if result["lost"]:
        raise click.exceptions.Exit(7)
    if result["failures"]:
        raise click.exceptions.Exit(6)


def _render_status(result: VaultStatus) -> None:
    v = result.health
    render_verdict(v.to_json(), v.machine_loss.to_json())
    click.echo(f"{v.pieces} piece(s); policy: {result.policy}")
    if v.pieces_degraded:
        click.echo(
            f"pieces: {v.pieces_degraded} degraded, {v.pieces_at_risk} at risk "
            f"(exactly k good shares), {v.pieces_lost} lost"
        )
    if v.at_risk_names:
        click.echo("at risk: " + ", ".join(v.at_risk_names[:10]))
    if v.lost_names:
        click.echo("LOST: " + ", ".join(v.lost_names[:10]))
    rows = []
    for p in result.providers:
        a = p.last_audit
        rows.append(
            (
                p.name,
                p.state,
                ("yes" if p.reachable else "NO") + (" (STALE)" if p.stale else ""),
                str(p.shares),
                str(p.known_bad_shares),
                ago(a.at) if a else "never",
                (a.verdict.upper() if a.verdict != "ok" else "ok") + f" {a.passed}/{a.challenges}"
                if a
                else "-",
                pct(a.holds_at_least) if a else "-",
            )
        )
    print_table(
        ("provider", "state", "reachable", "shares", "bad", "last audit", "result", "holds >="),
        rows,
        no_wrap=True,
    )
    audit, deep, last = result.last_audit, result.last_deep_check, result.last_repair
    click.echo(
        f"last audit: {_when(audit.finished_at) if audit else 'never'}; "
        f"last deep check: {_when(deep.finished_at) if deep else 'never'}; "
        f"last repair: {_when(last.finished_at) if last else 'never'}"
    )
    click.echo("to do:")
    for line in v.advice:
        click.echo(f"  - {line}")


@cli.command()
@common
def status() -> None:
    """One screen: is the vault healthy, what is at risk, what to do."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.health.status())
    emit(ctx, result, lambda: _render_status(result))
    if result.health.pieces_lost:
        raise click.exceptions.Exit(7)


def _round_line(s: MaintenanceState) -> None:
    """One JSON line per maintenance round on standard output."""
    v = None if s.health is None else s.health.health
    line = {
        "round": s.rounds,
        "verdict": None if v is None else v.legacy_name,
        "state": None if v is None else v.state,
        "stale": [] if v is None else [p.name for p in v.stale_providers],
        "audit_at_fault": None if s.last_audit is None else s.last_audit.at_fault,
        "repaired": (s.last_repair or {}).get("shares_regenerated"),
        "lost": (s.last_repair or {}).get("lost_names"),
        "budget_used": s.budget_used,
        "error": s.last_error,
    }
    sys.stdout.write(json.dumps(line, sort_keys=True) + "\n")
    sys.stdout.flush()


@contextlib.asynccontextmanager
async def _metrics_server(
    listen: tuple[str, int] | None, shown_as: str, state: MaintenanceState
) -> AsyncIterator[None]:
    """Serve ``GET /metrics`` on ``listen`` (when given) while the body runs.

    uvicorn and the Starlette app are imported here, only when metrics are asked for: they
    cost a daemon without ``--metrics-listen`` (and every other command) start-up time."""
    if listen is None:
        yield
        return
    import uvicorn

    from ownvault.server.maintenance import metrics_app

    family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(listen)
    except OSError as exc:
        raise UsageError(f"cannot listen on {shown_as}: {exc.strerror}") from None
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(metrics_app(state), log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    shown = f"[{listen[0]}]" if family == socket.AF_INET6 else listen[0]
    sys.stdout.write(json.dumps({"metrics": f"http://{shown}:{port}/metrics"}) + "\n")
    sys.stdout.flush()
    try:
        yield
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


@cli.command()
@common
@click.option(
    "--audit-every", default="6h", show_default=True, help="Time between audits (jittered)."
)
@click.option(
    "--repair-every",
    default="24h",
    show_default=True,
    help="Time between repairs (and after an audit finds faults).",
)
@click.option(
    "--budget",
    default="2GiB",
    show_default=True,
    help="Bytes per day audits and repairs may move ('none': unlimited).",
)
@click.option(
    "--blocks", type=int, help=f"Blocks to challenge per provider (default {DEFAULT_BLOCKS})."
)
@click.option("--sample", type=float, help="Fraction of each provider's blocks to challenge.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="Leave shares of a provider unreachable for less than this.",
)
@click.option(
    "--jitter",
    default=0.25,
    show_default=True,
    help="Random stretch of each interval, as a fraction.",
)
@click.option("--metrics-listen", help="Serve Prometheus metrics on HOST:PORT (GET /metrics).")
@click.option(
    "--first-delay",
    default="60s",
    show_default=True,
    help="Start the first audit within this time (random).",
)
@click.option(
    "--on-failure",
    metavar="CMD",
    help="Run CMD (no shell) when a backup fails or is overdue; OWNVAULT_BACKUP_* describe it.",
)
@click.option("--rounds", type=int, hidden=True, help="Stop after this many rounds (tests).")
def daemon(
    audit_every: str,
    repair_every: str,
    budget: str,
    blocks: int | None,
    sample: float | None,
    grace: str,
    jitter: float,
    metrics_listen: str | None,
    first_delay: str,
    on_failure: str | None,
    rounds: int | None,
) -> None:
    """Audit, repair and run due backup profiles on a schedule until interrupted (one JSON
    line per round and per backup run on stdout)."""
    ctx = get_ctx()
    config = MaintenanceConfig(
        audit_interval=parse_duration(audit_every),
        repair_interval=parse_duration(repair_every),
        jitter=jitter,
        budget_bytes_per_day=None if budget.lower() == "none" else parse_size(budget),
        sample=_sample(blocks, sample),
        unreachable_grace=parse_duration(grace),
        first_delay=parse_duration(first_delay),
        backups=True,
        on_failure=parse_command(on_failure) if on_failure else (),
    )
    listen = parse_listen(metrics_listen, option="--metrics-listen") if metrics_listen else None
    state = MaintenanceState()

    async def go(vault: Vault) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with _metrics_server(listen, metrics_listen or "", state):
            await maintain(
                vault.ctx,
                config,
                state,
                stop=stop,
                rounds=rounds,
                on_round=_round_line,
                on_backup=backup_line,
            )

    run_with_vault(ctx, go)
