"""IPFS provider URLs and their options (``ipfs+kubo://``, ``ipfs+pinning://``).

Secrets never come from a URL: tokens are named by ``token_env`` and read from the
environment.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from ownvault.errors import UsageError

__all__ = [
    "DEFAULT_ROOT",
    "MFS_ROOT_RE",
    "gateways_of",
    "number",
    "parse_kubo_url",
    "parse_pinning_url",
    "url_options",
]

DEFAULT_ROOT = "/ownvault"
MFS_ROOT_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+\Z")


def parse_kubo_url(url: str) -> tuple[str, str]:
    """``ipfs+kubo://HOST:PORT[/MFS/ROOT][?gateway=URL]`` (or ``ipfs+kubo+https://``) ->
    (RPC base, MFS root)."""
    parsed = urlparse(url)
    schemes = {"ipfs+kubo": "http", "ipfs+kubo+http": "http", "ipfs+kubo+https": "https"}
    if parsed.scheme not in schemes or not parsed.hostname:
        raise UsageError(f"a Kubo provider URL is ipfs+kubo://HOST:PORT[/MFS/PATH]: {url!r:.100}")
    if parsed.username or parsed.password:
        raise UsageError("put no credentials in a provider URL: use token_env")
    try:
        port = parsed.port
    except ValueError as exc:
        raise UsageError(f"bad port in {url!r:.100}") from exc
    host = parsed.hostname
    if ":" in host:
        host = f"[{host}]"
    base = f"{schemes[parsed.scheme]}://{host}" + (f":{port}" if port else "")
    root = parsed.path.rstrip("/") or DEFAULT_ROOT
    if not MFS_ROOT_RE.match(root) or any(seg in (".", "..") for seg in root.split("/")):
        raise UsageError(f"bad MFS path {root!r} in {url!r:.100}")
    return base, root


def url_options(url: str, config: dict[str, Any]) -> dict[str, Any]:
    """Options given in the URL's query (``?gateway=URL&gateway=URL2&upload=URL``, so that
    ``provider add NAME URL`` can say everything), under those in ``config``; ``gateway``
    is a list, the others single values. Secrets are never taken from a URL."""
    out: dict[str, Any] = {}
    for key, values in parse_qs(urlparse(url).query, keep_blank_values=False).items():
        if key in ("token", "token_env_value", "password"):
            raise UsageError("put no secrets in a provider URL: use token_env")
        out[key] = values if key in ("gateway", "origins") else values[-1]
    for key, value in config.items():
        if key == "gateway" and key in out:
            out[key] = [*([value] if isinstance(value, str) else list(value)), *out[key]]
        else:
            out[key] = value
    return out


def number(config: dict[str, Any], key: str, default: float) -> float:
    """A positive number option, or ``UsageError``."""
    try:
        value = float(config.get(key, default))
    except (TypeError, ValueError):
        raise UsageError(f"option {key} must be a number, not {config.get(key)!r:.40}") from None
    if not value > 0:
        raise UsageError(f"option {key} must be positive")
    return value


def gateways_of(config: dict[str, Any]) -> tuple[str, ...]:
    raw: Any = config.get("gateway", ())
    items = [raw] if isinstance(raw, str) else list(raw)
    out = []
    for g in items:
        if not isinstance(g, str) or urlparse(g).scheme not in ("http", "https"):
            raise UsageError(f"a gateway is an http(s) URL, not {g!r:.80}")
        out.append(g.rstrip("/"))
    return tuple(out)


def parse_pinning_url(url: str) -> str:
    """``ipfs+pinning://HOST[:PORT]/PATH[?options]`` -> ``https://HOST[:PORT]/PATH``.

    ``ipfs+pinning+http://`` is plain HTTP (a service on loopback or a private network).
    The query carries options (``upload``, ``gateway``, ``namespace``: see ``url_options``).
    """
    parsed = urlparse(url)
    schemes = {"ipfs+pinning": "https", "ipfs+pinning+https": "https", "ipfs+pinning+http": "http"}
    if parsed.scheme not in schemes or not parsed.netloc:
        raise UsageError(f"a pinning service URL is ipfs+pinning://HOST[/PATH]: {url!r:.100}")
    if parsed.username or parsed.password:
        raise UsageError("put no credentials in a pinning URL: use token_env")
    return f"{schemes[parsed.scheme]}://{parsed.netloc}{parsed.path.rstrip('/')}"
