"""Key commands: recover, keys (guardians/phrase/passphrase/rotate), identity, contacts,
share, grants, revoke, open, forget, tag policy.

Secrets (the phrase, guardian shares, the entropy, any key) never go to ``--json`` output:
commands that reveal one either print it for a person on a terminal or write it to a new
0600 file whose path the JSON names.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

import click

from ownvault.cli.app import cli, common, get_ctx
from ownvault.cli.mount import mount_grant_dir
from ownvault.cli.parse import parse_expiry
from ownvault.cli.render import emit, timestamp, warn
from ownvault.cli.session import kdf_params, new_passphrase, read_vault, run_with_vault
from ownvault.cli.strength import passphrase_warning
from ownvault.cli.textfiles import read_small, write_secret
from ownvault.core.crypto import Argon2Params
from ownvault.core.grants import Grant
from ownvault.core.guardians import GuardianGroup, combine_guardian_shares, parse_share_text
from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.keyring import PassphraseChange
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.sharing.contacts import TagPolicy
from ownvault.engine.sharing.reader import SharedItem, SharedRestore, open_grant
from ownvault.engine.store.outdir import output_file
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError

# -- recover --------------------------------------------------------------------------------


@cli.command()
@common
@click.option(
    "--phrase-file",
    type=click.Path(dir_okay=False),
    help="File holding the 24-word recovery phrase.",
)
@click.option(
    "--guardian-shares",
    "guardians",
    is_flag=True,
    help="Recover from SLIP-39 guardian share files (given as arguments).",
)
@click.argument("share_files", nargs=-1, type=click.Path(dir_okay=False))
@click.option(
    "--provider",
    "providers",
    multiple=True,
    required=True,
    metavar="URL|NAME=URL",
    help="A provider of the vault (repeatable; one is enough to find the rest).",
)
@click.option(
    "--device-name", help="This copy's name among the vault's devices (default: host name)."
)
def recover(
    phrase_file: str | None,
    guardians: bool,
    share_files: tuple[str, ...],
    providers: tuple[str, ...],
    device_name: str | None,
) -> None:
    """Rebuild the vault here from the phrase (or guardian shares) and its providers."""
    ctx = get_ctx()
    if bool(phrase_file) == guardians:
        raise UsageError("give exactly one of --phrase-file F or --guardian-shares F1 F2 ...")
    if guardians:
        if not share_files:
            raise UsageError("--guardian-shares needs the share files")
        mnemonics = [
            m for f in share_files for m in parse_share_text(read_small(f, "guardian share file"))
        ]
        entropy = combine_guardian_shares(mnemonics)
    else:
        if share_files:
            raise UsageError(f"unexpected arguments: {' '.join(share_files)}")
        entropy = phrase_to_entropy(read_small(phrase_file or "", "phrase file"))
    passphrase = ctx.passphrase(confirm=True)
    kdf = kdf_params()
    result = asyncio.run(
        recover_vault(
            ctx.vault, entropy, passphrase, list(providers), kdf=kdf, device_name=device_name
        )
    )
    weak = passphrase_warning(passphrase, kdf)
    if weak:
        result = replace(result, warnings=(*result.warnings, weak))
        if ctx.json:  # the human rendering says every warning of the result
            warn(weak)

    def human() -> None:
        when = timestamp(result.created, sep=" ", none="at an unknown time")
        click.echo(
            f"Recovered vault at {result.path} (catalog snapshot {result.seq}, written {when})"
        )
        for w in result.warnings:
            warn(w)
        click.echo(f"Identity: {result.did}")
        click.echo(f"{result.objects} name(s), {result.versions} version(s)")
        for p in result.providers:
            state = (
                "ok"
                if p.reachable
                else ("MISSING (set to draining)" if p.missing else "unreachable")
            )
            click.echo(f"  {p.name:<16} {state:<26} {p.url}")

    emit(ctx, result, human)


# -- keys -----------------------------------------------------------------------------------


@cli.group()
@common
def keys() -> None:
    """Recovery phrase, guardian shares, passphrase, content-key rotation."""


@keys.command()
@common
@click.option("--threshold", type=int, help="Shares needed to recover (one group).")
@click.option("--shares", "count", type=int, help="Shares to make (one group).")
@click.option("--groups", help="Several groups instead: e.g. '2of3,3of5' (with --group-threshold).")
@click.option(
    "--group-threshold",
    type=int,
    default=1,
    show_default=True,
    help="Groups needed (with --groups).",
)
@click.option(
    "-o",
    "--output",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Write each share to its own 0600 file in this directory.",
)
@click.option(
    "--out-dir", "out_dir", type=click.Path(file_okay=False), hidden=True, deprecated="use --output"
)
def guardians(
    threshold: int | None,
    count: int | None,
    groups: str | None,
    group_threshold: int,
    out_dir: str | None,
) -> None:
    """Split the recovery secret into SLIP-39 guardian shares (any T recover the vault)."""
    ctx = get_ctx()
    if groups:
        if threshold is not None or count is not None:
            raise UsageError("use either --threshold/--shares or --groups")
        specs = [GuardianGroup.parse(g) for g in groups.split(",")]
    else:
        if threshold is None or count is None:
            raise UsageError("give --threshold T --shares N (or --groups)")
        specs = [GuardianGroup(threshold, count)]
        group_threshold = 1
    if ctx.json and not out_dir:
        raise UsageError("with --json, use --output: shares are never written to JSON output")
    shares = read_vault(ctx, lambda v: v.keyring.guardian_shares(specs, group_threshold))
    files: list[list[str]] = []
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        for gi, group in enumerate(shares, 1):
            files.append([])
            for si, mnemonic in enumerate(group, 1):
                path = os.path.join(out_dir, f"guardian-g{gi}-{si}.txt")
                write_secret(
                    path,
                    f"# ownvault guardian share (SLIP-39), group {gi}, share {si}\n{mnemonic}\n",
                )
                files[-1].append(path)
    doc = {
        "group_threshold": group_threshold,
        "groups": [
            {"threshold": g.threshold, "shares": g.count, "files": files[i] if files else None}
            for i, g in enumerate(specs)
        ],
    }

    def human() -> None:
        click.echo(f"SLIP-39 guardian shares: any {group_threshold} of {len(specs)} group(s)")
        for gi, (spec, group) in enumerate(zip(specs, shares, strict=True), 1):
            click.echo(f"\nGroup {gi}: any {spec.threshold} of {spec.count}")
            for si, mnemonic in enumerate(group, 1):
                if files:
                    click.echo(f"  share {si}: {files[gi - 1][si - 1]}")
                else:
                    click.echo(f"  share {si}: {mnemonic}")
        click.echo(
            "\nGive each share to a different guardian. Fewer than the threshold reveal nothing."
        )

    emit(ctx, doc, human)


@keys.command()
@common
@click.option(
    "--phrase-file",
    "to_file",
    type=click.Path(dir_okay=False),
    help="Write the phrase to this new 0600 file.",
)
@click.option(
    "--to-file",
    "to_file",
    type=click.Path(dir_okay=False),
    hidden=True,
    deprecated="use --phrase-file",
)
def phrase(to_file: str | None) -> None:
    """Show the 24-word recovery phrase again (after the passphrase)."""
    ctx = get_ctx()
    if ctx.json and not to_file:
        raise UsageError("with --json, use --to-file: the phrase is never written to JSON output")
    words, did = read_vault(ctx, lambda v: (v.keys.phrase, v.did))
    if to_file:
        write_secret(to_file, words + "\n")
    emit(
        ctx,
        {"phrase_file": to_file, "did": did},
        lambda: click.echo(
            f"Recovery phrase written to {to_file}" if to_file else "\n  " + words + "\n"
        ),
    )


@keys.command()
@common
def passphrase() -> None:
    """Change the local passphrase (new one from OWNVAULT_NEW_PASSPHRASE or a prompt)."""
    ctx = get_ctx()
    old = ctx.passphrase()

    async def go(v: Vault) -> tuple[PassphraseChange, str]:
        new = new_passphrase("OWNVAULT_NEW_PASSPHRASE")
        kdf = kdf_params() if os.environ.get("OWNVAULT_INSECURE_FAST_KDF") == "1" else None
        return await v.keyring.change_passphrase(old, new, kdf), new

    result, new = run_with_vault(ctx, go, passphrase=old)
    cost = result.kdf
    weak = passphrase_warning(new, Argon2Params(cost.time_cost, cost.memory_kib, cost.parallelism))
    if weak:
        warn(weak)
    doc = {**asdict(result), "warnings": [weak] if weak else []}
    emit(ctx, doc, lambda: click.echo("Passphrase changed."))


@keys.command()
@common
@click.option(
    "--rewrap", is_flag=True, help="Also re-wrap every existing chunk key under the new epoch."
)
def rotate(rewrap: bool) -> None:
    """Start a new content-key epoch for chunk keys written from now on."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.keyring.rotate_content_key(rewrap=rewrap))
    emit(
        ctx,
        result,
        lambda: click.echo(
            f"Content keys now at epoch {result.epoch}"
            + (f"; {result.rewrapped} chunk key(s) re-wrapped" if rewrap else "")
        ),
    )


# -- identity and contacts -----------------------------------------------------------------------


@cli.command()
@common
@click.option("--name", help="A name to put on the contact card.")
@click.option(
    "--card",
    "card_out",
    type=click.Path(dir_okay=False),
    help="Write the contact card (JSON) to this file.",
)
def identity(name: str | None, card_out: str | None) -> None:
    """This vault's did:key, its X25519 key-agreement key, and its public contact card."""
    ctx = get_ctx()
    ident = read_vault(ctx, lambda v: v.sharing.identity(name))
    doc: dict[str, object] = asdict(ident)
    if card_out:
        with output_file(card_out) as f:
            f.write((json.dumps(ident.card, indent=2, sort_keys=True) + "\n").encode())
        doc["card_file"] = card_out

    def human() -> None:
        click.echo(f"did:       {ident.did}")
        click.echo(f"agreement: {ident.agreement} (X25519)")
        click.echo(
            f"card:      {card_out}"
            if card_out
            else json.dumps(ident.card, indent=2, sort_keys=True)
        )

    emit(ctx, doc, human)


@cli.group()
@common
def contacts() -> None:
    """People and services you share with (their public contact cards)."""


@contacts.command(name="add")
@common
@click.argument("card", type=click.Path(dir_okay=False, exists=True))
@click.option("--name", help="Your name for this contact (default: the card's).")
def contacts_add(card: str, name: str | None) -> None:
    """Import a contact card (its signature is verified)."""
    ctx = get_ctx()
    text = read_small(card, "contact card")
    doc = run_with_vault(ctx, lambda v: v.sharing.add_contact(text, name))
    emit(ctx, doc, lambda: click.echo(f"added contact {doc.name or ''} {doc.did}"))


@contacts.command(name="ls")
@common
def contacts_ls() -> None:
    """List contacts."""
    ctx = get_ctx()
    rows = read_vault(ctx, lambda v: v.sharing.contacts())

    def human() -> None:
        for r in rows:
            click.echo(f"{r.name or '-':<20} {r.did}")

    emit(ctx, {"contacts": rows}, human)


@contacts.command(name="rm")
@common
@click.argument("who")
def contacts_rm(who: str) -> None:
    """Remove a contact (grants already made stay until revoked)."""
    ctx = get_ctx()

    run_with_vault(ctx, lambda v: v.sharing.remove_contact(who))
    emit(ctx, {"removed": who}, lambda: click.echo(f"removed contact {who}"))


# -- tag policies -------------------------------------------------------------------------------


def _tag_group() -> click.Group:
    existing = cli.commands.get("tag")
    if isinstance(existing, click.Group):
        return existing

    @cli.group(name="tag")
    @common
    def tag_group() -> None:
        """Tags and their policies."""

    return tag_group


@_tag_group().command(name="policy")
@common
@click.argument("tag")
@click.option(
    "--never-share/--allow-share",
    "never_share",
    default=None,
    help="Refuse (or allow again) sharing data with this tag.",
)
def tag_policy(tag: str, never_share: bool | None) -> None:
    """Show or set the policy of a tag (e.g. `tag policy health --never-share`)."""
    ctx = get_ctx()

    async def go(vault: Vault) -> TagPolicy:
        if never_share is None:
            found = [p for p in vault.sharing.tag_policies() if p.tag == tag]
            return found[0] if found else TagPolicy(tag, never_share=False)
        return await vault.sharing.set_tag_policy(tag, never_share=never_share)

    doc = run_with_vault(ctx, go)
    emit(
        ctx,
        doc,
        lambda: click.echo(
            f"tag {tag}: " + ("never shared" if doc.never_share else "may be shared")
        ),
    )


# -- share, grants, revoke, open --------------------------------------------------------------------


def _grant_text(arg: str) -> str:
    if arg.startswith("ovgrant1:") or arg.lstrip().startswith("{"):
        return arg
    if os.path.isfile(arg):
        return read_small(arg, "grant file")
    raise UsageError(f"not a grant file or an ovgrant1: string: {arg!r:.60}")


@cli.command()
@common
@click.argument("names", nargs=-1)
@click.option("--tag", help="Share the latest version of every name with this tag.")
@click.option("--to", "to", required=True, help="A contact's name or did:key.")
@click.option("--expires", help="Expiry: a date, a time, or 7d/12h/30m.")
@click.option(
    "--read-only",
    is_flag=True,
    default=True,
    help="Read-only (the only kind of grant; the default).",
)
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False),
    help="Also write the grant (JSON) to this file.",
)
@click.option(
    "--out", "out", type=click.Path(dir_okay=False), hidden=True, deprecated="use --output"
)
def share(
    names: tuple[str, ...],
    tag: str | None,
    to: str,
    expires: str | None,
    read_only: bool,
    out: str | None,
) -> None:
    """Give a contact read access to NAME(s) or to --tag TAG (a signed, encrypted grant)."""
    ctx = get_ctx()
    when = parse_expiry(expires)
    info = run_with_vault(
        ctx,
        lambda v: v.sharing.share(
            names=list(names), tag=tag, to=to, expires=when, read_only=read_only
        ),
    )
    doc = info.to_json()
    for w in info.warnings:
        warn(w)
    if out:
        with output_file(out) as f:
            f.write(
                (
                    json.dumps(Grant.parse(info.token).to_json(), indent=2, sort_keys=True) + "\n"
                ).encode()
            )
        doc["file"] = out

    def human() -> None:
        click.echo(f"grant {doc['grant']} for {doc['to']}: {', '.join(doc['items'])}")
        click.echo(
            f"written to {out}"
            if out
            else "send them this (only they can use it):\n" + doc["token"]
        )

    emit(ctx, doc, human)


@cli.command(name="grants")
@common
def grants_cmd() -> None:
    """Who can read what, since when, until when."""
    ctx = get_ctx()
    rows = read_vault(ctx, lambda v: v.sharing.grants())

    def human() -> None:
        def when(t: int | None) -> str:
            return timestamp(t, timespec="minutes")

        for g in rows:
            click.echo(
                f"{g.grant[:12]}  {g.state:<8} to {g.contact or g.to}  since {when(g.created)}"
                f"  until {when(g.expires)}  {', '.join(g.items)}"
            )

    emit(ctx, {"grants": rows}, human)


@cli.command()
@common
@click.argument("grant_id")
def revoke(grant_id: str) -> None:
    """Revoke a grant: re-encrypt what it shared under new keys, delete the old shares."""
    ctx = get_ctx()
    result = run_with_vault(ctx, lambda v: v.sharing.revoke(grant_id))
    for f in result.not_deleted:
        warn(f"could not delete {f.object} at {f.provider}: {f.reason}")
    emit(
        ctx,
        result,
        lambda: click.echo(
            f"revoked grant {result.grant}: {result.chunks_rekeyed} chunk(s) re-encrypted, "
            f"{result.objects_deleted} old object(s) deleted"
        ),
    )


@cli.command(name="open")
@common
@click.argument("grant")
@click.argument("name", required=False)
@click.option(
    "-o", "--output", "out", type=click.Path(), help="Where to write NAME (default: its last part)."
)
@click.option(
    "--mount",
    "mount_dir",
    type=click.Path(file_okay=False),
    help="Show what the grant shares as read-only folders at DIR (FUSE) until unmounted.",
)
def open_cmd(grant: str, name: str | None, out: str | None, mount_dir: str | None) -> None:
    """Open a grant made for you: list what it shares, fetch NAME, or mount it (all verified)."""
    ctx = get_ctx()
    text = _grant_text(grant)
    keys = read_vault(ctx, lambda v: v.keys)
    if mount_dir is not None:
        mount_grant_dir(keys, text, mount_dir)
        return

    async def go() -> tuple[Grant, list[SharedItem], SharedRestore | None]:
        reader = await open_grant(keys, text)
        try:
            restored = None
            if name is not None:
                dest = out or name.rstrip("/").rsplit("/", 1)[-1]
                restored = await reader.get(name, dest)
            return reader.grant, reader.items, restored
        finally:
            await reader.close()

    opened, items, restored = asyncio.run(go())
    doc: dict[str, object] = {
        "grant": opened.id_hex,
        "from": opened.sender,
        "expires": opened.expires,
        "items": items,
    }
    if restored is not None:
        doc["restored"] = restored

    def human() -> None:
        click.echo(f"grant {opened.id_hex} from {opened.sender}")
        for it in items:
            click.echo(
                f"  {it.name} v{it.version} ({it.kind}, {it.files} file(s), {it.size} bytes)"
            )
        if restored is not None:
            r = restored
            click.echo(f"restored {r.name} -> {r.path} ({r.files} file(s), {r.bytes} bytes)")

    emit(ctx, doc, human)


@cli.command()
@common
@click.argument("name")
@click.option("--version", "version", type=int, help="Forget only this version.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget(name: str, version: int | None, yes: bool) -> None:
    """Crypto-shred NAME: destroy its keys and delete its shares and old catalog copies."""
    ctx = get_ctx()
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("forget destroys data for good: pass --yes")
        click.confirm(
            f"Destroy {name} for good (it cannot be recovered, not even from the phrase)?",
            abort=True,
            err=True,
        )
    result = run_with_vault(ctx, lambda v: v.keyring.forget(name, version=version))
    for f in result.not_deleted:
        warn(f"could not delete {f.object} at {f.provider}: {f.reason}")
    emit(
        ctx,
        result,
        lambda: click.echo(
            f"forgot {name}: {result.versions_forgotten} version(s), {result.chunks_shredded} chunk key(s) destroyed, "
            f"{result.objects_deleted + result.old_snapshot_objects_deleted} object(s) deleted"
            + (f", {len(result.not_deleted)} could not be deleted" if result.not_deleted else "")
        ),
    )
