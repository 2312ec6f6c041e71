"""The vault's HTTP API under ``/api/v1``: a thin layer over the engine the CLI uses.

One FastAPI application, mounted by :mod:`ownvault.server.app`. Each area has its own
module exposing ``router(state) -> APIRouter``:

=====================  ==========================================================
``session``            login (passphrase or token), logout
``files``              list/search/browse, stat, download (``Range``), versions,
                       restore, tags, delete, du
``uploads``            resumable upload sessions (tus-like: offsets, chunks),
                       one-shot streamed upload
``publish``            publish, unpublish, the list of publications
``providers``          providers, placement policy, health (check + reachability)
``jobs``               long operations run in the background (check, audit,
                       repair, rebalance, revoke) with progress, polled by the web UI
``keys``               identity and contact card, recovery phrase and guardian
                       shares (passphrase re-entered)
``sharing``            contacts, tag policies, grants (share, list, revoke)
``received``           grants made for this vault: open them, read what they share
``backups``            backup profiles: their state, runs, retention preview, run now
=====================  ==========================================================

Beside them, two leaves that import nothing else from :mod:`ownvault.server`:
``problems`` (the error body, the status of each error, the exception handlers) and
``state`` (the open vault, limits, session tokens, jobs); ``auth`` holds the
token dependency and the anti-CSRF rule.

Every error is JSON, ``{"error": {"code", "message", …}}`` (:mod:`.problems`). Writes
are serialized by the engine's writer lock (``vault.ctx.write()``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ownvault.server.api import (
    backups,
    files,
    jobs,
    keys,
    providers,
    publish,
    received,
    session,
    sharing,
    uploads,
)
from ownvault.server.api.auth import PUBLIC
from ownvault.server.api.problems import ERROR_RESPONSES, install_handlers
from ownvault.server.api.state import API_PREFIX, COOKIE, ApiState

__all__ = ["create_api"]


def create_api(state: ApiState) -> FastAPI:
    """The ``/api/v1`` application (mount it at :data:`API_PREFIX`)."""
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
    for module in (
        session,
        files,
        uploads,
        publish,
        providers,
        jobs,
        keys,
        sharing,
        received,
        backups,
    ):
        app.include_router(module.router(state))
    install_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            doc["servers"] = [{"url": API_PREFIX}]
            doc.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE},
            }
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    if (path, method) not in PUBLIC:
                        op["security"] = [{"bearer": []}] + (
                            [{"cookie": []}] if method in ("get", "head") else []
                        )
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    return app
