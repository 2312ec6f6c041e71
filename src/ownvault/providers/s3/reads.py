"""Reading objects: ranged GETs checked against what was asked, and HEAD.

A gateway may ignore ``Range`` (200 with the whole object: cut to what was asked), answer a
different range than asked (refused as corrupt) or send a short body (retryable).
"""

from __future__ import annotations

import re

import botocore.exceptions as bx

from ownvault.errors import ProviderError, ProviderUnavailableError, ShareCorruptError
from ownvault.providers.base import ObjectInfo
from ownvault.providers.s3.client import BucketClient
from ownvault.providers.s3.config import MiB
from ownvault.providers.s3.errors import code_status

__all__ = ["get_range", "stat_object"]

_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)\Z")


def get_range(bucket: BucketClient, key: str, name: str, offset: int, length: int | None) -> bytes:
    """``length`` bytes (all if None) of ``key`` from ``offset`` (blocking)."""
    if length == 0:
        stat_object(bucket, key, name)  # existence still matters
        return b""
    try:
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            r = bucket.client().get_object(
                Bucket=bucket.config.bucket, Key=key, Range=f"bytes={offset}-{end}"
            )
        else:
            r = bucket.client().get_object(Bucket=bucket.config.bucket, Key=key)
    except bx.ClientError as exc:
        code, status = code_status(exc)
        if code == "InvalidRange" or status == 416:
            return b""  # offset at or past the end (S3 answers 416; the contract says b"")
        raise bucket.fail(exc, name) from exc
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    body = r["Body"]
    try:
        status = r["ResponseMetadata"]["HTTPStatusCode"]
        clen = int(r["ContentLength"])
        skip = 0
        if status == 206:
            m = _CONTENT_RANGE_RE.match(r.get("ContentRange", ""))
            if not m or int(m[1]) != offset or int(m[2]) - int(m[1]) + 1 != clen:
                raise _corrupt(bucket, name, f"Content-Range {r.get('ContentRange')!r:.60}")
        elif status == 200:
            skip = min(offset, clen)  # the gateway ignored Range (or none was sent)
        else:
            raise ProviderUnavailableError(f"unexpected HTTP {status} for {name}")
        want = max(0, clen - skip)
        if length is not None:
            if status == 206 and clen > length:
                raise _corrupt(bucket, name, f"{clen} bytes sent for {length} asked")
            want = min(want, length)
        while skip:
            n = len(body.read(min(skip, 8 * MiB)))
            if n == 0:
                raise ProviderUnavailableError(f"short read of {name}", provider=bucket.label)
            skip -= n
        data = body.read(want) if want else b""
        if len(data) != want:
            raise ProviderUnavailableError(
                f"short read of {name}: {len(data)} of {want} bytes", provider=bucket.label
            )
        return data
    except (ProviderError, ShareCorruptError):
        raise
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    finally:
        body.close()


def stat_object(bucket: BucketClient, key: str, name: str) -> ObjectInfo:
    """HEAD ``key`` (blocking)."""
    try:
        r = bucket.client().head_object(Bucket=bucket.config.bucket, Key=key)
    except Exception as exc:
        raise bucket.fail(exc, name) from exc
    return ObjectInfo(name, int(r["ContentLength"]))


def _corrupt(bucket: BucketClient, name: str, why: str) -> ShareCorruptError:
    return ShareCorruptError(
        f"provider answered a range of {name} wrongly: {why}", provider=bucket.label, share=name
    )
