"""Fixtures for the S3 provider tests only: a real Ceph RADOS Gateway (see ceph.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .ceph import ACCESS_KEY, SECRET_KEY, CephCluster, missing_reason, start_cluster

S3_ACCESS_ENV = "OWNVAULT_TEST_S3_ACCESS_KEY"
S3_SECRET_ENV = "OWNVAULT_TEST_S3_SECRET_KEY"


@pytest.fixture(scope="session")
def ceph() -> Iterator[CephCluster]:
    """One Ceph cluster for the whole session; purged at the end unless OWNVAULT_CEPH_DIR."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: S3 tests must run)")
        pytest.skip(reason)
    cluster = start_cluster()
    yield cluster
    if not cluster.keep:
        cluster.down(purge=True)


@pytest.fixture
def s3_bucket(ceph: CephCluster) -> str:
    """A fresh, empty bucket on the Ceph cluster."""
    return ceph.new_bucket()


@pytest.fixture
def s3_credentials(ceph: CephCluster, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """Names of environment variables holding the test user's keys."""

    monkeypatch.setenv(S3_ACCESS_ENV, ACCESS_KEY)
    monkeypatch.setenv(S3_SECRET_ENV, SECRET_KEY)
    return S3_ACCESS_ENV, S3_SECRET_ENV
