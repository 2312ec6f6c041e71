"""The web UI: hand-written HTML, CSS and JavaScript modules, no build step, no CDN.

The files under ``static/`` ship with the package. They are read once into a table keyed
by their URL (``/`` -> ``index.html``, ``/ui/{relative path}`` -> the file); a request is a
lookup in that table, so no request path ever reaches the file system. They hold no
secrets: the page asks ``/api/v1`` for everything, with the session token it got from
the URL fragment ``#token=…`` (``ownvault serve`` prints that URL; fragments are not sent
to servers) or from a login with the passphrase, and keeps it in ``sessionStorage``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

__all__ = ["assets", "ui_routes"]

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}


def assets() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) for every file of the UI."""
    out: dict[str, tuple[bytes, str]] = {}
    root = resources.files(__name__) / "static"

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif not child.name.startswith("."):
                suffix = "." + child.name.rsplit(".", 1)[-1]
                ctype = (
                    TYPES.get(suffix)
                    or mimetypes.guess_type(child.name)[0]
                    or "application/octet-stream"
                )
                out["/ui/" + rel] = (child.read_bytes(), ctype)

    walk(root, "")
    out["/"] = out["/ui/index.html"]
    return out


def ui_routes() -> list[BaseRoute]:
    table = assets()
    etags = {
        path: '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        for path, (body, _t) in table.items()
    }

    async def serve(request: Request) -> Response:
        path = request.url.path
        found = table.get(path)
        if found is None:
            return Response(b"not found\n", status_code=404, media_type="text/plain")
        body, ctype = found
        headers = {"ETag": etags[path], "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etags[path]:
            return Response(status_code=304, headers=headers)
        return Response(body if request.method == "GET" else b"", media_type=ctype, headers=headers)

    return [
        Route("/", serve, methods=["GET", "HEAD"]),
        Route("/ui/{path:path}", serve, methods=["GET", "HEAD"]),
    ]
