"""The local keystore: the vault's 32-byte entropy sealed under the passphrase, and this
device's journal signing key.

``keystore.json`` (format ``ownvault-keystore`` v2; v1 is the same without ``device``)::

    {"format": "ownvault-keystore", "version": 2, "vault_id": "<32 hex>",
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 2,
             "salt": "<32 hex>"},
     "box": "<hex of seal(argon2id(passphrase, salt), entropy, AD)>",
     "did": "did:key:z6Mk...",
     "device": {"id": "<32 hex>", "name": "laptop",
                "box": "<hex of seal(device_seal, device seed, DEVICE_AD)>"}}

    AD          = "ownvault/v1/keystore" || vault_id
    device_seal = HKDF-SHA256(root, info="ownvault/v1/key/device-seal")
    DEVICE_AD   = "ownvault/v1/device-key" || vault_id || device id

The KDF parameters are stored with the salt they were used with, so they can be raised
later without breaking old keystores. The device key is random (``core.journal.DeviceKey``)
and sealed under a key derived from the root, which only the passphrase unlocks here: so
a vault made before devices existed enrolls one without asking for the passphrase again,
and a passphrase change carries the device box over unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ownvault.core import crypto
from ownvault.core.crypto import Argon2Params
from ownvault.core.journal import DeviceKey
from ownvault.core.journalops import DEVICE_ID_SIZE, MAX_SHORT
from ownvault.core.keys import VaultKeys
from ownvault.errors import AuthError, FormatError, IntegrityError

__all__ = ["MAX_KEYSTORE_SIZE", "DeviceSeal", "Keystore"]

FORMAT = "ownvault-keystore"
VERSION = 2
AD = b"ownvault/v1/keystore"
DEVICE_AD = b"ownvault/v1/device-key"
DEVICE_SEAL_LABEL = b"ownvault/v1/key/device-seal"
MAX_KEYSTORE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class DeviceSeal:
    """This device's journal signing key, sealed under a key derived from the root."""

    id: bytes
    name: str
    box: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.id) != DEVICE_ID_SIZE:
            raise FormatError("a device id is 16 bytes")
        if not 0 < len(self.name.encode("utf-8")) <= MAX_SHORT or "\0" in self.name:
            raise FormatError(f"a device name is 1 to {MAX_SHORT} UTF-8 bytes without NUL")

    @classmethod
    def seal(cls, keys: VaultKeys, vault_id: bytes, device: DeviceKey, name: str) -> DeviceSeal:
        key = crypto.hkdf(keys.root, DEVICE_SEAL_LABEL)
        return cls(device.id, name, crypto.seal(key, device.seed, DEVICE_AD + vault_id + device.id))

    def open(self, keys: VaultKeys, vault_id: bytes) -> DeviceKey:
        """The device key; ``IntegrityError`` if the box or its id does not match."""
        key = crypto.hkdf(keys.root, DEVICE_SEAL_LABEL)
        device = DeviceKey(crypto.open_box(key, self.box, DEVICE_AD + vault_id + self.id))
        if device.id != self.id:
            raise IntegrityError("the device key does not match its id")
        return device

    def to_json(self) -> dict[str, str]:
        return {"id": self.id.hex(), "name": self.name, "box": self.box.hex()}

    @classmethod
    def from_json(cls, d: object) -> DeviceSeal:
        if not isinstance(d, dict) or set(d) != {"id", "name", "box"}:
            raise FormatError("keystore device: expected exactly id, name, box")
        i, n, b = d["id"], d["name"], d["box"]
        if not (isinstance(i, str) and isinstance(n, str) and isinstance(b, str)):
            raise FormatError("keystore device: fields are strings")
        return cls(bytes.fromhex(i), n, bytes.fromhex(b))


@dataclass(frozen=True, slots=True)
class Keystore:
    vault_id: bytes
    params: Argon2Params
    salt: bytes
    box: bytes
    did: str
    device: DeviceSeal | None = None

    @classmethod
    def create(
        cls,
        entropy: bytes,
        passphrase: str,
        vault_id: bytes,
        did: str,
        params: Argon2Params,
        device: DeviceSeal | None = None,
    ) -> Keystore:
        salt = crypto.random_bytes(16)
        kek = crypto.argon2id(passphrase.encode("utf-8"), salt, params)
        box = crypto.seal(kek, entropy, AD + vault_id)
        return cls(vault_id, params, salt, box, did, device)

    def unlock(self, passphrase: str) -> bytes:
        """The entropy; ``AuthError`` for a wrong passphrase."""
        kek = crypto.argon2id(passphrase.encode("utf-8"), self.salt, self.params)
        try:
            return crypto.open_box(kek, self.box, AD + self.vault_id)
        except IntegrityError:
            raise AuthError("wrong passphrase") from None

    def to_json(self) -> str:
        """Version 2 with a device, version 1 (its exact former layout) without."""
        extra = {} if self.device is None else {"device": self.device.to_json()}
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION if self.device is not None else 1,
                "vault_id": self.vault_id.hex(),
                "kdf": {
                    "name": "argon2id",
                    "time_cost": self.params.time_cost,
                    "memory_kib": self.params.memory_cost_kib,
                    "parallelism": self.params.parallelism,
                    "salt": self.salt.hex(),
                },
                "box": self.box.hex(),
                "did": self.did,
                **extra,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Keystore:
        if len(text) > MAX_KEYSTORE_SIZE:
            raise FormatError("keystore too large")
        try:
            d = json.loads(text)
            if d.get("format") != FORMAT:
                raise FormatError("not an ownvault keystore")
            version = d.get("version")
            if version not in (1, VERSION) or isinstance(version, bool):
                raise FormatError(f"unsupported keystore version {version}")
            if (version == VERSION) != ("device" in d):
                raise FormatError("a version 2 keystore, and only one, has a device")
            kdf = d["kdf"]
            if kdf["name"] != "argon2id":
                raise FormatError(f"unsupported keystore KDF {kdf['name']!r}")
            params = Argon2Params(
                int(kdf["time_cost"]), int(kdf["memory_kib"]), int(kdf["parallelism"])
            )
            return cls(
                bytes.fromhex(d["vault_id"]),
                params,
                bytes.fromhex(kdf["salt"]),
                bytes.fromhex(d["box"]),
                str(d["did"]),
                DeviceSeal.from_json(d["device"]) if version == VERSION else None,
            )
        except FormatError:
            raise
        except (
            ValueError,
            KeyError,
            TypeError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as exc:
            # OverflowError: int(Infinity); RecursionError: JSON nested too deep
            raise FormatError(f"keystore is malformed: {exc}") from None
