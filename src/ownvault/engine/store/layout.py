"""The vault directory on disk, and the names a vault accepts.

Vault directory::

    VAULT/ownvault.json    {"format": "ownvault-vault", "version": 1, "vault_id": "…"}
    VAULT/keystore.json    the entropy sealed under the passphrase (core.keystore)
    VAULT/catalog.db       the catalog (engine.store.catalog), SQLite in WAL mode
    VAULT/providers/…      the embedded default providers (local folders)
    VAULT/lock             held (flock) by the one writer at a time (engine.store.context)
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from ownvault.errors import UsageError, VaultStateError

__all__ = [
    "MAX_OBJECT_NAME",
    "VAULT_FORMAT",
    "VAULT_VERSION",
    "atomic_write",
    "read_marker",
    "validate_object_name",
    "validate_provider_name",
    "validate_tag",
    "write_marker",
]

VAULT_FORMAT = "ownvault-vault"
VAULT_VERSION = 1
MAX_OBJECT_NAME = 1024
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def validate_object_name(name: str) -> str:
    """A vault name: a relative "/"-separated path of non-empty segments, no "." or ".."."""
    name = name.strip("/")
    if not name or len(name) > MAX_OBJECT_NAME or "\0" in name:
        raise UsageError(f"invalid name: {name!r:.80}")
    if any(seg in ("", ".", "..") for seg in name.split("/")):
        raise UsageError(f"invalid name (empty, '.' or '..' segment): {name!r:.80}")
    return name


def validate_tag(tag: str) -> str:
    """A tag: 1 to 64 characters, no whitespace."""
    if not tag or len(tag) > 64 or any(c.isspace() for c in tag):
        raise UsageError(f"invalid tag {tag!r}")
    return tag


def validate_provider_name(name: str) -> str:
    """A provider name: lower-case letters, digits, ``.``, ``_``, ``-`` (at most 63)."""
    if not PROVIDER_NAME.match(name):
        raise UsageError(f"invalid provider name {name!r} (lower-case letters, digits, . _ -)")
    return name


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temp file, fsync, rename, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_marker(root: Path, vault_id: str) -> None:
    body = {"format": VAULT_FORMAT, "version": VAULT_VERSION, "vault_id": vault_id}
    atomic_write(root / "ownvault.json", json.dumps(body).encode())


def read_marker(root: Path) -> dict[str, object]:
    """The vault marker, checked for format and version."""
    marker = root / "ownvault.json"
    if not marker.exists():
        raise VaultStateError(f"no vault at {root} (run `ownvault init` first)")
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise VaultStateError(f"vault marker unreadable: {marker}: {exc}") from None
    if (
        not isinstance(info, dict)
        or info.get("format") != VAULT_FORMAT
        or info.get("version") != VAULT_VERSION
    ):
        raise VaultStateError(f"unsupported vault format in {marker}")
    return info
