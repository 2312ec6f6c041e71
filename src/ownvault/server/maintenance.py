"""A small ASGI app exposing the maintenance loop's results: ``GET /metrics`` (Prometheus
text) and ``GET /status`` (JSON). ``ownvault daemon --metrics-listen`` serves it;
``ownvault serve --maintain`` can mount the same routes (:func:`routes`).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ownvault.engine.maintenance import MaintenanceState

__all__ = ["metrics_app", "routes"]


def routes(state: MaintenanceState) -> list[BaseRoute]:
    async def metrics(_request: Request) -> Response:
        return Response(state.metrics_text(), media_type="text/plain; version=0.0.4")

    async def status(_request: Request) -> Response:
        return JSONResponse(state.to_json())

    return [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/status", status, methods=["GET"]),
    ]


def metrics_app(state: MaintenanceState) -> Starlette:
    return Starlette(routes=routes(state))
