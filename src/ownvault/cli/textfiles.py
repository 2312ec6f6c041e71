"""Small text inputs (phrase, guardian shares, cards, grants) and secret outputs.

A secret is written only to a new file: created with ``O_EXCL`` and mode 0600, never
overwriting, fsynced before the command reports it written.
"""

from __future__ import annotations

import os

from ownvault.errors import UsageError

__all__ = ["MAX_INPUT", "claim_new_file", "read_small", "write_claimed", "write_secret"]

MAX_INPUT = 64 * 1024


def read_small(path: str, what: str) -> str:
    """The UTF-8 text of ``path`` (at most :data:`MAX_INPUT` characters)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_INPUT + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not UTF-8 text") from None
    if len(text) > MAX_INPUT:
        raise UsageError(f"{what} {path} is too large")
    return text


def claim_new_file(path: str, option: str | None = None) -> int:
    """Create ``path`` (0600, must not exist) and return its descriptor.

    ``option`` names the command-line option in error messages."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if option:
            raise UsageError(f"{option} exists already (never overwritten): {path}") from None
        raise UsageError(f"{path} exists already (never overwritten)") from None
    except OSError as exc:
        what = f"{option} {path}" if option else path
        raise UsageError(f"cannot create {what}: {exc.strerror}") from None


def write_claimed(fd: int, text: str) -> None:
    """Write ``text`` to a descriptor from :func:`claim_new_file`, fsync and close it."""
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_secret(path: str, text: str) -> None:
    """A new 0600 file, never overwriting, fsynced."""
    write_claimed(claim_new_file(path), text)
