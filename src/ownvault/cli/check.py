"""``ownvault check [--deep]``: per file, are its shares there, and the vault's verdict.

Apart from the file commands (``cli.files``), so that ``ls`` and ``du`` do not import the
health engine."""

from __future__ import annotations

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.render import emit, human_size, render_verdict
from ownvault.cli.session import run_with_vault
from ownvault.engine.health.check import BadShare, CheckReport
from ownvault.engine.health.deepcheck import DeepCheckReport
from ownvault.errors import exit_code_for_faults

__all__ = ["check"]


def _render_check(result: CheckReport) -> None:
    for f in result.files:
        # Per file: are its shares there (the vault's verdict, below, says more).
        state = "ok" if f.healthy else ("DEGRADED" if f.readable else "UNREADABLE")
        click.echo(
            f"{state:<10} {f.name} v{f.version}: {f.shares_present}/{f.shares_total} shares "
            f"(need {f.shares_needed})"
        )
        for m in f.missing:
            kind = m.kind if isinstance(m, BadShare) else "missing"
            click.echo(
                f"           {kind} share {m.share} of pack {m.pack[:12]} at {m.provider}: {m.reason}"
            )
        if not f.policy_ok:
            click.echo("           placement breaks the policy: " + "; ".join(f.policy_violations))
    if isinstance(result, DeepCheckReport):
        click.echo(
            f"deep check: {result.shares_verified} share(s) read whole, {result.shares_bad} bad, "
            f"{human_size(result.bytes_read)} in {result.seconds:.1f} s"
            + ("; run `ownvault repair`" if result.shares_bad else "")
        )
    render_verdict(result.health.to_json(), result.health.machine_loss.to_json())
    click.echo(
        "policy: "
        + result.policy
        + (" (satisfied)" if result.policy_ok else " (NOT satisfied: run `ownvault rebalance`)")
    )


@cli.command()
@common
@click.argument("name", required=False)
@click.option(
    "--deep", is_flag=True, help="Read every share whole and verify it (slow: reads everything)."
)
def check(name: str | None, deep: bool) -> None:
    """Per file: shares present / needed, healthy or not, and what is missing where."""
    ctx = get_ctx()
    result = run_with_vault(
        ctx, lambda v: v.health.deep_check(name) if deep else v.health.check(name)
    )
    emit(ctx, result, lambda: _render_check(result))
    if not result.readable:
        raise click.exceptions.Exit(7)
    if isinstance(result, DeepCheckReport) and (
        code := exit_code_for_faults(b.kind for b in result.bad)
    ):
        raise click.exceptions.Exit(code)
