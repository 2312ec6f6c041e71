"""providers.httpstatus: the one status -> error-tree reading shared by HTTP adapters."""

from __future__ import annotations

import pytest

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
)
from ownvault.providers.httpstatus import error_for_status, is_retryable_status
from ownvault.providers.node.client import classify


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ObjectNotFoundError),
        (410, ObjectNotFoundError),
        (409, ObjectExistsError),
        (507, StorageFullError),
        (408, ProviderUnavailableError),
        (429, ProviderUnavailableError),
        (500, ProviderUnavailableError),
        (503, ProviderUnavailableError),
        (400, ProviderPermanentError),
        (401, ProviderPermanentError),
        (403, ProviderPermanentError),
        (413, ProviderPermanentError),
    ],
)
def test_default_reading(status: int, kind: type[Exception]) -> None:
    err = error_for_status(status, "x", provider="p", share="s")
    assert type(err) is kind and err.provider == "p" and err.share == "s"
    assert err.retryable == is_retryable_status(status) or kind is not ProviderUnavailableError


def test_narrowing() -> None:
    assert type(error_for_status(404, "x", provider="p", not_found=())) is ProviderPermanentError
    assert type(error_for_status(409, "x", provider="p", conflict=())) is ProviderPermanentError
    assert (
        type(error_for_status(400, "x", provider="p", retryable=True)) is ProviderUnavailableError
    )
    assert type(error_for_status(503, "x", provider="p", retryable=False)) is ProviderPermanentError


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "object_not_found", ObjectNotFoundError),
        (404, "", ObjectNotFoundError),
        (404, "not_found", ProviderPermanentError),  # no such endpoint: not a missing object
        (409, "object_exists", ObjectExistsError),
        (507, "quota_exceeded", StorageFullError),
        (400, "digest_mismatch", ProviderUnavailableError),  # damaged in transit: resend
        (400, "bad_name", ProviderPermanentError),
        (503, "busy", ProviderUnavailableError),
    ],
)
def test_node_codes(status: int, code: str, kind: type[Exception]) -> None:
    assert type(classify(status, code, "m", "node", "n")) is kind
