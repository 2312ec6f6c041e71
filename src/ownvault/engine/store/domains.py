"""Failure domains: which providers one accident (a lost laptop, a dead disk) takes out at once.

A provider's domain is its label in the catalog (``provider add --domain``) or, without one,
a default read from its kind and URL (docs/design.md, "Failure domains"):

| provider | default domain |
| --- | --- |
| the embedded folders inside the vault directory | ``this-machine`` |
| a local folder on the vault directory's device | ``this-machine`` |
| a local folder on another device (a USB disk, a network mount) | ``mount:<mount point>`` |
| a storage node, a Kubo node, a pinning service | the URL's host |
| an S3 bucket | the endpoint's host (``s3.<region>.amazonaws.com`` on AWS) |

Placement (``engine.store.placement``) puts at most n-k shares of a piece in any one domain
whenever the providers allow it, so that losing one machine leaves k shares.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ownvault.engine.store.catalog import ProviderRow
from ownvault.engine.store.placement import THIS_MACHINE, Candidate
from ownvault.errors import UsageError
from ownvault.providers.registry import local_path_of

__all__ = ["candidate_of", "default_domain", "domain_of", "validate_domain"]

_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9._:/@\[\]-]{0,199}\Z")


def validate_domain(text: str) -> str:
    """A domain label: lower case, 1-200 of ``a-z 0-9 . _ : / @ [ ] -``."""
    label = text.strip().lower()
    if not _DOMAIN.match(label):
        raise UsageError(
            f"not a failure-domain label: {text!r:.80} (1-200 of a-z 0-9 . _ : / @ [ ] -, "
            "e.g. a host name)"
        )
    return label


def _device(path: Path) -> tuple[int, Path] | None:
    """The device of ``path`` (or its nearest existing parent) and that device's mount point."""
    p = path.absolute()
    while not p.exists():
        if p.parent == p:
            return None
        p = p.parent
    try:
        dev = os.stat(p).st_dev
        while p.parent != p and os.stat(p.parent).st_dev == dev:
            p = p.parent
    except OSError:
        return None
    return dev, p


def default_domain(kind: str, url: str, config: dict[str, Any], vault: Path | None) -> str | None:
    """The domain a provider is in when nobody labelled it (None: a domain of its own)."""
    if config.get("embedded") in (True, "true"):
        return THIS_MACHINE
    if kind == "local":
        try:
            path = local_path_of(url, vault)
        except UsageError:
            return None
        here = _device(vault) if vault is not None else None
        there = _device(path)
        if there is None:
            return None
        if here is not None and here[0] == there[0]:
            return THIS_MACHINE
        return f"mount:{there[1]}"
    if kind == "s3":
        endpoint = config.get("endpoint")
        if endpoint:
            host = urlparse(str(endpoint)).hostname
            return host.lower() if host else None
        region = config.get("region") or "us-east-1"
        return f"s3.{region}.amazonaws.com"
    host = urlparse(url).hostname
    return host.lower() if host else None


def domain_of(row: ProviderRow, vault: Path | None) -> str | None:
    """A provider's failure domain: its label, else the default for its kind and URL."""
    return row.domain or default_domain(row.kind, row.url, row.config, vault)


def candidate_of(
    row: ProviderRow, vault: Path | None, load: int = 0, active: bool | None = None
) -> Candidate:
    """A provider row as a placement candidate (``active`` defaults to its state)."""
    is_active = row.state == "active" if active is None else active
    return Candidate(row.id, row.name, row.jurisdiction, load, is_active, domain_of(row, vault))
