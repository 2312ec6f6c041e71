"""The Kubo RPC API (``POST /api/v0/<command>``) and trustless gateways as block sources."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence

from ownvault.core.cid import CID
from ownvault.core.dagpb import MAX_BLOCK_SIZE
from ownvault.errors import (
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
)
from ownvault.providers.httpstatus import NOT_FOUND, error_for_status
from ownvault.providers.ipfs.objects import BlockGetter, car_stream, first_error
from ownvault.providers.ipfs.transport import (
    MAX_JSON_RESPONSE,
    HttpTransport,
    ndjson,
    parse_json,
    read_cid,
)

__all__ = ["KuboRpc", "gateway_getter"]

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
    ) -> object:
        """The command's JSON answer, unchecked: callers narrow it with ``isinstance``."""
        return parse_json(await self.call(command, params, content=content, name=name), self.label)

    def _classify(self, command: str, status: int, body: bytes, name: str | None) -> ProviderError:
        try:
            message = str(json.loads(body).get("Message", ""))[:300]
        except (ValueError, AttributeError):
            message = body[:200].decode("utf-8", "replace")
        text = f"{self.label} {command}: HTTP {status}: {message}"
        low = message.lower()
        not_found: Collection[int] = NOT_FOUND
        if status in (401, 403):
            pass  # a refusal, whatever the message says
        elif "file does not exist" in low or "not found" in low or "no link named" in low:
            status = 404
        elif "already has entry" in low or "already exists" in low:
            status = 409
        elif "no space left" in low or "storage limit" in low:
            status = 507
        elif status == 404:  # an unknown command: this node does not speak what we need
            not_found = ()
        return error_for_status(status, text, provider=self.label, share=name, not_found=not_found)

    async def block_put(self, cid: CID, block: bytes) -> None:
        """Store one block; the node must name it as we do (else it is misbehaving)."""
        reply = await self.call_json(
            "block/put",
            {"cid-codec": cid.codec_name, "mhtype": "sha2-256", "cid-version": "1"},
            content=block,
        )
        if not isinstance(reply, dict) or read_cid(reply.get("Key")) != cid.to_v1():
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
            raise first_error(group) from None

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
            if isinstance(rec, dict) and read_cid(rec.get("Cid")) not in (None, root.to_v1()):
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
        # 501: the gateway does not serve raw blocks at all, which waiting will not change
        raise error_for_status(
            status, text, provider=http.label, retryable=False if status == 501 else None
        )

    return get


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
