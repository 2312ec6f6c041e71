"""Provider and policy commands: provider add/ls/rm, policy show/set, rebalance."""

from __future__ import annotations

from typing import Any

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.parse import parse_csv, parse_labels
from ownvault.cli.render import emit, human_size, print_table, step_progress
from ownvault.cli.session import read_vault, run_with_vault
from ownvault.engine.fleet.results import PolicySet, ProviderAbandoned, ProviderRemoval
from ownvault.engine.store.placement import Policy
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError


@cli.group()
def provider() -> None:
    """Manage the providers that hold your shares."""


@provider.command(name="add")
@common
@click.argument("name")
@click.argument("url")
@click.option("--jurisdiction", help="Two-letter code of where this provider keeps data (e.g. DE).")
@click.option("--label", "labels", multiple=True, help="KEY=VALUE label (repeatable).")
@click.option(
    "--domain",
    help="Failure domain: the machine or disk it lives on (default: the URL's host; "
    "a local folder on this machine's disk: this-machine).",
)
@click.option(
    "--override-jurisdiction",
    is_flag=True,
    help="Keep --jurisdiction even when the storage node announces another one.",
)
@click.option("--endpoint", help="S3: the endpoint URL (Ceph RGW, MinIO, …); default AWS.")
@click.option("--region", help="S3: the region.")
@click.option("--aws-profile", help="S3: a named profile from the shared AWS config.")
@click.option("--profile", "aws_profile", hidden=True, deprecated="use --aws-profile")
@click.option("--access-key-env", help="S3: environment variable holding the access key id.")
@click.option("--secret-key-env", help="S3: environment variable holding the secret key.")
@click.option("--create-bucket", is_flag=True, help="S3: create the bucket if it does not exist.")
@click.option(
    "--token-env", help="IPFS pinning service: environment variable holding the bearer token."
)
def provider_add(
    name: str,
    url: str,
    jurisdiction: str | None,
    labels: tuple[str, ...],
    domain: str | None,
    override_jurisdiction: bool,
    endpoint: str | None,
    region: str | None,
    aws_profile: str | None,
    access_key_env: str | None,
    secret_key_env: str | None,
    create_bucket: bool,
    token_env: str | None,
) -> None:
    """Add a provider: file:///path (a local folder), http(s):// (a storage node),
    s3://BUCKET[/PREFIX], ipfs+kubo://HOST:PORT or ipfs+pinning://URL.

    Secrets are never stored: S3 credentials come from the usual AWS sources or from the
    environment variables named here, read each time the vault opens the provider."""
    ctx = get_ctx()
    config = {
        k: v
        for k, v in {
            "endpoint": endpoint,
            "region": region,
            "profile": aws_profile,
            "access_key_env": access_key_env,
            "secret_key_env": secret_key_env,
            "token_env": token_env,
        }.items()
        if v is not None
    }
    result = run_with_vault(
        ctx,
        lambda v: v.fleet.add_provider(
            name,
            url,
            jurisdiction=jurisdiction,
            labels=parse_labels(labels),
            config=config,
            create=create_bucket,
            domain=domain,
            override_jurisdiction=override_jurisdiction,
        ),
    )
    emit(
        ctx,
        result,
        lambda: click.echo(f"added provider {name} ({result.kind}, {result.location})"),
    )


@provider.command(name="ls")
@common
def provider_ls() -> None:
    """Each provider: kind, jurisdiction, failure domain, reachable, latency, shares, bytes,
    free space."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.fleet.provider_status())

    def human() -> None:
        print_table(
            (
                "name",
                "kind",
                "jurisdiction",
                "domain",
                "state",
                "reachable",
                "latency",
                "shares",
                "bytes",
                "free",
                "location",
            ),
            (
                (
                    p.name,
                    p.kind,
                    p.jurisdiction or "-",
                    p.domain or "-",
                    p.state,
                    "yes" if p.reachable else f"NO ({p.error})",
                    f"{p.latency_ms:.0f} ms" if p.latency_ms is not None else "-",
                    str(p.shares),
                    human_size(p.bytes),
                    human_size(p.free_bytes),
                    p.location,
                )
                for p in result
            ),
        )

    emit(ctx, {"providers": result}, human)


@provider.command(name="set")
@common
@click.argument("name")
@click.option("--jurisdiction", help="Two-letter code of where this provider keeps data.")
@click.option("--domain", help="Failure domain: the machine or disk it lives on.")
@click.option("--default-domain", is_flag=True, help="Drop the domain label (use the default).")
@click.option("--label", "labels", multiple=True, help="Set a KEY=VALUE label (repeatable).")
@click.option("--unlabel", "unlabel", multiple=True, help="Drop the label KEY (repeatable).")
def provider_set(
    name: str,
    jurisdiction: str | None,
    domain: str | None,
    default_domain: bool,
    labels: tuple[str, ...],
    unlabel: tuple[str, ...],
) -> None:
    """Change a provider's jurisdiction, failure domain or labels (then `ownvault rebalance`).

    The embedded folders (local-1 ...) are providers like any other: give them a
    jurisdiction here, or at `ownvault init --jurisdiction`."""
    ctx = get_ctx()
    result = run_with_vault(
        ctx,
        lambda v: v.fleet.set_provider(
            name,
            jurisdiction=jurisdiction,
            domain=domain,
            default_domain_=default_domain,
            labels=parse_labels(labels),
            unlabel=unlabel,
        ),
    )

    def human() -> None:
        tags = ", ".join(f"{k}={v}" for k, v in sorted(result.labels.items())) or "-"
        click.echo(
            f"{name}: jurisdiction {result.jurisdiction or '-'}, domain {result.domain or '-'}, "
            f"labels {tags}"
        )
        if result.packs_out_of_policy:
            click.echo(
                f"{result.packs_out_of_policy} stored piece(s) are now placed worse than "
                "they could be: run `ownvault rebalance`"
            )

    emit(ctx, result, human)


@provider.command(name="rm")
@common
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Remove now, abandoning its shares (files may become degraded)."
)
def provider_rm(name: str, force: bool) -> None:
    """Remove a provider after moving its shares elsewhere (or at once with --force)."""
    ctx = get_ctx()

    async def go(v: Vault) -> ProviderRemoval:
        with step_progress(ctx, "moving shares") as prog:
            return await v.fleet.remove_provider(name, force=force, progress=prog)

    result = run_with_vault(ctx, go)

    def human() -> None:
        if isinstance(result, ProviderAbandoned):
            click.echo(f"removed {name}; {result.shares_abandoned} share(s) abandoned")
            if result.unreadable:
                click.echo("WARNING: now unreadable: " + ", ".join(result.unreadable), err=True)
            if result.degraded:
                click.echo(
                    "warning: now degraded (run `ownvault rebalance` or repair): "
                    + ", ".join(result.degraded),
                    err=True,
                )
        else:
            click.echo(f"removed {name} after moving {result.shares_moved} share(s)")

    emit(ctx, result, human)


@cli.group()
def policy() -> None:
    """Show or set the placement policy."""


@policy.command(name="show")
@common
def policy_show() -> None:
    """The current placement policy."""
    ctx = get_ctx()

    result = read_vault(
        ctx, lambda v: {"policy": v.policy.to_dict(), "describe": v.policy.describe()}
    )
    emit(ctx, result, lambda: click.echo(result["describe"]))


@policy.command(name="set")
@common
@click.option("--k", "k", type=int, help="Shares needed to read.")
@click.option("--n", "n", type=int, help="Shares written per piece.")
@click.option("--jurisdictions", help="Only these jurisdictions (comma-separated codes).")
@click.option("--exclude", help="Never these jurisdictions (comma-separated codes).")
@click.option(
    "--max-per-jurisdiction", type=int, help="At most M shares of a piece per jurisdiction."
)
@click.option(
    "--max-per-provider",
    type=int,
    help="At most this many shares of a piece per provider (default 1).",
)
@click.option(
    "--survive-jurisdiction-loss/--no-survive-jurisdiction-loss",
    default=None,
    help="Losing every provider of any one jurisdiction leaves k shares of every piece.",
)
@click.option(
    "--survive-domain-loss/--no-survive-domain-loss",
    default=None,
    help="Require (not just prefer) that losing any one failure domain leaves k shares.",
)
@click.option(
    "--happy",
    type=int,
    help="A write succeeds while at least this many shares of each piece are placed (k..n).",
)
@click.option("--default-happy", is_flag=True, help="Back to the default happy (n-1, following n).")
def policy_set(
    k: int | None,
    n: int | None,
    jurisdictions: str | None,
    exclude: str | None,
    max_per_jurisdiction: int | None,
    max_per_provider: int | None,
    survive_jurisdiction_loss: bool | None,
    survive_domain_loss: bool | None,
    happy: int | None,
    default_happy: bool,
) -> None:
    """Change the placement policy (unset options keep their current value)."""
    ctx = get_ctx()
    if happy is not None and default_happy:
        raise UsageError("--happy and --default-happy exclude each other")

    async def go(v: Vault) -> PolicySet:
        cur = v.policy
        new = Policy(
            k if k is not None else cur.k,
            n if n is not None else cur.n,
            parse_csv(jurisdictions) if jurisdictions is not None else cur.jurisdictions,
            parse_csv(exclude) if exclude is not None else cur.exclude,
            max_per_jurisdiction if max_per_jurisdiction is not None else cur.max_per_jurisdiction,
            max_per_provider if max_per_provider is not None else cur.max_per_provider,
            survive_jurisdiction_loss
            if survive_jurisdiction_loss is not None
            else cur.survive_jurisdiction_loss,
            survive_domain_loss if survive_domain_loss is not None else cur.survive_domain_loss,
            None if default_happy else happy if happy is not None else cur.happy,
        )
        return await v.fleet.set_policy(new)

    result = run_with_vault(ctx, go)

    def human() -> None:
        click.echo("policy: " + result.describe)
        if result.packs_out_of_policy:
            click.echo(
                f"{result.packs_out_of_policy} stored piece(s) do not satisfy it yet: run `ownvault rebalance`"
            )

    emit(ctx, result, human)


@cli.command(name="rebalance")
@common
@click.option("--dry-run", is_flag=True, help="Only say what would move.")
def rebalance_cmd(dry_run: bool) -> None:
    """Move or re-create shares so every stored piece satisfies the current policy."""
    ctx = get_ctx()

    async def go(v: Vault) -> dict[str, Any]:
        with step_progress(ctx, "rebalance") as prog:
            report = await v.fleet.rebalance(progress=prog, dry_run=dry_run)
        return report.to_json()

    result = run_with_vault(ctx, go)

    def human() -> None:
        verb = "would move" if dry_run else "moved"
        click.echo(
            f"checked {result['packs_checked']} piece(s); {result['packs_changed']} out of policy; "
            f"{verb} {result['shares_moved']} share(s) ({result['shares_regenerated']} regenerated), "
            f"re-encoded {result['packs_reencoded']}"
        )
        for f in result["failures"]:
            click.echo(f"failed: {f}", err=True)

    emit(ctx, result, human)
    if result["failures"]:
        raise click.exceptions.Exit(6)
