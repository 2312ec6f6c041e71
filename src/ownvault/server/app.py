"""The ``ownvault serve`` ASGI application.

One Starlette app per process, holding one open :class:`~ownvault.engine.vault.Vault`:

============  =============================================================  ===========
``/ipfs/``    the trustless gateway (:mod:`ownvault.server.gateway`)          public
``/healthz``  ``{"ok": true}``                                                public
``/api/v1``   the vault API (:mod:`ownvault.server.api`), OpenAPI document    token
              at ``/api/v1/openapi.json``
``/``         the web UI (:mod:`ownvault.server.web`): static files only,     public
              every private byte comes from ``/api/v1``
============  =============================================================  ===========

Around them, pure ASGI middleware (so that uploads and downloads keep streaming):

* **Host check** when listening on loopback: only ``127.0.0.1``, ``localhost`` and
  ``[::1]`` are answered (421 otherwise), so a DNS-rebinding page cannot reach the API.
* **Body limits**: ``ApiLimits.json_body`` for every API request but the two upload
  routes, which count their own bytes (413); those requests must send
  ``Content-Length`` (411 for a chunked body), and the HTTP server never reads past it.
* **Security headers**: a strict Content-Security-Policy (no inline script or style, only
  this origin), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: no-referrer``;
  gateway responses get ``Content-Security-Policy: sandbox …`` without
  ``allow-same-origin``, so published HTML runs in an opaque origin and can neither read
  the UI's storage nor call the API with its cookie.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from importlib.metadata import version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ownvault.engine.vault import Vault
from ownvault.server.api import create_api
from ownvault.server.api.state import API_PREFIX, ApiLimits, ApiState, Sessions, new_token
from ownvault.server.gateway import Gateway
from ownvault.server.web import ui_routes

__all__ = ["CSP", "create_app", "routes"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
GATEWAY_CSP = "sandbox allow-scripts allow-forms allow-popups allow-downloads allow-modals"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_STREAMED = re.compile(rf"^{re.escape(API_PREFIX)}/(uploads/[^/]+|files/content)$")


def routes(vault: Vault, gateway: Gateway, state: ApiState | None = None) -> list[BaseRoute]:
    """Every route of the app; mount new sub-apps here."""

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "version": version("ownvault"), "gateway": "/ipfs/"})

    out: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        Mount("/ipfs", app=gateway.app()),
    ]
    if state is not None:
        out.append(Mount(API_PREFIX, app=create_api(state)))
        out.extend(ui_routes())
    return out


def _host_of(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == b"host":
            host = str(value.decode("latin-1"))
            if host.startswith("["):
                return host[1:].partition("]")[0]
            return host.rpartition(":")[0] if ":" in host else host
    return ""


class Guard:
    """Host check, body limits and security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, loopback: bool, limits: ApiLimits, token: str = "") -> None:
        self.app = app
        self.token = token
        self.loopback = loopback
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if self.loopback and _host_of(scope).lower() not in LOOPBACK_NAMES:
            await _json(
                send,
                421,
                "misdirected",
                "this server answers only to 127.0.0.1, localhost and [::1]",
            )
            return
        gateway = path.startswith("/ipfs/") or path == "/ipfs"
        if path.startswith(API_PREFIX + "/") and any(ord(c) < 0x20 or c == "\x7f" for c in path):
            # No API path contains control characters, and the router's patterns do not
            # match across a newline: answer here, as JSON like every other API error.
            await _json(send, 404, "not_found", "no such API path")
            return
        limited = path.startswith(API_PREFIX + "/") and not _STREAMED.match(path)
        if limited:
            headers = dict(scope.get("headers", []))
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limits.json_body):
                await _json(
                    send,
                    413,
                    "too_large",
                    f"request bodies here are at most {self.limits.json_body} bytes",
                )
                return
            if length is None and b"transfer-encoding" in headers:
                await _json(
                    send,
                    411,
                    "length_required",
                    "send Content-Length (chunked bodies only for uploads)",
                )
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                if gateway:
                    extra.append((b"content-security-policy", GATEWAY_CSP.encode()))
                else:
                    extra += [
                        (b"content-security-policy", CSP.encode()),
                        (b"x-frame-options", b"DENY"),
                        (b"cross-origin-opener-policy", b"same-origin"),
                        (b"cross-origin-resource-policy", b"same-origin"),
                    ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _json(send: Send, status: int, code: str, message: str) -> None:
    import json

    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    vault: Vault,
    *,
    token: str | None = None,
    loopback: bool = True,
    limits: ApiLimits | None = None,
    api: bool = True,
) -> Guard:
    """The whole app. ``token``: the session token (a new random one when None), in
    ``app.state.token``; ``loopback``: answer only to loopback host names; ``api=False``
    serves the gateway alone."""
    gateway = Gateway(vault)
    limits = limits or ApiLimits()
    token = token or new_token()
    state = ApiState(vault, Sessions(token), limits) if api else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if state is not None:
                await state.jobs.close()
            await gateway.close()

    app = Starlette(routes=routes(vault, gateway, state), lifespan=lifespan)
    app.state.api = state
    return Guard(app, loopback=loopback, limits=limits, token=token)
