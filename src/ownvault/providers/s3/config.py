"""Where one S3 bucket/prefix is and how to reach it: :class:`S3Config` and S3's size limits.

Holds names of secrets (environment variables), never secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ownvault.errors import UsageError

__all__ = ["MAX_PARTS", "MAX_SINGLE_PUT", "MIN_PART_SIZE", "MiB", "S3Config"]

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PARTS = 10_000
MAX_SINGLE_PUT = 5 * 1024 * MiB

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_PREFIX_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._-]+\Z")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class S3Config:
    """Where and how to reach one bucket/prefix. Holds names of secrets, never secrets.

    Credentials come from ``access_key_env``/``secret_key_env`` (names of environment
    variables) when given, else from boto3's usual chain (environment, shared credentials
    and config files, ``profile``, instance metadata).
    """

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    access_key_env: str | None = None
    secret_key_env: str | None = None
    addressing_style: Literal["auto", "path", "virtual"] | None = None
    multipart_threshold: int = 16 * MiB
    part_size: int = 8 * MiB
    max_connections: int = 8
    max_attempts: int = 3
    list_page_size: int = 1000
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not _BUCKET_RE.match(self.bucket) or ".." in self.bucket:
            raise UsageError(f"invalid S3 bucket name: {self.bucket!r:.80}")
        if self.prefix:
            if len(self.prefix) > 512:
                raise UsageError("S3 prefix too long (max 512)")
            for seg in self.prefix.split("/"):
                if seg in ("", ".", "..") or not _PREFIX_SEGMENT_RE.match(seg):
                    raise UsageError(f"invalid S3 prefix: {self.prefix!r:.80}")
        if self.endpoint is not None:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"S3 endpoint must be an http(s) URL: {self.endpoint!r:.80}")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise UsageError(f"S3 endpoint must have no path: {self.endpoint!r:.80}")
        if (self.access_key_env is None) != (self.secret_key_env is None):
            raise UsageError("give both --access-key-env and --secret-key-env, or neither")
        for var in (self.access_key_env, self.secret_key_env):
            if var is not None and not _ENV_NAME_RE.match(var):
                raise UsageError(f"not an environment variable name: {var!r:.80}")
        if not MIN_PART_SIZE <= self.part_size <= MAX_SINGLE_PUT:
            raise UsageError("part_size must be between 5 MiB and 5 GiB")
        if not 0 <= self.multipart_threshold <= MAX_SINGLE_PUT:
            raise UsageError("multipart_threshold must be between 0 and 5 GiB")
        if not 1 <= self.max_connections <= 256:
            raise UsageError("max_connections must be 1..256")
        if not 1 <= self.max_attempts <= 20:
            raise UsageError("max_attempts must be 1..20")
        if not 1 <= self.list_page_size <= 1000:
            raise UsageError("list_page_size must be 1..1000")

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        access_key_env: str | None = None,
        secret_key_env: str | None = None,
    ) -> S3Config:
        """Parse ``s3://BUCKET[/PREFIX]`` plus the ``provider add`` options."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise UsageError(f"expected s3://BUCKET[/PREFIX], got {url!r:.80}")
        if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
            raise UsageError(f"unexpected parts in S3 URL: {url!r:.80}")
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint.rstrip("/") if endpoint else None,
            region=region,
            profile=profile,
            access_key_env=access_key_env,
            secret_key_env=secret_key_env,
        )

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
