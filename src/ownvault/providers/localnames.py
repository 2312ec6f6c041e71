"""Where a local-folder provider keeps things, without the provider itself.

:class:`~ownvault.providers.local.LocalProvider` is the only writer of a local folder; this
module is the layout it writes (``ROOT/objects/<name>``) and the parsing of its ``file:``
URLs, kept apart so that a reader that must not load the event loop or the provider's
write machinery (``ls`` and ``du`` looking for newer journal records, docs/design.md
"Listing without the passphrase") can find names the same way.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from ownvault.errors import UsageError
from ownvault.providers.base import validate_name

__all__ = ["OBJECTS", "local_path_of", "object_path"]

OBJECTS = "objects"


def local_path_of(url: str, base: Path | None = None) -> Path:
    """The folder of a ``file:`` URL; relative ones resolve against ``base`` (the vault)."""
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise UsageError(f"not a local folder URL: {url!r}")
    path = Path(unquote(parsed.path))
    if not path.is_absolute():
        if base is None or url.startswith("file:/"):
            raise UsageError(f"a file:// URL needs an absolute path: {url!r}")
        if any(part == ".." for part in path.parts):
            raise UsageError(f"a relative provider path may not leave the vault: {url!r}")
        path = base / path
    return path


def object_path(root: Path, name: str) -> Path:
    """The file of object ``name`` in the folder provider at ``root``."""
    return root / OBJECTS / validate_name(name)
