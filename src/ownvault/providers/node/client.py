"""A provider on an ownvault storage node, over HTTP (protocol: docs/node-protocol.md).

Every request is signed with HTTP Message Signatures (RFC 9421) by the account's Ed25519
key; the key id is the account's ``did:key``. The signature covers the method, authority,
path, query, the node's id (``ownvault-node``, learnt from ``/healthz``, so a request
captured by one node cannot be replayed to another) and a ``content-digest`` (RFC 9530)
of the body (of the empty body for requests without one), and carries ``created``, a
random ``nonce`` and the tag ``ownvault-node/1``. The ``http-message-signatures`` package
builds and parses the signature fields; the Ed25519 operations themselves go through
:mod:`ownvault.core.crypto` (the signer) so that no key material enters that package.

The node is untrusted: response sizes are bounded, the ``content-digest`` of every object
body is re-checked (a mismatch is :class:`~ownvault.errors.ShareCorruptError`), listings
are validated (names, order, prefix), and HTTP failures are classified into the error
tree so that :mod:`ownvault.providers.wrappers` can retry only what is worth retrying.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import datetime
import hashlib
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import httpx
from http_message_signatures import HTTPMessageSigner, InvalidSignature
from http_message_signatures.digests import ContentDigest
from http_sf.compat import Dictionary

from ownvault.core import crypto
from ownvault.core.capability import CAPABILITY_HEADER
from ownvault.core.keys import did_key_from_ed25519, ed25519_from_did_key
from ownvault.core.merkle import BLOCK_SIZE, HASH_SIZE, MAX_DEPTH
from ownvault.core.proofs import MAX_CHALLENGES, Answer, decode_answers
from ownvault.errors import (
    FormatError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    UsageError,
)
from ownvault.providers.base import (
    ObjectInfo,
    ProviderInfo,
    PutData,
    as_parts,
    validate_name,
    validate_prefix,
)
from ownvault.providers.httpstatus import error_for_status
from ownvault.providers.loopclients import LoopClients
from ownvault.providers.node.protocol import (
    AUDIT_PATH,
    COVERED_COMPONENTS,
    ERROR_HEADER,
    HEALTH_PATH,
    INFO_PATH,
    MAX_JSON_RESPONSE,
    MAX_LIST_PAGE,
    NODE_HEADER,
    OBJECTS_PATH,
    PROTOCOL,
    SIGNATURE_LABEL,
    DidKeyEd25519,
    ErrorCode,
    NodeInfo,
    decode_error,
    decode_info,
    decode_listing,
    encode_challenges,
    load_json,
    object_path,
)

__all__ = ["NodeInfo", "NodeProvider", "SeedSigner", "Signer", "classify", "sign_request"]

DEFAULT_MAX_RESPONSE = 256 * 1024 * 1024
UPLOAD_CHUNK = 1024 * 1024  # the most of an upload handed to the HTTP layer at once


class Signer(Protocol):
    """An account key: ``VaultKeys`` is one. ``sign`` makes a raw 64-byte Ed25519 signature."""

    @property
    def did(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


class SeedSigner:
    """A :class:`Signer` from a bare 32-byte Ed25519 seed (tests, benchmarks, node tools)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise UsageError("an Ed25519 seed is 32 bytes")
        self._seed = seed
        self.did = did_key_from_ed25519(crypto.ed25519_public(seed))

    @classmethod
    def generate(cls) -> SeedSigner:
        return cls(crypto.random_bytes(32))

    def sign(self, message: bytes) -> bytes:
        return crypto.ed25519_sign(self._seed, message)


_SIGNER = HTTPMessageSigner(signature_algorithm=DidKeyEd25519)


def sign_request(
    request: httpx.Request,
    signer: Signer,
    node_id: str,
    body: bytes | None,
    *,
    created: datetime.datetime | None = None,
    nonce: str | None = None,
    capability: str | None = None,
) -> None:
    """Add ``ownvault-node``, ``Content-Digest``, ``Signature-Input`` and ``Signature``.

    With ``capability`` (a read capability token), also ``ownvault-capability``, which
    the signature then covers. ``body=None``: the request carries its ``Content-Digest``
    already (a streamed body, :func:`content_digest`), and the signature covers that.
    """
    request.headers[NODE_HEADER] = node_id
    covered: tuple[str, ...] = COVERED_COMPONENTS
    if capability is not None:
        request.headers[CAPABILITY_HEADER] = capability
        covered = (*COVERED_COMPONENTS, CAPABILITY_HEADER)
    prepared = _SIGNER.prepare(
        request,
        key_id=signer.did,
        created=created or datetime.datetime.now(datetime.UTC),
        nonce=nonce or base64.urlsafe_b64encode(crypto.random_bytes(18)).decode(),
        label=SIGNATURE_LABEL,
        tag=PROTOCOL,
        include_alg=True,
        covered_component_ids=covered,
        body=body,
        use_existing_digest=body is None,
    )
    _SIGNER.apply(request, prepared, signer.sign(prepared.signature_base))


def content_digest(parts: Sequence[memoryview]) -> str:
    """The ``Content-Digest`` field (RFC 9530, SHA-256) of the body made of ``parts``,
    hashed part by part (the body is never joined)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return str(Dictionary({ContentDigest.algorithm: h.digest()}))


async def _stream(parts: Sequence[memoryview]) -> AsyncIterator[bytes]:
    # h11 joins what it is given into one ``bytes`` per write: handing it ``bytes`` makes
    # that copy here, where it is bounded by UPLOAD_CHUNK (its join of one ``bytes`` is free).
    for part in parts:
        for off in range(0, len(part), UPLOAD_CHUNK):
            yield bytes(part[off : off + UPLOAD_CHUNK])


def classify(status: int, code: str, message: str, label: str, name: str | None) -> ProviderError:
    """The error for a node's failed answer, from its status and stable error code."""
    return error_for_status(
        status,
        f"node {label}: {status} {code}: {message}"[:300],
        provider=label,
        share=name,
        not_found=(404,) if code in (ErrorCode.OBJECT_NOT_FOUND, "") else (),
        conflict=(409,) if code == ErrorCode.OBJECT_EXISTS else (),
        retryable=True if status == 400 and code == ErrorCode.DIGEST_MISMATCH else None,
    )


class NodeProvider:
    """Objects of one account (the signer's ``did:key``) on one storage node.

    With ``capability`` (a read capability the account's owner signed for the signer:
    ``core.capability``), the objects of the *owner's* account instead, read-only and only
    where the capability allows; the node refuses the rest (403).

    One ``httpx.AsyncClient`` is kept per running event loop; it is closed by
    :meth:`close`, or when its loop shuts down (a small watcher task is cancelled by
    ``asyncio.run`` and closes it), so the provider may be used from several
    ``asyncio.run`` calls in turn.
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE,
        list_page: int = MAX_LIST_PAGE,
        label: str | None = None,
        capability: str | None = None,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise UsageError(f"node URL must be http(s)://host[:port]: {url!r:.80}")
        ed25519_from_did_key(signer.did)
        self.url = str(parsed).rstrip("/")
        self._signer = signer
        self._capability = capability
        self._max_response = max_response_bytes
        if not 1 <= list_page <= MAX_LIST_PAGE:
            raise UsageError(f"list_page must be 1..{MAX_LIST_PAGE}")
        self._list_page = list_page
        self._label = label or self.url
        self._node_id: str | None = None
        self._clients = LoopClients(httpx.Timeout(timeout, connect=connect_timeout))

    @property
    def kind(self) -> str:
        return "node"

    @property
    def location(self) -> str:
        return self.url

    # -- transport -------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        return self._clients.get()

    async def _node(self) -> str:
        if self._node_id is None:
            status, _headers, body = await self._send("GET", HEALTH_PATH, b"", sign=False)
            if status != 200:
                raise classify(status, "", "healthz failed", self._label, None)
            doc = self._json(body)
            node_id = doc.get("node_id")
            if doc.get("protocol") != PROTOCOL or not isinstance(node_id, str):
                raise ProviderPermanentError(
                    f"node {self._label} does not speak {PROTOCOL}", provider=self._label
                )
            self._node_id = node_id
        return self._node_id

    async def _send(
        self,
        method: str,
        path: str,
        body: bytes | list[memoryview],
        *,
        params: dict[str, str] | None = None,
        sign: bool = True,
        limit: int = MAX_JSON_RESPONSE,
        name: str | None = None,
    ) -> tuple[int, httpx.Headers, bytes]:
        client = self._client()
        node_id = await self._node() if sign else ""
        headers: dict[str, str] | None = None
        content: bytes | AsyncIterator[bytes] | None = None
        if method in ("PUT", "POST"):
            kind = "application/octet-stream" if method == "PUT" else "application/json"
            headers = {"content-type": kind}
            if isinstance(body, bytes):
                content = body
            else:
                # A streamed body (an object's parts): size and digest are sent up front.
                headers["content-length"] = str(sum(len(p) for p in body))
                # SHA-256 releases the GIL: hashed in a thread, the loop goes on meanwhile.
                headers["content-digest"] = await asyncio.to_thread(content_digest, body)
                content = _stream(body)
        request = client.build_request(
            method, self.url + path, params=params, content=content, headers=headers
        )
        if sign:
            sign_request(
                request,
                self._signer,
                node_id,
                body if isinstance(body, bytes) else None,
                capability=self._capability,
            )
        try:
            response = await client.send(request, stream=True)
            try:
                declared = response.headers.get("content-length")
                # A HEAD's Content-Length is the object's size, not a body that follows.
                if (
                    method != "HEAD"
                    and declared is not None
                    and declared.isdigit()
                    and int(declared) > limit
                ):
                    raise ProviderPermanentError(
                        f"node {self._label}: response of {declared} bytes over limit {limit}",
                        provider=self._label,
                        share=name,
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > limit:
                        raise ProviderPermanentError(
                            f"node {self._label}: response over limit {limit}",
                            provider=self._label,
                            share=name,
                        )
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                f"node {self._label} unreachable: {type(exc).__name__}: {exc}"[:300],
                provider=self._label,
                share=name,
            ) from exc
        return response.status_code, response.headers, b"".join(chunks)

    def _json(self, body: bytes) -> dict[str, object]:
        try:
            return load_json(body, max_bytes=MAX_JSON_RESPONSE)
        except FormatError:
            raise ProviderPermanentError(
                f"node {self._label} sent a malformed JSON document", provider=self._label
            ) from None

    def _error(
        self, status: int, body: bytes, name: str | None, headers: httpx.Headers | None = None
    ) -> ProviderError:
        # A HEAD answer has no body: its code is in the ownvault-error header.
        header_code = headers.get(ERROR_HEADER, "") if headers is not None else ""
        code, message = decode_error(body, header_code)
        return classify(status, code, message, self._label, name)

    def _check_digest(self, headers: httpx.Headers, body: bytes, name: str) -> None:
        value = headers.get("content-digest")
        if value is None:
            raise ShareCorruptError(
                f"node {self._label} sent {name} without a content-digest",
                provider=self._label,
                share=name,
            )
        try:
            ContentDigest.verify(value, body)
        except InvalidSignature as exc:
            raise ShareCorruptError(
                f"node {self._label}: content-digest of {name} does not match its bytes",
                provider=self._label,
                share=name,
            ) from exc

    # -- the contract ----------------------------------------------------------------------

    async def put(self, name: str, data: PutData) -> None:
        validate_name(name)
        # Streamed from the parts (no join here; the HTTP layer copies at most
        # UPLOAD_CHUNK bytes at a time into what it sends).
        status, _h, body = await self._send("PUT", object_path(name), as_parts(data), name=name)
        if status != 201:
            raise self._error(status, body, name)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate_name(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        params = {"offset": str(offset)}
        if length is not None:
            params["length"] = str(length)
        limit = self._max_response if length is None else min(length, self._max_response)
        status, headers, body = await self._send(
            "GET", object_path(name), b"", params=params, limit=limit, name=name
        )
        if status != 200:
            raise self._error(status, body, name)
        self._check_digest(headers, body, name)
        return body

    async def stat(self, name: str) -> ObjectInfo:
        validate_name(name)
        status, headers, body = await self._send("HEAD", object_path(name), b"", name=name)
        if status != 200:
            raise self._error(status, body, name, headers)
        size = headers.get("content-length", "")
        if not size.isdigit():
            raise ProviderPermanentError(
                f"node {self._label}: stat of {name} without a size", provider=self._label
            )
        return ObjectInfo(name, int(size))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        after = ""
        while True:
            params = {"prefix": prefix, "limit": str(self._list_page)}
            if after:
                params["after"] = after
            status, _h, body = await self._send("GET", OBJECTS_PATH, b"", params=params)
            if status != 200:
                raise self._error(status, body, None)
            try:
                page = decode_listing(body, prefix=prefix, after=after, limit=self._list_page)
            except FormatError as exc:
                raise ProviderPermanentError(
                    f"node {self._label}: malformed listing ({exc.message})", provider=self._label
                ) from None
            for info in page.objects:
                after = info.name
                yield info
            if page.next is None:
                return

    async def delete(self, name: str) -> None:
        validate_name(name)
        status, _h, body = await self._send("DELETE", object_path(name), b"", name=name)
        if status != 204:
            raise self._error(status, body, name)

    async def prove(self, challenges: Sequence[tuple[str, int]]) -> Sequence[Answer]:
        """``POST /v1/audit``: the node's answer (block and Merkle path) to each challenge.

        Batches of at most ``MAX_CHALLENGES``. The answers are untrusted: the caller checks
        each against the share's recorded root (``core.merkle.verify_proof``).
        """
        out: builtins.list[Answer] = []
        for start in range(0, len(challenges), MAX_CHALLENGES):
            batch = challenges[start : start + MAX_CHALLENGES]
            for name, _block in batch:
                validate_name(name)
            body = encode_challenges(batch)
            limit = 7 + len(batch) * (6 + BLOCK_SIZE + MAX_DEPTH * HASH_SIZE)
            status, headers, answer = await self._send(
                "POST", AUDIT_PATH, body, limit=limit, name=batch[0][0]
            )
            if status != 200:
                raise self._error(status, answer, None)
            self._check_digest(headers, answer, "audit answer")
            try:
                out.extend(decode_answers(answer, len(batch)))
            except FormatError as exc:
                raise ShareCorruptError(
                    f"node {self._label}: malformed audit answer ({exc.message})",
                    provider=self._label,
                ) from None
        return out

    async def info(self) -> ProviderInfo:
        node = await self.node_info()
        return ProviderInfo("node", self.url, node.free_bytes)

    async def node_info(self) -> NodeInfo:
        """The node's ``/v1/info``: jurisdiction, free space, quota and usage, limits."""
        status, _h, body = await self._send("GET", INFO_PATH, b"")
        if status != 200:
            raise self._error(status, body, None)
        try:
            return decode_info(body)
        except FormatError:
            raise ProviderPermanentError(
                f"node {self._label} sent a malformed info document", provider=self._label
            ) from None

    async def close(self) -> None:
        await self._clients.aclose()
