"""What the API's modules share: state, limits, the error body and the status of each error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.responses import JSONResponse

from ownvault.engine.vault import Vault
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
from ownvault.server.api_jobs import Jobs

if TYPE_CHECKING:
    from ownvault.server.api_auth import Sessions
    from ownvault.server.api_uploads import UploadStore

__all__ = [
    "API_PREFIX",
    "ERROR_RESPONSES",
    "ApiLimits",
    "ApiProblem",
    "ApiState",
    "ErrorBody",
    "error_response",
    "status_for",
    "submitted",
]

API_PREFIX = "/api/v1"

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

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class ApiLimits:
    json_body: int = 1024 * 1024  # any request that is not an upload
    upload_chunk: int = 64 * 1024 * 1024  # one PATCH of an upload session
    upload_total: int = 1 << 40  # one file (upload session or one-shot PUT)
    sessions: int = 64  # open upload sessions
    session_idle_seconds: int = 7 * 24 * 3600


@dataclass
class ApiState:
    """What the API's routes share: the open vault, sessions, jobs. Writes go through
    ``vault.ctx.write()`` (the engine's lock serializes this process's tasks too)."""

    vault: Vault
    sessions: Sessions
    limits: ApiLimits = field(default_factory=ApiLimits)
    jobs: Jobs = field(default_factory=Jobs)
    uploads: UploadStore | None = None
    failures: asyncio.Lock = field(default_factory=asyncio.Lock)  # serializes wrong passphrases
    received: dict[str, str] = field(default_factory=dict)  # grant id -> grant text (this process only)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   context: dict[str, str] | None = None) -> JSONResponse:
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
