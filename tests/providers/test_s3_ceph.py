"""The S3 provider against a real Ceph RADOS Gateway: the contract suite and S3 specifics."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderPermanentError,
    StorageFullError,
)
from ownvault.providers.s3 import S3Config, S3Provider

from .ceph import ACCESS_KEY, SECRET_KEY, CephCluster
from .contract import ProviderContract, run

MiB = 1024 * 1024


def make_provider(
    ceph: CephCluster,
    bucket: str,
    creds: tuple[str, str],
    *,
    gateway: int = 0,
    prefix: str = "vault/p1",
    **kw: int,
) -> S3Provider:
    cfg = S3Config(
        bucket=bucket,
        prefix=prefix,
        endpoint=ceph.endpoints[gateway],
        region="us-east-1",
        access_key_env=creds[0],
        secret_key_env=creds[1],
        **kw,
    )
    return S3Provider(cfg)


class TestS3CephContract(ProviderContract):
    @pytest.fixture
    def provider(
        self, ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
    ) -> Iterator[S3Provider]:
        # A low threshold so that the contract's 6 MiB object goes through multipart too.
        p = make_provider(ceph, s3_bucket, s3_credentials, multipart_threshold=5 * MiB)
        yield p
        run(p.close())


class TestS3CephContractNoPrefix(ProviderContract):
    @pytest.fixture
    def provider(
        self, ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
    ) -> Iterator[S3Provider]:
        p = make_provider(ceph, s3_bucket, s3_credentials, prefix="")
        yield p
        run(p.close())


@pytest.fixture
def provider(
    ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> Iterator[S3Provider]:
    p = make_provider(ceph, s3_bucket, s3_credentials)
    yield p
    run(p.close())


def test_objects_live_under_prefix_and_nothing_else_is_written(
    ceph: CephCluster, provider: S3Provider
) -> None:
    run(provider.put("shares/ab/x.0", b"ciphertext"))
    run(provider.put("catalog/1", b"more"))
    keys = [
        o["Key"]
        for o in ceph.client().list_objects_v2(Bucket=provider.config.bucket).get("Contents", [])
    ]
    assert keys == ["vault/p1/catalog/1", "vault/p1/shares/ab/x.0"]
    head = ceph.client().head_object(Bucket=provider.config.bucket, Key="vault/p1/catalog/1")
    assert head["Metadata"] == {}


def test_foreign_keys_under_prefix_are_not_listed(ceph: CephCluster, provider: S3Provider) -> None:
    bucket = provider.config.bucket
    ceph.client().put_object(Bucket=bucket, Key="vault/p1/NotOurs.txt", Body=b"x")
    ceph.client().put_object(Bucket=bucket, Key="vault/p10/a", Body=b"x")  # sibling prefix
    ceph.client().put_object(Bucket=bucket, Key="elsewhere", Body=b"x")
    run(provider.put("a", b"1"))
    assert run(_collect(provider)) == ["a"]


async def _collect(provider: S3Provider, prefix: str = "") -> list[str]:
    return [o.name async for o in provider.list(prefix)]


def test_conditional_write_refuses_overwrite(ceph: CephCluster, provider: S3Provider) -> None:
    run(provider.put("c/x", b"first"))
    with pytest.raises(ObjectExistsError):
        run(provider.put("c/x", b"second"))
    got = ceph.client().get_object(Bucket=provider.config.bucket, Key="vault/p1/c/x")
    assert got["Body"].read() == b"first"


def test_racing_writers_on_two_gateways_exactly_one_wins(
    ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    providers = [make_provider(ceph, s3_bucket, s3_credentials, gateway=i % 2) for i in range(8)]
    blobs = [os.urandom(2 * MiB) for _ in providers]

    async def one(p: S3Provider, data: bytes) -> str:
        try:
            await p.put("race/x", data)
        except ObjectExistsError:
            return "exists"
        return "ok"

    async def go() -> list[str]:
        return list(
            await asyncio.gather(*(one(p, b) for p, b in zip(providers, blobs, strict=True)))
        )

    results = run(go())
    assert results.count("ok") == 1, results
    assert results.count("exists") == len(providers) - 1
    winner = blobs[results.index("ok")]
    assert run(providers[0].get("race/x")) == winner
    for p in providers:
        run(p.close())


def test_multipart_40_mib(
    ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    p = make_provider(ceph, s3_bucket, s3_credentials, part_size=8 * MiB)
    data = os.urandom(40 * MiB + 123)
    run(p.put("big/forty", data))
    head = ceph.client().head_object(Bucket=s3_bucket, Key="vault/p1/big/forty")
    # 6 parts of 8 MiB (the last one short): the ETag is MD5(part MD5s) + "-6"
    md5s = b"".join(
        hashlib.md5(data[o : o + 8 * MiB]).digest() for o in range(0, len(data), 8 * MiB)
    )
    assert head["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-6"
    assert run(p.stat("big/forty")).size == len(data)
    assert run(p.get("big/forty")) == data
    assert run(p.get("big/forty", 33 * MiB, 5)) == data[33 * MiB : 33 * MiB + 5]
    # the fallback for Ceph's unconditional CompleteMultipartUpload: still refused
    with pytest.raises(ObjectExistsError):
        run(p.put("big/forty", os.urandom(40 * MiB)))
    assert run(p.get("big/forty", 0, 1 * MiB)) == data[: 1 * MiB]
    assert ceph.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    run(p.close())


def test_list_paging_over_1000_objects(
    ceph: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    p = make_provider(ceph, s3_bucket, s3_credentials, list_page_size=150, max_connections=16)
    names = [f"s/{i:05d}" for i in range(1234)]

    async def fill() -> None:
        sem = asyncio.Semaphore(32)

        async def one(n: str) -> None:
            async with sem:
                await p.put(n, n.encode())

        await asyncio.gather(*(one(n) for n in names))

    run(fill())
    pages: list[int] = []
    client = p.bucket.client()
    client.meta.events.register(
        "after-call.s3.ListObjectsV2", lambda parsed, **_: pages.append(parsed.get("KeyCount", 0))
    )
    listed = run(_collect(p, "s/"))
    assert listed == names
    assert len(pages) == 9 and max(pages) == 150
    assert run(_collect(p, "s/011")) == names[1100:1200]
    run(p.close())


def test_missing_bucket_is_permanent(ceph: CephCluster, s3_credentials: tuple[str, str]) -> None:
    p = make_provider(ceph, "no-such-bucket-here", s3_credentials)
    with pytest.raises(ProviderPermanentError):
        run(p.info())
    with pytest.raises(ProviderPermanentError):
        run(p.get("x"))
    with pytest.raises(ProviderPermanentError):
        run(p.put("x", b"1"))
    with pytest.raises(ProviderPermanentError):
        run(_collect(p))
    run(p.close())


def test_create_bucket(ceph: CephCluster, s3_credentials: tuple[str, str]) -> None:

    bucket = f"c-{uuid.uuid4().hex[:16]}"
    p = make_provider(ceph, bucket, s3_credentials)
    with pytest.raises(ProviderPermanentError):
        run(p.info())
    run(p.create_bucket())
    run(p.create_bucket())  # ours already: fine
    assert run(p.info()).kind == "s3"
    run(p.put("x", b"1"))
    assert run(p.get("x")) == b"1"
    run(p.close())


def test_quota_exceeded_is_storage_full(ceph: CephCluster, provider: S3Provider) -> None:
    bucket = provider.config.bucket
    ceph.admin("quota", "set", "--quota-scope=bucket", f"--bucket={bucket}", "--max-size=1048576")
    ceph.admin("quota", "enable", "--quota-scope=bucket", f"--bucket={bucket}")
    with pytest.raises(StorageFullError):
        run(provider.put("q/big", os.urandom(2 * MiB)))
    with pytest.raises(ObjectNotFoundError):
        run(provider.stat("q/big"))


def test_credentials_from_aws_environment(
    ceph: CephCluster, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    p = S3Provider(S3Config.from_url(f"s3://{s3_bucket}/env", endpoint=ceph.endpoints[0]))
    run(p.put("x", b"1"))
    assert run(p.get("x")) == b"1"
    run(p.close())


def test_credentials_from_named_profile(
    ceph: CephCluster, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:

    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
        f"[ceph]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    url = f"s3://{s3_bucket}/prof"
    p = S3Provider(S3Config.from_url(url, endpoint=ceph.endpoints[0], profile="ceph"))
    run(p.put("x", b"1"))
    assert run(p.get("x")) == b"1"
    run(p.close())
    default = S3Provider(S3Config.from_url(url, endpoint=ceph.endpoints[0]))
    with pytest.raises(ProviderPermanentError):
        run(default.get("x"))  # the default profile's keys are refused
    run(default.close())
    missing = S3Provider(S3Config.from_url(url, endpoint=ceph.endpoints[0], profile="nope"))
    with pytest.raises(ProviderPermanentError, match="nope"):
        run(missing.get("x"))
    run(missing.close())
