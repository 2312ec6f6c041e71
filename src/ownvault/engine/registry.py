"""Opening providers from their catalog rows (kind + URL + config).

Each provider kind registers an opener here; later kinds (storage nodes, S3, IPFS) add
theirs. URLs: ``file:///abs/path`` for local folders.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ownvault.core.keys import VaultKeys
from ownvault.errors import ProviderPermanentError, UsageError
from ownvault.providers.base import Provider
from ownvault.providers.local import LocalProvider

__all__ = ["OPENERS", "kind_of_url", "local_path_of", "open_provider"]

Opener = Callable[[str, dict[str, Any], VaultKeys | None, str], Provider]


def local_path_of(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise UsageError(f"not a local folder URL: {url!r}")
    path = Path(unquote(parsed.path))
    if not path.is_absolute():
        raise UsageError(f"a file:// URL needs an absolute path: {url!r}")
    return path


def _open_local(url: str, _config: dict[str, Any], _keys: VaultKeys | None, name: str) -> Provider:
    return LocalProvider(local_path_of(url), label=name)


OPENERS: dict[str, Opener] = {"local": _open_local}


def kind_of_url(url: str) -> str:
    scheme = urlparse(url).scheme
    kinds = {"file": "local", "http": "node", "https": "node", "s3": "s3"}
    if scheme.startswith("ipfs+"):
        return "ipfs"
    if scheme not in kinds:
        raise UsageError(f"unsupported provider URL scheme {scheme!r} in {url!r}")
    return kinds[scheme]


def open_provider(
    kind: str, url: str, config: dict[str, Any], keys: VaultKeys | None, name: str
) -> Provider:
    opener = OPENERS.get(kind)
    if opener is None:
        raise ProviderPermanentError(f"provider kind {kind!r} is not supported here", provider=name)
    return opener(url, config, keys, name)
