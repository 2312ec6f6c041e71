"""Files: list and search, browse trees, stat, download (``Range``), versions, restore,
tags, delete, usage. Names travel in the ``name`` query parameter (vault names contain
``/``); every one goes through the engine's name validator, and bytes come only from
``Vault.read``: there is no file system path to traverse.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ownvault.engine.files.results import ObjectListing, TreeListing
from ownvault.errors import UsageError
from ownvault.server.api.auth import require_session
from ownvault.server.api.problems import ApiProblem
from ownvault.server.api.state import ApiState
from ownvault.server.headers import content_disposition

__all__ = ["PutOut", "parse_range", "router"]

Name = Annotated[
    str,
    Query(
        min_length=1,
        max_length=1024,
        description="A stored name, or NAME/path inside a stored tree.",
    ),
]
VersionQ = Annotated[
    int | None, Query(ge=1, le=2**62, description="Version number (default: the latest).")
]


class UnderReplicatedPiece(BaseModel):
    pack: str
    placed: int
    wanted: int
    missing: list[int]


class PutOut(BaseModel):
    name: str
    version: int
    kind: str
    size: int
    files: int
    cid: str | None
    new_bytes: int
    new_chunks: int
    packs: int
    under_replicated: list[UnderReplicatedPiece] = Field(
        default_factory=list,
        description="Pieces written with fewer than n shares (at least the policy's happy); "
        "repair completes them.",
    )


class ObjectOut(BaseModel):
    name: str
    version: int
    kind: str
    size: int
    files: int
    created: int
    cid: str | None
    cid_profile: str | None
    tags: list[str]
    versions: int
    published: str | None = Field(
        description="The ipfs:// URL when the latest version is published."
    )


class ObjectList(BaseModel):
    objects: list[ObjectOut]


class EntryOut(BaseModel):
    path: str
    kind: str
    mode: str
    mtime_ns: int
    size: int
    cid: str | None
    target: str | None


class TreeOut(BaseModel):
    tree: str
    version: int
    path: str
    entries: list[EntryOut]


class StatOut(EntryOut):
    name: str
    version: int
    created: int


class VersionOut(BaseModel):
    name: str
    version: int
    kind: str
    size: int
    files: int
    created: int
    cid: str | None
    cid_profile: str | None


class VersionList(BaseModel):
    name: str
    versions: list[VersionOut]


class Restore(BaseModel):
    name: str = Field(min_length=1, max_length=1024)
    version: int = Field(ge=1, le=2**62)


class TagChange(BaseModel):
    name: str = Field(min_length=1, max_length=1024)
    add: list[str] = Field(default_factory=list, max_length=64)
    remove: list[str] = Field(default_factory=list, max_length=64)


class TagsOut(BaseModel):
    name: str
    tags: list[str]


class RemovedOut(BaseModel):
    name: str
    versions_removed: int
    packs_deleted: int


class ForgetIn(BaseModel):
    name: str = Field(min_length=1, max_length=1024)
    version: int | None = Field(
        default=None, ge=1, le=2**62, description="Only this version (default: all)."
    )
    confirm: bool = Field(
        description="Must be true: forgetting cannot be undone, not even with the phrase."
    )


class ForgetOut(BaseModel):
    name: str
    versions_forgotten: int
    chunks_shredded: int
    chunks_shared_with_other_names: int
    objects_deleted: int
    not_deleted: list[dict[str, Any]]


class PolicyKN(BaseModel):
    k: int
    n: int


class DuOut(BaseModel):
    objects: int
    versions: int
    logical_bytes: int
    latest_logical_bytes: int
    unique_bytes: int
    packed_bytes: int
    stored_bytes: int
    chunks: int
    packs: int
    dedup_ratio: float
    expansion: float
    policy: PolicyKN


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range -> [start, end); None for no (or an ignorable) header."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, sep, b = spec.strip().partition("-")
    try:
        if not sep:
            return None
        if not a:
            n = int(b)
            if n <= 0:
                raise ValueError
            return max(0, size - n), size
        start = int(a)
        end = size if not b else min(int(b) + 1, size)
    except ValueError:
        return None
    if start < 0 or start >= size or end <= start:
        raise ApiProblem(
            416,
            "range_not_satisfiable",
            f"range {spec.strip()!r} is outside the file ({size} bytes)",
            {"Content-Range": f"bytes */{size}"},
        )
    return start, end


def router(state: ApiState) -> APIRouter:
    """The file routes, bound to ``state``.

    Long: eleven small route handlers, each a closure over ``state`` and the router; one
    function keeps every route of the tag in one place.
    """
    r = APIRouter(tags=["files"], dependencies=[Depends(require_session(state.sessions))])
    vault = state.vault

    def published_urls() -> dict[tuple[str, int], str]:
        return {(d.name, d.version): d.url for d in vault.ipfs.dags(published=True)}

    @r.get(
        "/files",
        response_model=ObjectList,
        summary="Stored names (latest versions), filtered by prefix, text and tag",
    )
    async def list_files(
        prefix: Annotated[str, Query(max_length=1024)] = "",
        q: Annotated[
            str, Query(max_length=256, description="Case-insensitive part of the name.")
        ] = "",
        tag: Annotated[str, Query(max_length=64)] = "",
    ) -> ObjectList:
        doc = (
            await vault.files.ls(prefix.lstrip("/"))
            if prefix.strip("/")
            else await vault.files.ls()
        )
        if isinstance(doc, ObjectListing):
            objects = doc.objects
        else:  # the prefix named a tree: list names under it instead
            listing = await vault.files.ls()
            assert isinstance(listing, ObjectListing)
            objects = [o for o in listing.objects if o.name.startswith(prefix.lstrip("/"))]
        pub = published_urls()
        needle = q.lower()
        out = []
        for o in objects:
            if needle and needle not in o.name.lower():
                continue
            if tag and tag not in o.tags:
                continue
            out.append(ObjectOut(**asdict(o), published=pub.get((o.name, o.version))))
        return ObjectList(objects=out)

    @r.get(
        "/files/entries",
        response_model=TreeOut,
        summary="The entries of a stored tree (or a directory in it)",
    )
    async def entries(name: Name) -> TreeOut:
        doc = await vault.files.ls(name)
        if not isinstance(doc, TreeListing):
            raise UsageError(f"{name} is not a stored tree or a directory in one", name=name)
        return TreeOut.model_validate(asdict(doc))

    @r.get(
        "/files/stat",
        response_model=StatOut,
        summary="One stored name or path: its kind, size, mode, CID",
    )
    async def stat(name: Name, version: VersionQ = None) -> StatOut:
        return StatOut.model_validate(asdict(await vault.files.stat(name, version=version)))

    @r.get("/files/versions", response_model=VersionList, summary="Every version of a name")
    async def versions(name: Name) -> VersionList:
        rows = await vault.files.versions(name)
        return VersionList(
            name=name.strip("/"), versions=[VersionOut.model_validate(asdict(v)) for v in rows]
        )

    binary = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    content_doc: dict[str, Any] = {
        "response_class": Response,
        "responses": {
            200: {"content": binary},
            206: {"description": "Partial content", "content": binary},
        },
    }

    @r.head("/files/content", summary="A stored file's headers (size, type, ETag)", **content_doc)
    async def content_head(request: Request, name: Name, version: VersionQ = None) -> Response:
        return await content(request, name, version)

    @r.get("/files/content", summary="A stored file's bytes (Range: bytes=A-B)", **content_doc)
    async def content(request: Request, name: Name, version: VersionQ = None) -> Response:
        st = await vault.files.stat(name, version=version)
        if st.kind != "file":
            raise UsageError(f"{name} is a {st.kind}, not a file", name=name)
        size = st.size
        filename = (st.path or st.name).rsplit("/", 1)[-1]
        ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {
            "Accept-Ranges": "bytes",
            "Content-Disposition": content_disposition(filename),
            "Cache-Control": "private, no-store",
        }
        if st.cid:
            headers["ETag"] = f'"{st.cid}"'
        rng = parse_range(request.headers.get("range"), size) if size else None
        if (
            rng is not None
            and st.cid
            and request.headers.get("if-range") not in (None, headers["ETag"])
        ):
            rng = None
        start, end = rng if rng is not None else (0, size)
        headers["Content-Length"] = str(end - start)
        status = 200
        if rng is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        if request.method == "HEAD" or end == start:
            return Response(status_code=status, headers=headers, media_type=ctype)

        async def body() -> AsyncIterator[bytes]:
            async for piece in vault.files.read(name, version=st.version, start=start, end=end):
                yield piece

        return StreamingResponse(body(), status_code=status, headers=headers, media_type=ctype)

    @r.post(
        "/files/restore",
        response_model=PutOut,
        summary="Make an older version the latest again (a new version)",
    )
    async def restore(body: Restore) -> dict[str, Any]:
        async with state.vault.ctx.write():
            result = await vault.files.restore_version(body.name, body.version)
        return result.to_json()

    @r.post("/files/tags", response_model=TagsOut, summary="Add and remove tags of a name")
    async def tags(body: TagChange) -> dict[str, Any]:
        async with state.vault.ctx.write():
            now = await vault.files.set_tags(body.name, add=body.add, remove=body.remove)
        return {"name": body.name.strip("/"), "tags": now}

    @r.delete(
        "/files", response_model=RemovedOut, summary="Delete a name (every version) or one version"
    )
    async def remove(name: Name, version: VersionQ = None) -> RemovedOut:
        async with state.vault.ctx.write():
            removed = await vault.files.rm(name, version=version)
        return RemovedOut.model_validate(asdict(removed))

    @r.post(
        "/files/forget",
        response_model=ForgetOut,
        summary="Crypto-shred a name (or one version): its keys destroyed, its shares deleted",
    )
    async def forget(body: ForgetIn) -> ForgetOut:
        if not body.confirm:
            raise UsageError("forgetting destroys data for good: send confirm: true")
        async with state.vault.ctx.write():
            result = await vault.keyring.forget(body.name, version=body.version)
        return ForgetOut.model_validate(asdict(result))

    @r.get(
        "/du",
        response_model=DuOut,
        summary="Logical, unique and stored bytes; dedup ratio; expansion",
    )
    async def du() -> DuOut:
        return DuOut.model_validate(asdict(await vault.files.du()))

    return r
