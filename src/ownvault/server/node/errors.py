"""The node's refusals: one exception carrying status and stable code, and its response."""

from __future__ import annotations

from starlette.responses import Response

from ownvault.errors import ObjectNotFoundError, ProviderError, StorageFullError
from ownvault.providers.node.protocol import ERROR_HEADER, ErrorCode, encode_error

__all__ = ["NodeHTTPError", "error_response", "from_provider_error"]

RETRY_AFTER = "1"


class NodeHTTPError(Exception):
    """A request the node answers with ``status`` and the error ``code`` (protocol.ErrorCode)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(exc: NodeHTTPError, method: str) -> Response:
    """The JSON error document; a HEAD answer carries the code in ``ownvault-error``."""
    # 503 is always worth retrying (busy, restarted, storage unavailable): say when.
    headers = {"retry-after": RETRY_AFTER} if exc.status == 503 else {}
    if method == "HEAD":
        return Response(status_code=exc.status, headers={ERROR_HEADER: exc.code, **headers})
    return Response(
        encode_error(exc.code, exc.message),
        exc.status,
        headers=headers,
        media_type="application/json",
    )


def from_provider_error(exc: ProviderError) -> NodeHTTPError:
    """The answer for a failure of the node's own storage (its LocalProvider folders)."""
    if isinstance(exc, ObjectNotFoundError):
        return NodeHTTPError(404, ErrorCode.OBJECT_NOT_FOUND, exc.message)
    if isinstance(exc, StorageFullError):
        return NodeHTTPError(507, ErrorCode.STORAGE_FULL, "the node's disk is full")
    if exc.retryable:
        return NodeHTTPError(503, ErrorCode.UNAVAILABLE, "the node's storage is unavailable")
    return NodeHTTPError(500, ErrorCode.INTERNAL, "the node's storage refused the operation")
