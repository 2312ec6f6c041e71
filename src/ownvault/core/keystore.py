"""The local keystore: the vault's 32-byte entropy sealed under the passphrase.

``keystore.json`` (format ``ownvault-keystore`` v1)::

    {"format": "ownvault-keystore", "version": 1, "vault_id": "<32 hex>",
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 2,
             "salt": "<32 hex>"},
     "box": "<hex of seal(argon2id(passphrase, salt), entropy, AD)>",
     "did": "did:key:z6Mk..."}

    AD = "ownvault/v1/keystore" || vault_id

The KDF parameters are stored with the salt they were used with, so they can be raised
later without breaking old keystores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ownvault.core import crypto
from ownvault.core.crypto import Argon2Params
from ownvault.errors import AuthError, FormatError, IntegrityError

__all__ = ["MAX_KEYSTORE_SIZE", "Keystore"]

FORMAT = "ownvault-keystore"
VERSION = 1
AD = b"ownvault/v1/keystore"
MAX_KEYSTORE_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Keystore:
    vault_id: bytes
    params: Argon2Params
    salt: bytes
    box: bytes
    did: str

    @classmethod
    def create(
        cls, entropy: bytes, passphrase: str, vault_id: bytes, did: str, params: Argon2Params
    ) -> Keystore:
        salt = crypto.random_bytes(16)
        kek = crypto.argon2id(passphrase.encode("utf-8"), salt, params)
        box = crypto.seal(kek, entropy, AD + vault_id)
        return cls(vault_id, params, salt, box, did)

    def unlock(self, passphrase: str) -> bytes:
        """The entropy; ``AuthError`` for a wrong passphrase."""
        kek = crypto.argon2id(passphrase.encode("utf-8"), self.salt, self.params)
        try:
            return crypto.open_box(kek, self.box, AD + self.vault_id)
        except IntegrityError:
            raise AuthError("wrong passphrase") from None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
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
            if d.get("version") != VERSION:
                raise FormatError(f"unsupported keystore version {d.get('version')}")
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
