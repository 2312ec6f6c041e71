"""Failures on a real Ceph RADOS Gateway: outages, throttling, refusals.

Gateway 1 is the victim (killed with SIGKILL and restarted, or throttled through its admin
socket); every test leaves it running again.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator

import pytest

from ownvault.errors import (
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    UsageError,
)
from ownvault.providers.s3 import S3Config, S3Provider

from .ceph import CephCluster
from .contract import run
from .test_s3_ceph import make_provider

MiB = 1024 * 1024
VICTIM = 1


@pytest.fixture
def victim(ceph: CephCluster) -> Iterator[CephCluster]:
    """The cluster, with gateway 1 restarted after the test whatever happened."""
    yield ceph
    ceph.restart_gateway(VICTIM)


def _names(p: S3Provider) -> list[str]:
    async def go() -> list[str]:
        return [o.name async for o in p.list()]

    return run(go())


def _after_restart_nothing_visible(
    ceph: CephCluster, bucket: str, creds: tuple[str, str], name: str
) -> S3Provider:
    ceph.restart_gateway(VICTIM)
    p = make_provider(ceph, bucket, creds, gateway=VICTIM)
    with pytest.raises(ObjectNotFoundError):
        run(p.stat(name))
    with pytest.raises(ObjectNotFoundError):
        run(p.get(name))
    assert _names(p) == []
    return p


def test_gateway_killed_between_multipart_parts(
    victim: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    p = make_provider(
        victim, s3_bucket, s3_credentials, gateway=VICTIM, max_attempts=1, max_connections=1,
        multipart_threshold=5 * MiB, part_size=5 * MiB,
    )  # fmt: skip
    parts: list[int] = []

    def kill_after_first_part(**_: object) -> None:
        parts.append(1)
        if len(parts) == 1:
            victim.kill_gateway(VICTIM)

    p.bucket.client().meta.events.register("after-call.s3.UploadPart", kill_after_first_part)
    data = os.urandom(40 * MiB)
    with pytest.raises(ProviderUnavailableError) as info:
        run(p.put("mp/x", data))
    assert info.value.retryable
    assert len(parts) == 1
    run(p.close())
    p2 = _after_restart_nothing_visible(victim, s3_bucket, s3_credentials, "mp/x")
    run(p2.put("mp/x", data))  # the retry after the outage succeeds
    assert run(p2.get("mp/x")) == data
    run(p2.close())


def test_gateway_killed_during_single_put(
    victim: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    p = make_provider(
        victim, s3_bucket, s3_credentials, gateway=VICTIM, max_attempts=1,
        multipart_threshold=256 * MiB,
    )  # fmt: skip
    sent = threading.Event()
    p.bucket.client().meta.events.register("before-send.s3.PutObject", lambda **_: sent.set())

    def killer() -> None:
        sent.wait(30)
        threading.Event().wait(0.05)  # the body is streaming now (160 MiB take ~1 s)
        victim.kill_gateway(VICTIM)

    t = threading.Thread(target=killer)
    t.start()
    with pytest.raises(ProviderUnavailableError):
        run(p.put("sp/x", os.urandom(160 * MiB)))
    t.join()
    run(p.close())
    run(_after_restart_nothing_visible(victim, s3_bucket, s3_credentials, "sp/x").close())


def test_gateway_killed_mid_get(
    victim: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    data = os.urandom(64 * MiB)
    victim.client(VICTIM).put_object(Bucket=s3_bucket, Key="vault/p1/g/x", Body=data)
    p = make_provider(victim, s3_bucket, s3_credentials, gateway=VICTIM, max_attempts=1)
    # Headers are in, the body is not: kill the gateway now.
    p.bucket.client().meta.events.register(
        "after-call.s3.GetObject", lambda **_: victim.kill_gateway(VICTIM)
    )
    with pytest.raises(ProviderUnavailableError):
        run(p.get("g/x"))
    run(p.close())
    victim.restart_gateway(VICTIM)
    p2 = make_provider(victim, s3_bucket, s3_credentials, gateway=VICTIM)
    assert run(p2.get("g/x", 5, 10)) == data[5:15]
    run(p2.close())


def test_gateway_down_every_call_is_retryable(
    victim: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    p = make_provider(victim, s3_bucket, s3_credentials, gateway=VICTIM, max_attempts=2)
    run(p.put("d/x", b"1"))
    victim.kill_gateway(VICTIM)
    calls = [
        p.info(),
        p.put("d/y", b"2"),
        p.get("d/x"),
        p.stat("d/x"),
        p.delete("d/x"),
        _collect(p),
    ]
    for call in calls:
        with pytest.raises(ProviderUnavailableError):
            run(call)
    victim.restart_gateway(VICTIM)
    assert run(p.get("d/x")) == b"1"  # same provider object recovers
    run(p.close())


async def _collect(p: S3Provider) -> list[str]:
    return [o.name async for o in p.list()]


def test_throttling_is_retryable(
    victim: CephCluster, s3_bucket: str, s3_credentials: tuple[str, str]
) -> None:
    """Ceph answers 503 SlowDown past rgw_max_concurrent_requests."""
    victim.client(VICTIM).put_object(Bucket=s3_bucket, Key="vault/p1/t/x", Body=os.urandom(8 * MiB))
    p = make_provider(
        victim, s3_bucket, s3_credentials, gateway=VICTIM, max_attempts=1, max_connections=16
    )
    errors: list[ProviderError] = []

    async def one() -> None:
        try:
            await p.get("t/x")
        except ProviderError as exc:
            errors.append(exc)

    async def burst() -> None:
        await asyncio.gather(*(one() for _ in range(32)))

    victim.gateway_config(VICTIM, "rgw_max_concurrent_requests", "1")
    try:
        run(burst())
    finally:
        victim.gateway_config(VICTIM, "rgw_max_concurrent_requests", "1024")
    assert errors, "the gateway never throttled"
    assert all(isinstance(e, ProviderUnavailableError) and e.retryable for e in errors), errors
    assert any("SlowDown" in str(e) for e in errors)
    run(burst())  # throttle lifted: all fine
    run(p.close())


@pytest.mark.parametrize(
    ("access", "secret"),
    [
        ("NOSUCHACCESSKEY00000", "vaulttestsecretkey0000000000000000000000"),
        ("VAULTTESTACCESSKEY01", "wrong-secret-key-0000000000000000000000"),
    ],
    ids=["unknown-key", "wrong-secret"],
)
def test_bad_credentials_are_permanent(
    ceph: CephCluster, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, access: str, secret: str
) -> None:
    monkeypatch.setenv("BAD_AK", access)
    monkeypatch.setenv("BAD_SK", secret)
    p = make_provider(ceph, s3_bucket, ("BAD_AK", "BAD_SK"))
    for call in (p.info(), p.put("x", b"1"), p.get("x"), p.stat("x"), _collect(p)):
        with pytest.raises(ProviderPermanentError) as info:
            run(call)
        assert not info.value.retryable
    run(p.close())


def test_missing_credential_variable_is_a_usage_error(ceph: CephCluster) -> None:
    os.environ.pop("OWNVAULT_UNSET_VAR", None)
    cfg = S3Config(
        bucket="b-x", endpoint=ceph.endpoints[0],
        access_key_env="OWNVAULT_UNSET_VAR", secret_key_env="OWNVAULT_UNSET_VAR",
    )  # fmt: skip
    with pytest.raises(UsageError, match="OWNVAULT_UNSET_VAR"):
        S3Provider(cfg)
