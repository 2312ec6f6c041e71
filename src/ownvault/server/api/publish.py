"""Publishing: ``POST /publish``, ``POST /unpublish``, ``GET /published``.

The same engine functions as ``ownvault publish|unpublish|published``; the response adds
the gateway path (``/ipfs/{cid}/``) that this same server answers without a token.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ownvault.core.unixfs import PROFILES
from ownvault.errors import UsageError
from ownvault.server.api.auth import require_session
from ownvault.server.api.state import ApiState

__all__ = ["router"]


class PublishIn(BaseModel):
    name: str = Field(
        min_length=1, max_length=1024, description="A stored NAME or NAME/path inside a tree."
    )
    version: int | None = Field(default=None, ge=1, le=2**62)
    profile: str | None = Field(
        default=None, description="Import profile: " + ", ".join(sorted(PROFILES))
    )


class UnpublishIn(BaseModel):
    target: str = Field(min_length=1, max_length=1024, description="A NAME or a root CID.")
    version: int | None = Field(default=None, ge=1, le=2**62)


class DagOut(BaseModel):
    name: str
    version: int
    cid: str
    url: str
    gateway: str
    profile: str
    source: str
    published: bool
    published_at: int | None


class PublicationOut(DagOut):
    blocks: int
    index_bytes: int
    seconds: float


class DagList(BaseModel):
    published: list[DagOut]


class Unpublished(BaseModel):
    unpublished: list[DagOut]


def _gateway(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "gateway": f"/ipfs/{doc['cid']}"}


def router(state: ApiState) -> APIRouter:
    r = APIRouter(tags=["publishing"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    @r.get("/published", response_model=DagList, summary="Published content")
    async def published() -> dict[str, Any]:
        return {"published": [_gateway(asdict(d)) for d in vault.ipfs.dags(published=True)]}

    @r.post(
        "/publish",
        response_model=PublicationOut,
        summary="Make a stored file or tree public (ipfs://CID)",
    )
    async def publish(body: PublishIn) -> dict[str, Any]:
        if body.profile is not None and body.profile not in PROFILES:
            raise UsageError(f"unknown import profile {body.profile!r}")
        async with state.vault.ctx.write():
            p = await vault.ipfs.publish(body.name, version=body.version, profile=body.profile)
        return _gateway(p.to_json())

    @r.post(
        "/unpublish", response_model=Unpublished, summary="Stop publishing a name or a root CID"
    )
    async def unpublish(body: UnpublishIn) -> dict[str, Any]:
        async with state.vault.ctx.write():
            rows = await vault.ipfs.unpublish(body.target, version=body.version)
        return {"unpublished": [_gateway(asdict(r)) for r in rows]}

    return r
