"""The storage node's HTTP endpoints: a Starlette app (served by :mod:`.server`).

The protocol is specified in docs/node-protocol.md (codecs: ``providers.node.protocol``).
Accounts are ``did:key`` identities; every ``/v1/`` request is authenticated by
:mod:`.auth`, and each account's objects live in their own
:class:`~ownvault.providers.local.LocalProvider` folder (:mod:`.store`), so one account
can never name another's objects. The node never sees plaintext, file names or keys:
only share names chosen by the client, share bytes, and sizes.

``POST /v1/audit`` answers storage audits (:mod:`.audit`). Chaos modes
``drop-blocks=F`` and ``lie-audits`` make a node misbehave for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator

from http_message_signatures.digests import ContentDigest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ownvault.core.capability import ReadCapability
from ownvault.core.grants import decode_revocation, grant_object_prefix, revocation_name
from ownvault.core.proofs import encode_answers
from ownvault.errors import (
    FormatError,
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    UsageError,
)
from ownvault.providers.base import ObjectInfo, validate_name, validate_prefix
from ownvault.providers.node.protocol import (
    AUDIT_PATH,
    HEALTH_PATH,
    INFO_PATH,
    MAX_AUDIT_BODY,
    MAX_LIST_PAGE,
    MAX_RANGE,
    OBJECTS_PATH,
    PROTOCOL,
    ErrorCode,
    NodeInfo,
    decode_challenges,
    encode_info,
    encode_listing,
)
from ownvault.server.node.audit import answer_challenges, drop_blocks
from ownvault.server.node.auth import Authenticator, AuthFailure, BodyDigest, SignedMessage
from ownvault.server.node.config import NodeConfig
from ownvault.server.node.errors import NodeHTTPError, error_response, from_provider_error
from ownvault.server.node.metrics import NodeMetrics
from ownvault.server.node.store import (
    Account,
    AccountStore,
    DigestMismatch,
    ObjectTooLarge,
    QuotaExceeded,
    UploadBudget,
    UploadBudgetExceeded,
    load_node_id,
)
from ownvault.server.node.transport import framing_guard

__all__ = ["NodeApp", "create_app"]


def _digest(body: bytes) -> str:
    return str(ContentDigest.create(body))


class NodeApp:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node_id = load_node_id(config.data)
        self.store = AccountStore(config.data, config.quota_per_account)
        self.budget = UploadBudget(config.upload_budget)
        self.auth = Authenticator(
            self.node_id,
            window=config.window,
            started=time.time(),
            nonces_per_account=config.nonces_per_account,
        )
        self.metrics = NodeMetrics(
            lambda: float(self.store.total_objects()), lambda: float(self.store.total_bytes())
        )

    # -- plumbing ---------------------------------------------------------------------------

    async def _account(
        self, request: Request, *, create: bool, op: str | None = None, target: str = ""
    ) -> Account | None:
        """The account a request acts on: its signer's, or, with a read capability, the
        capability's owner's (only for ``op`` get/stat/list of ``target``, a name or a
        listing prefix, that the capability allows)."""
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        host = request.headers.get("host", "")
        url = f"{request.url.scheme}://{host}{raw_path.decode('latin-1')}"
        if query:
            url += "?" + query.decode("latin-1")
        message = SignedMessage(request.method, url, request.headers)
        try:
            authenticated = self.auth.verify(message)
        except AuthFailure as exc:
            raise NodeHTTPError(exc.status, exc.code, exc.message) from None
        did = authenticated.signer
        if authenticated.capability is not None:
            did = await self._capability_account(authenticated.capability, did, op, target)
        if self.config.accounts == "allowlist" and did not in self.config.allowlist:
            raise NodeHTTPError(403, "account_not_allowed", "this node does not serve that account")
        request.state.message = message
        return await self.store.get(did, create=create)

    async def _capability_account(
        self, token: str, reader: str, op: str | None, target: str
    ) -> str:
        """Check a read capability for this request; return the account it opens."""
        if op is not None:
            try:
                (validate_prefix if op == "list" else validate_name)(target)
            except UsageError as exc:
                raise NodeHTTPError(400, "bad_name", exc.message) from None
        try:
            cap = ReadCapability.parse(token)
        except (FormatError, IntegrityError) as exc:
            raise NodeHTTPError(
                401, "bad_capability", f"capability rejected: {exc.message}"[:200]
            ) from None
        if cap.reader != reader:
            raise NodeHTTPError(
                403, "capability_denied", "the capability was issued to another key"
            )
        if cap.node not in ("*", self.node_id):
            raise NodeHTTPError(403, "capability_denied", "the capability is for another node")
        if cap.expired(time.time()):
            raise NodeHTTPError(
                403, "capability_expired", f"the capability expired at {cap.expires}"
            )
        if op is None or not cap.permits(op, target):
            raise NodeHTTPError(
                403, "capability_denied", "the capability does not allow this request"
            )
        grant_id = bytes.fromhex(cap.grant)
        notice = revocation_name(grant_id)
        # After a revocation only the notice itself stays readable (and its folder listable),
        # so that the reader learns why.
        exempt = target == notice or (
            op == "list" and target.startswith(grant_object_prefix(grant_id))
        )
        if not exempt and await self._revoked(cap.account, grant_id):
            raise NodeHTTPError(403, "capability_revoked", "the owner revoked this grant")
        return cap.account

    async def _revoked(self, owner: str, grant_id: bytes) -> bool:
        """Whether the owner's account holds a revocation notice of the grant that verifies."""
        account = await self.store.get(owner, create=False)
        if account is None:
            return False
        try:
            data = await account.provider.get(revocation_name(grant_id))
        except ObjectNotFoundError:
            return False
        try:
            decode_revocation(owner, grant_id, data)
        except (FormatError, IntegrityError):
            return False
        return True

    @staticmethod
    def _raw_name(request: Request) -> str:
        # From the decoded path itself, not the route's match: the router's pattern ends
        # in "$", which matches before a final newline, so "abc%0A" would route as "abc".
        return str(request.scope["path"])[len(OBJECTS_PATH) + 1 :]

    @classmethod
    def _name(cls, request: Request) -> str:
        name = cls._raw_name(request)
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

    async def _body(self, request: Request, limit: int) -> AsyncIterator[bytes]:
        """The request body as it arrives: each chunk within ``idle_timeout`` (else 408),
        at most ``limit`` bytes in all (else 413), a vanished client a quiet 400."""
        stream = request.stream()
        size = 0
        while True:
            try:
                async with asyncio.timeout(self.config.idle_timeout):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise NodeHTTPError(
                    408, ErrorCode.TIMEOUT, "the request body stalled; send it again"
                ) from None
            except ClientDisconnect:
                raise NodeHTTPError(
                    400, ErrorCode.BAD_REQUEST, "the client went away mid-body"
                ) from None
            size += len(chunk)
            if size > limit:
                raise NodeHTTPError(413, ErrorCode.TOO_LARGE, f"at most {limit} bytes here")
            yield chunk

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
        info = NodeInfo(
            node_id=self.node_id,
            jurisdiction=self.config.jurisdiction,
            free_bytes=free,
            quota_bytes=self.config.quota_per_account,
            used_bytes=account.used if account else 0,
            max_object_bytes=self.config.max_object_size,
        )
        return Response(encode_info(info), media_type="application/json")

    async def list_objects(self, request: Request) -> Response:
        prefix = request.query_params.get("prefix", "")
        account = await self._account(request, create=False, op="list", target=prefix)
        after = request.query_params.get("after", "")
        try:
            validate_prefix(prefix)
        except UsageError as exc:
            raise NodeHTTPError(400, "bad_name", exc.message) from None
        limit = self._int_param(request, "limit", MAX_LIST_PAGE) or MAX_LIST_PAGE
        limit = min(limit, MAX_LIST_PAGE)
        items: list[ObjectInfo] = []
        more = False
        if account is not None:
            names, more = self.store.page(account, prefix, after, limit)
            items = await asyncio.to_thread(self.store.sizes, account, names)
        return Response(encode_listing(items, more), media_type="application/json")

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
        digest = BodyDigest(request.state.message)
        limit = self.config.max_object_size
        try:
            await self.store.put_stream(
                account,
                name,
                self._body(request, limit),
                max_size=limit,
                budget=self.budget,
                digest=digest.update,
                digest_ok=digest.matches,
                declared=declared,
            )
        except ObjectTooLarge as exc:
            raise NodeHTTPError(413, ErrorCode.TOO_LARGE, str(exc)) from None
        except QuotaExceeded as exc:
            raise NodeHTTPError(507, ErrorCode.QUOTA_EXCEEDED, str(exc)) from None
        except UploadBudgetExceeded as exc:
            raise NodeHTTPError(503, ErrorCode.BUSY, str(exc)) from None
        except DigestMismatch as exc:
            raise NodeHTTPError(400, ErrorCode.DIGEST_MISMATCH, str(exc)) from None
        except ObjectExistsError:
            raise NodeHTTPError(409, "object_exists", f"object exists: {name}") from None
        return Response(status_code=201)

    async def get(self, request: Request) -> Response:
        account = await self._account(
            request, create=False, op="get", target=self._raw_name(request)
        )
        name = self._name(request)
        offset = self._int_param(request, "offset", 0) or 0
        length = self._int_param(request, "length", None)
        if offset > MAX_RANGE or (length is not None and length > MAX_RANGE):
            raise NodeHTTPError(
                400, ErrorCode.BAD_REQUEST, f"offset and length are at most {MAX_RANGE}"
            )
        if account is None:
            raise NodeHTTPError(404, "object_not_found", f"object not found: {name}")
        if "hang-reads" in self.config.chaos:
            await asyncio.sleep(3600)
        size = (await account.provider.stat(name)).size
        # Past the end reads as empty (the Provider contract); never ask the disk for more
        # than the object holds.
        length = max(0, size - offset) if length is None else min(length, max(0, size - offset))
        data = await account.provider.get(name, offset, length) if length else b""
        if self.config.drop_fraction:
            data = await drop_blocks(account, name, offset, data, self.config.drop_fraction)
        digest = _digest(data)
        if "corrupt-reads" in self.config.chaos and data:
            data = bytes([data[0] ^ 0x01]) + data[1:]
            digest = _digest(data)
        if "bad-digest" in self.config.chaos:
            digest = _digest(data + b"x")
        return Response(
            data, media_type="application/octet-stream", headers={"content-digest": digest}
        )

    async def audit(self, request: Request) -> Response:
        """``POST /v1/audit``: a block and its Merkle path for each challenged share block."""
        account = await self._account(request, create=False)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_AUDIT_BODY:
                raise NodeHTTPError(
                    413, "too_large", f"audit requests are at most {MAX_AUDIT_BODY} bytes"
                )
            chunks.append(chunk)
        body = b"".join(chunks)
        if not self.auth.check_body(request.state.message, body):
            raise NodeHTTPError(400, "digest_mismatch", "body does not match its Content-Digest")
        try:
            challenges = decode_challenges(body)
        except FormatError as exc:
            raise NodeHTTPError(400, "bad_request", exc.message) from None
        except UsageError as exc:
            raise NodeHTTPError(400, "bad_name", exc.message) from None
        answers = await answer_challenges(
            account,
            challenges,
            lie="lie-audits" in self.config.chaos,
            drop_fraction=self.config.drop_fraction,
        )
        data = encode_answers(answers)
        return Response(
            data, media_type="application/octet-stream", headers={"content-digest": _digest(data)}
        )

    async def head(self, request: Request) -> Response:
        account = await self._account(
            request, create=False, op="stat", target=self._raw_name(request)
        )
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
        return error_response(exc, request.method)

    async def on_provider_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderError)
        return await self.on_node_error(request, from_provider_error(exc))

    async def on_not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        code = "method_not_allowed" if status == 405 else "not_found"
        return await self.on_node_error(request, NodeHTTPError(status, code, "no such endpoint"))

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(self.store.scan)
        yield

    def asgi(self) -> ASGIApp:
        """The routes inside the framing guard (smuggling) inside the metrics middleware."""
        return self.metrics.middleware(framing_guard(self.build()))

    def build(self) -> Starlette:
        app = Starlette(
            routes=[
                Route(HEALTH_PATH, self.healthz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route(INFO_PATH, self.info, methods=["GET"]),
                Route(OBJECTS_PATH, self.list_objects, methods=["GET"]),
                Route(AUDIT_PATH, self.audit, methods=["POST"]),
                Route(
                    OBJECTS_PATH + "/{name:path}",
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
    """The node as an ASGI app: the Starlette routes inside the framing guard and metrics."""
    return NodeApp(config).asgi()
