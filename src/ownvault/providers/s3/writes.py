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

The object's parts (``providers.base.PutData``) are never joined: each request body is a
:class:`PartsReader`, a seekable read-only file over a range of them, which botocore reads
to sign (SigV4 hashes the payload over plain HTTP), sends in blocks, and seeks back to its
start to retry.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import io
from collections.abc import Sequence
from typing import IO, cast

import botocore.exceptions as bx

from ownvault.errors import ObjectExistsError, ProviderUnavailableError
from ownvault.providers.base import Buffer
from ownvault.providers.s3.client import BucketClient, bare_etag
from ownvault.providers.s3.config import MAX_PARTS
from ownvault.providers.s3.errors import was_retried

__all__ = ["PartsReader", "multipart_etag", "put_multipart", "put_single"]


class PartsReader(io.RawIOBase):
    """Bytes ``[start, end)`` of the concatenation of ``parts`` as a read-only, seekable
    file; each ``read`` copies only the bytes it returns."""

    def __init__(self, parts: Sequence[memoryview], start: int = 0, end: int | None = None):
        super().__init__()
        self._parts = parts
        self._offsets = [0]
        for part in parts:
            self._offsets.append(self._offsets[-1] + len(part))
        total = self._offsets[-1]
        self._lo = min(start, total)
        self._hi = total if end is None else max(self._lo, min(end, total))
        self._pos = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        at = self._lo + self._pos
        stop = self._hi if size is None or size < 0 else min(self._hi, at + size)
        pieces = []
        while at < stop:
            i = bisect.bisect_right(self._offsets, at) - 1
            off = at - self._offsets[i]
            take = min(stop - at, len(self._parts[i]) - off)
            pieces.append(self._parts[i][off : off + take])
            at += take
        self._pos = max(self._pos, at - self._lo)
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def _md5(parts: Sequence[memoryview]) -> str:
    h = hashlib.md5()
    for part in parts:
        h.update(part)
    return h.hexdigest()


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


def put_single(bucket: BucketClient, key: str, name: str, parts: Sequence[memoryview]) -> None:
    """One PUT with ``If-None-Match: *`` (blocking; run it in the bucket's executor)."""
    body = PartsReader(parts)
    try:
        bucket.client().put_object(
            Bucket=bucket.config.bucket,
            Key=key,
            Body=cast("IO[bytes]", body),  # a file for botocore: read, seek, tell
            ContentLength=len(body),
            ContentType="application/octet-stream",
            IfNoneMatch="*",
        )
    except bx.ClientError as exc:
        err = bucket.fail(exc, name)
        if isinstance(err, ObjectExistsError):
            # Our own earlier attempt may have landed before a botocore retry: the
            # stored ETag is then the MD5 of our bytes (computed only in this case).
            if was_retried(exc) and bucket.head_etag(key) == (_md5(parts), len(body)):
                return
            raise bucket.exists_error(name) from None
        raise err from exc
    except Exception as exc:
        raise bucket.fail(exc, name) from exc


async def put_multipart(
    bucket: BucketClient, key: str, name: str, parts: Sequence[memoryview]
) -> None:
    """A multipart upload of ``parts``, aborted on any failure or cancellation."""
    size = sum(len(p) for p in parts)
    part_size = max(bucket.config.part_size, -(-size // MAX_PARTS))
    if await bucket.run(bucket.head_etag, key) is not None:
        raise bucket.exists_error(name)
    upload_id = await bucket.run(_create_upload, bucket, key, name)
    try:
        # All parts are queued at once; the executor runs max_connections of them and a
        # part's bytes are read only when its turn comes, so memory stays bounded.
        tasks = [
            asyncio.ensure_future(
                bucket.run(
                    _upload_part,
                    bucket,
                    key,
                    name,
                    upload_id,
                    i + 1,
                    PartsReader(parts, off, off + part_size),
                )
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
        numbered = [(i + 1, etag) for i, etag in enumerate(results)]
        await bucket.run(_complete_upload, bucket, key, name, upload_id, numbered, expected, size)
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
    chunk: PartsReader,
) -> str:
    try:
        r = bucket.client().upload_part(
            Bucket=bucket.config.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=cast("IO[bytes]", chunk),
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
