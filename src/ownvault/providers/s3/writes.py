"""Writing objects: one conditional PUT, or a multipart upload checked around its completion.

Conditional writes (the spec is docs/design.md, "S3 provider")
----------------------------------------------------------------
A single PUT carries ``If-None-Match: *``: the gateway refuses atomically (412) when the name
exists. Ceph 16 honours this on PutObject (exactly one of twelve racing writers wins, also
across gateways) but silently *ignores* it, and ``If-Match`` too, on
CompleteMultipartUpload. Multipart uploads therefore also check with HEAD before creating
the upload and again just before completing it, still send the header (AWS and MinIO honour
it), and HEAD afterwards to see that the stored object is the one we wrote. On Ceph a
writer racing the same name within that last round trip can still be overwritten; ownvault
names are unique per share and a vault has one writer, so this window is documented rather
than papered over. Objects up to ``multipart_threshold`` never take that path.

A botocore-internal retry of a PUT whose first attempt did land gets 412; the writer then
compares the stored ETag with the MD5 it sent and reports success when they agree, so a
retry is idempotent without ever overwriting a different object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import botocore.exceptions as bx

from ownvault.errors import ObjectExistsError, ProviderUnavailableError
from ownvault.providers.s3.client import BucketClient, bare_etag
from ownvault.providers.s3.config import MAX_PARTS
from ownvault.providers.s3.errors import was_retried

__all__ = ["multipart_etag", "put_multipart", "put_single"]


def multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, "-", count.

    Built from the part ETags the gateway returned (hex MD5s); "" when they are not MD5s
    (e.g. SSE-KMS), in which case the post-complete check compares sizes only."""
    try:
        digests = b"".join(bytes.fromhex(bare_etag(e)) for e in part_etags)
    except ValueError:
        return ""
    if len(digests) != 16 * len(part_etags):
        return ""
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


def put_single(bucket: BucketClient, key: str, name: str, data: bytes) -> None:
    """One PUT with ``If-None-Match: *`` (blocking; run it in the bucket's executor)."""
    try:
        bucket.client().put_object(
            Bucket=bucket.config.bucket,
            Key=key,
            Body=data,
            ContentLength=len(data),
            ContentType="application/octet-stream",
            IfNoneMatch="*",
        )
    except bx.ClientError as exc:
        err = bucket.fail(exc, name)
        if isinstance(err, ObjectExistsError):
            # Our own earlier attempt may have landed before a botocore retry: the
            # stored ETag is then the MD5 of our bytes (computed only in this case).
            if was_retried(exc) and bucket.head_etag(key) == (
                hashlib.md5(data).hexdigest(),
                len(data),
            ):
                return
            raise bucket.exists_error(name) from None
        raise err from exc
    except Exception as exc:
        raise bucket.fail(exc, name) from exc


async def put_multipart(bucket: BucketClient, key: str, name: str, data: bytes) -> None:
    """A multipart upload of ``data``, aborted on any failure or cancellation."""
    size = len(data)
    part_size = max(bucket.config.part_size, -(-size // MAX_PARTS))
    if await bucket.run(bucket.head_etag, key) is not None:
        raise bucket.exists_error(name)
    upload_id = await bucket.run(_create_upload, bucket, key, name)
    try:
        # All parts are queued at once; the executor runs max_connections of them and a
        # part's bytes are sliced only when its turn comes, so memory stays bounded.
        tasks = [
            asyncio.ensure_future(
                bucket.run(_upload_part, bucket, key, name, upload_id, i + 1, data, off, part_size)
            )
            for i, off in enumerate(range(0, size, part_size))
        ]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()  # parts not started yet never start
            raise
        if await bucket.run(bucket.head_etag, key) is not None:
            raise bucket.exists_error(name)
        expected = multipart_etag(results)
        parts = [(i + 1, etag) for i, etag in enumerate(results)]
        await bucket.run(_complete_upload, bucket, key, name, upload_id, parts, expected, size)
    except BaseException:
        # Not awaited: also runs when this task is being cancelled.
        bucket.submit_detached(_abort_quietly, bucket, key, upload_id)
        raise


def _create_upload(bucket: BucketClient, key: str, name: str) -> str:
    try:
        r = bucket.client().create_multipart_upload(
            Bucket=bucket.config.bucket, Key=key, ContentType="application/octet-stream"
        )
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    return r["UploadId"]


def _upload_part(
    bucket: BucketClient,
    key: str,
    name: str,
    upload_id: str,
    number: int,
    data: bytes,
    off: int,
    size: int,
) -> str:
    chunk = data[off : off + size]
    try:
        r = bucket.client().upload_part(
            Bucket=bucket.config.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=chunk,
            ContentLength=len(chunk),
        )
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    return r["ETag"]


def _complete_upload(
    bucket: BucketClient,
    key: str,
    name: str,
    upload_id: str,
    parts: list[tuple[int, str]],
    expected: str,
    size: int,
) -> None:
    try:
        bucket.client().complete_multipart_upload(
            Bucket=bucket.config.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
            IfNoneMatch="*",
        )
    except bx.ClientError as exc:
        err = bucket.fail(exc, name)
        # A retried complete whose first attempt landed: NoSuchUpload or 412.
        if not (was_retried(exc) and bucket.head_etag(key) == (expected, size)):
            raise (
                bucket.exists_error(name) if isinstance(err, ObjectExistsError) else err
            ) from exc
        return
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    # Ceph returns an empty ETag here; HEAD gives the real one. A different ETag means
    # another writer's object is the one stored.
    stored = bucket.head_etag(key)
    if stored is None:
        raise ProviderUnavailableError(
            f"multipart upload completed but {name} is not visible", provider=bucket.label
        )
    if stored[1] != size or (expected and "-" in stored[0] and stored[0] != expected):
        raise bucket.exists_error(name)


def _abort_quietly(bucket: BucketClient, key: str, upload_id: str) -> None:
    with contextlib.suppress(Exception):
        bucket.client().abort_multipart_upload(
            Bucket=bucket.config.bucket, Key=key, UploadId=upload_id
        )
