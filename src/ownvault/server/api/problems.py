"""The API's errors: the JSON error body, the status of each vault error, and the
exception handlers that turn exceptions into those bodies.

Every error is JSON, ``{"error": {"code", "message", "provider"?, "share"?, "name"?}}``,
with the stable ``code`` of :mod:`ownvault.errors` (``unauthorized``, ``too_large``,
``conflict``, ``http`` for the few errors that come from HTTP itself). The status is
chosen here, in one place (:data:`STATUS`).

A leaf: it imports nothing else from :mod:`ownvault.server`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    GrantError,
    GrantRecipientError,
    IntegrityError,
    NotFoundError,
    OwnvaultError,
    PolicyError,
    ProviderError,
    StorageFullError,
    UsageError,
    VaultStateError,
)

__all__ = [
    "ERROR_RESPONSES",
    "STATUS",
    "ApiProblem",
    "ErrorBody",
    "error_response",
    "install_handlers",
    "status_for",
    "submitted",
]

log = logging.getLogger("ownvault.api")

# Most specific class first: the first match decides.
STATUS: list[tuple[type[OwnvaultError], int]] = [
    (NotFoundError, 404),
    (UsageError, 400),
    (AuthError, 403),
    (VaultStateError, 409),
    (PolicyError, 409),  # SharePolicyError too: code "share_policy"
    (GrantRecipientError, 403),
    (GrantError, 410),  # expired or revoked
    (StorageFullError, 507),
    (ProviderError, 502),
    (DataUnavailableError, 503),
    (IntegrityError, 500),
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    provider: str | None = None
    share: str | None = None
    name: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused (see error.code)."},
    "5XX": {"model": ErrorBody, "description": "The vault or a provider failed (see error.code)."},
}


class ApiProblem(Exception):
    """An error that belongs to HTTP rather than to the vault (size limits, conflicts)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    context: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, **(context or {})}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_for(exc: OwnvaultError) -> int:
    return next((s for cls, s in STATUS if isinstance(exc, cls)), 500)


@contextlib.contextmanager
def submitted(what: str) -> Iterator[None]:
    """A document the client sent (a contact card, a grant) that fails to parse or verify
    is the request's fault: 400 with the error's own code (``format``, ``integrity``), not
    the 500 of vault data that fails its checks."""
    try:
        yield
    except IntegrityError as exc:
        raise ApiProblem(400, exc.code, f"{what}: {exc.message}") from None


def install_handlers(app: FastAPI) -> None:
    """Every exception a route raises becomes the JSON error body."""

    @app.exception_handler(OwnvaultError)
    async def vault_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, OwnvaultError)
        status = status_for(exc)
        if status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return error_response(status, exc.code, exc.message, context=exc.context())

    @app.exception_handler(ApiProblem)
    async def api_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiProblem)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(422, "usage", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "http"
        )
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))
