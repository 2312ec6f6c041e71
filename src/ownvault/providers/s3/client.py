"""One bucket/prefix as a botocore client plus the thread pool its blocking calls run in.

Why boto3 in threads, not aiobotocore: see the package docstring. Blocking calls run in a
dedicated executor (not the default one, which the engine uses for hashing and erasure
coding), whose size equals botocore's connection pool (``max_connections``), so a worker
thread never waits for a socket; that also makes the provider usable from any event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import boto3
import botocore.exceptions as bx
from botocore.config import Config

from ownvault.errors import ObjectExistsError, ObjectNotFoundError, ProviderError, UsageError
from ownvault.providers.base import validate_name
from ownvault.providers.s3.config import S3Config
from ownvault.providers.s3.errors import classify_error

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["BucketClient", "bare_etag"]

T = TypeVar("T")


def bare_etag(etag: str | None) -> str:
    """An ETag without quotes, lower case ("" for none)."""
    return (etag or "").strip().strip('"').lower()


class BucketClient:
    """The botocore client of one bucket/prefix, made lazily, and its executor."""

    def __init__(self, config: S3Config, label: str) -> None:
        self.config = config
        self.label = label
        self.key_prefix = f"{config.prefix}/" if config.prefix else ""
        self._credentials = _explicit_credentials(config)
        self._lock = threading.Lock()
        self._client_obj: S3Client | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.max_connections, thread_name_prefix="ownvault-s3"
        )

    def client(self) -> S3Client:
        """The boto3 client, made on first use (in a worker thread: it loads JSON models)."""
        with self._lock:
            if self._client_obj is None:
                self._client_obj = self._make_client()
            return self._client_obj

    def _make_client(self) -> S3Client:
        cfg = self.config
        style = cfg.addressing_style or ("path" if cfg.endpoint else "auto")
        botocfg = Config(
            signature_version="s3v4",
            s3={"addressing_style": style},
            retries={"mode": "standard", "total_max_attempts": cfg.max_attempts},
            max_pool_connections=cfg.max_connections,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            tcp_keepalive=True,
            # Older gateways (Ceph 16, older MinIO) reject the aws-chunked trailing
            # checksums that botocore sends by default since 1.36: use Content-MD5.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            session = boto3.Session(profile_name=cfg.profile)
            ak, sk = self._credentials or (None, None)
            return session.client(
                "s3",
                region_name=cfg.region or session.region_name or "us-east-1",
                endpoint_url=cfg.endpoint,
                aws_access_key_id=ak,
                aws_secret_access_key=sk,
                config=botocfg,
            )
        except bx.BotoCoreError as exc:
            raise classify_error(exc, provider=self.label) from exc

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the bucket's executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def submit_detached(self, fn: Callable[..., object], *args: object) -> None:
        """Start ``fn(*args)`` without waiting (cleanup that must run even when cancelled)."""
        with contextlib.suppress(RuntimeError):  # executor already shut down
            self._executor.submit(fn, *args)

    def key(self, name: str) -> str:
        return self.key_prefix + validate_name(name)

    def fail(self, exc: BaseException, name: str | None = None) -> ProviderError:
        return classify_error(exc, provider=self.label, name=name)

    def exists_error(self, name: str) -> ObjectExistsError:
        return ObjectExistsError(f"object exists: {name}", provider=self.label, share=name)

    def head_etag(self, key: str) -> tuple[str, int] | None:
        """(bare ETag, size) of the stored object, None if absent."""
        try:
            r = self.client().head_object(Bucket=self.config.bucket, Key=key)
        except bx.ClientError as exc:
            err = self.fail(exc)
            if isinstance(err, ObjectNotFoundError):
                return None
            raise err from exc
        return bare_etag(r.get("ETag")), int(r["ContentLength"])

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._client_obj is not None:
                self._client_obj.close()
                self._client_obj = None


def _explicit_credentials(config: S3Config) -> tuple[str, str] | None:
    if config.access_key_env is None or config.secret_key_env is None:
        return None
    ak = os.environ.get(config.access_key_env)
    sk = os.environ.get(config.secret_key_env)
    if not ak or not sk:
        missing = config.access_key_env if not ak else config.secret_key_env
        raise UsageError(f"environment variable {missing} is not set")
    return ak, sk
