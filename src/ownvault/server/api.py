"""The vault's HTTP API under ``/api/v1``: a thin layer over the engine the CLI uses.

One FastAPI application, mounted by :mod:`ownvault.server.app`. Each area has its own
module exposing ``router(state) -> APIRouter``:

=====================  ==========================================================
``api_session``        login (passphrase or token), logout, the anti-CSRF rules
``api_files``          list/search/browse, stat, download (``Range``), versions,
                       restore, tags, delete, one-shot streamed upload, du
``api_uploads``        resumable upload sessions (tus-like: offsets, chunks)
``api_publish``        publish, unpublish, the list of publications
``api_providers``      providers, placement policy, health (check + reachability)
``api_jobs``           long operations run in the background (check, audit,
                       repair, rebalance, revoke) with progress, polled by the web UI
``api_keys``           identity and contact card, recovery phrase and guardian
                       shares (passphrase re-entered)
``api_sharing``        contacts, tag policies, grants (share, list, revoke)
``api_received``       grants made for this vault: open them, read what they share
=====================  ==========================================================

Every error is JSON, ``{"error": {"code", "message", "provider"?, "share"?, "name"?}}``,
with the stable ``code`` of :mod:`ownvault.errors` (``unauthorized``, ``too_large``,
``conflict``, ``http`` for the few errors that come from HTTP itself). The status is
chosen here, in one place (:data:`STATUS`). Writes are serialized by one
:class:`asyncio.Lock` (the engine's writer lock is per process, not per task).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ownvault.errors import OwnvaultError
from ownvault.server.api_auth import COOKIE, PUBLIC
from ownvault.server.api_base import (
    API_PREFIX,
    ERROR_RESPONSES,
    ApiProblem,
    ApiState,
    error_response,
    status_for,
)

__all__ = ["create_api"]

log = logging.getLogger("ownvault.api")

def create_api(state: ApiState) -> FastAPI:
    """The ``/api/v1`` application (mount it at :data:`API_PREFIX`)."""
    from ownvault.server import (
        api_files,
        api_jobs,
        api_keys,
        api_providers,
        api_publish,
        api_received,
        api_session,
        api_sharing,
        api_uploads,
    )

    app = FastAPI(
        title="ownvault vault API",
        version="1",
        summary="Your vault over HTTP: files, versions, tags, uploads, publishing, sharing, providers, health.",
        description=(
            "Authenticate with `Authorization: Bearer TOKEN` (the token `ownvault serve` prints, "
            "or one from `POST /session` with the passphrase). A session cookie, set by "
            "`POST /session`, is accepted for GET and HEAD only (downloads), so that no other "
            "site can make the browser change anything (CSRF). Errors are "
            '`{"error": {"code", "message"}}` with a stable code.'
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    for module in (api_session, api_files, api_uploads, api_publish, api_providers, api_jobs, api_keys,
                   api_sharing, api_received):
        app.include_router(module.router(state))

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
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http")
        return error_response(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, summary=app.summary,
                description=app.description, routes=app.routes,
            )
            doc["servers"] = [{"url": API_PREFIX}]
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE},
            }
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    if (path, method) not in PUBLIC:
                        op["security"] = [{"bearer": []}] + ([{"cookie": []}] if method in ("get", "head") else [])
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app
