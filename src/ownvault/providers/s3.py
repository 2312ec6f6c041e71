"""A provider on an S3-compatible object store (AWS S3, Ceph RADOS Gateway, MinIO, ...).

Objects live at ``<prefix>/<name>`` in one bucket (``<name>`` alone with no prefix); nothing
else is written there: no marker, no metadata, no plaintext. ``docs/design.md`` ("S3
provider") is the spec: naming, conditional writes, multipart thresholds, the retry
classification table and the Ceph quirks this module tolerates.

Why boto3 in threads, not aiobotocore
-------------------------------------
Both were measured against Ceph RGW 16.2 on loopback (2 cores, 32 x 16 MiB objects, 4 and 8
in flight): boto3 with blocking calls in a bounded thread pool put 129-186 MiB/s and got
287-593 MiB/s; aiobotocore put 123-169 MiB/s and got 275-470 MiB/s, using about 1.5x the
client CPU. The gateway is the bottleneck either way, so the simpler stack wins: boto3 is
the most used S3 client, needs no aiohttp, and its connection pool is bounded by the same
number as our executor (``max_connections``), so a worker thread never waits for a socket.
Blocking calls run in that dedicated executor (not the default one, which the engine uses
for hashing and erasure coding), which also makes the provider usable from any event loop.

Conditional writes
------------------
A single PUT carries ``If-None-Match: *``: the gateway refuses atomically (412) when the name
exists. Ceph 16 honours this on PutObject (exactly one of twelve racing writers wins, also
across gateways) but silently *ignores* it, and ``If-Match`` too, on
CompleteMultipartUpload. Multipart uploads therefore also check with HEAD before creating
the upload and again just before completing it, still send the header (AWS and MinIO honour
it), and HEAD afterwards to see that the stored object is the one we wrote. On Ceph a
writer racing the same name within that last round trip can still be overwritten; ownvault
names are unique per share and a vault has one writer, so this window is documented rather
than papered over. Objects up to ``multipart_threshold`` never take that path.

A botocore-internal retry of a PUT whose first attempt did land gets 412; the provider then
compares the stored ETag with the MD5 it sent and reports success when they agree, so a
retry is idempotent without ever overwriting a different object.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.exceptions as bx
from botocore.config import Config

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo, ProviderInfo, validate_name, validate_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = ["S3Config", "S3Provider", "classify_error"]

T = TypeVar("T")

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PARTS = 10_000
MAX_SINGLE_PUT = 5 * 1024 * MiB

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


# ------------------------------------------------------------------------------ config


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


# ------------------------------------------------------------------------------ errors

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound"})
_EXISTS_CODES = frozenset({"PreconditionFailed"})
_FULL_CODES = frozenset({"QuotaExceeded", "XMinioStorageFull", "InsufficientStorage"})
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ConditionalRequestConflict",
        "BadDigest",
        "IncompleteBody",
        "XAmzContentSHA256Mismatch",
    }
)


def _code_status(exc: bx.ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    return str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)


def classify_error(
    exc: BaseException, *, provider: str | None = None, name: str | None = None
) -> ProviderError:
    """Map a botocore exception to ownvault's tree (the table in docs/design.md)."""
    share = name
    if isinstance(exc, ProviderError):
        return exc  # classified already (e.g. by the client factory)
    if isinstance(exc, bx.ClientError):
        code, status = _code_status(exc)
        msg = f"S3 {code or status}" + (f" on {name}" if name else "")
        if code in _FULL_CODES or status == 507:
            return StorageFullError(f"{msg}: storage full or quota exceeded", provider=provider)
        if code in _EXISTS_CODES or status == 412:
            return ObjectExistsError(f"{msg}: object exists", provider=provider, share=share)
        if code in _NOT_FOUND_CODES or (status == 404 and code in ("", "404")):
            return ObjectNotFoundError(f"object not found: {name}", provider=provider, share=share)
        if code in _RETRYABLE_CODES or status in (408, 429) or status >= 500:
            if status == 501 or code == "NotImplemented":
                return ProviderPermanentError(f"{msg}: not supported", provider=provider)
            return ProviderUnavailableError(f"{msg}: retry later", provider=provider, share=share)
        # AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket,
        # PermanentRedirect, AuthorizationHeaderMalformed, InvalidBucketName, other 4xx
        return ProviderPermanentError(f"{msg}: refused", provider=provider, share=share)
    if isinstance(
        exc,
        bx.NoCredentialsError
        | bx.PartialCredentialsError
        | bx.ProfileNotFound
        | bx.NoRegionError
        | bx.ParamValidationError
        | bx.UnknownEndpointError,
    ):
        return ProviderPermanentError(f"S3 configuration: {exc}", provider=provider)
    if isinstance(exc, bx.BotoCoreError | OSError | ValueError):
        # EndpointConnectionError, ConnectionClosedError, timeouts, ResponseStreamingError,
        # IncompleteReadError, urllib3 protocol errors surfacing as OSError subclasses
        return ProviderUnavailableError(
            f"S3 transport error{f' on {name}' if name else ''}: {type(exc).__name__}",
            provider=provider,
            share=share,
        )
    return ProviderUnavailableError(f"S3 error: {type(exc).__name__}", provider=provider)


def _retried(exc: bx.ClientError) -> bool:
    meta = exc.response.get("ResponseMetadata", {})
    return int(meta.get("RetryAttempts", 0) or 0) > 0


def _multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, "-", count.

    Built from the part ETags the gateway returned (hex MD5s); "" when they are not MD5s
    (e.g. SSE-KMS), in which case the post-complete check compares sizes only."""
    try:
        digests = b"".join(bytes.fromhex(_bare_etag(e)) for e in part_etags)
    except ValueError:
        return ""
    if len(digests) != 16 * len(part_etags):
        return ""
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


def _bare_etag(etag: str | None) -> str:
    return (etag or "").strip().strip('"').lower()


# ------------------------------------------------------------------------------ provider

_Page = tuple[list[tuple[str, int]], str | None]  # (key, size) items, next token


class S3Provider:
    """Objects in one S3 bucket under one prefix. See the module docstring."""

    def __init__(self, config: S3Config, *, label: str | None = None) -> None:
        self.config = config
        self._key_prefix = f"{config.prefix}/" if config.prefix else ""
        self._label = label or self.location
        self._credentials = self._explicit_credentials(config)
        self._lock = threading.Lock()
        self._client_obj: S3Client | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.max_connections, thread_name_prefix="ownvault-s3"
        )

    @staticmethod
    def _explicit_credentials(config: S3Config) -> tuple[str, str] | None:
        if config.access_key_env is None or config.secret_key_env is None:
            return None
        ak = os.environ.get(config.access_key_env)
        sk = os.environ.get(config.secret_key_env)
        if not ak or not sk:
            missing = config.access_key_env if not ak else config.secret_key_env
            raise UsageError(f"environment variable {missing} is not set")
        return ak, sk

    @property
    def kind(self) -> str:
        return "s3"

    @property
    def location(self) -> str:
        if self.config.endpoint is None:
            return self.config.url
        return f"{self.config.endpoint}/{self.config.bucket}/{self.config.prefix}".rstrip("/")

    # -- plumbing ------------------------------------------------------------------------

    def _client(self) -> S3Client:
        """The boto3 client, made on first use (in a worker thread: it loads JSON models)."""
        with self._lock:
            if self._client_obj is None:
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
                    self._client_obj = session.client(
                        "s3",
                        region_name=cfg.region or session.region_name or "us-east-1",
                        endpoint_url=cfg.endpoint,
                        aws_access_key_id=ak,
                        aws_secret_access_key=sk,
                        config=botocfg,
                    )
                except bx.BotoCoreError as exc:
                    raise classify_error(exc, provider=self._label) from exc
            return self._client_obj

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _key(self, name: str) -> str:
        return self._key_prefix + validate_name(name)

    def _fail(self, exc: BaseException, name: str | None = None) -> ProviderError:
        return classify_error(exc, provider=self._label, name=name)

    def _head_etag(self, key: str) -> tuple[str, int] | None:
        """(bare ETag, size) of the stored object, None if absent."""
        try:
            r = self._client().head_object(Bucket=self.config.bucket, Key=key)
        except bx.ClientError as exc:
            err = self._fail(exc)
            if isinstance(err, ObjectNotFoundError):
                return None
            raise err from exc
        return _bare_etag(r.get("ETag")), int(r["ContentLength"])

    def _exists_error(self, name: str) -> ObjectExistsError:
        return ObjectExistsError(f"object exists: {name}", provider=self._label, share=name)

    # -- put -----------------------------------------------------------------------------

    async def put(self, name: str, data: bytes) -> None:
        key = self._key(name)
        if len(data) <= self.config.multipart_threshold:
            await self._run(self._put_single, key, name, data)
        else:
            await self._put_multipart(key, name, data)

    def _put_single(self, key: str, name: str, data: bytes) -> None:
        try:
            self._client().put_object(
                Bucket=self.config.bucket,
                Key=key,
                Body=data,
                ContentLength=len(data),
                ContentType="application/octet-stream",
                IfNoneMatch="*",
            )
        except bx.ClientError as exc:
            err = self._fail(exc, name)
            if isinstance(err, ObjectExistsError):
                # Our own earlier attempt may have landed before a botocore retry: the
                # stored ETag is then the MD5 of our bytes (computed only in this case).
                if _retried(exc) and self._head_etag(key) == (
                    hashlib.md5(data).hexdigest(),
                    len(data),
                ):
                    return
                raise self._exists_error(name) from None
            raise err from exc
        except Exception as exc:
            raise self._fail(exc, name) from exc

    async def _put_multipart(self, key: str, name: str, data: bytes) -> None:
        cfg = self.config
        size = len(data)
        part_size = max(cfg.part_size, -(-size // MAX_PARTS))
        if await self._run(self._head_etag, key) is not None:
            raise self._exists_error(name)
        upload_id = await self._run(self._create_upload, key, name)
        try:
            # All parts are queued at once; the executor runs max_connections of them and a
            # part's bytes are sliced only when its turn comes, so memory stays bounded.
            tasks = [
                asyncio.ensure_future(
                    self._run(self._upload_part, key, name, upload_id, i + 1, data, off, part_size)
                )
                for i, off in enumerate(range(0, size, part_size))
            ]
            try:
                results = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()  # parts not started yet never start
                raise
            if await self._run(self._head_etag, key) is not None:
                raise self._exists_error(name)
            expected = _multipart_etag(results)
            parts = [(i + 1, etag) for i, etag in enumerate(results)]
            await self._run(self._complete_upload, key, name, upload_id, parts, expected, size)
        except BaseException:
            # Not awaited: also runs when this task is being cancelled.
            with contextlib.suppress(RuntimeError):  # executor already shut down
                self._executor.submit(self._abort_quietly, key, upload_id)
            raise

    def _create_upload(self, key: str, name: str) -> str:
        try:
            r = self._client().create_multipart_upload(
                Bucket=self.config.bucket, Key=key, ContentType="application/octet-stream"
            )
        except Exception as exc:
            raise self._fail(exc, name) from exc
        return r["UploadId"]

    def _upload_part(
        self, key: str, name: str, upload_id: str, number: int, data: bytes, off: int, size: int
    ) -> str:
        chunk = data[off : off + size]
        try:
            r = self._client().upload_part(
                Bucket=self.config.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
                ContentLength=len(chunk),
            )
        except Exception as exc:
            raise self._fail(exc, name) from exc
        return r["ETag"]

    def _complete_upload(
        self,
        key: str,
        name: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        expected: str,
        size: int,
    ) -> None:
        try:
            self._client().complete_multipart_upload(
                Bucket=self.config.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
                IfNoneMatch="*",
            )
        except bx.ClientError as exc:
            err = self._fail(exc, name)
            # A retried complete whose first attempt landed: NoSuchUpload or 412.
            if not (_retried(exc) and self._head_etag(key) == (expected, size)):
                raise (
                    self._exists_error(name) if isinstance(err, ObjectExistsError) else err
                ) from exc
            return
        except Exception as exc:
            raise self._fail(exc, name) from exc
        # Ceph returns an empty ETag here; HEAD gives the real one. A different ETag means
        # another writer's object is the one stored.
        stored = self._head_etag(key)
        if stored is None:
            raise ProviderUnavailableError(
                f"multipart upload completed but {name} is not visible", provider=self._label
            )
        if stored[1] != size or (expected and "-" in stored[0] and stored[0] != expected):
            raise self._exists_error(name)

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self._client().abort_multipart_upload(
                Bucket=self.config.bucket, Key=key, UploadId=upload_id
            )

    # -- get / stat ----------------------------------------------------------------------

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        key = self._key(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        return await self._run(self._get_sync, key, name, offset, length)

    def _get_sync(self, key: str, name: str, offset: int, length: int | None) -> bytes:
        if length == 0:
            self._stat_sync(key, name)  # existence still matters
            return b""
        try:
            if offset or length is not None:
                end = "" if length is None else str(offset + length - 1)
                r = self._client().get_object(
                    Bucket=self.config.bucket, Key=key, Range=f"bytes={offset}-{end}"
                )
            else:
                r = self._client().get_object(Bucket=self.config.bucket, Key=key)
        except bx.ClientError as exc:
            code, status = _code_status(exc)
            if code == "InvalidRange" or status == 416:
                return b""  # offset at or past the end (S3 answers 416; the contract says b"")
            raise self._fail(exc, name) from exc
        except Exception as exc:
            raise self._fail(exc, name) from exc
        body = r["Body"]
        try:
            status = r["ResponseMetadata"]["HTTPStatusCode"]
            clen = int(r["ContentLength"])
            skip = 0
            if status == 206:
                m = _CONTENT_RANGE_RE.match(r.get("ContentRange", ""))
                if not m or int(m[1]) != offset or int(m[2]) - int(m[1]) + 1 != clen:
                    raise self._corrupt(name, f"Content-Range {r.get('ContentRange')!r:.60}")
            elif status == 200:
                skip = min(offset, clen)  # the gateway ignored Range (or none was sent)
            else:
                raise ProviderUnavailableError(f"unexpected HTTP {status} for {name}")
            want = max(0, clen - skip)
            if length is not None:
                if status == 206 and clen > length:
                    raise self._corrupt(name, f"{clen} bytes sent for {length} asked")
                want = min(want, length)
            while skip:
                n = len(body.read(min(skip, 8 * MiB)))
                if n == 0:
                    raise ProviderUnavailableError(f"short read of {name}", provider=self._label)
                skip -= n
            data = body.read(want) if want else b""
            if len(data) != want:
                raise ProviderUnavailableError(
                    f"short read of {name}: {len(data)} of {want} bytes", provider=self._label
                )
            return data
        except (ProviderError, ShareCorruptError):
            raise
        except Exception as exc:
            raise self._fail(exc, name) from exc
        finally:
            body.close()

    def _corrupt(self, name: str, why: str) -> ShareCorruptError:
        return ShareCorruptError(
            f"provider answered a range of {name} wrongly: {why}", provider=self._label, share=name
        )

    async def stat(self, name: str) -> ObjectInfo:
        key = self._key(name)
        return await self._run(self._stat_sync, key, name)

    def _stat_sync(self, key: str, name: str) -> ObjectInfo:
        try:
            r = self._client().head_object(Bucket=self.config.bucket, Key=key)
        except Exception as exc:
            raise self._fail(exc, name) from exc
        return ObjectInfo(name, int(r["ContentLength"]))

    # -- list ----------------------------------------------------------------------------

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        token: str | None = None
        last = ""
        while True:
            items, token = await self._run(self._list_page, prefix, token)
            for key, size in items:
                if key <= last:
                    raise ProviderPermanentError(
                        f"listing out of order at {key!r:.80}", provider=self._label
                    )
                last = key
                name = key[len(self._key_prefix) :]
                try:
                    validate_name(name)
                except UsageError:
                    continue  # not an ownvault object: never ours to report
                yield ObjectInfo(name, size)
            if token is None:
                return

    def _list_page(self, prefix: str, token: str | None) -> _Page:
        full = self._key_prefix + prefix
        client, bucket, size = self._client(), self.config.bucket, self.config.list_page_size
        try:
            if token:
                r = client.list_objects_v2(
                    Bucket=bucket, Prefix=full, MaxKeys=size, ContinuationToken=token
                )
            else:
                r = client.list_objects_v2(Bucket=bucket, Prefix=full, MaxKeys=size)
        except Exception as exc:
            raise self._fail(exc) from exc
        items: list[tuple[str, int]] = []
        for obj in r.get("Contents", []):
            key, size = obj.get("Key", ""), int(obj.get("Size", -1))
            if not key.startswith(full) or size < 0:
                raise ProviderPermanentError(
                    f"listing returned a foreign entry {key!r:.80}", provider=self._label
                )
            items.append((key, size))
        nxt = r.get("NextContinuationToken") if r.get("IsTruncated") else None
        if r.get("IsTruncated") and (not nxt or nxt == token):
            raise ProviderPermanentError(
                "listing truncated without a new token", provider=self._label
            )
        return items, nxt

    # -- delete / info / bucket ----------------------------------------------------------

    async def delete(self, name: str) -> None:
        key = self._key(name)
        await self._run(self._delete_sync, key, name)

    def _delete_sync(self, key: str, name: str) -> None:
        try:
            self._client().delete_object(Bucket=self.config.bucket, Key=key)
        except Exception as exc:
            err = self._fail(exc, name)
            if not isinstance(err, ObjectNotFoundError):
                raise err from exc

    async def info(self) -> ProviderInfo:
        await self._run(self._head_bucket)
        return ProviderInfo("s3", self.location, None)

    def _head_bucket(self) -> None:
        try:
            self._client().head_bucket(Bucket=self.config.bucket)
        except bx.ClientError as exc:
            if _code_status(exc)[1] == 404:
                raise ProviderPermanentError(
                    f"bucket {self.config.bucket} does not exist", provider=self._label
                ) from exc
            raise self._fail(exc) from exc
        except Exception as exc:
            raise self._fail(exc) from exc

    async def create_bucket(self) -> None:
        """Create the bucket (``provider add --create-bucket``). Fine if it is ours already."""
        await self._run(self._create_bucket_sync)

    def _create_bucket_sync(self) -> None:
        client = self._client()
        region = client.meta.region_name
        try:
            if region and region != "us-east-1":
                client.create_bucket(
                    Bucket=self.config.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                client.create_bucket(Bucket=self.config.bucket)
        except bx.ClientError as exc:
            code, _status = _code_status(exc)
            if code == "BucketAlreadyOwnedByYou":
                return
            if code == "BucketAlreadyExists":
                raise ProviderPermanentError(
                    f"bucket name {self.config.bucket} is taken by someone else",
                    provider=self._label,
                ) from exc
            raise self._fail(exc) from exc
        except Exception as exc:
            raise self._fail(exc) from exc

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._client_obj is not None:
                self._client_obj.close()
                self._client_obj = None
