"""HTTP response status -> the provider error tree, in one place for every HTTP adapter.

The default reading: 404/410 is a missing object, 409 a conflict (the object exists),
507 a full store, 408/429 and 5xx are worth retrying, and every other status is a
permanent refusal. An adapter whose service says more (an error code in the body, a
message) narrows this with the keyword arguments rather than writing its own ladder.
"""

from __future__ import annotations

from collections.abc import Collection

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
)

__all__ = ["error_for_status", "is_retryable_status"]

NOT_FOUND = frozenset({404, 410})
CONFLICT = frozenset({409})
FULL = frozenset({507})


def is_retryable_status(status: int) -> bool:
    """Whether a request answered with ``status`` may succeed if sent again later."""
    return status in (408, 429) or status >= 500


def error_for_status(
    status: int,
    text: str,
    *,
    provider: str,
    share: str | None = None,
    not_found: Collection[int] = NOT_FOUND,
    conflict: Collection[int] = CONFLICT,
    full: Collection[int] = FULL,
    retryable: bool | None = None,
) -> ProviderError:
    """The exception for a failed HTTP answer (``text`` is its message, already bounded).

    ``not_found``/``conflict``/``full`` are the statuses read as a missing object, an
    existing object and a full store (pass an empty set when the service's error code
    says the status means something else); ``retryable`` overrides
    :func:`is_retryable_status` for the rest.
    """
    if status in not_found:
        return ObjectNotFoundError(text, provider=provider, share=share)
    if status in conflict:
        return ObjectExistsError(text, provider=provider, share=share)
    if status in full:
        return StorageFullError(text, provider=provider, share=share)
    if is_retryable_status(status) if retryable is None else retryable:
        return ProviderUnavailableError(text, provider=provider, share=share)
    return ProviderPermanentError(text, provider=provider, share=share)
