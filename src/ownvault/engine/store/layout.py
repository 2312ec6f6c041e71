"""The vault directory on disk, and the names a vault accepts.

Vault directory::

    VAULT/ownvault.json    {"format": "ownvault-vault", "version": 1, "vault_id": "…"}
    VAULT/keystore.json    the entropy sealed under the passphrase (core.keystore)
    VAULT/catalog.db       the catalog (engine.store.catalog), SQLite in WAL mode
    VAULT/providers/…      the embedded default providers (local folders)
    VAULT/lock             held (flock) by the one writer at a time (engine.store.context)

The directory is 0700 and every file ownvault keeps in it 0600 (:data:`PRIVATE_FILES`):
the catalog holds every name, size and time in clear, and the keystore can be attacked
offline. :func:`secure_vault_dir` checks and tightens that on every open (a vault made
by an older ownvault had 0755 and 0644), and refuses a symlink or anything but a regular
file at those names, so a link planted as ``VAULT/catalog.db-wal`` is never written
through. Files are written by :func:`atomic_write` (``O_EXCL | O_NOFOLLOW``, 0600).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
from pathlib import Path

from ownvault.errors import UsageError, VaultStateError

__all__ = [
    "MAX_OBJECT_NAME",
    "PRIVATE_FILES",
    "VAULT_FORMAT",
    "VAULT_VERSION",
    "atomic_write",
    "create_private",
    "read_marker",
    "secure_vault_dir",
    "validate_object_name",
    "validate_provider_name",
    "validate_tag",
    "write_marker",
]

VAULT_FORMAT = "ownvault-vault"
VAULT_VERSION = 1
MAX_OBJECT_NAME = 1024
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
PRIVATE_FILES = (
    "ownvault.json",
    "keystore.json",
    "catalog.db",
    "catalog.db-wal",
    "catalog.db-shm",
    "catalog.db-journal",
    "lock",
)
DIR_MODE = 0o700
FILE_MODE = 0o600

log = logging.getLogger("ownvault.vault")


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


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write ``path`` whole or not at all: a temp file (``O_EXCL | O_NOFOLLOW``, ``mode``),
    fsync, rename over ``path`` (a symlink there is replaced, never followed), fsync the
    directory."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
        os.fchmod(fd, mode)  # the umask may have narrowed it; never wider than asked
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def create_private(path: Path) -> None:
    """Create the empty file ``path`` with mode 0600 (``O_EXCL | O_NOFOLLOW``), so that
    SQLite opens a file that was never wider (its -wal and -shm files take its mode)."""
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
        )
    except FileExistsError:
        raise VaultStateError(f"exists already: {path}") from None
    os.fchmod(fd, FILE_MODE)
    os.close(fd)


def secure_vault_dir(root: Path) -> list[str]:
    """Refuse symlinks and non-files among :data:`PRIVATE_FILES`; tighten the directory to
    0700 and those files to 0600 (by descriptor, never through a link). Returns what was
    tightened (each also logged once: the next open finds nothing to do)."""
    changed: list[str] = []
    dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        st = os.fstat(dfd)
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(dfd, stat.S_IMODE(st.st_mode) & ~0o077 | DIR_MODE)
            changed.append(f"{root} {stat.S_IMODE(st.st_mode):o} -> 700")
        for name in PRIVATE_FILES:
            try:
                fst = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(fst.st_mode):
                what = "a symlink" if stat.S_ISLNK(fst.st_mode) else "not a regular file"
                raise VaultStateError(f"refusing to open the vault: {root / name} is {what}")
            if stat.S_IMODE(fst.st_mode) & 0o077:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    os.fchmod(fd, FILE_MODE)
                finally:
                    os.close(fd)
                changed.append(f"{root / name} {stat.S_IMODE(fst.st_mode):o} -> 600")
    finally:
        os.close(dfd)
    for c in changed:
        log.warning("tightened the mode of %s (vault files are private)", c)
    return changed


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
