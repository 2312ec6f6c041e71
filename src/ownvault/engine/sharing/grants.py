"""Sharing: identity cards, contacts, tag policies, grants, revocation (sender side).

A grant gives one recipient (a contact: did:key + X25519 key) the keys of exactly the
versions it covers. The sender writes a *manifest* - for each shared version its entries,
and for each chunk its id, its raw chunk key, and where its pack's shares are - sealed under
a fresh random manifest key and signed, to ``grants/<id>/m.<generation>`` on every provider.
The grant itself (``core.grants.Grant``) carries the manifest key HPKE-sealed to the
recipient, and is signed. The recipient reads with ``engine.sharing.reader``.

Revocation re-encrypts: every chunk of the grant gets a new random key and a new blob in
new packs (``engine.store.repack``), the old packs' shares are deleted, a signed revocation notice
replaces the manifests, and other grants that shared those chunks get a new manifest
generation. What revocation cannot undo is written in docs/design.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ownvault.core import crypto
from ownvault.core.capability import grant_capability
from ownvault.core.grants import (
    Grant,
    encode_manifest,
    encode_revocation,
    manifest_name,
    revocation_name,
)
from ownvault.core.pack import unwrap_chunk_key
from ownvault.engine.sharing.contacts import never_share_tags, resolve_contact, vault_now
from ownvault.engine.store.catalog.rows import ChunkRef
from ownvault.engine.store.catalog.sharing import GrantKeyRow
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.repack import NotDeleted, RepackResult, drain_doomed, rewrite_packs
from ownvault.errors import (
    DataUnavailableError,
    NotFoundError,
    OwnvaultError,
    SharePolicyError,
    UsageError,
)
from ownvault.providers.registry import local_path_of

if TYPE_CHECKING:
    from ownvault.engine.store.catalog import ProviderRow

__all__ = [
    "GrantInfo",
    "GrantListing",
    "GrantState",
    "Revocation",
    "grant_token",
    "grants",
    "refresh_grants",
    "revoke",
    "share",
]

GRANT_KEY_AD = b"ownvault/v1/grant-key"

GrantState = Literal["active", "expired", "revoked"]
"""A grant as listed: ``expired`` when active past its expiry (computed, never stored)."""


# -- grants -----------------------------------------------------------------------------------


def public_url(ctx: VaultContext, row: ProviderRow) -> str:
    """A provider URL usable outside this vault (vault-relative folders made absolute)."""
    if row.kind == "local" and row.url.startswith("file:") and not row.url.startswith("file:/"):
        return local_path_of(row.url, ctx.path).as_uri()
    return row.url


def _scope_versions(ctx: VaultContext, names: list[str], tag: str | None) -> list[int]:
    cat = ctx.catalog
    blocked = never_share_tags(ctx)
    if tag is not None and tag in blocked:
        raise SharePolicyError(f"data tagged {tag!r} may never be shared (tag policy)", name=tag)
    rows = []
    if tag is not None:
        rows = cat.grants.names_tagged(tag)
        if not rows:
            raise NotFoundError(f"no stored name has the tag {tag!r}", name=tag)
    wanted = list(dict.fromkeys([*names, *rows]))
    if not wanted:
        raise UsageError("nothing to share: give NAME(s) or --tag TAG")
    out = []
    for name in wanted:
        v = cat.version(name)
        obj = cat.object_id(name)
        bad = sorted(set(cat.tags(obj) if obj else []) & blocked)
        if bad:
            raise SharePolicyError(
                f"{name} is tagged {bad[0]!r}, and data tagged {bad[0]!r} may never be shared (tag policy)",
                name=name,
            )
        out.append(v.id)
    return out


class _ManifestBuilder:
    """The chunks and packs a grant's manifest lists, each once, in first-use order."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx
        self.prov_rows = {r.id: r for r in ctx.catalog.providers(include_removed=True)}
        self.chunk_idx: dict[int, int] = {}
        self.chunks: list[dict[str, Any]] = []
        self.pack_idx: dict[int, int] = {}
        self.packs: list[dict[str, Any]] = []
        self.used_providers: set[int] = set()

    def pack(self, pack_row: int) -> int:
        if pack_row not in self.pack_idx:
            pack_id, size, k, n = self.ctx.catalog.pack_info(pack_row)
            shares = self.ctx.catalog.shares_of(pack_row)
            self.used_providers.update(s.provider for s in shares)
            self.pack_idx[pack_row] = len(self.packs)
            self.packs.append(
                {
                    "id": pack_id.hex(),
                    "size": size,
                    "k": k,
                    "n": n,
                    "shares": [
                        {
                            "index": s.idx,
                            "provider": self.prov_rows[s.provider].name,
                            "size": s.size,
                            "root": s.root.hex(),
                        }
                        for s in shares
                    ],
                }
            )
        return self.pack_idx[pack_row]

    def chunk(self, ref: ChunkRef) -> int:
        if ref.row not in self.chunk_idx:
            pack = self.pack(ref.pack)
            key = unwrap_chunk_key(
                self.ctx.keys.content_key(ref.key_epoch), ref.chunk_id, ref.wrapped_key
            )
            self.chunk_idx[ref.row] = len(self.chunks)
            self.chunks.append(
                {
                    "id": ref.chunk_id.hex(),
                    "key": key.hex(),
                    "pack": pack,
                    "offset": ref.offset,
                    "length": ref.length,
                    "plain_len": ref.plain_len,
                }
            )
        return self.chunk_idx[ref.row]

    def entries(self, version_id: int) -> list[dict[str, Any]]:
        cat = self.ctx.catalog
        out = []
        for e in cat.entries(version_id):
            refs = [] if e.content is None else cat.content_chunks(e.content)
            out.append(
                {
                    "path": e.path,
                    "kind": e.kind,
                    "mode": e.mode,
                    "mtime_ns": e.mtime_ns,
                    "size": e.size,
                    "cid": e.cid,
                    "target": e.target,
                    "chunks": [self.chunk(ref) for ref in refs],
                }
            )
        return out


def _manifest_body(
    ctx: VaultContext, grant_id: bytes, generation: int, version_ids: list[int]
) -> dict[str, Any]:
    built = _ManifestBuilder(ctx)
    items = []
    for vid in version_ids:
        try:
            v = ctx.catalog.version_by_id(vid)
        except NotFoundError:
            continue
        entries = built.entries(vid)
        items.append(
            {
                "name": v.name,
                "version": v.number,
                "kind": v.kind,
                "created": v.created_at,
                "size": v.size,
                "cid": v.cid,
                "entries": entries,
            }
        )
    rows = built.prov_rows
    return {
        "grant": grant_id.hex(),
        "generation": generation,
        "items": items,
        "chunks": built.chunks,
        "packs": built.packs,
        "providers": [
            {"name": rows[p].name, "kind": rows[p].kind, "url": public_url(ctx, rows[p])}
            for p in sorted(built.used_providers)
        ],
    }


def _grant_key(ctx: VaultContext, grant_id: bytes, wrapped: bytes) -> bytes:
    return crypto.open_box(ctx.keys.grants, wrapped, GRANT_KEY_AD + grant_id)


async def _put_everywhere(ctx: VaultContext, name: str, data: bytes) -> int:
    store = ctx.store
    written = 0
    for pid in list(store.providers):
        try:
            await store.put_share(pid, name, data)
            written += 1
        except OwnvaultError as exc:
            store.report(pid, name, "unavailable", f"write failed: {exc.message}")
    return written


async def _publish_manifest(
    ctx: VaultContext, grant_row: int, grant_id: bytes, wrapped: bytes, generation: int
) -> None:
    versions = ctx.catalog.grants.versions(grant_row)
    body = _manifest_body(ctx, grant_id, generation, versions)
    data = encode_manifest(ctx.keys, _grant_key(ctx, grant_id, wrapped), grant_id, generation, body)
    if await _put_everywhere(ctx, manifest_name(grant_id, generation), data) == 0:
        raise DataUnavailableError("the grant manifest could not be written to any provider")


async def _doom_manifests(ctx: VaultContext, grant_id: bytes, below: int | None) -> None:
    """Queue the manifest objects of generations < ``below`` (all when None) for deletion."""
    now = vault_now(ctx)
    gens = range(0, below) if below is not None else None
    rows = []
    for pid in ctx.store.providers:
        if gens is None:
            gen = ctx.catalog.grants.generation_of(grant_id)
            upto = gen + 1 if gen is not None else 1
            names = [manifest_name(grant_id, g) for g in range(upto)]
        else:
            names = [manifest_name(grant_id, g) for g in gens]
        rows += [(pid, n, f"grant {grant_id.hex()} manifest", now) for n in names]
    with ctx.catalog.transaction():
        ctx.catalog.grants.doom(rows)


@dataclass(frozen=True, slots=True)
class GrantInfo:
    grant_id: str
    token: str
    recipient: str
    items: list[str]
    warnings: list[str] = field(default_factory=list)
    """Why a recipient elsewhere may not read it (see :func:`_reach_warnings`); never refused."""

    def to_json(self) -> dict[str, Any]:
        return {
            "grant": self.grant_id,
            "token": self.token,
            "to": self.recipient,
            "items": self.items,
            "warnings": self.warnings,
        }


def _record_grant(
    ctx: VaultContext,
    grant: Grant,
    recipient: str,
    wrapped: bytes,
    version_ids: list[int],
    scope: dict[str, Any],
) -> tuple[int, list[str]]:
    """The catalog rows of a new grant: its row id and the items it covers ("name vN")."""
    cat = ctx.catalog
    label = cat.contacts.name_of(recipient)
    item_names = [f"{v.name} v{v.number}" for v in map(cat.version_by_id, version_ids)]
    with cat.transaction():
        row = cat.grants.add(
            grant.grant_id,
            recipient,
            label,
            {**scope, "items": item_names},
            grant.created,
            grant.expires,
            wrapped,
            grant.to_string(),
            version_ids,
        )
    return row, item_names


async def share(
    ctx: VaultContext,
    *,
    names: list[str] | tuple[str, ...] = (),
    tag: str | None = None,
    to: str,
    expires: int | None = None,
    read_only: bool = True,
) -> GrantInfo:
    """Grant ``to`` (a contact's name or did:key) read access to the latest versions of
    ``names`` and/or of every name tagged ``tag``. Refused (``SharePolicyError``) if any of
    them carries a never-share tag."""
    if not read_only:
        raise UsageError("only read-only grants exist (a recipient can never write to your vault)")
    recipient = resolve_contact(ctx, to)
    now = vault_now(ctx)
    if expires is not None and expires <= now:
        raise UsageError("--expires is in the past")
    async with ctx.write():
        version_ids = _scope_versions(ctx, list(names), tag)
        grant_id = crypto.random_bytes(16)
        manifest_key = crypto.random_bytes(crypto.KEY_SIZE)
        providers = [
            (r.kind, public_url(ctx, r))
            for r in ctx.catalog.providers()
            if r.id in ctx.store.providers
        ]
        # Storage nodes serve the account's objects only to its own key; the recipient
        # reads them with a read capability for this grant (docs/node-protocol.md).
        capability = (
            grant_capability(ctx.keys, recipient.did, grant_id, expires)
            if any(kind == "node" for kind, _url in providers)
            else None
        )
        grant = Grant.create(
            ctx.keys,
            recipient,
            grant_id,
            manifest_key,
            created=now,
            expires=expires,
            providers=providers,
            capability=capability,
        )
        wrapped = crypto.seal(ctx.keys.grants, manifest_key, GRANT_KEY_AD + grant_id)
        row, item_names = _record_grant(
            ctx, grant, recipient.did, wrapped, version_ids, {"names": list(names), "tag": tag}
        )
        try:
            await _publish_manifest(ctx, row, grant_id, wrapped, 0)
        except BaseException:
            with ctx.catalog.transaction():
                ctx.catalog.grants.delete(row)
            raise
        warnings = _reach_warnings(ctx, version_ids)
    return GrantInfo(grant_id.hex(), grant.to_string(), recipient.did, item_names, warnings)


ON_THIS_MACHINE = frozenset({"local", "memory"})
"""Provider kinds a recipient on another machine cannot reach: folders (and memory) here."""


def _reach_warnings(ctx: VaultContext, version_ids: list[int]) -> list[str]:
    """What a recipient on another machine could not read: the packs the grant covers with
    fewer than k shares on remote providers (nodes, S3, IPFS), naming where their shares are."""
    cat = ctx.catalog
    rows = {r.id: r for r in cat.providers(include_removed=True)}
    packs = sorted({p for v in version_ids for p in cat.packs_of_version(v)})
    short = 0
    local: set[str] = set()
    remote_names: set[str] = set()
    for pack in packs:
        k = cat.pack_info(pack)[2]
        held = [rows[s.provider] for s in cat.shares_of(pack)]
        remote = {r.name for r in held if r.kind not in ON_THIS_MACHINE}
        if len(remote) < k:
            short += 1
            local.update(r.name for r in held if r.kind in ON_THIS_MACHINE)
            remote_names.update(remote)
    if not short:
        return []
    return [
        f"{short} of the {len(packs)} pack(s) this grant covers have fewer than k shares on "
        "providers another machine can reach: the recipient reads them only from "
        f"{', '.join(sorted(local))} (local folders on this machine)"
        + (f" together with {', '.join(sorted(remote_names))}" if remote_names else "")
        + ". To share with someone elsewhere, add providers they can reach (storage nodes, "
        "S3: `ownvault provider add`), run `ownvault rebalance` so k shares of every pack sit "
        "on them, then share again."
    ]


@dataclass(frozen=True, slots=True)
class GrantListing:
    """One grant as listed (``ownvault grants``): ``items`` are "name vN" strings."""

    grant: str
    to: str
    contact: str | None
    items: list[str]
    tag: str | None
    created: int
    expires: int | None
    state: GrantState
    revoked: int | None
    generation: int


def grants(ctx: VaultContext) -> list[GrantListing]:
    """Who can read what, since when, until when."""
    now = vault_now(ctx)
    out = []
    for r in ctx.catalog.grants.all():
        state: GrantState = r.state
        if state == "active" and r.expires_at is not None and now >= r.expires_at:
            state = "expired"
        items, tag = r.scope.get("items", []), r.scope.get("tag")
        out.append(
            GrantListing(
                r.grant_id.hex(),
                r.recipient,
                r.label,
                [str(i) for i in items] if isinstance(items, list) else [],
                tag if isinstance(tag, str) else None,
                r.created_at,
                r.expires_at,
                state,
                r.revoked_at,
                r.generation,
            )
        )
    return out


def _find_grant(ctx: VaultContext, grant: str) -> GrantKeyRow:
    g = grant.strip().lower()
    if len(g) < 8 or any(ch not in "0123456789abcdef" for ch in g):
        raise UsageError("a grant id is 8..32 hex digits (see `ownvault grants`)")
    rows = ctx.catalog.grants.by_prefix(g.upper())
    if not rows:
        raise NotFoundError(f"no grant {grant}", name=grant)
    if len(rows) > 1:
        raise UsageError(f"grant id {grant} is ambiguous; give more digits")
    return rows[0]


async def refresh_grants(ctx: VaultContext, grant_rows: set[int] | None = None) -> int:
    """Write a new manifest generation for active grants (after their chunks or shares
    moved: revocation of an overlapping grant, forgetting, rebalancing); old generations
    are queued for deletion. Returns how many grants were refreshed. Hold the writer lock."""
    count = 0
    for g in ctx.catalog.grants.active():
        if grant_rows is not None and g.row not in grant_rows:
            continue
        await _publish_manifest(ctx, g.row, g.grant_id, g.wrapped_key, g.generation + 1)
        with ctx.catalog.transaction():
            ctx.catalog.grants.set_generation(g.row, g.generation + 1)
        await _doom_manifests(ctx, g.grant_id, g.generation + 1)
        count += 1
    if count:
        await drain_doomed(ctx)
    return count


def grant_token(ctx: VaultContext, grant: str) -> tuple[str, str]:
    """(full grant id, its ``ovgrant1:`` string) for a grant id or a unique prefix of one."""
    found = _find_grant(ctx, grant)
    return found.grant_id.hex(), ctx.catalog.grants.token(found.row)


@dataclass(frozen=True, slots=True)
class Revocation:
    """What revoking a grant did; ``repack`` is None when it had been revoked already."""

    grant: str
    already_revoked: bool
    revoked: int
    revocation_notices: int
    refreshed_grants: int
    objects_deleted: int
    not_deleted: list[NotDeleted]
    repack: RepackResult | None

    @property
    def chunks_rekeyed(self) -> int:
        return 0 if self.repack is None else self.repack.chunks_rekeyed

    def to_json(self) -> dict[str, object]:
        """The JSON document (``ownvault revoke --json``, the API job's result): the repack
        counts at the top level, present only when this run re-encrypted."""
        doc: dict[str, object] = {} if self.repack is None else self.repack.to_json()
        return doc | {
            "grant": self.grant,
            "already_revoked": self.already_revoked,
            "revoked": self.revoked,
            "revocation_notices": self.revocation_notices,
            "refreshed_grants": self.refreshed_grants,
            "objects_deleted": self.objects_deleted,
            "not_deleted": [asdict(f) for f in self.not_deleted],
        }


async def revoke(
    ctx: VaultContext, grant: str, *, progress: Callable[[int, int], None] | None = None
) -> Revocation:
    """Revoke a grant: re-encrypt what it covered under new keys, delete the old shares and
    manifests, publish a signed revocation notice. Idempotent (re-running retries deletions).
    ``progress(done, total)`` counts the packs re-written."""
    async with ctx.write():
        found = _find_grant(ctx, grant)
        row, gid, state = found.row, found.grant_id, found.state
        cat = ctx.catalog
        rep: RepackResult | None = None
        overlapping: set[int] = set()
        if state != "revoked":
            granted = cat.grants.granted_chunks(row)
            packs = cat.grants.packs_of_chunks(granted)
            overlapping = cat.grants.overlapping(row, granted)
            now = vault_now(ctx)

            def finish(_c: sqlite3.Connection) -> None:  # inside rewrite_packs' transaction
                cat.grants.mark_revoked(row, now)

            rep = await rewrite_packs(
                ctx,
                packs,
                lambda ch: "rekey" if ch.row in granted else ("keep" if ch.referenced else "drop"),
                reason=f"revoke grant {gid.hex()}",
                finish=finish,
                progress=progress,
            )
        revoked_at = cat.grants.revoked_at(row)
        notices = await _put_everywhere(
            ctx, revocation_name(gid), encode_revocation(ctx.keys, gid, revoked_at)
        )
        await _doom_manifests(ctx, gid, None)
        refreshed = await refresh_grants(ctx, overlapping) if overlapping else 0
        deleted, failed = await drain_doomed(ctx)
    return Revocation(
        gid.hex(),
        state == "revoked",
        revoked_at,
        notices,
        refreshed,
        (0 if rep is None else rep.objects_deleted) + deleted,
        failed,
        rep,
    )
