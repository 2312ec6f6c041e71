"""botocore failures mapped onto ownvault's error tree (the table in docs/design.md)."""

from __future__ import annotations

import botocore.exceptions as bx

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    StorageFullError,
)

__all__ = ["classify_error", "code_status", "was_retried"]

_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound"})
_EXISTS_CODES = frozenset({"PreconditionFailed"})
_FULL_CODES = frozenset({"QuotaExceeded", "XMinioStorageFull", "InsufficientStorage"})
_RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ConditionalRequestConflict",
        "BadDigest",
        "IncompleteBody",
        "XAmzContentSHA256Mismatch",
    }
)


def code_status(exc: bx.ClientError) -> tuple[str, int]:
    """The S3 error code and HTTP status of a client error."""
    err = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    return str(err.get("Code", "")), int(meta.get("HTTPStatusCode", 0) or 0)


def classify_error(
    exc: BaseException, *, provider: str | None = None, name: str | None = None
) -> ProviderError:
    """Map a botocore exception to ownvault's tree (the table in docs/design.md)."""
    share = name
    if isinstance(exc, ProviderError):
        return exc  # classified already (e.g. by the client factory)
    if isinstance(exc, bx.ClientError):
        code, status = code_status(exc)
        msg = f"S3 {code or status}" + (f" on {name}" if name else "")
        if code in _FULL_CODES or status == 507:
            return StorageFullError(f"{msg}: storage full or quota exceeded", provider=provider)
        if code in _EXISTS_CODES or status == 412:
            return ObjectExistsError(f"{msg}: object exists", provider=provider, share=share)
        if code in _NOT_FOUND_CODES or (status == 404 and code in ("", "404")):
            return ObjectNotFoundError(f"object not found: {name}", provider=provider, share=share)
        if code in _RETRYABLE_CODES or status in (408, 429) or status >= 500:
            if status == 501 or code == "NotImplemented":
                return ProviderPermanentError(f"{msg}: not supported", provider=provider)
            return ProviderUnavailableError(f"{msg}: retry later", provider=provider, share=share)
        # AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket,
        # PermanentRedirect, AuthorizationHeaderMalformed, InvalidBucketName, other 4xx
        return ProviderPermanentError(f"{msg}: refused", provider=provider, share=share)
    if isinstance(
        exc,
        bx.NoCredentialsError
        | bx.PartialCredentialsError
        | bx.ProfileNotFound
        | bx.NoRegionError
        | bx.ParamValidationError
        | bx.UnknownEndpointError,
    ):
        return ProviderPermanentError(f"S3 configuration: {exc}", provider=provider)
    if isinstance(exc, bx.BotoCoreError | OSError | ValueError):
        # EndpointConnectionError, ConnectionClosedError, timeouts, ResponseStreamingError,
        # IncompleteReadError, urllib3 protocol errors surfacing as OSError subclasses
        return ProviderUnavailableError(
            f"S3 transport error{f' on {name}' if name else ''}: {type(exc).__name__}",
            provider=provider,
            share=share,
        )
    return ProviderUnavailableError(f"S3 error: {type(exc).__name__}", provider=provider)


def was_retried(exc: bx.ClientError) -> bool:
    """True when botocore retried the request before this answer (an earlier try may have landed)."""
    meta = exc.response.get("ResponseMetadata", {})
    return int(meta.get("RetryAttempts", 0) or 0) > 0
