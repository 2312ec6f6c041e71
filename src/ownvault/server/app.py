"""The ``ownvault serve`` ASGI application.

One Starlette app per process, holding one open :class:`~ownvault.engine.vault.Vault`.
Sub-applications are mounted under their own prefix; today the IPFS gateway at
``/ipfs/`` (:mod:`ownvault.server.gateway`). The vault API and the web UI are meant to be
mounted next to it (``/api/``, ``/``) by adding entries to :func:`routes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import version

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from ownvault.engine.vault import Vault
from ownvault.server.gateway import Gateway

__all__ = ["create_app", "routes"]


def routes(vault: Vault, gateway: Gateway) -> list[BaseRoute]:
    """Every route of the app; mount new sub-apps here."""

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True, "version": version("ownvault"), "gateway": "/ipfs/"})

    return [
        Route("/healthz", health, methods=["GET"]),
        Mount("/ipfs", app=gateway.app()),
    ]


def create_app(vault: Vault) -> Starlette:
    gateway = Gateway(vault)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.close()

    return Starlette(routes=routes(vault, gateway), lifespan=lifespan)
