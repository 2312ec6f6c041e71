"""The ownvault storage node: an ASGI app (Starlette on uvicorn) holding opaque shares.

The protocol is specified in docs/node-protocol.md. Accounts are ``did:key`` identities;
every ``/v1/`` request is authenticated by :mod:`ownvault.server.node_auth`, and each
account's objects live in their own :class:`~ownvault.providers.local.LocalProvider`
folder (:mod:`ownvault.server.node_store`), so one account can never name another's
objects. The node never sees plaintext, file names or keys: only share names chosen by
the client, share bytes, and sizes.

``POST /v1/audit`` answers storage audits: for each challenged (share, block) the node
reads the block and the Merkle leaf level stored with the share (``core.pack``) and sends
the block with its path (``core.proofs``), so a proof costs a few KB whatever the share
size. Chaos modes ``drop-blocks=F`` and ``lie-audits`` make a node misbehave for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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

from ownvault.core import crypto
from ownvault.core.capability import ReadCapability
from ownvault.core.grants import decode_revocation, grant_object_prefix, revocation_name
from ownvault.core.keys import ed25519_from_did_key
from ownvault.core.merkle import BLOCK_SIZE, proof_from_leaves
from ownvault.core.pack import TRAILER_SIZE, ShareLayout
from ownvault.core.proofs import (
    MAX_CHALLENGES,
    STATUS_BAD_SHARE,
    STATUS_NOT_FOUND,
    STATUS_OK,
    STATUS_OUT_OF_RANGE,
    Answer,
    encode_answers,
)
from ownvault.errors import (
    FormatError,
    IntegrityError,
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

__all__ = ["CHAOS_MODES", "NodeConfig", "chaos_dropped", "create_app", "parse_allowlist", "serve"]

CHAOS_MODES = frozenset(
    {"corrupt-reads", "bad-digest", "hang-reads", "fail-writes", "drop-blocks", "lie-audits"}
)
MAX_AUDIT_BODY = 128 * 1024
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
        unknown = {m.split("=", 1)[0] for m in self.chaos} - CHAOS_MODES
        if unknown:
            raise UsageError(f"unknown chaos mode(s): {sorted(unknown)}")
        for mode in self.chaos:
            name, sep, value = mode.partition("=")
            if (name == "drop-blocks") != bool(sep):
                raise UsageError(
                    f"chaos mode {mode!r}: only drop-blocks takes a value (drop-blocks=0.1)"
                )
            if sep:
                try:
                    fraction = float(value)
                except ValueError:
                    fraction = -1.0
                if not 0 < fraction <= 1:
                    raise UsageError("drop-blocks wants a fraction in (0, 1], e.g. drop-blocks=0.1")

    @property
    def drop_fraction(self) -> float:
        """The fraction of blocks a ``drop-blocks=F`` chaos node pretends to have lost (else 0)."""
        for mode in self.chaos:
            if mode.startswith("drop-blocks="):
                return float(mode.partition("=")[2])
        return 0.0


def chaos_dropped(name: str, index: int, fraction: float) -> bool:
    """Whether a ``drop-blocks=fraction`` node has "lost" block ``index`` of object ``name``.

    Deterministic (tests recompute it): BLAKE3 of the name and index, read as a number in
    [0, 1), below the fraction.
    """
    if fraction <= 0:
        return False
    h = crypto.blake3_hash(
        b"ownvault-chaos-drop\0" + name.encode() + b"\0" + index.to_bytes(8, "big")
    )
    return int.from_bytes(h[:8], "big") < fraction * 2**64


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
        return str(request.path_params["name"])

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
        prefix = request.query_params.get("prefix", "")
        account = await self._account(request, create=False, op="list", target=prefix)
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
        account = await self._account(
            request, create=False, op="get", target=self._raw_name(request)
        )
        name = self._name(request)
        offset = self._int_param(request, "offset", 0) or 0
        length = self._int_param(request, "length", None)
        if account is None:
            raise NodeHTTPError(404, "object_not_found", f"object not found: {name}")
        if "hang-reads" in self.config.chaos:
            await asyncio.sleep(3600)
        data = await account.provider.get(name, offset, length)
        if self.config.drop_fraction:
            data = await self._drop_blocks(account, name, offset, data)
        digest = _digest(data)
        if "corrupt-reads" in self.config.chaos and data:
            data = bytes([data[0] ^ 0x01]) + data[1:]
            digest = _digest(data)
        if "bad-digest" in self.config.chaos:
            digest = _digest(data + b"x")
        return Response(
            data, media_type="application/octet-stream", headers={"content-digest": digest}
        )

    async def _layout(self, account: Account, name: str) -> ShareLayout | None:
        """The share layout of a stored object, from its size and trailer (None: not a share)."""
        size = (await account.provider.stat(name)).size
        if size < TRAILER_SIZE:
            return None
        try:
            layout = ShareLayout.from_trailer(await account.provider.get(name, size - TRAILER_SIZE))
        except FormatError:
            return None
        return layout if layout.total == size else None

    async def _drop_blocks(self, account: Account, name: str, offset: int, data: bytes) -> bytes:
        """Chaos ``drop-blocks``: the bytes of "lost" blocks read as 0xA5."""
        layout = await self._layout(account, name)
        if layout is None or not data:
            return data
        out = bytearray(data)
        end = min(offset + len(data), layout.data_len)
        first = offset // BLOCK_SIZE
        for index in range(first, -(-end // BLOCK_SIZE) if end > offset else first):
            if chaos_dropped(name, index, self.config.drop_fraction):
                start, length = layout.block_range(index)
                lo, hi = max(start, offset), min(start + length, offset + len(data))
                out[lo - offset : hi - offset] = b"\xa5" * (hi - lo)
        return bytes(out)

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
        challenges = self._challenges(body)
        cache: dict[str, tuple[ShareLayout, list[bytes]] | int] = {}
        answers = []
        for name, index in challenges:
            answers.append(await self._answer(account, name, index, cache))
        data = encode_answers(answers)
        return Response(
            data, media_type="application/octet-stream", headers={"content-digest": _digest(data)}
        )

    @staticmethod
    def _challenges(body: bytes) -> list[tuple[str, int]]:
        try:
            doc = json.loads(body)
            items = doc["challenges"]
            if not isinstance(items, list) or not 1 <= len(items) <= MAX_CHALLENGES:
                raise ValueError
            out = []
            for item in items:
                name, block = item["name"], item["block"]
                if (
                    not isinstance(name, str)
                    or not isinstance(block, int)
                    or isinstance(block, bool)
                ):
                    raise ValueError
                if not 0 <= block < 2**40:
                    raise ValueError
                out.append((name, block))
        except (ValueError, KeyError, TypeError):
            raise NodeHTTPError(
                400,
                "bad_request",
                f'audit body must be {{"challenges": [{{"name": NAME, "block": INDEX}}, ...]}} with 1..{MAX_CHALLENGES} entries',
            ) from None
        for name, _block in out:
            try:
                validate_name(name)
            except UsageError as exc:
                raise NodeHTTPError(400, "bad_name", exc.message) from None
        return out

    async def _answer(
        self,
        account: Account | None,
        name: str,
        index: int,
        cache: dict[str, tuple[ShareLayout, list[bytes]] | int],
    ) -> Answer:
        if name not in cache:
            if account is None:
                cache[name] = STATUS_NOT_FOUND
            else:
                try:
                    layout = await self._layout(account, name)
                except ObjectNotFoundError:
                    layout = None
                    cache[name] = STATUS_NOT_FOUND
                if layout is not None:
                    raw = await account.provider.get(name, layout.leaves_offset, layout.leaves_len)
                    leaves = [raw[i : i + 32] for i in range(0, len(raw), 32)]
                    cache[name] = (layout, leaves)
                elif name not in cache:
                    cache[name] = STATUS_BAD_SHARE
        entry = cache[name]
        if isinstance(entry, int):
            return Answer(entry)
        layout, leaves = entry
        if not 0 <= index < layout.blocks:
            return Answer(STATUS_OUT_OF_RANGE)
        assert account is not None
        start, length = layout.block_range(index)
        block = await account.provider.get(name, start, length)
        path = tuple(proof_from_leaves(leaves, index))
        if "lie-audits" in self.config.chaos or chaos_dropped(
            name, index, self.config.drop_fraction
        ):
            # A node without the block: well-formed, plausible, wrong.
            block = crypto.random_bytes(len(block))
        return Answer(STATUS_OK, block, path)

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
                Route("/v1/audit", self.audit, methods=["POST"]),
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
