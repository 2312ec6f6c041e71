"""Listing a prefix page by page; a hostile listing (out of order, foreign keys, a truncated
page without a new token) is refused, and keys that are not ownvault names are skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ownvault.errors import ProviderPermanentError, UsageError
from ownvault.providers.base import ObjectInfo, validate_name, validate_prefix
from ownvault.providers.s3.client import BucketClient

__all__ = ["list_objects"]

_Page = tuple[list[tuple[str, int]], str | None]  # (key, size) items, next token


async def list_objects(bucket: BucketClient, prefix: str) -> AsyncIterator[ObjectInfo]:
    """Every object whose name starts with ``prefix``, sorted by name."""
    validate_prefix(prefix)
    token: str | None = None
    last = ""
    while True:
        items, token = await bucket.run(_list_page, bucket, prefix, token)
        for key, size in items:
            if key <= last:
                raise ProviderPermanentError(
                    f"listing out of order at {key!r:.80}", provider=bucket.label
                )
            last = key
            name = key[len(bucket.key_prefix) :]
            try:
                validate_name(name)
            except UsageError:
                continue  # not an ownvault object: never ours to report
            yield ObjectInfo(name, size)
        if token is None:
            return


def _list_page(bucket: BucketClient, prefix: str, token: str | None) -> _Page:
    full = bucket.key_prefix + prefix
    client, name, size = bucket.client(), bucket.config.bucket, bucket.config.list_page_size
    try:
        if token:
            r = client.list_objects_v2(
                Bucket=name, Prefix=full, MaxKeys=size, ContinuationToken=token
            )
        else:
            r = client.list_objects_v2(Bucket=name, Prefix=full, MaxKeys=size)
    except Exception as exc:
        raise bucket.fail(exc) from exc
    items: list[tuple[str, int]] = []
    for obj in r.get("Contents", []):
        key, obj_size = obj.get("Key", ""), int(obj.get("Size", -1))
        if not key.startswith(full) or obj_size < 0:
            raise ProviderPermanentError(
                f"listing returned a foreign entry {key!r:.80}", provider=bucket.label
            )
        items.append((key, obj_size))
    nxt = r.get("NextContinuationToken") if r.get("IsTruncated") else None
    if r.get("IsTruncated") and (not nxt or nxt == token):
        raise ProviderPermanentError("listing truncated without a new token", provider=bucket.label)
    return items, nxt
