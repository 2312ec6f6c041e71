"""The pure ASGI middleware around the whole ``ownvault serve`` app (so that uploads and
downloads keep streaming): request framing, the Host rule, body limits, security headers.

Checked in this order, before any route or authentication runs:

1. **Framing** (400): a request with both ``Content-Length`` and ``Transfer-Encoding``,
   with more than one ``Content-Length`` or a non-numeric one, or with a
   ``Transfer-Encoding`` other than exactly ``chunked``, is refused. h11 already refuses
   some of these; this is the rule the app keeps whatever HTTP server runs it, and the
   pair is the one h11 lets through (it then ignores ``Content-Length``).
2. **Host** (:func:`parse_host`): ``host[:port]`` with the host a DNS name or an IPv4
   literal (letters, digits, ``-`` and inner dots: no trailing dot, no userinfo), or
   ``[IPv6]``; the port 1 to 5 digits, 1..65535. Anything else is 400. When listening on
   loopback, only ``127.0.0.1``, ``localhost`` and ``[::1]`` are answered (421 for any
   other name), so a DNS-rebinding page cannot reach the API; a request without Host
   (HTTP/1.0) is 400 there.
3. **Body limits**: every request has a byte budget (:meth:`Guard.budget`):
   ``ApiLimits.upload_chunk`` for ``PATCH /api/v1/uploads/{id}``,
   ``ApiLimits.upload_total`` for ``PUT /api/v1/files/content`` and WebDAV ``PUT /dav/…``, ``ApiLimits.json_body``
   for everything else. A declared ``Content-Length`` over it is 413 at once; the bytes
   actually read are counted too (chunked bodies, a server that does not enforce
   ``Content-Length``): past the budget, the app sees the client disconnect, the client
   gets 413 with ``Connection: close`` (if no response has started), and nothing more of
   the body is read. API requests other than the two upload routes must send
   ``Content-Length`` (411 for a chunked body).
4. **Security headers**: a strict Content-Security-Policy (no inline script or style, only
   this origin), ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: no-referrer``;
   gateway responses get ``Content-Security-Policy: sandbox …`` without
   ``allow-same-origin``, so published HTML runs in an opaque origin and can neither read
   the UI's storage nor call the API with its cookie.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ownvault.server.api.state import API_PREFIX, ApiLimits, Launches

__all__ = ["CSP", "GATEWAY_CSP", "LOOPBACK_NAMES", "Guard", "HostHeader", "parse_host"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
GATEWAY_CSP = "sandbox allow-scripts allow-forms allow-popups allow-downloads allow-modals"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(
    rf"(?:\[(?P<v6>[0-9A-Fa-f:.]{{2,45}})\]|(?P<name>{_LABEL}(?:\.{_LABEL})*))(?::(?P<port>[0-9]{{1,5}}))?"
)
_UPLOAD_PATCH = re.compile(rf"{re.escape(API_PREFIX)}/uploads/[^/]+")
_PUT_CONTENT = f"{API_PREFIX}/files/content"


@dataclass(frozen=True, slots=True)
class HostHeader:
    host: str  # lower case; an IPv6 literal without its brackets
    port: int | None


def parse_host(value: str) -> HostHeader | None:
    """A Host header value as ``host[:port]`` (RFC 9110 7.2, RFC 3986 3.2.2 without
    userinfo or a trailing dot), or None if it is anything else."""
    m = _HOST.fullmatch(value)
    if m is None or len(value) > 255:
        return None
    port = None
    if m["port"] is not None:
        port = int(m["port"])
        if not 1 <= port <= 65535:
            return None
    return HostHeader((m["v6"] or m["name"]).lower(), port)


class Guard:
    """Framing, Host, body limits and security headers (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        loopback: bool,
        limits: ApiLimits,
        token: str = "",
        launches: Launches | None = None,
    ) -> None:
        self.app = app
        self.token = token
        self.loopback = loopback
        self.limits = limits
        self.launches = launches  # the app's launch links (None: no API, no UI)

    def budget(self, method: str, path: str) -> tuple[int, bool]:
        """The most body bytes a request to ``method path`` may send, and whether it is one
        of the two upload routes (which may send a chunked body)."""
        if method == "PATCH" and _UPLOAD_PATCH.fullmatch(path):
            return self.limits.upload_chunk, True
        if method == "PUT" and (path == _PUT_CONTENT or path.startswith("/dav/")):
            return self.limits.upload_total, True
        return self.limits.json_body, False

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, code, message) when the request is refused before the app sees it."""
        lengths: list[bytes] = []
        codings: list[bytes] = []
        hosts: list[bytes] = []
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                lengths.append(value)
            elif key == b"transfer-encoding":
                codings.append(value)
            elif key == b"host":
                hosts.append(value)
        if lengths and codings:
            return 400, "bad_request", "Content-Length and Transfer-Encoding together are refused"
        if len(lengths) > 1 or (lengths and not re.fullmatch(rb"[0-9]{1,19}", lengths[0])):
            return 400, "bad_request", "one Content-Length, digits only"
        if len(codings) > 1 or (codings and codings[0].strip().lower() != b"chunked"):
            return 400, "bad_request", "Transfer-Encoding: chunked is the only one accepted"
        if len(hosts) > 1:
            return 400, "bad_request", "one Host header"
        host = parse_host(hosts[0].decode("latin-1")) if hosts else None
        if hosts and host is None:
            return 400, "bad_request", "the Host header must be host[:port]"
        if self.loopback and host is None:
            return 400, "bad_request", "send a Host header"
        if self.loopback and host is not None and host.host not in LOOPBACK_NAMES:
            return 421, "misdirected", "this server answers only to 127.0.0.1, localhost and [::1]"
        path: str = scope.get("path", "")
        api = path.startswith(API_PREFIX + "/")
        if api and any(ord(c) < 0x20 or c == "\x7f" for c in path):
            # No API path contains control characters, and the router's patterns do not
            # match across a newline: answer here, as JSON like every other API error.
            return 404, "not_found", "no such API path"
        budget, upload = self.budget(scope.get("method", "GET"), path)
        if lengths and int(lengths[0]) > budget:
            return 413, "too_large", f"request bodies here are at most {budget} bytes"
        if api and codings and not upload:
            return 411, "length_required", "send Content-Length (chunked bodies only for uploads)"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None:
            await _json(send, *refused)
            return
        path: str = scope.get("path", "")
        gateway = path.startswith("/ipfs/") or path == "/ipfs"
        budget, _upload = self.budget(scope.get("method", "GET"), path)
        received = 0
        started = False  # the app began its response
        cut = False  # the body went past the budget: the app sees a disconnect
        answered = False  # the 413 went out (the app's own answer is then dropped)

        async def counted() -> Message:
            nonlocal received, cut, answered
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > budget:
                    cut = True
                    if not started:
                        answered = True
                        too_large = f"request bodies here are at most {budget} bytes"
                        await _json(send, 413, "too_large", too_large, close=True)
                    return {"type": "http.disconnect"}
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": _with_security_headers(message, gateway)}
            await send(message)

        try:
            await self.app(scope, counted, send_with_headers)
        except ClientDisconnect:
            if not cut:
                raise


def _with_security_headers(message: Message, gateway: bool) -> list[tuple[bytes, bytes]]:
    headers = list(message.get("headers", []))
    names = {k.lower() for k, _v in headers}
    extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
    if gateway:
        extra.append((b"content-security-policy", GATEWAY_CSP.encode()))
    else:
        extra += [
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
    return headers + [(k, v) for k, v in extra if k not in names]


async def _json(send: Send, status: int, code: str, message: str, close: bool = False) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
