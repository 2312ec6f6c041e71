"""Opening providers from their catalog rows (kind + URL + config).

Each provider kind registers an opener here. The remote adapters are imported by their
opener, when a vault first opens a provider of that kind: boto3 and httpx cost ~0.3 s of
start-up, which a command such as ``ls`` or ``du`` never needs. URLs: ``file:///abs/path`` for local folders, and ``file:REL/PATH`` (no slashes
after the colon) for a folder relative to the vault directory: the embedded defaults, so
that a vault directory can be moved or copied whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ownvault.core.keys import VaultKeys
from ownvault.errors import ProviderPermanentError, UsageError
from ownvault.providers.base import Provider
from ownvault.providers.local import LocalProvider
from ownvault.providers.localnames import local_path_of
from ownvault.providers.wrappers import RetryingProvider

__all__ = ["OPENERS", "kind_of_url", "local_path_of", "open_provider"]

Opener = Callable[[str, dict[str, Any], VaultKeys | None, str, Path | None], Provider]


def _open_local(
    url: str, _config: dict[str, Any], _keys: VaultKeys | None, name: str, base: Path | None
) -> Provider:
    return LocalProvider(local_path_of(url, base), label=name)


def _open_node(
    url: str, config: dict[str, Any], keys: VaultKeys | None, name: str, _base: Path | None
) -> Provider:
    if keys is None:
        raise UsageError("a storage node provider needs the vault's signing key")
    from ownvault.providers.node import NodeProvider

    node = NodeProvider(
        url,
        keys,
        timeout=float(config.get("timeout", 30.0)),
        connect_timeout=float(config.get("connect_timeout", 5.0)),
        label=name,
        capability=config.get("capability"),
    )
    # Retryable failures (unreachable, 5xx, throttled, a node restart) are retried with
    # backoff; permanent ones are not. Reads hedge at the engine level on top of this.
    return RetryingProvider(
        node, attempts=int(config.get("attempts", 3)), base_delay=0.2, max_delay=2.0
    )


def _open_ipfs(
    url: str, config: dict[str, Any], _keys: VaultKeys | None, name: str, _base: Path | None
) -> Provider:
    """``ipfs+kubo[+https]://HOST:PORT[/MFS/ROOT]`` or ``ipfs+pinning[+http]://HOST[/PATH]``."""
    from ownvault.providers.ipfs.kubo import KuboProvider
    from ownvault.providers.ipfs.pinning import PinningProvider
    from ownvault.providers.ipfs.urls import number

    scheme = urlparse(url).scheme
    inner: Provider
    if scheme.startswith("ipfs+kubo"):
        inner = KuboProvider.from_url(url, config, label=name)
    elif scheme.startswith("ipfs+pinning"):
        inner = PinningProvider.from_url(url, config, label=name)
    else:
        raise UsageError(
            f"unsupported IPFS provider URL {url!r:.100} (ipfs+kubo:// or ipfs+pinning://)"
        )
    # as for storage nodes: retryable failures are retried with backoff (engine/ipfs/pinning.py
    # reaches the IPFS provider under the wrapper through ``unwrap``)
    attempts = int(number(config, "attempts", 3))
    return RetryingProvider(inner, attempts=attempts, base_delay=0.2, max_delay=2.0)


def _open_s3(
    url: str, config: dict[str, Any], _keys: VaultKeys | None, name: str, _base: Path | None
) -> Provider:
    # botocore retries with its own classification (throttling, 5xx); the provider maps
    # what is left into the error tree. Credentials are read from the environment now.
    from ownvault.providers.s3 import S3Config, S3Provider

    s3 = S3Config.from_url(
        url,
        endpoint=config.get("endpoint"),
        region=config.get("region"),
        profile=config.get("profile"),
        access_key_env=config.get("access_key_env"),
        secret_key_env=config.get("secret_key_env"),
    )
    return S3Provider(s3, label=name)


OPENERS: dict[str, Opener] = {
    "local": _open_local,
    "node": _open_node,
    "s3": _open_s3,
    "ipfs": _open_ipfs,
}


def kind_of_url(url: str) -> str:
    scheme = urlparse(url).scheme
    kinds = {"file": "local", "http": "node", "https": "node", "s3": "s3"}
    if scheme.startswith("ipfs+"):
        return "ipfs"
    if scheme not in kinds:
        raise UsageError(f"unsupported provider URL scheme {scheme!r} in {url!r}")
    return kinds[scheme]


def open_provider(
    kind: str,
    url: str,
    config: dict[str, Any],
    keys: VaultKeys | None,
    name: str,
    base: Path | None = None,
) -> Provider:
    opener = OPENERS.get(kind)
    if opener is None:
        raise ProviderPermanentError(f"provider kind {kind!r} is not supported here", provider=name)
    return opener(url, config, keys, name, base)
