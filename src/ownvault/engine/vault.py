"""The vault: create/open, and the features the CLI, the HTTP API and Python callers use.

A thin facade over one :class:`~ownvault.engine.store.context.VaultContext`::

    async with Vault.open(path, passphrase) as vault:
        await vault.files.put(["photos"])
        report = await vault.health.audit()
        await vault.sharing.share(...)
        await vault.ipfs.publish("photos")
        await vault.nft.preserve(...)

Features: ``files``, ``backups``, ``fleet`` (providers, policy, rebalance), ``health``, ``keyring``,
``sharing``, ``ipfs``, ``nft``. The vault directory layout is in ``engine.store.layout``.
All I/O methods are coroutines; run them with ``asyncio.run`` at the edge.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ownvault.core import crypto
from ownvault.core.chunking import DEFAULT_CHUNKER, ChunkerParams
from ownvault.core.crypto import Argon2Params
from ownvault.core.keys import VaultKeys, new_entropy
from ownvault.core.keystore import Keystore
from ownvault.core.unixfs import PROFILES
from ownvault.engine.files.service import Files
from ownvault.engine.store.catalog import Catalog
from ownvault.engine.store.context import DEFAULT_CID_PROFILE, Clock, PacksRewritten, VaultContext
from ownvault.engine.store.device import new_device
from ownvault.engine.store.layout import atomic_write, read_marker, secure_vault_dir, write_marker
from ownvault.engine.store.placement import Candidate, Policy
from ownvault.engine.store.putresult import PutResult
from ownvault.engine.store.shares import Problem, ShareStore
from ownvault.engine.store.snapshots import SnapshotResult
from ownvault.errors import UsageError, VaultStateError
from ownvault.providers.local import LocalProvider

if TYPE_CHECKING:
    from ownvault.engine.backup.service import Backups
    from ownvault.engine.fleet.service import Fleet
    from ownvault.engine.health.service import Health
    from ownvault.engine.ipfs.service import Ipfs
    from ownvault.engine.keys.service import Keys
    from ownvault.engine.nft.service import Nft
    from ownvault.engine.sharing.service import Sharing

__all__ = ["DEFAULT_CID_PROFILE", "PutResult", "Vault", "VaultOptions"]


@dataclass(frozen=True, slots=True)
class VaultOptions:
    """How a new vault is made. ``providers`` embedded local folders (0: add them later),
    in ``jurisdiction`` when given (a two-letter code: where this machine is); ``k`` of
    ``n`` shares rebuild a piece (``n`` defaults to ``providers``, or 6)."""

    providers: int = 6
    k: int = 3
    n: int | None = None
    entropy: bytes | None = field(default=None, repr=False)
    kdf: Argon2Params | None = None
    chunker: ChunkerParams = DEFAULT_CHUNKER
    cid_profile: str = DEFAULT_CID_PROFILE
    jurisdiction: str | None = None
    device_name: str | None = None  # this copy's name among the vault's devices (hostname)

    def policy(self) -> Policy:
        n = self.n if self.n is not None else (self.providers or 6)
        if 0 < self.providers < n:
            raise UsageError(
                f"--providers ({self.providers}) must be at least n ({n}), or 0 to add providers later"
            )
        return Policy(self.k, n)


class Vault:
    """An open vault. Use :meth:`create` or :meth:`open` (or ``ownvault.open_vault``)."""

    def __init__(self, ctx: VaultContext) -> None:
        self.ctx = ctx
        self.files = Files(ctx)
        # Grants follow moved shares: subscribed now, the sharing feature made when it fires.
        ctx.events.subscribe(PacksRewritten, self._packs_rewritten)

    async def _packs_rewritten(self, event: PacksRewritten) -> None:
        await self.sharing.packs_rewritten(event)

    # The other features are made, and their modules imported, on first use: a command that
    # lists names never imports the node client, httpx or the NFT code (docs/design.md,
    # "Engine architecture", start-up).

    @cached_property
    def sharing(self) -> Sharing:
        from ownvault.engine.sharing.service import Sharing

        return Sharing(self.ctx)

    @cached_property
    def fleet(self) -> Fleet:
        from ownvault.engine.fleet.service import Fleet

        return Fleet(self.ctx)

    @cached_property
    def health(self) -> Health:
        from ownvault.engine.health.service import Health

        return Health(self.ctx)

    @cached_property
    def keyring(self) -> Keys:
        from ownvault.engine.keys.service import Keys

        return Keys(self.ctx)

    @cached_property
    def ipfs(self) -> Ipfs:
        from ownvault.engine.ipfs.service import Ipfs

        return Ipfs(self.ctx)

    @cached_property
    def nft(self) -> Nft:
        from ownvault.engine.nft.service import Nft

        return Nft(self.ctx)

    @cached_property
    def backups(self) -> Backups:
        from ownvault.engine.backup.service import Backups

        return Backups(self.ctx)

    # -- creation and opening -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        passphrase: str,
        options: VaultOptions | None = None,
    ) -> Vault:
        """Make a new vault (see :class:`VaultOptions`)."""
        opts = options or VaultOptions()
        root = Path(path).absolute()
        policy = opts.policy()
        code = None if opts.jurisdiction is None else opts.jurisdiction.strip().upper()
        if code is not None:
            Policy(1, 2, (code,))  # validates the code
        if not passphrase:
            raise UsageError("the passphrase must not be empty")
        if opts.cid_profile not in PROFILES:
            raise UsageError(f"unknown CID import profile {opts.cid_profile!r}")
        if (root / "ownvault.json").exists() or (root / "catalog.db").exists():
            raise VaultStateError(f"a vault exists already at {root}")
        if root.exists() and any(root.iterdir()):
            raise VaultStateError(f"directory is not empty: {root}")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        secure_vault_dir(root)
        entropy = opts.entropy or new_entropy()
        keys = VaultKeys(entropy)
        vault_id = crypto.random_bytes(16)
        device = new_device(keys, vault_id, opts.device_name)
        store = Keystore.create(
            entropy, passphrase, vault_id, keys.did, opts.kdf or Argon2Params(), device
        )
        atomic_write(root / "keystore.json", store.to_json().encode())
        catalog = Catalog.create(
            root / "catalog.db",
            {
                "vault_id": vault_id.hex(),
                "chunker": json.dumps(opts.chunker.to_json(), sort_keys=True),
                "cid_profile": opts.cid_profile,
                "policy": policy.to_json(),
                "did": keys.did,
            },
        )
        with catalog.transaction():
            for i in range(1, opts.providers + 1):
                LocalProvider.create(root / "providers" / f"local-{i}")
                catalog.add_provider(
                    f"local-{i}", "local", f"file:providers/local-{i}", code, {"embedded": "true"}
                )
        write_marker(root, vault_id.hex())
        return cls(VaultContext.build(root, keys, catalog))

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Vault:
        root = Path(path).absolute()
        read_marker(root)
        secure_vault_dir(root)
        try:
            store = Keystore.from_json((root / "keystore.json").read_bytes())
        except FileNotFoundError:
            raise VaultStateError(f"keystore missing: {root / 'keystore.json'}") from None
        keys = VaultKeys(store.unlock(passphrase))
        return cls(VaultContext.build(root, keys, Catalog.open(root / "catalog.db")))

    async def close(self) -> None:
        await self.ctx.close()

    async def __aenter__(self) -> Vault:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what every caller asks ---------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.ctx.path

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    @property
    def store(self) -> ShareStore:
        return self.ctx.store

    @property
    def policy(self) -> Policy:
        return self.ctx.settings.policy

    @property
    def chunker(self) -> ChunkerParams:
        return self.ctx.settings.chunker

    @property
    def cid_profile(self) -> str:
        return self.ctx.settings.cid_profile

    @property
    def did(self) -> str:
        return self.ctx.keys.did

    @property
    def keys(self) -> VaultKeys:
        """The keys derived from the vault's phrase (``keys.phrase`` is the phrase)."""
        return self.ctx.keys

    def candidates(self) -> list[Candidate]:
        return self.ctx.candidates()

    @property
    def warn(self) -> Callable[[str], None]:
        return self.ctx.hooks.warn

    @warn.setter
    def warn(self, fn: Callable[[str], None]) -> None:
        self.ctx.hooks.warn = fn

    @property
    def on_problem(self) -> Callable[[Problem], None] | None:
        return self.ctx.hooks.on_problem

    @on_problem.setter
    def on_problem(self, fn: Callable[[Problem], None] | None) -> None:
        self.ctx.hooks.on_problem = fn

    @property
    def clock(self) -> Clock:
        """What "now" is for grant expiry (default ``time.time``)."""
        return self.ctx.hooks.clock

    @clock.setter
    def clock(self, fn: Clock) -> None:
        self.ctx.hooks.clock = fn

    async def pull(self) -> int:
        """Apply what other devices committed since the last pull (journal records); how
        many records. Every write does it first; commands that show the namespace call it."""
        return await self.ctx.pull()

    async def snapshot(self) -> SnapshotResult:
        """Write the catalog to the providers now."""
        return await self.ctx.push_catalog()
