"""Sharing, the sender's side: contacts, tag policies, grants, revocation.

Every route calls the engine function ``ownvault contacts|tag policy|share|grants|revoke``
calls (:mod:`ownvault.engine.sharing.grants`), under the API's write lock where it changes the
catalog, followed by a catalog snapshot as the CLI does.

* ``POST /contacts {card, name?}``: ``card`` is the card's JSON text (an uploaded file or a
  paste); its signature is checked against its did:key (a forged or malformed card is
  400 ``integrity``/``format``).
* ``POST /grants {names?, prefix?, tag?, to, expires?, read_only}`` shares the latest
  versions of ``names``, of every name under the virtual folder ``prefix``, and of every
  name tagged ``tag``, with a contact; a never-share tag refuses it (409 ``share_policy``).
  The answer carries the grant as the ``ovgrant1:`` string and as the JSON document; the
  same document is ``GET /grants/{id}/document`` (a file to send).
* ``POST /grants/{id}/revoke`` re-encrypts what the grant covered: a background job (202)
  whose progress counts packs, polled at ``GET /jobs/{id}``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from ownvault.core.grants import Grant
from ownvault.engine.files.results import TreeListing
from ownvault.errors import NotFoundError, UsageError
from ownvault.server.api.auth import require_session
from ownvault.server.api.jobs import JobOut
from ownvault.server.api.problems import submitted
from ownvault.server.api.state import ApiState, Job

__all__ = ["router"]

MAX_CARD = 64 * 1024
GrantId = Annotated[
    str,
    Path(
        min_length=8,
        max_length=32,
        pattern=r"^[0-9a-fA-F]{8,32}$",
        description="A grant id or a unique prefix of one (8..32 hex digits).",
    ),
]
Who = Annotated[
    str, Query(min_length=1, max_length=200, description="A contact's name or did:key.")
]


class ContactIn(BaseModel):
    card: str = Field(
        min_length=2, max_length=MAX_CARD, description="The contact card: its JSON text."
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Your name for them."
    )


class ContactAdded(BaseModel):
    did: str
    name: str | None
    agreement: str


class ContactOut(BaseModel):
    did: str
    name: str | None
    added: int


class ContactList(BaseModel):
    contacts: list[ContactOut]


class ContactRemoved(BaseModel):
    removed: str


class TagPolicy(BaseModel):
    tag: str = Field(min_length=1, max_length=64, pattern=r"^\S+$")
    never_share: bool


class TagPolicyList(BaseModel):
    policies: list[TagPolicy]


class ShareIn(BaseModel):
    names: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Stored names (files or trees): their latest versions.",
    )
    prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="A virtual folder: every name under PREFIX/.",
    )
    tag: str | None = Field(
        default=None, min_length=1, max_length=64, description="Every name with this tag."
    )
    to: str = Field(min_length=1, max_length=200, description="A contact's name or did:key.")
    expires: int | None = Field(
        default=None, ge=0, le=2**53, description="Unix seconds; null: never."
    )
    read_only: bool = Field(
        default=True, description="The only kind of grant: recipients never write."
    )


class GrantOut(BaseModel):
    grant: str
    token: str = Field(
        description="The grant as one string: ovgrant1:… (only the recipient can use it)."
    )
    to: str
    items: list[str]
    expires: int | None
    document: dict[str, Any] = Field(
        description="The same grant as a JSON document (ownvault-grant v1)."
    )


class GrantRow(BaseModel):
    grant: str
    to: str
    contact: str | None
    items: list[str]
    tag: str | None
    created: int
    expires: int | None
    state: str = Field(description="active | expired | revoked")
    revoked: int | None
    generation: int


class GrantList(BaseModel):
    grants: list[GrantRow]


def router(state: ApiState) -> APIRouter:
    """The sharing routes (contacts, grants, revocation), bound to ``state``.

    Long: nine small route handlers, each a closure over ``state`` and the router; one
    function keeps every route of the tag in one place.
    """
    r = APIRouter(tags=["sharing"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    @r.get(
        "/contacts",
        response_model=ContactList,
        summary="Contacts: people and services you share with",
    )
    async def contacts() -> ContactList:
        return ContactList(
            contacts=[
                ContactOut.model_validate(c, from_attributes=True) for c in vault.sharing.contacts()
            ]
        )

    @r.post(
        "/contacts",
        response_model=ContactAdded,
        status_code=201,
        summary="Add a contact from their card (the signature is checked)",
    )
    async def add_contact(body: ContactIn) -> ContactAdded:
        async with state.vault.ctx.write():
            with submitted("contact card"):
                added = await vault.sharing.add_contact(body.card, body.name)
        return ContactAdded.model_validate(added, from_attributes=True)

    @r.delete(
        "/contacts",
        response_model=ContactRemoved,
        summary="Remove a contact (grants already made stay until revoked)",
    )
    async def remove_contact(who: Who) -> dict[str, Any]:
        async with state.vault.ctx.write():
            await vault.sharing.remove_contact(who)
        return {"removed": who}

    @r.get(
        "/tags/policies", response_model=TagPolicyList, summary="Tag policies (never-share tags)"
    )
    async def policies() -> TagPolicyList:
        return TagPolicyList(
            policies=[
                TagPolicy.model_validate(p, from_attributes=True)
                for p in vault.sharing.tag_policies()
            ]
        )

    @r.put("/tags/policies", response_model=TagPolicy, summary="Set a tag's policy")
    async def set_policy(body: TagPolicy) -> TagPolicy:
        async with state.vault.ctx.write():
            policy = await vault.sharing.set_tag_policy(body.tag, never_share=body.never_share)
        return TagPolicy.model_validate(policy, from_attributes=True)

    async def names_under(prefix: str) -> list[str]:
        clean = prefix.strip("/")
        doc = await vault.files.ls(clean + "/")
        if isinstance(doc, TreeListing):  # a stored tree: share it whole
            return [clean]
        found = [o.name for o in doc.objects]
        if not found:
            raise NotFoundError(f"nothing is stored under {clean}/", name=clean)
        return found

    @r.post(
        "/grants",
        response_model=GrantOut,
        status_code=201,
        summary="Share names, a folder or a tag with a contact: a signed, encrypted grant",
    )
    async def share(body: ShareIn) -> dict[str, Any]:
        if body.expires is not None and body.expires <= state.vault.clock():
            raise UsageError("expires is in the past")
        names = list(body.names)
        if body.prefix is not None:
            names += await names_under(body.prefix)
        async with state.vault.ctx.write():
            info = await vault.sharing.share(
                names=names,
                tag=body.tag,
                to=body.to,
                expires=body.expires,
                read_only=body.read_only,
            )
        grant = Grant.parse(info.token)
        return {**info.to_json(), "expires": grant.expires, "document": grant.to_json()}

    @r.get("/grants", response_model=GrantList, summary="Who can read what, since when, until when")
    async def grants() -> GrantList:
        return GrantList(
            grants=[
                GrantRow.model_validate(g, from_attributes=True) for g in vault.sharing.grants()
            ]
        )

    @r.get(
        "/grants/{grant}/document",
        summary="The grant as a JSON file, to send to its recipient",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def document(grant: GrantId) -> Response:
        gid, token = vault.sharing.grant_token(grant)
        body = (json.dumps(Grant.parse(token).to_json(), indent=2, sort_keys=True) + "\n").encode()
        return Response(
            body,
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="ownvault-grant-{gid[:12]}.json"',
                "Cache-Control": "private, no-store",
            },
        )

    @r.post(
        "/grants/{grant}/revoke",
        status_code=202,
        response_model=JobOut,
        summary="Revoke a grant: re-encrypt what it covered (a background job)",
    )
    async def revoke(grant: GrantId) -> JSONResponse:
        gid, _token = vault.sharing.grant_token(grant)  # unknown or ambiguous: 404 / 400 now

        async def run(job: Job) -> dict[str, Any]:
            def progress(done: int, total: int) -> None:
                job.done, job.total = done, total

            async with state.vault.ctx.write():
                return (await vault.sharing.revoke(gid, progress=progress)).to_json()

        job = state.jobs.start("revoke", run, subject=gid)
        return JSONResponse(job.to_json(), status_code=202)

    return r
