""":class:`S3Provider`: the Provider protocol on one S3 bucket/prefix (see the package docstring)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import botocore.exceptions as bx

from ownvault.errors import ObjectNotFoundError, ProviderPermanentError, UsageError
from ownvault.providers.base import ObjectInfo, ProviderInfo, PutData, as_parts
from ownvault.providers.s3.client import BucketClient
from ownvault.providers.s3.config import S3Config
from ownvault.providers.s3.errors import code_status
from ownvault.providers.s3.listing import list_objects
from ownvault.providers.s3.reads import get_range, stat_object
from ownvault.providers.s3.writes import put_multipart, put_single

__all__ = ["S3Provider"]


class S3Provider:
    """Objects in one S3 bucket under one prefix."""

    def __init__(self, config: S3Config, *, label: str | None = None) -> None:
        self.config = config
        self.bucket = BucketClient(config, label or self.location)

    @property
    def kind(self) -> str:
        return "s3"

    @property
    def location(self) -> str:
        if self.config.endpoint is None:
            return self.config.url
        return f"{self.config.endpoint}/{self.config.bucket}/{self.config.prefix}".rstrip("/")

    async def put(self, name: str, data: PutData) -> None:
        key = self.bucket.key(name)
        parts = as_parts(data)
        if sum(len(p) for p in parts) <= self.config.multipart_threshold:
            await self.bucket.run(put_single, self.bucket, key, name, parts)
        else:
            await put_multipart(self.bucket, key, name, parts)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        key = self.bucket.key(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        return await self.bucket.run(get_range, self.bucket, key, name, offset, length)

    async def stat(self, name: str) -> ObjectInfo:
        key = self.bucket.key(name)
        return await self.bucket.run(stat_object, self.bucket, key, name)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        async for info in list_objects(self.bucket, prefix):
            yield info

    async def delete(self, name: str) -> None:
        key = self.bucket.key(name)
        await self.bucket.run(self._delete_sync, key, name)

    def _delete_sync(self, key: str, name: str) -> None:
        try:
            self.bucket.client().delete_object(Bucket=self.config.bucket, Key=key)
        except Exception as exc:
            err = self.bucket.fail(exc, name)
            if not isinstance(err, ObjectNotFoundError):
                raise err from exc

    async def info(self) -> ProviderInfo:
        await self.bucket.run(self._head_bucket)
        return ProviderInfo("s3", self.location, None)

    def _head_bucket(self) -> None:
        try:
            self.bucket.client().head_bucket(Bucket=self.config.bucket)
        except bx.ClientError as exc:
            if code_status(exc)[1] == 404:
                raise ProviderPermanentError(
                    f"bucket {self.config.bucket} does not exist", provider=self.bucket.label
                ) from exc
            raise self.bucket.fail(exc) from exc
        except Exception as exc:
            raise self.bucket.fail(exc) from exc

    async def create_bucket(self) -> None:
        """Create the bucket (``provider add --create-bucket``). Fine if it is ours already."""
        await self.bucket.run(self._create_bucket_sync)

    def _create_bucket_sync(self) -> None:
        client = self.bucket.client()
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
            code, _status = code_status(exc)
            if code == "BucketAlreadyOwnedByYou":
                return
            if code == "BucketAlreadyExists":
                raise ProviderPermanentError(
                    f"bucket name {self.config.bucket} is taken by someone else",
                    provider=self.bucket.label,
                ) from exc
            raise self.bucket.fail(exc) from exc
        except Exception as exc:
            raise self.bucket.fail(exc) from exc

    async def close(self) -> None:
        self.bucket.close()
