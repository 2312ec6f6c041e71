"""Sharing, the recipient's side: open grants made for this vault and read what they share.

``POST /received {grant}`` takes a grant (its ``ovgrant1:`` string or JSON document) and
opens it with :func:`ownvault.engine.sharing.reader.open_grant`, exactly as ``ownvault open``
does: the signature must verify (a tampered grant is 400 ``integrity``), it must be
addressed to this vault (403 ``grant_recipient``), not expired and not revoked (410
``grant_expired`` / ``grant_revoked``), and its newest manifest must verify. The grant is
then remembered **in this process only** (a restart of ``serve`` forgets it; the grant
itself is the durable thing, kept by the user).

Every later read opens the grant again, so a revocation or an expiry takes effect at the
next request: ``GET /received/{id}`` (the items), ``GET /received/{id}/entries?name``,
``GET /received/{id}/content?name`` (the bytes, verified, as a download).

Opening a grant makes this server list and read ``grants/<id>/`` and the shared shares on
the providers the grant names (never anything else, never with the provider credentials
of this vault); only a holder of this vault's session token can ask it to.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import Response, StreamingResponse

from ownvault.core.grants import Grant
from ownvault.engine.sharing.reader import GrantReader, open_grant
from ownvault.errors import NotFoundError
from ownvault.server.api.auth import require_session
from ownvault.server.api.problems import submitted
from ownvault.server.api.state import ApiState
from ownvault.server.headers import content_disposition

__all__ = ["router"]

MAX_GRANT = 64 * 1024
MAX_RECEIVED = 256
GrantId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="The grant id (32 hex digits).")
]
Name = Annotated[
    str,
    Query(
        min_length=1, max_length=1024, description="A shared name, or NAME/path in a shared tree."
    ),
]


class GrantIn(BaseModel):
    grant: str = Field(
        min_length=1, max_length=MAX_GRANT, description="ovgrant1:… or the grant's JSON text."
    )


class SharedItem(BaseModel):
    name: str
    version: int
    kind: str
    size: int
    files: int
    created: int
    cid: str | None


class ReceivedOut(BaseModel):
    grant: str
    sender: str = Field(alias="from")
    created: int
    expires: int | None
    items: list[SharedItem]


class ReceivedRow(BaseModel):
    grant: str
    sender: str = Field(alias="from")
    created: int
    expires: int | None


class ReceivedList(BaseModel):
    grants: list[ReceivedRow]


class SharedEntry(BaseModel):
    path: str
    kind: str
    mode: int
    mtime_ns: int
    size: int
    cid: str | None
    target: str | None


class SharedEntries(BaseModel):
    grant: str
    name: str
    entries: list[SharedEntry]


def _row(g: Grant) -> dict[str, Any]:
    return {"grant": g.id_hex, "from": g.sender, "created": g.created, "expires": g.expires}


def router(state: ApiState) -> APIRouter:
    """The routes over grants shared with this vault, bound to ``state``.

    Long: six small route handlers and the grant-reopening helper they share, closures over
    ``state``; one function keeps every route of the tag in one place.
    """
    r = APIRouter(tags=["shared with me"], dependencies=[Depends(require_session(state.sessions))])
    keys = state.vault.keys

    async def reopen(grant: str) -> GrantReader:
        text = state.received.get(grant)
        if text is None:
            raise NotFoundError(
                f"no received grant {grant}: open it first (POST /received)", name=grant
            )
        return await open_grant(keys, text, now=int(state.vault.clock()))

    @r.post(
        "/received",
        response_model=ReceivedOut,
        response_model_by_alias=True,
        summary="Open a grant made for this vault (checked) and list what it shares",
    )
    async def receive(body: GrantIn) -> dict[str, Any]:
        with submitted("grant"):
            Grant.parse(body.grant)
            reader = await open_grant(keys, body.grant, now=int(state.vault.clock()))
        try:
            grant = reader.grant
            state.received.pop(grant.id_hex, None)
            state.received[grant.id_hex] = body.grant.strip()
            while len(state.received) > MAX_RECEIVED:
                del state.received[next(iter(state.received))]
            return {**_row(grant), "items": [asdict(i) for i in reader.items]}
        finally:
            await reader.close()

    @r.get(
        "/received",
        response_model=ReceivedList,
        response_model_by_alias=True,
        summary="Grants opened in this session of the server (not re-checked: open one to check it)",
    )
    async def received() -> dict[str, Any]:
        return {"grants": [_row(Grant.parse(t)) for t in reversed(state.received.values())]}

    @r.get(
        "/received/{grant}",
        response_model=ReceivedOut,
        response_model_by_alias=True,
        summary="Open a received grant again (revocation and expiry are checked now)",
    )
    async def items(grant: GrantId) -> dict[str, Any]:
        reader = await reopen(grant)
        try:
            return {**_row(reader.grant), "items": [asdict(i) for i in reader.items]}
        finally:
            await reader.close()

    @r.delete("/received/{grant}", status_code=204, summary="Forget a received grant")
    async def forget(grant: GrantId) -> Response:
        if state.received.pop(grant, None) is None:
            raise NotFoundError(f"no received grant {grant}", name=grant)
        return Response(status_code=204)

    @r.get(
        "/received/{grant}/entries",
        response_model=SharedEntries,
        summary="The entries of a shared tree",
    )
    async def entries(grant: GrantId, name: Name) -> dict[str, Any]:
        reader = await reopen(grant)
        try:
            entries = [asdict(e) for e in reader.entries(name)]
            return {"grant": grant, "name": name.strip("/"), "entries": entries}
        finally:
            await reader.close()

    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}

    @r.get(
        "/received/{grant}/content",
        response_class=Response,
        responses={200: {"content": binary}},
        summary="A shared file's bytes, read from the sender's providers and verified",
    )
    async def content(grant: GrantId, name: Name) -> Response:
        reader = await reopen(grant)
        try:
            entry = reader.file_entry(name)
            pieces = reader.read(name)
            first = await anext(pieces, b"")  # errors before the first byte are JSON errors
        except BaseException:
            await reader.close()
            raise
        filename = name.strip("/").rsplit("/", 1)[-1]
        headers = {
            "Content-Disposition": content_disposition(filename),
            "Cache-Control": "private, no-store",
            "Content-Length": str(entry.size),
        }

        async def body() -> AsyncIterator[bytes]:
            try:
                if first:
                    yield first
                async for piece in pieces:
                    yield piece
            finally:
                await reader.close()

        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return StreamingResponse(body(), headers=headers, media_type=ctype)

    return r
