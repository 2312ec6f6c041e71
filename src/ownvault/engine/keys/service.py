"""The keys feature: passphrase, content-key rotation, guardian shares, shredding, devices."""

from __future__ import annotations

from ownvault.engine.keys import devices as device_ops
from ownvault.engine.keys import keyring, shred
from ownvault.engine.store.service import Service, op

__all__ = ["Keys"]


class Keys(Service):
    """``vault.keyring``: the vault's secrets and the ways to make data unreadable for good.

    (The derived keys themselves are ``vault.ctx.keys``.)"""

    change_passphrase = op(keyring.change_passphrase)
    rotate_content_key = op(keyring.rotate_content_key)
    guardian_shares = op(keyring.guardian_shares)
    forget = op(shred.forget)
    devices = op(device_ops.list_devices)
    revoke_device = op(device_ops.revoke)
    log = op(device_ops.journal_log)
