"""Key management on an open vault: passphrase change, content-key rotation, guardians.

* ``change_passphrase``: the keystore is sealed again (new salt, same or new Argon2id
  cost) and replaced atomically (temp file, fsync, rename, fsync of the directory); the old
  passphrase stops working at the rename, never earlier or later.
* ``rotate_content_key``: ``meta.content_epoch`` += 1; chunk keys written from now on are
  wrapped under ``content/<epoch>``. With ``rewrap`` every existing wrapped chunk key is
  unwrapped and wrapped again under the new epoch in one transaction (catalog only: the
  blobs do not change), so the old content key wraps nothing any more.
* ``guardian_shares``: SLIP-39 shares of the entropy (``core.guardians``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ownvault.core.crypto import Argon2Params
from ownvault.core.guardians import GuardianGroup, split_entropy
from ownvault.core.keystore import Keystore
from ownvault.core.pack import unwrap_chunk_key, wrap_chunk_key
from ownvault.engine.store.catalog.keys import WrappedKey
from ownvault.engine.store.context import VaultContext
from ownvault.engine.store.layout import atomic_write
from ownvault.errors import UsageError, VaultStateError

__all__ = [
    "KdfCost",
    "KeyRotation",
    "PassphraseChange",
    "change_passphrase",
    "guardian_shares",
    "rotate_content_key",
]


@dataclass(frozen=True, slots=True)
class KdfCost:
    """The Argon2id cost the keystore is sealed with."""

    time_cost: int
    memory_kib: int
    parallelism: int


@dataclass(frozen=True, slots=True)
class PassphraseChange:
    """The keystore of ``vault`` was sealed again under a new passphrase, at ``kdf`` cost."""

    vault: str
    kdf: KdfCost


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """Chunk keys are now wrapped under content key ``epoch``; ``rewrapped`` older ones were."""

    epoch: int
    rewrapped: int


async def change_passphrase(
    ctx: VaultContext, old: str, new: str, kdf: Argon2Params | None = None
) -> PassphraseChange:
    """Re-seal the keystore under ``new``; ``AuthError`` if ``old`` is wrong."""
    if not new:
        raise UsageError("the new passphrase must not be empty")
    path = ctx.path / "keystore.json"
    async with ctx.write():
        try:
            current = Keystore.from_json(path.read_bytes())
        except FileNotFoundError:
            raise VaultStateError(f"keystore missing: {path}") from None
        # Both KDF runs are slow on purpose: off the event loop.
        entropy = await asyncio.to_thread(current.unlock, old)
        store = await asyncio.to_thread(
            Keystore.create,
            entropy,
            new,
            current.vault_id,
            current.did,
            kdf or current.params,
            current.device,  # this device's key goes along unchanged
        )
        atomic_write(path, store.to_json().encode())
    params = store.params
    return PassphraseChange(
        str(ctx.path), KdfCost(params.time_cost, params.memory_cost_kib, params.parallelism)
    )


async def rotate_content_key(ctx: VaultContext, *, rewrap: bool = False) -> KeyRotation:
    cat = ctx.catalog
    async with ctx.write():
        epoch = int(cat.meta("content_epoch") or "0") + 1
        new_key = ctx.keys.content_key(epoch)
        rewrapped = 0
        with cat.transaction():
            cat.set_meta("content_epoch", str(epoch))
            if rewrap:
                updates = []
                for w in cat.keys.wrapped_keys():
                    key = unwrap_chunk_key(
                        ctx.keys.content_key(w.key_epoch), w.chunk_id, w.wrapped_key
                    )
                    wrapped = wrap_chunk_key(new_key, w.chunk_id, key)
                    updates.append(WrappedKey(w.row, w.chunk_id, wrapped, epoch))
                cat.keys.set_wrapped_keys(updates)
                rewrapped = len(updates)
    return KeyRotation(epoch, rewrapped)


def guardian_shares(
    ctx: VaultContext, groups: list[GuardianGroup], group_threshold: int = 1
) -> list[list[str]]:
    """SLIP-39 mnemonics of this vault's entropy (secret: show them to guardians only)."""
    return split_entropy(ctx.keys.entropy, groups, group_threshold)
