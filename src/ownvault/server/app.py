"""The ``ownvault serve`` ASGI application.

One Starlette app per process, holding one open :class:`~ownvault.engine.vault.Vault`:

============  =============================================================  ===========
``/ipfs/``    the trustless gateway (:mod:`ownvault.server.gateway`)          public
``/healthz``  ``{"ok": true}``                                                public
``/api/v1``   the vault API (:mod:`ownvault.server.api`), OpenAPI document    token
              at ``/api/v1/openapi.json``
``/dav/``     the vault as a WebDAV drive (:mod:`ownvault.server.dav`)        token
``/``         the web UI (:mod:`ownvault.server.web`): static files only,     public
              every private byte comes from ``/api/v1``
============  =============================================================  ===========

``/launch/{nonce}``: the one-time link ``ownvault ui`` opens (:data:`LAUNCH_PATH`): a
valid nonce (``Launches``, single use, 60 s) is exchanged for a new session token and a
303 to ``/#token=…``, which the page moves to ``sessionStorage`` and removes from the
address bar; a used, expired or unknown nonce is 404.

Around them, :class:`ownvault.server.guard.Guard`: request framing, the Host rule, body
limits (counted as read) and security headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ownvault.engine.files.drive import Drive, DriveOptions
from ownvault.engine.vault import Vault
from ownvault.server.api import create_api
from ownvault.server.api.state import API_PREFIX, ApiLimits, ApiState, Sessions, new_token
from ownvault.server.dav import DAV_PREFIX, DavApp
from ownvault.server.gateway import Gateway
from ownvault.server.guard import Guard
from ownvault.server.web import ui_routes

__all__ = ["LAUNCH_PATH", "create_app", "routes"]

LAUNCH_PATH = "/launch/"


def routes(
    vault: Vault, gateway: Gateway, state: ApiState | None = None, drive: Drive | None = None
) -> list[BaseRoute]:
    """Every route of the app; mount new sub-apps here."""

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "version": version("ownvault"), "gateway": "/ipfs/"})

    out: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        Mount("/ipfs", app=gateway.app()),
    ]
    if state is not None:
        out.append(Mount(API_PREFIX, app=create_api(state)))
        out.append(Route(LAUNCH_PATH + "{nonce}", launcher(state), methods=["GET"]))
        if drive is not None:
            out.append(Mount(DAV_PREFIX, app=DavApp(drive, state.sessions)))
        out.extend(ui_routes())
    return out


def launcher(state: ApiState) -> Callable[[Request], Awaitable[Response]]:
    """``GET /launch/{nonce}``: a one-time launch link -> a new session in the UI."""

    async def launch(request: Request) -> Response:
        if not state.launches.redeem(request.path_params["nonce"]):
            return JSONResponse(
                {
                    "error": {
                        "code": "not_found",
                        "message": "this launch link was used or has "
                        "expired: run `ownvault ui` again, or log in with the passphrase",
                    }
                },
                status_code=404,
                headers={"Cache-Control": "no-store"},
            )
        token = state.sessions.issue()
        return RedirectResponse(
            f"/#token={token}", status_code=303, headers={"Cache-Control": "no-store"}
        )

    return launch


def create_app(
    vault: Vault,
    *,
    token: str | None = None,
    loopback: bool = True,
    limits: ApiLimits | None = None,
    api: bool = True,
    drive: DriveOptions | None = None,
) -> Guard:
    """The whole app. ``token``: the session token (a new random one when None), in
    ``app.state.token``; ``loopback``: answer only to loopback host names; ``api=False``
    serves the gateway alone; ``drive``: the WebDAV drive's cache and spool sizes."""
    gateway = Gateway(vault)
    limits = limits or ApiLimits()
    token = token or new_token()
    state = ApiState(vault, Sessions(token), limits) if api else None
    dav = Drive(vault.ctx, drive) if api else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if state is not None:
                await state.jobs.close()
            await gateway.close()
            if dav is not None:
                await dav.close()

    app = Starlette(routes=routes(vault, gateway, state, dav), lifespan=lifespan)
    app.state.api = state
    launches = state.launches if state is not None else None
    return Guard(app, loopback=loopback, limits=limits, token=token, launches=launches)
