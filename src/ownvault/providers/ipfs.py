"""What the IPFS providers share: objects as UnixFS DAGs, verified block reads, HTTP transport.

An object (a share, a locator, ...) is stored as a UnixFS file DAG built by
:mod:`ownvault.core.unixfs` with the ``unixfs-v1-2025`` profile: CIDv1, raw leaves of 1 MiB,
up to 1024 links per node. An object of at most 1 MiB is therefore one raw block (its CID is
``bafkrei...``); a 16 MiB share is 16 raw leaves under one dag-pb root. No block exceeds
1 MiB, within Kubo's ``block/put`` limit (1 MiB) and bitswap's (2 MiB), and the root is an
ordinary UnixFS file that any gateway serves (``/ipfs/ROOT``, with ``Range``).

Reads are *trustless*: every block, from the RPC API or from any gateway, is re-hashed against
the CID that asked for it before a single byte is used (:func:`fetch_verified`); a block that
does not match is a :class:`~ownvault.errors.ShareCorruptError` naming the provider and the
object. Ranged reads fetch only the leaves under the range (:func:`read_range`), checking the
UnixFS sizes on the way (a lying ``blocksizes`` list is corruption too).

Which name maps to which root CID is each provider's business: Kubo keeps it in MFS
(:mod:`ownvault.providers.ipfs_kubo`), a pinning service in the pins' ``name`` and ``meta``
(:mod:`ownvault.providers.ipfs_pinning`). See ``docs/design.md``, "IPFS providers".
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from ownvault.core.car import encode_header, encode_section
from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.dagpb import (
    MAX_BLOCK_SIZE,
    UNIXFS_FILE,
    UNIXFS_RAW,
    decode_node,
    decode_unixfs,
)
from ownvault.core.unixfs import ImportProfile, get_profile, import_bytes
from ownvault.errors import (
    FormatError,
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    StorageFullError,
    UsageError,
)

__all__ = [
    "MAX_DAG_DEPTH",
    "OBJECT_PROFILE",
    "BlockGetter",
    "DagPinner",
    "EncodedObject",
    "HttpTransport",
    "KuboRpc",
    "PinState",
    "PinStatus",
    "encode_object",
    "fetch_verified",
    "read_range",
    "token_from_env",
]

OBJECT_PROFILE: ImportProfile = get_profile("unixfs-v1-2025")
"""How objects become DAGs: 1 MiB raw leaves, 1024 links, CIDv1 (Helia's and IPIP-499's)."""

MAX_DAG_DEPTH = 4  # 1024**3 MiB under a root: far beyond any share; deeper DAGs are refused
MAX_JSON_RESPONSE = 64 * 1024 * 1024
_FETCH_CONCURRENCY = 8

PinState = Literal["queued", "pinning", "pinned", "failed"]
PIN_STATES: tuple[PinState, ...] = ("queued", "pinning", "pinned", "failed")


@dataclass(frozen=True, slots=True)
class PinStatus:
    """Where one CID is pinned and how far (the Pinning Service API's ``PinStatus``)."""

    provider: str
    cid: CID
    state: PinState
    name: str | None = None
    requestid: str | None = None
    created: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.state not in PIN_STATES:
            raise FormatError(f"unknown pin status {self.state!r}")


@runtime_checkable
class DagPinner(Protocol):
    """An IPFS provider that can also take in a whole DAG and pin it (for publishing)."""

    async def import_blocks(self, root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> int: ...

    async def pin(self, root: CID, name: str) -> PinStatus: ...

    async def pin_status(self, cid: CID) -> PinStatus | None: ...

    async def unpin(self, cid: CID) -> None: ...

    def pins(self) -> AsyncIterator[PinStatus]: ...


def token_from_env(var: str | None, what: str) -> str | None:
    """The secret held in environment variable ``var`` (never stored in the catalog)."""
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise ProviderPermanentError(f"{what}: environment variable {var} is not set")
    return value.strip()


# -- objects as UnixFS DAGs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EncodedObject:
    root: CID
    size: int
    blocks: tuple[tuple[CID, bytes], ...] = field(repr=False)


def encode_object(data: bytes, profile: ImportProfile = OBJECT_PROFILE) -> EncodedObject:
    """The blocks of ``data`` as a UnixFS file (leaves first, the root last)."""
    blocks: list[tuple[CID, bytes]] = []
    root = import_bytes(data, profile, lambda cid, block: blocks.append((cid, block)))
    unique: dict[CID, bytes] = {}
    for cid, block in blocks:
        unique.setdefault(cid, block)
    return EncodedObject(root.cid, root.size, tuple(unique.items()))


BlockGetter = Callable[[CID], Awaitable[bytes]]
"""Fetch a block by CID, *unverified* (raises ObjectNotFoundError / ProviderError)."""


async def fetch_verified(
    sources: Sequence[BlockGetter], cid: CID, *, provider: str, name: str
) -> bytes:
    """The block ``cid`` from the first source that returns the right bytes.

    Every block is re-hashed against ``cid``. A wrong block from one source is skipped when
    another has the right one; when none does, the worst finding wins: corruption, then
    unavailability, then "not found".
    """
    errors: list[ProviderError | IntegrityError] = []
    for get in sources:
        try:
            block = await get(cid)
        except (ProviderError, IntegrityError) as exc:
            errors.append(exc)
            continue
        if len(block) > MAX_BLOCK_SIZE:
            errors.append(
                ShareCorruptError(
                    f"block {cid} of {name} is over {MAX_BLOCK_SIZE} bytes",
                    provider=provider,
                    share=name,
                )
            )
            continue
        if cid.verify(block):
            return block
        errors.append(
            ShareCorruptError(
                f"block {cid} of {name} from {provider} does not match its CID",
                provider=provider,
                share=name,
            )
        )
    for kind in (IntegrityError, ProviderUnavailableError, ProviderPermanentError):
        for err in errors:
            if isinstance(err, kind):
                raise err
    if errors:
        raise errors[0]
    raise ObjectNotFoundError(f"no source for block {cid}", provider=provider, share=name)


def _corrupt(msg: str, provider: str, name: str) -> ShareCorruptError:
    return ShareCorruptError(f"{name}: {msg}", provider=provider, share=name)


async def read_range(
    get: Callable[[CID], Awaitable[bytes]],
    root: CID,
    offset: int,
    length: int | None,
    *,
    provider: str,
    name: str,
) -> bytes:
    """Bytes ``[offset, offset+length)`` of the UnixFS file (or raw block) ``root``.

    ``get`` returns *verified* blocks. Only the blocks under the range are fetched.
    """
    if offset < 0 or (length is not None and length < 0):
        raise UsageError("negative range")
    sem = asyncio.Semaphore(_FETCH_CONCURRENCY)

    async def load(cid: CID) -> bytes:
        async with sem:
            return await get(cid)

    async def node(cid: CID, expect: int | None, lo: int, hi: int | None, depth: int) -> bytes:
        block = await load(cid)
        if cid.codec == RAW:
            if expect is not None and len(block) != expect:
                raise _corrupt(f"leaf {cid} is {len(block)} bytes, not {expect}", provider, name)
            return block[lo:hi]
        if cid.codec != DAG_PB:
            raise _corrupt(f"block {cid} is neither raw nor dag-pb", provider, name)
        try:
            pb = decode_node(block)
            fs = decode_unixfs(pb.data or b"")
        except FormatError as exc:
            raise _corrupt(f"malformed UnixFS node {cid}: {exc}", provider, name) from exc
        if fs.type not in (UNIXFS_FILE, UNIXFS_RAW):
            raise _corrupt(f"root {cid} is not a UnixFS file", provider, name)
        inline = fs.data or b""
        if len(fs.blocksizes) != len(pb.links):
            raise _corrupt(
                f"node {cid} has {len(pb.links)} links, {len(fs.blocksizes)} sizes", provider, name
            )
        total = len(inline) + sum(fs.blocksizes)
        if (fs.filesize is not None and fs.filesize != total) or (
            expect is not None and total != expect
        ):
            raise _corrupt(f"node {cid} sizes do not add up", provider, name)
        if pb.links and depth >= MAX_DAG_DEPTH:
            raise _corrupt(f"DAG deeper than {MAX_DAG_DEPTH}", provider, name)
        end = total if hi is None else min(hi, total)
        if lo >= end:
            return b""
        parts: list[Awaitable[bytes]] = []
        if lo < len(inline):
            parts.append(_const(inline[lo:end]))
        pos = len(inline)
        for link, size in zip(pb.links, fs.blocksizes, strict=True):
            a, b = max(lo, pos), min(end, pos + size)
            if a < b:
                parts.append(node(link.cid, size, a - pos, b - pos, depth + 1))
            pos += size
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(_await(p)) for p in parts]
        return b"".join(t.result() for t in tasks)

    hi = None if length is None else offset + length
    if length == 0:
        return b""
    try:
        return await node(root, None, offset, hi, 0)
    except BaseExceptionGroup as group:  # TaskGroup: surface the first real error
        raise _first(group) from None


async def _const(b: bytes) -> bytes:
    return b


async def _await(a: Awaitable[bytes]) -> bytes:
    return await a


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        return exc
    return group


def car_stream(root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> AsyncIterator[bytes]:
    """A CARv1 with one root, streamed from ``blocks`` (duplicates dropped)."""

    async def gen() -> AsyncIterator[bytes]:
        yield encode_header([root])
        seen: set[bytes] = set()
        async for cid, block in blocks:
            if cid.bytes in seen:
                continue
            seen.add(cid.bytes)
            yield encode_section(cid, block)

    return gen()


# -- HTTP --------------------------------------------------------------------------------------


class HttpTransport:
    """One ``httpx.AsyncClient`` per running event loop, closed with the loop or by ``aclose``.

    Providers may be used from several ``asyncio.run`` calls in turn (the CLI, the tests);
    a watcher task, cancelled when its loop shuts down, closes that loop's client.
    Transport failures (refused, reset, timeout) become ``ProviderUnavailableError``.
    """

    def __init__(self, label: str, *, timeout: float = 60.0, connect_timeout: float = 5.0) -> None:
        self.label = label
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._watchers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [old for old in self._clients if old.is_closed()]:
                self._clients.pop(old, None)
                self._watchers.pop(old, None)
            client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
            self._clients[loop] = client
            self._watchers[loop] = loop.create_task(self._watch(client))
        return client

    @staticmethod
    async def _watch(client: httpx.AsyncClient) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await client.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        limit: int,
        params: Mapping[str, str | Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        json_body: Any = None,
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body). Bodies over ``limit`` bytes are refused."""
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        elif content is not None:
            kwargs["content"] = content
        try:
            async with self.client().stream(method, url, **kwargs) as resp:
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise FormatError(f"response from {self.label} over {limit} bytes")
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise FormatError(f"response from {self.label} over {limit} bytes")
                return resp.status_code, bytes(body)
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                f"{self.label} unreachable: {type(exc).__name__}: {exc}", provider=self.label
            ) from exc

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for other in list(self._clients):
            client = self._clients.pop(other)
            watcher = self._watchers.pop(other, None)
            if other is loop:
                if watcher is not None:
                    watcher.cancel()
                await client.aclose()


def parse_json(body: bytes, label: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ProviderPermanentError(f"{label} sent malformed JSON", provider=label) from exc


def ndjson(body: bytes, label: str) -> list[Any]:
    return [parse_json(line, label) for line in body.splitlines() if line.strip()]


# -- the Kubo RPC API --------------------------------------------------------------------------

_MULTIPART_BOUNDARY = "ownvault-ipfs-upload-boundary-7f3a9c"


class KuboRpc:
    """A client of the Kubo RPC API (``POST /api/v0/<command>``), with errors classified.

    Kubo answers most command errors with HTTP 500 and ``{"Message": ...}``; the messages it
    uses for a missing MFS path and an existing entry are recognised, other 500s are
    retryable. Also a trustless-gateway block source (``GET /ipfs/CID?format=raw``).
    """

    def __init__(
        self, base: str, http: HttpTransport, *, token: str | None = None, label: str
    ) -> None:
        self.base = base.rstrip("/")
        self.http = http
        self.label = label
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self,
        command: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        *,
        content: bytes | AsyncIterator[bytes] | None = None,
        limit: int = MAX_JSON_RESPONSE,
        name: str | None = None,
    ) -> bytes:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = f"multipart/form-data; boundary={_MULTIPART_BOUNDARY}"
            content = _multipart(content)
        status, body = await self.http.request(
            "POST",
            f"{self.base}/api/v0/{command}",
            params=params,
            headers=headers,
            content=content,
            limit=limit,
        )
        if status == 200:
            return body
        raise self._classify(command, status, body, name)

    async def call_json(
        self,
        command: str,
        params: Mapping[str, str | Sequence[str]] | None = None,
        *,
        content: bytes | AsyncIterator[bytes] | None = None,
        name: str | None = None,
    ) -> Any:
        return parse_json(await self.call(command, params, content=content, name=name), self.label)

    def _classify(self, command: str, status: int, body: bytes, name: str | None) -> ProviderError:
        try:
            message = str(json.loads(body).get("Message", ""))[:300]
        except (ValueError, AttributeError):
            message = body[:200].decode("utf-8", "replace")
        text = f"{self.label} {command}: HTTP {status}: {message}"
        low = message.lower()
        if status in (401, 403):
            return ProviderPermanentError(text, provider=self.label, share=name)
        if "file does not exist" in low or "not found" in low or "no link named" in low:
            return ObjectNotFoundError(text, provider=self.label, share=name)
        if "already has entry" in low or "already exists" in low:
            return ObjectExistsError(text, provider=self.label, share=name)
        if "no space left" in low or "storage limit" in low or status == 507:
            return StorageFullError(text, provider=self.label, share=name)
        if status == 404:  # an unknown command: this node does not speak what we need
            return ProviderPermanentError(text, provider=self.label, share=name)
        if status in (400, 405, 413):
            return ProviderPermanentError(text, provider=self.label, share=name)
        return ProviderUnavailableError(text, provider=self.label, share=name)

    async def block_put(self, cid: CID, block: bytes) -> None:
        """Store one block; the node must name it as we do (else it is misbehaving)."""
        reply = await self.call_json(
            "block/put",
            {"cid-codec": cid.codec_name, "mhtype": "sha2-256", "cid-version": "1"},
            content=block,
        )
        if not isinstance(reply, dict) or _parse_cid(reply.get("Key")) != cid.to_v1():
            raise ProviderPermanentError(
                f"{self.label} stored block {cid} under another CID: {reply!r:.120}",
                provider=self.label,
            )

    async def put_blocks(self, blocks: Sequence[tuple[CID, bytes]]) -> None:
        sem = asyncio.Semaphore(4)

        async def one(cid: CID, block: bytes) -> None:
            async with sem:
                await self.block_put(cid, block)

        try:
            async with asyncio.TaskGroup() as tg:
                for cid, block in blocks:
                    tg.create_task(one(cid, block))
        except BaseExceptionGroup as group:
            raise _first(group) from None

    async def block_get(self, cid: CID) -> bytes:
        # offline: a block the node lost is "not found locally" at once, not searched for on
        # the network until the request times out (Kubo's root option, honoured by block/get)
        return await self.call(
            "block/get",
            {"arg": str(cid), "offline": "true"},
            limit=MAX_BLOCK_SIZE + 1,
            name=str(cid),
        )

    async def import_pinned(
        self, root: CID, blocks: Sequence[tuple[CID, bytes]], *, name: str | None = None
    ) -> None:
        """Import ``blocks`` as one CAR and pin ``root`` (recursively) in the same command."""

        async def gen() -> AsyncIterator[tuple[CID, bytes]]:
            for item in blocks:
                yield item

        body = await self.call(
            "dag/import", {"pin-roots": "true"}, content=car_stream(root, gen()), name=name
        )
        for doc in ndjson(body, self.label):
            rec = doc.get("Root") if isinstance(doc, dict) else None
            if isinstance(rec, dict) and rec.get("PinErrorMsg"):
                raise ProviderUnavailableError(
                    f"{self.label}: pinning {root} failed: {str(rec['PinErrorMsg'])[:200]}",
                    provider=self.label,
                    share=name,
                )
            if isinstance(rec, dict) and _parse_cid(rec.get("Cid")) not in (None, root.to_v1()):
                raise ProviderPermanentError(
                    f"{self.label} imported another root than {root}", provider=self.label
                )

    async def dag_import(self, root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> int:
        """Stream a CAR of ``blocks`` into the node (not pinned); return the blocks sent."""
        count = 0

        async def counted() -> AsyncIterator[tuple[CID, bytes]]:
            nonlocal count
            async for item in blocks:
                count += 1
                yield item

        await self.call("dag/import", {"pin-roots": "false"}, content=car_stream(root, counted()))
        return count


def gateway_getter(gateway: str, http: HttpTransport) -> BlockGetter:
    """A trustless gateway as a block source: ``GET /ipfs/CID?format=raw``."""
    base = gateway.rstrip("/")

    async def get(cid: CID) -> bytes:
        status, body = await http.request(
            "GET",
            f"{base}/ipfs/{cid}",
            params={"format": "raw"},
            headers={"Accept": "application/vnd.ipld.raw"},
            limit=MAX_BLOCK_SIZE + 1,
        )
        if status == 200:
            return body
        text = f"gateway {base}: HTTP {status} for {cid}"
        if status in (404, 410):
            raise ObjectNotFoundError(text, provider=http.label)
        if status in (400, 401, 403, 405, 406, 501):
            raise ProviderPermanentError(text, provider=http.label)
        raise ProviderUnavailableError(text, provider=http.label)

    return get


def _parse_cid(value: object) -> CID | None:
    if isinstance(value, dict):
        value = value.get("/")
    if not isinstance(value, str):
        return None
    try:
        return CID.parse(value).to_v1()
    except FormatError:
        return None


def parse_cid(value: object, label: str) -> CID:
    cid = _parse_cid(value)
    if cid is None:
        raise ProviderPermanentError(f"{label} sent an invalid CID: {value!r:.80}", provider=label)
    return cid


async def _multipart(content: bytes | AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """One ``file`` part around ``content`` (Kubo's RPC takes uploads only as multipart)."""
    yield (
        f"--{_MULTIPART_BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="data"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    if isinstance(content, bytes):
        yield content
    else:
        async for chunk in content:
            yield chunk
    yield f"\r\n--{_MULTIPART_BOUNDARY}--\r\n".encode()
