"""``/dav/``: the vault as a WebDAV drive (RFC 4918 class 1 and 2), in ``ownvault serve``.

WsgiDAV (:mod:`.provider` holds its resources over :class:`~ownvault.engine.files.drive.Drive`)
behind a2wsgi, which runs it in worker threads and streams request bodies to it. Around it,
this module's :class:`DavApp` (ASGI):

* **Authentication**, the API's tokens (:class:`~ownvault.server.api.state.Sessions`):
  ``Authorization: Basic`` with the user name ``ownvault`` and the session token as the
  password (what file managers and rclone send), or ``Authorization: Bearer TOKEN``.
  Anything else is 401 with ``WWW-Authenticate: Basic realm="ownvault"``.
* **PROPFIND depth**: ``Depth: 0`` or ``1`` only; ``infinity`` (or no Depth header, which
  means infinity) is 403 with ``DAV:propfind-finite-depth`` (RFC 4918 9.1), so one request
  cannot make the server walk the whole vault.
* **Cut bodies**: a PUT whose client disconnects is never stored (the previous version
  stays), see ``VaultFile.end_write``.

Locks (LOCK/UNLOCK, class 2) are WsgiDAV's in-memory lock manager with its timeouts: they
last as long as the server process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any, cast
from urllib.parse import quote, unquote_to_bytes, urlsplit, urlunsplit

from a2wsgi import WSGIMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from wsgidav.error_printer import ErrorPrinter
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from ownvault.engine.files.drive import Drive
from ownvault.server.api.state import Sessions
from ownvault.server.dav.provider import Bridge, VaultDAVProvider

__all__ = ["DAV_PREFIX", "DAV_USER", "DavApp"]

DAV_PREFIX = "/dav"
DAV_USER = "ownvault"
BLOCK_SIZE = 1 << 20  # bytes per read()/write() between WsgiDAV and the drive
WORKERS = 8  # WsgiDAV requests served at once

_FINITE_DEPTH = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:">'
    b"<D:propfind-finite-depth/></D:error>\n"
)


class DavApp:
    """The ASGI app mounted at ``/dav`` (see the module docstring)."""

    def __init__(self, drive: Drive, sessions: Sessions) -> None:
        self.drive = drive
        self.sessions = sessions
        self.bridge = Bridge(drive)
        config: dict[str, Any] = {
            "provider_mapping": {"/": VaultDAVProvider(self.bridge)},
            "mount_path": DAV_PREFIX,
            "middleware_stack": [ErrorPrinter, RequestResolver],
            "http_authenticator": {"domain_controller": None},
            "simple_dc": {"user_mapping": {"*": True}},
            "lock_storage": True,
            "property_manager": None,
            "block_size": BLOCK_SIZE,
            "dir_browser": {"enable": False},
            "verbose": 0,
            "logging": {"enable": False, "enable_loggers": []},
            "add_header_MS_Author_Via": True,
        }
        logging.getLogger("wsgidav").setLevel(logging.ERROR)
        self.wsgi = WsgiDAVApp(config)
        self.asgi = cast(ASGIApp, WSGIMiddleware(cast(Any, self._with_user), workers=WORKERS))

    def _with_user(self, environ: dict[str, Any], start_response: Any) -> Any:  # noqa: ANN401
        if environ["REQUEST_METHOD"] == "PUT":
            environ["wsgi.input"] = BodyStream(environ["wsgi.input"])
        environ["wsgidav.auth.user_name"] = DAV_USER
        environ["wsgidav.auth.roles"] = ["admin"]
        environ["wsgidav.auth.permissions"] = []
        return self.wsgi(environ, start_response)

    def authenticated(self, scope: Scope) -> bool:
        for key, value in scope.get("headers", []):
            if key != b"authorization":
                continue
            scheme, _, cred = value.decode("latin-1").partition(" ")
            cred = cred.strip()
            if scheme.lower() == "bearer":
                return self.sessions.valid(cred)
            if scheme.lower() == "basic":
                try:
                    user, _, password = (
                        base64.b64decode(cred, validate=True).decode().partition(":")
                    )
                except (binascii.Error, UnicodeDecodeError):
                    return False
                return user == DAV_USER and self.sessions.valid(password)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.asgi(scope, receive, send)
            return
        if not self.authenticated(scope):
            await _plain(send, 401, b"log in: user ownvault, the session token as password\n",
                         [(b"www-authenticate", b'Basic realm="ownvault", charset="UTF-8"')])  # fmt: skip
            return
        bad = _bad_path(scope)
        if bad is None and scope["method"] in ("MOVE", "COPY"):
            bad = _destination(scope)
        if bad is not None:
            await _plain(send, 400, bad.encode() + b"\n", [])
            return
        if scope["method"] == "PROPFIND":
            depth = dict(scope.get("headers", [])).get(b"depth", b"infinity").strip().lower()
            if depth not in (b"0", b"1"):
                await _plain(send, 403, _FINITE_DEPTH, [], b"application/xml; charset=utf-8")
                return
        self.bridge.loop = asyncio.get_running_loop()

        async def watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                scope["ownvault.disconnected"] = True
            return message

        async def one_date(message: Message) -> None:
            # WsgiDAV writes a Date header and so does the HTTP server: keep the server's
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                message = {**message, "headers": headers}
            await send(message)

        await self.asgi(scope, watched, one_date)


class BodyStream:
    """A PUT's ``wsgi.input``: each read returns the body as the HTTP server received it, one
    message (at most ``size`` bytes) at a time, uncopied. a2wsgi's own reader gathers whole
    ``size`` blocks in a bytearray and copies every byte three times on the way, which was a
    large part of a WebDAV PUT's time. WsgiDAV reads a PUT until ``b""``, so short reads are
    fine; the end (or a disconnect, which ``DavApp`` records) is the empty read."""

    def __init__(self, body: Any) -> None:  # noqa: ANN401 (a2wsgi's Body: its loop and receive)
        self.loop: asyncio.AbstractEventLoop = body.loop
        self.receive: Receive = body.receive
        self.more = True
        self.held = b""  # what a read smaller than the last message left

    def _message(self) -> bytes:
        async def receive() -> Message:
            return await self.receive()

        message = asyncio.run_coroutine_threadsafe(receive(), self.loop).result()
        self.more = bool(message.get("more_body", False))
        return bytes(message.get("body", b""))

    def read(self, size: int = -1) -> bytes:
        if size < 0:  # everything (WsgiDAV does not ask this of a PUT)
            parts = [self.held]
            while self.more:
                parts.append(self._message())
            self.held = b""
            return b"".join(parts)
        while not self.held and self.more:
            self.held = self._message()
        if len(self.held) <= size:
            data, self.held = self.held, b""
            return data
        data, self.held = self.held[:size], self.held[size:]
        return data


def _bad_path(scope: Scope) -> str | None:
    """Why a request path is refused before WsgiDAV sees it (None: it is fine). A name
    that is not UTF-8 would reach the vault as U+FFFD, and "." or ".." segments as
    nothing ownvault can store."""
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return _bad_name(raw.split(b"?", 1)[0])[1]


def _bad_name(raw: bytes) -> tuple[str, str | None]:
    """A percent-encoded path decoded once (strict UTF-8), and why it cannot name anything
    in the vault (None: it can)."""
    try:
        path = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return "", "names must be UTF-8"
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return path, "names must not hold control characters"
    if any(seg in (".", "..") for seg in path.split("/")):
        return path, 'names must not hold "." or ".." segments'
    return path, None


def _destination(scope: Scope) -> str | None:
    """Checks a MOVE or COPY ``Destination`` as :func:`_bad_path` checks the request path,
    and hands WsgiDAV an ASCII form of it that decodes to the same name. WsgiDAV decodes the
    header with ``unquote`` (bytes that are not UTF-8 become U+FFFD) and takes raw non-ASCII
    bytes as Latin-1 (a raw UTF-8 "é" became "Ã©"); it splits the decoded text at ``?``,
    so a destination name holding ``?`` is refused here rather than cut short there."""
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    found = [v for k, v in headers if k == b"destination"]
    if not found:
        return None
    url = urlsplit(found[0].decode("latin-1"))  # urllib takes bytes as ASCII only
    path, bad = _bad_name(url.path.encode("latin-1"))
    if bad is None and "?" in path:
        bad = 'a MOVE or COPY destination must not hold "?"'
    if bad is not None:
        return f"Destination: {bad}"
    ascii_path = quote(path.encode(), safe="/")
    canonical = urlunsplit((url.scheme, url.netloc, ascii_path, "", "")).encode("latin-1")
    scope["headers"] = [(k, v) for k, v in headers if k != b"destination"]
    scope["headers"].append((b"destination", canonical))
    return None


async def _plain(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: bytes = b"text/plain; charset=utf-8",
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
