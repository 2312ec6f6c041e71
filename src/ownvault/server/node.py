"""The ownvault storage node: an ASGI app (Starlette on uvicorn) holding opaque shares.

The protocol is specified in docs/node-protocol.md. Accounts are ``did:key`` identities;
every ``/v1/`` request is authenticated by :mod:`ownvault.server.node_auth`, and each
account's objects live in their own :class:`~ownvault.providers.local.LocalProvider`
folder (:mod:`ownvault.server.node_store`), so one account can never name another's
objects. The node never sees plaintext, file names or keys: only share names chosen by
the client, share bytes, and sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import uvicorn
from http_message_signatures.digests import ContentDigest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ownvault.core.keys import ed25519_from_did_key
from ownvault.errors import (
    FormatError,
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.base import validate_name, validate_prefix
from ownvault.providers.http import PROTOCOL
from ownvault.server.node_auth import Authenticator, AuthFailure, SignedMessage
from ownvault.server.node_metrics import NodeMetrics
from ownvault.server.node_store import Account, AccountStore, QuotaExceeded, load_node_id

__all__ = ["CHAOS_MODES", "NodeConfig", "create_app", "parse_allowlist", "serve"]

CHAOS_MODES = frozenset({"corrupt-reads", "bad-digest", "hang-reads", "fail-writes"})
DEFAULT_MAX_OBJECT = 64 * 1024 * 1024
MAX_LIST_PAGE = 1000
_JURISDICTION = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data: Path
    jurisdiction: str | None = None
    quota_per_account: int | None = None
    accounts: Literal["open", "allowlist"] = "open"
    allowlist: frozenset[str] = field(default_factory=frozenset)
    max_object_size: int = DEFAULT_MAX_OBJECT
    window: int = 120
    chaos: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.jurisdiction is not None and not _JURISDICTION.match(self.jurisdiction):
            raise UsageError("jurisdiction must be an ISO 3166-1 alpha-2 code such as CH")
        if self.quota_per_account is not None and self.quota_per_account < 0:
            raise UsageError("quota must not be negative")
        if not 0 < self.max_object_size <= 1 << 40:
            raise UsageError("max object size out of range")
        if not 5 <= self.window <= 3600:
            raise UsageError("signature window must be 5..3600 seconds")
        if self.accounts not in ("open", "allowlist"):
            raise UsageError("accounts must be open or allowlist")
        unknown = set(self.chaos) - CHAOS_MODES
        if unknown:
            raise UsageError(f"unknown chaos mode(s): {sorted(unknown)}")


def parse_allowlist(text: str) -> frozenset[str]:
    """One ``did:key`` a line; blank lines and ``#`` comments are ignored."""
    dids = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                ed25519_from_did_key(line)
            except FormatError:
                raise UsageError(f"allowlist line {number} is not an Ed25519 did:key") from None
            dids.add(line)
    return frozenset(dids)


class NodeHTTPError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error_response(exc: NodeHTTPError, method: str) -> Response:
    if method == "HEAD":
        return Response(status_code=exc.status, headers={"ownvault-error": exc.code})
    return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, exc.status)


def _digest(body: bytes) -> str:
    return str(ContentDigest.create(body))


class NodeApp:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node_id = load_node_id(config.data)
        self.store = AccountStore(config.data, config.quota_per_account)
        self.auth = Authenticator(self.node_id, window=config.window, started=time.time())
        self.metrics = NodeMetrics(
            lambda: float(self.store.total_objects()), lambda: float(self.store.total_bytes())
        )

    # -- plumbing ---------------------------------------------------------------------------

    async def _account(self, request: Request, *, create: bool) -> Account | None:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        host = request.headers.get("host", "")
        url = f"{request.url.scheme}://{host}{raw_path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        message = SignedMessage(request.method, url, request.headers)
        try:
            did = self.auth.authenticate(message)
        except AuthFailure as exc:
            raise NodeHTTPError(exc.status, exc.code, exc.message) from None
        if self.config.accounts == "allowlist" and did not in self.config.allowlist:
            raise NodeHTTPError(403, "account_not_allowed", "this node does not serve that account")
        request.state.message = message
        return await self.store.get(did, create=create)

    @staticmethod
    def _name(request: Request) -> str:
        name = str(request.path_params["name"])
        try:
            return validate_name(name)
        except UsageError as exc:
            raise NodeHTTPError(400, "bad_name", exc.message) from None

    @staticmethod
    def _int_param(request: Request, key: str, default: int | None) -> int | None:
        value = request.query_params.get(key)
        if value is None:
            return default
        if not value.isdigit() or len(value) > 18:
            raise NodeHTTPError(400, "bad_request", f"{key} must be a non-negative integer")
        return int(value)

    def _declared_length(self, request: Request) -> int:
        limit = self.config.max_object_size
        declared = request.headers.get("content-length")
        if declared is None:
            raise NodeHTTPError(411, "length_required", "PUT needs a Content-Length")
        if not declared.isdigit() or len(declared) > 18:
            raise NodeHTTPError(400, "bad_request", "malformed Content-Length")
        if int(declared) > limit:
            raise NodeHTTPError(413, "too_large", f"objects are at most {limit} bytes here")
        return int(declared)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.config.max_object_size
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise NodeHTTPError(413, "too_large", f"objects are at most {limit} bytes here")
            chunks.append(chunk)
        return b"".join(chunks)

    # -- endpoints --------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "protocol": PROTOCOL, "node_id": self.node_id})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type="text/plain; version=0.0.4")

    async def info(self, request: Request) -> Response:
        account = await self._account(request, create=False)
        try:
            st = await asyncio.to_thread(os.statvfs, self.config.data)
            free: int | None = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        quota_free = self.store.free_for(account)
        if quota_free is not None:
            free = quota_free if free is None else min(free, quota_free)
        return JSONResponse(
            {
                "protocol": PROTOCOL,
                "node_id": self.node_id,
                "jurisdiction": self.config.jurisdiction,
                "free_bytes": free,
                "quota_bytes": self.config.quota_per_account,
                "used_bytes": account.used if account else 0,
                "max_object_bytes": self.config.max_object_size,
            }
        )

    async def list_objects(self, request: Request) -> Response:
        account = await self._account(request, create=False)
        prefix = request.query_params.get("prefix", "")
        after = request.query_params.get("after", "")
        try:
            validate_prefix(prefix)
        except UsageError as exc:
            raise NodeHTTPError(400, "bad_name", exc.message) from None
        limit = self._int_param(request, "limit", MAX_LIST_PAGE) or MAX_LIST_PAGE
        limit = min(limit, MAX_LIST_PAGE)
        items: list[dict[str, object]] = []
        more = False
        if account is not None:
            async for info in account.provider.list(prefix):
                if info.name <= after:
                    continue
                if len(items) == limit:
                    more = True
                    break
                items.append({"name": info.name, "size": info.size})
        nxt = items[-1]["name"] if more else None
        return JSONResponse({"objects": items, "next": nxt})

    async def put(self, request: Request) -> Response:
        account = await self._account(request, create=True)
        assert account is not None
        name = self._name(request)
        if "fail-writes" in self.config.chaos:
            raise NodeHTTPError(503, "chaos", "writes fail (chaos mode)")
        declared = self._declared_length(request)
        free = self.store.free_for(account)
        if free is not None and declared > free:
            raise NodeHTTPError(507, "quota_exceeded", "the account's quota would be exceeded")
        body = await self._read_body(request)
        if not self.auth.check_body(request.state.message, body):
            raise NodeHTTPError(400, "digest_mismatch", "body does not match its Content-Digest")
        try:
            await self.store.put(account, name, body)
        except QuotaExceeded as exc:
            raise NodeHTTPError(507, "quota_exceeded", str(exc)) from None
        except ObjectExistsError:
            raise NodeHTTPError(409, "object_exists", f"object exists: {name}") from None
        return Response(status_code=201)

    async def get(self, request: Request) -> Response:
        account = await self._account(request, create=False)
        name = self._name(request)
        offset = self._int_param(request, "offset", 0) or 0
        length = self._int_param(request, "length", None)
        if account is None:
            raise NodeHTTPError(404, "object_not_found", f"object not found: {name}")
        if "hang-reads" in self.config.chaos:
            await asyncio.sleep(3600)
        data = await account.provider.get(name, offset, length)
        digest = _digest(data)
        if "corrupt-reads" in self.config.chaos and data:
            data = bytes([data[0] ^ 0x01]) + data[1:]
            digest = _digest(data)
        if "bad-digest" in self.config.chaos:
            digest = _digest(data + b"x")
        return Response(
            data, media_type="application/octet-stream", headers={"content-digest": digest}
        )

    async def head(self, request: Request) -> Response:
        account = await self._account(request, create=False)
        name = self._name(request)
        if account is None:
            raise NodeHTTPError(404, "object_not_found", f"object not found: {name}")
        info = await account.provider.stat(name)
        return Response(
            status_code=200,
            headers={"content-length": str(info.size), "content-type": "application/octet-stream"},
        )

    async def delete(self, request: Request) -> Response:
        account = await self._account(request, create=False)
        name = self._name(request)
        if account is not None:
            await self.store.delete(account, name)
        return Response(status_code=204)

    async def objects(self, request: Request) -> Response:
        handler = {"PUT": self.put, "GET": self.get, "HEAD": self.head, "DELETE": self.delete}
        return await handler[request.method](request)

    # -- error mapping ----------------------------------------------------------------------

    async def on_node_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NodeHTTPError)
        self.metrics.errors.labels(exc.code).inc()
        return _error_response(exc, request.method)

    async def on_provider_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderError)
        if isinstance(exc, ObjectNotFoundError):
            err = NodeHTTPError(404, "object_not_found", exc.message)
        elif isinstance(exc, StorageFullError):
            err = NodeHTTPError(507, "storage_full", "the node's disk is full")
        elif exc.retryable:
            err = NodeHTTPError(503, "unavailable", "the node's storage is unavailable")
        else:
            err = NodeHTTPError(500, "internal", "the node's storage refused the operation")
        return await self.on_node_error(request, err)

    async def on_not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "method_not_allowed" if status == 405 else "not_found"
        return await self.on_node_error(request, NodeHTTPError(status, code, "no such endpoint"))

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(self.store.scan)
        yield

    def build(self) -> Starlette:
        app = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/v1/info", self.info, methods=["GET"]),
                Route("/v1/objects", self.list_objects, methods=["GET"]),
                Route(
                    "/v1/objects/{name:path}",
                    self.objects,
                    methods=["GET", "HEAD", "PUT", "DELETE"],
                ),
            ],
            exception_handlers={
                NodeHTTPError: self.on_node_error,
                ProviderError: self.on_provider_error,
                404: self.on_not_found,
                405: self.on_not_found,
            },
            lifespan=self.lifespan,
        )
        return app


def create_app(config: NodeConfig) -> ASGIApp:
    """The node as an ASGI app: the Starlette routes inside the metrics middleware."""
    node = NodeApp(config)
    return node.metrics.middleware(node.build())


def serve(
    config: NodeConfig,
    host: str,
    port: int,
    *,
    ready: Callable[[dict[str, object]], None] | None = None,
) -> None:
    """Bind ``host:port`` (0 = any free port), call ``ready`` with the address, serve."""
    node = NodeApp(config)
    app = node.metrics.middleware(node.build())
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it small responses wait ~40 ms for delayed ACKs (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    uv_config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30
    )
    server = uvicorn.Server(uv_config)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started and ready is not None:
            ready(
                {
                    "listening": f"http://{shown}:{bound}",
                    "node_id": node.node_id,
                    "jurisdiction": config.jurisdiction,
                    "pid": os.getpid(),
                }
            )
        await task

    asyncio.run(main())
