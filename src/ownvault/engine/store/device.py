"""This vault copy's device: its random journal signing key, kept in the keystore.

Each copy of a vault (made by ``init``, or by ``recover`` on another machine) is one
device of the vault's journal (docs/design.md, "Catalog journal and multi-device merge",
"Devices"). Its key is random, never derived from the phrase, sealed in ``keystore.json``
(``core.keystore.DeviceSeal``). A vault made before devices existed has none: the first
use of the journal enrolls one (:func:`device_identity`), once.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from pathlib import Path

from ownvault.core.journal import DeviceKey
from ownvault.core.journalops import MAX_SHORT
from ownvault.core.keys import VaultKeys
from ownvault.core.keystore import DeviceSeal, Keystore
from ownvault.engine.store.layout import atomic_write
from ownvault.errors import UsageError, VaultStateError

__all__ = ["DeviceIdentity", "default_device_name", "device_identity", "new_device", "valid_name"]


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """This device: its signing key and the name its certificate gives it."""

    key: DeviceKey = field(repr=False)
    name: str

    @property
    def id(self) -> bytes:
        return self.key.id


def valid_name(name: str) -> str:
    """A device name: 1 to 512 UTF-8 bytes, printable, no NUL."""
    name = name.strip()
    if not name or len(name.encode("utf-8")) > MAX_SHORT or not name.isprintable():
        raise UsageError(f"invalid device name {name!r:.80} (1 to {MAX_SHORT} printable bytes)")
    return name


def default_device_name() -> str:
    """The machine's host name (``device`` if it has none that fits)."""
    try:
        return valid_name(socket.gethostname())
    except UsageError:
        return "device"


def new_device(keys: VaultKeys, vault_id: bytes, name: str | None) -> DeviceSeal:
    """A new random device key, sealed for the keystore."""
    return DeviceSeal.seal(
        keys, vault_id, DeviceKey.new(), valid_name(name) if name else default_device_name()
    )


def device_identity(root: Path, keys: VaultKeys, name: str | None = None) -> DeviceIdentity:
    """This vault copy's device, read from ``root/keystore.json``; a keystore without one
    (made before devices existed) gets one now, written back atomically."""
    path = root / "keystore.json"
    try:
        store = Keystore.from_json(path.read_bytes())
    except FileNotFoundError:
        raise VaultStateError(f"keystore missing: {path}") from None
    seal = store.device
    if seal is None:
        seal = new_device(keys, store.vault_id, name)
        atomic_write(path, replace(store, device=seal).to_json().encode())
    return DeviceIdentity(seal.open(keys, store.vault_id), seal.name)
