"""Recovering a vault on a new machine from the recovery phrase (or guardian shares).

Procedure (docs/design.md, "Recovery"):

1. The entropy (from the phrase, or from enough SLIP-39 guardian shares) gives every key.
2. The providers given (at least one; URLs as for ``provider add``, optionally
   ``NAME=URL`` when a provider now lives somewhere else) are listed for locators
   ``catalog/<seq>/locator``; the newest one that opens under the catalog key wins. A
   locator that exists but does not open means a wrong phrase/shares (``AuthError``).
3. The locator lists every provider of the vault (kind, URL, config): all of them are
   opened, and asked again for newer locators (a given provider may be stale), until the
   newest is stable.
4. The snapshot's shares are fetched from any k providers, verified (size, Merkle root),
   decoded, opened (AES-GCM under the catalog key) and checked (SQLite quick check),
   and become ``catalog.db`` (migrated to the current schema). When the newest snapshot
   cannot be read (too few shares reachable, a corrupt share, a locator that does not
   open), the next older one is tried, and the result says which was skipped and why.
   The result also warns when a provider shows evidence of a snapshot newer than the one
   recovered (a rollback: changes after it are missing) and when a provider's newest
   snapshot is older (a stale provider that missed writes). ``meta.seq`` of the recovered
   catalog is raised above every sequence number seen, so the next snapshot is newest.
5. A keystore is sealed under the new passphrase; ``ownvault.json`` is written last, so a
   recovery that fails half way leaves no vault (and is cleaned up).

Vault-relative providers (``file:providers/local-N``, the embedded defaults) resolve
against the NEW vault directory: if their folders were copied there before recovering,
they work; otherwise they are reported ``missing`` and set to ``draining`` (no new shares
go there; their shares are read from the other providers).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ownvault.core.crypto import Argon2Params
from ownvault.core.keys import VaultKeys
from ownvault.core.keystore import Keystore
from ownvault.core.snapshot import MAX_LOCATOR_SIZE, decode_locator, locator_name
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.catalog.fleet import ProviderMove
from ownvault.engine.store.catalog.rows import ProviderState
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.device import new_device
from ownvault.engine.store.layout import atomic_write, secure_vault_dir, write_marker
from ownvault.engine.store.shares import ShareStore
from ownvault.engine.store.snapshots import restore_snapshot
from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    FormatError,
    IntegrityError,
    OwnvaultError,
    ProviderError,
    UsageError,
    VaultStateError,
)
from ownvault.providers.base import Provider, get_at_most
from ownvault.providers.registry import kind_of_url, local_path_of, open_provider

__all__ = [
    "ReconciledProvider",
    "RecoveryResult",
    "SkippedSnapshot",
    "parse_provider_arg",
    "recover_vault",
]

_NAMED = re.compile(r"^([a-z0-9][a-z0-9._-]{0,63})=(.+)\Z", re.IGNORECASE)
MAX_ROUNDS = 4


def parse_provider_arg(text: str) -> tuple[str | None, str]:
    """``URL`` or ``NAME=URL`` (the provider's name in the vault, when it moved)."""
    m = _NAMED.match(text.strip())
    if m and ":" not in m.group(1):
        return m.group(1), m.group(2)
    return None, text.strip()


@dataclass(frozen=True, slots=True)
class ReconciledProvider:
    """A provider of the recovered catalog, after NAME=URL moves; ``missing``: an embedded
    folder that is not there (set to ``draining``)."""

    name: str
    kind: str
    url: str
    state: ProviderState
    reachable: bool
    missing: bool


@dataclass(frozen=True, slots=True)
class SkippedSnapshot:
    """A catalog snapshot newer than the one recovered that could not be read, and why."""

    snapshot: int
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    path: str
    did: str
    seq: int
    objects: int
    versions: int
    providers: tuple[ReconciledProvider, ...] = ()
    created: int | None = None
    skipped: tuple[SkippedSnapshot, ...] = ()
    warnings: tuple[str, ...] = ()
    snapshot_bytes: int = 0  # the snapshot read (its padded pieces)
    journal_bytes: int = 0  # the records after it, applied

    def to_json(self) -> dict[str, object]:
        return {
            "vault": self.path,
            "did": self.did,
            "snapshot": self.seq,
            "snapshot_created": self.created,
            "objects": self.objects,
            "versions": self.versions,
            "providers": [asdict(p) for p in self.providers],
            "skipped_snapshots": [asdict(s) for s in self.skipped],
            "warnings": list(self.warnings),
            "snapshot_bytes": self.snapshot_bytes,
            "journal_bytes": self.journal_bytes,
        }


def _same_place(a: str, b: str, base: Path) -> bool:
    if a == b:
        return True
    try:
        return local_path_of(a, base).resolve() == local_path_of(b, base).resolve()
    except (UsageError, OSError):
        return False


class _Pool:
    """The providers opened so far, keyed by a temporary id, named as the vault names them."""

    def __init__(self, keys: VaultKeys, base: Path) -> None:
        self.keys = keys
        self.base = base
        self.providers: dict[int, Provider] = {}
        self.names: dict[int, str] = {}
        self.urls: dict[int, str] = {}

    def add(self, name: str, kind: str, url: str, config: dict[str, Any]) -> int | None:
        for pid, u in self.urls.items():
            if _same_place(u, url, self.base):
                if self.names[pid].startswith("given-"):
                    self.names[pid] = name
                return pid
        try:
            p = open_provider(kind, url, config, self.keys, name, self.base)
        except OwnvaultError:
            return None
        pid = len(self.urls)
        self.providers[pid] = p
        self.names[pid] = name
        self.urls[pid] = url
        return pid

    async def close(self) -> None:
        for p in self.providers.values():
            with contextlib.suppress(Exception):
                await p.close()


@dataclass
class _Listing:
    """What the providers hold under ``catalog/``: per sequence number, who has a locator
    and who has any object of it."""

    locators: dict[int, list[int]] = field(default_factory=dict)
    objects: dict[int, set[int]] = field(default_factory=dict)
    listed: set[int] = field(default_factory=set)


async def _list(pool: _Pool) -> _Listing:
    out = _Listing()
    for pid, p in pool.providers.items():
        try:
            async for o in p.list("catalog/"):
                try:
                    seq = int(o.name.split("/")[1], 16)
                except (ValueError, IndexError):
                    continue
                out.objects.setdefault(seq, set()).add(pid)
                if o.name.endswith("/locator"):
                    out.locators.setdefault(seq, []).append(pid)
            out.listed.add(pid)
        except ProviderError:
            continue
    return out


async def _locator(
    pool: _Pool, keys: VaultKeys, seq: int, holders: list[int]
) -> tuple[dict[str, Any] | None, str, bool]:
    """The locator of ``seq`` from any holder: (body, why not, any holder failed to open it)."""
    why = "no provider answered"
    wrong_key = False
    for pid in holders:
        try:
            data = await get_at_most(pool.providers[pid], locator_name(seq), MAX_LOCATOR_SIZE)
            return decode_locator(keys.catalog, seq, data), "", False
        except IntegrityError:
            wrong_key = True
            why = f"the locator on {pool.names[pid]} does not open with these keys"
        except (FormatError, ProviderError) as exc:
            why = f"{pool.names[pid]}: {exc.message}"
    return None, why, wrong_key


async def _newest_locator(pool: _Pool, keys: VaultKeys) -> tuple[int, dict[str, Any]]:
    listing = await _list(pool)
    if not listing.locators:
        raise DataUnavailableError("no ownvault catalog was found on the given provider(s)")
    undecryptable = 0
    for seq in sorted(listing.locators, reverse=True):
        body, _why, wrong_key = await _locator(pool, keys, seq, listing.locators[seq])
        if body is not None:
            return seq, body
        undecryptable += int(wrong_key)
    if undecryptable:
        raise AuthError(
            "the catalog on these providers does not open with these keys: wrong recovery phrase, "
            "wrong guardian shares, or another vault"
        )
    raise DataUnavailableError("no readable catalog locator on the given provider(s)")


def _add_locator_providers(pool: _Pool, locator: dict[str, Any], renames: dict[str, str]) -> None:
    for p in locator.get("providers", []):
        url = renames.get(p["name"], p["url"])
        pool.add(str(p["name"]), str(p["kind"]), str(url), dict(p.get("config") or {}))


async def _restore_newest(
    pool: _Pool, keys: VaultKeys, renames: dict[str, str]
) -> tuple[int, dict[str, Any], bytes, _Listing, list[SkippedSnapshot]]:
    """The newest snapshot that can be read, falling back to older ones; with the listing
    and the snapshots skipped (seq, reason)."""
    listing = await _list(pool)
    skipped: list[SkippedSnapshot] = []
    wrong_key = 0
    for seq in sorted(listing.locators, reverse=True):
        body, why, bad_key = await _locator(pool, keys, seq, listing.locators[seq])
        if body is None:
            wrong_key += int(bad_key)
            skipped.append(SkippedSnapshot(seq, why))
            continue
        _add_locator_providers(pool, body, renames)
        store = ShareStore(dict(pool.providers), dict(pool.names))
        name_to_id = {n: pid for pid, n in pool.names.items()}
        try:
            image = await restore_snapshot(store, name_to_id, keys, seq, body)
        except (DataUnavailableError, IntegrityError, FormatError) as exc:
            skipped.append(SkippedSnapshot(seq, exc.message))
            continue
        return seq, body, image, listing, skipped
    if wrong_key and wrong_key == len(skipped):
        raise AuthError(
            "the catalog on these providers does not open with these keys: wrong recovery phrase, "
            "wrong guardian shares, or another vault"
        )
    reasons = "; ".join(f"snapshot {s.snapshot}: {s.reason}" for s in skipped[:5])
    raise DataUnavailableError(f"no catalog snapshot could be read ({reasons})")


def _warnings(
    pool: _Pool, listing: _Listing, seq: int, skipped: list[SkippedSnapshot]
) -> list[str]:
    out = []
    if skipped:
        out.append(
            f"recovered the older catalog snapshot {seq}: "
            + "; ".join(f"snapshot {s.snapshot} was skipped ({s.reason})" for s in skipped)
            + f". Changes made after snapshot {seq} are missing"
        )
    newer = sorted(x for x in listing.objects if x > seq and all(s.snapshot != x for s in skipped))
    if newer:
        holders = sorted({pool.names[p] for x in newer for p in listing.objects[x]})
        out.append(
            f"{', '.join(holders)} hold(s) parts of snapshot(s) {', '.join(map(str, newer))}, newer "
            f"than the recovered {seq}, without a readable locator: an interrupted snapshot write, "
            "or a newer catalog that is lost (a rollback)"
        )
    for pid in sorted(listing.listed):
        own = [x for x, holders in listing.locators.items() if pid in holders]
        if own and max(own) < seq:
            out.append(
                f"provider {pool.names[pid]} is stale: its newest catalog is snapshot {max(own)}, "
                f"older than {seq} (it missed writes; `ownvault check` and `repair` after recovery)"
            )
    return out


async def _find_all_providers(pool: _Pool, keys: VaultKeys, renames: dict[str, str]) -> None:
    """Open every provider the newest locators list (a given provider may be stale: ask
    the others again, until the newest is stable)."""
    seq, locator = await _newest_locator(pool, keys)
    for _round in range(MAX_ROUNDS):
        _add_locator_providers(pool, locator, renames)
        newer, body = await _newest_locator(pool, keys)
        if newer <= seq:
            break
        seq, locator = newer, body


async def recover_vault(
    path: str | os.PathLike[str],
    entropy: bytes,
    passphrase: str,
    providers: list[str],
    *,
    kdf: Argon2Params | None = None,
    device_name: str | None = None,
) -> RecoveryResult:
    """Rebuild a vault at ``path`` from its entropy and at least one of its providers.

    The copy joins as a new device of the vault (a new random device key, named
    ``device_name`` or the host name); its certificate record is written on first use."""
    root = Path(path).absolute()
    if not providers:
        raise UsageError("give at least one provider (--provider URL)")
    if not passphrase:
        raise UsageError("the new passphrase must not be empty")
    if (root / "ownvault.json").exists() or (root / "catalog.db").exists():
        raise VaultStateError(f"a vault exists already at {root}")
    if root.exists() and any(p.name != "providers" for p in root.iterdir()):
        raise VaultStateError(
            f"directory is not empty (only a providers/ folder may be there): {root}"
        )
    keys = VaultKeys(entropy)
    pool = _Pool(keys, root)
    renames: dict[str, str] = {}
    created: list[Path] = []
    try:
        for i, arg in enumerate(providers):
            name, url = parse_provider_arg(arg)
            kind = kind_of_url(url)
            if name is not None:
                renames[name] = url
            if pool.add(name or f"given-{i}", kind, url, {}) is None:
                raise UsageError(f"cannot open provider {url}")
        await _find_all_providers(pool, keys, renames)
        seq, locator, image, listing, skipped = await _restore_newest(pool, keys, renames)
        warnings = _warnings(pool, listing, seq, skipped)
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        secure_vault_dir(root)
        created += [root / "catalog.db", root / "catalog.db-wal", root / "catalog.db-shm"]
        padded = sum(int(piece["size"]) for piece in locator["pieces"])
        seen = max([seq, *listing.objects])
        vault_id_hex, report = await _open_recovered(
            root, image, locator, keys, pool, renames, seen, padded
        )
        vault_id = bytes.fromhex(vault_id_hex)
        device = new_device(keys, vault_id, device_name)
        store_json = Keystore.create(
            entropy, passphrase, vault_id, keys.did, kdf or Argon2Params(), device
        ).to_json()
        created.append(root / "keystore.json")
        atomic_write(root / "keystore.json", store_json.encode())
        write_marker(root, vault_id_hex)
        objects, versions, journal = await _pull_after_snapshot(root, keys, warnings)
        made = locator.get("created")
        return RecoveryResult(
            str(root), keys.did, seq, objects, versions, tuple(report),
            made if isinstance(made, int) else None, tuple(skipped), tuple(warnings),
            padded, journal,
        )  # fmt: skip
    except BaseException:
        for f in created:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
        raise
    finally:
        await pool.close()


async def _open_recovered(
    root: Path,
    image: bytes,
    locator: dict[str, Any],
    keys: VaultKeys,
    pool: _Pool,
    renames: dict[str, str],
    seen: int,
    padded: int,
) -> tuple[str, list[ReconciledProvider]]:
    """Write the snapshot's image as ``root/catalog.db`` and make it this copy's: checked
    against the locator and the keys, its providers reconciled, ``meta.seq`` raised to
    ``seen`` (the next snapshot must be newer than anything on the providers); (the vault
    id in hex, the providers' report)."""
    catalog = Catalog.from_image(root / "catalog.db", image)
    try:
        vault_id_hex = catalog.meta("vault_id") or ""
        if vault_id_hex != locator.get("vault_id"):
            raise IntegrityError("the catalog snapshot belongs to another vault than its locator")
        if catalog.meta("did") not in (None, keys.did):
            raise IntegrityError("the recovered catalog names another identity")
        report = await _reconcile_providers(catalog, pool, renames, root)
        with catalog.transaction():
            catalog.set_meta("seq", str(max(seen, int(catalog.meta("seq") or "0"))))
            catalog.jns.settings_pushed()  # where this copy reaches its providers
            # What this copy's next snapshot is due after (``VaultContext.snapshot_due``):
            # the records applied after the snapshot count from here.
            catalog.set_meta("snapshot_bytes", str(padded))
            catalog.set_meta("journal_since_snapshot", "0")
            catalog.set_meta("records_since_snapshot", "0")
        return vault_id_hex, report
    finally:
        catalog.close()


async def _pull_after_snapshot(
    root: Path, keys: VaultKeys, warnings: list[str]
) -> tuple[int, int, int]:
    """Apply the journal records written after the recovered snapshot (a checkpoint: what
    devices committed after it is in the journal, after the heads it holds); (objects,
    versions, bytes of the records applied)."""
    ctx = VaultContext.build(root, keys, Catalog.open(root / "catalog.db"))
    # Unreachable providers are in the recovery's own report (``providers``).
    ctx.hooks.warn = lambda m: None if "cannot be listed" in m else warnings.append(m)
    try:
        await ctx.pull()
        usage = ctx.catalog.usage.totals()
        journal = int(ctx.catalog.meta("journal_since_snapshot") or "0")
        return usage["objects"], usage["versions"], journal
    finally:
        await ctx.close()


async def _reconcile_providers(
    catalog: Catalog, pool: _Pool, renames: dict[str, str], root: Path
) -> list[ReconciledProvider]:
    """Apply NAME=URL moves, check each provider, set missing embedded ones to draining."""
    out = []
    by_name = {n: pid for pid, n in pool.names.items()}
    catalog.fleet.relocate(ProviderMove(n, url, kind_of_url(url)) for n, url in renames.items())
    for row in catalog.providers():
        pid = by_name.get(row.name)
        reachable = False
        if pid is not None:
            try:
                await pool.providers[pid].info()
                reachable = True
            except OwnvaultError:
                reachable = False
        relative = row.url.startswith("file:") and not row.url.startswith("file:/")
        state = row.state
        if not reachable and relative and row.state == "active":
            state = "draining"
            catalog.set_provider_state(row.id, "draining")
        out.append(
            ReconciledProvider(
                row.name, row.kind, row.url, state, reachable, not reachable and relative
            )
        )
    return out
