"""Uploads: request bodies streamed to a file in the vault directory, then ``Vault.put``.

The engine stores paths, so an upload goes to ``VAULT/uploads/{id}.part`` (mode 0600, in a
0700 directory, removed once stored) through a buffer of at most :data:`BUFFER` bytes:
the server's memory does not grow with the file. Then ``Vault.put`` stores it like any
file (streaming, chunked, encrypted, erasure-coded).

Resumable upload sessions work like tus (tus.io) with JSON instead of its headers:

* ``POST /uploads {"name", "size", "tags"?, "mtime_ms"?}`` -> 201 ``{id, offset: 0, …}``;
* ``PATCH /uploads/{id}`` with ``Upload-Offset: N`` (must equal the session's offset, else
  409 with the current one) and ``Content-Type: application/offset+octet-stream``: the
  body (at most ``chunk_max`` bytes, and never past ``size``) is appended; a connection
  lost mid-body keeps what arrived, so ``GET /uploads/{id}`` tells where to resume;
* ``POST /uploads/{id}/finish`` (offset = size) stores the file and ends the session.

Sessions are files (``{id}.json`` beside the ``.part``), so they survive a restart of
``ownvault serve``; idle ones expire after ``ApiLimits.session_idle_seconds``.
``PUT /files/content?name=`` is the one-shot form (one streamed body, no resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from ownvault.engine.store.layout import validate_object_name, validate_tag
from ownvault.engine.store.versions import PutResult
from ownvault.errors import NotFoundError
from ownvault.server.api.auth import require_session
from ownvault.server.api.files import PutOut
from ownvault.server.api.problems import ApiProblem
from ownvault.server.api.state import ApiState

__all__ = ["BUFFER", "UploadStore", "router"]

BUFFER = 1024 * 1024
OCTETS = "application/offset+octet-stream"
_ID = re.compile(r"^[0-9a-f]{32}\Z")
ID_PATTERN = "^[0-9a-f]{32}$"
MAX_MTIME_MS = (2**63 - 1) // 1_000_000  # stored as nanoseconds in a signed 64-bit SQLite integer


@dataclass
class UploadMeta:
    id: str
    name: str
    size: int
    tags: list[str]
    mtime_ms: int | None
    created: float
    touched: float


class UploadStore:
    """Upload sessions as files under ``VAULT/uploads``."""

    def __init__(self, root: Path, idle_seconds: int, max_sessions: int) -> None:
        self.root = root
        self.idle_seconds = idle_seconds
        self.max_sessions = max_sessions
        self._locks: dict[str, asyncio.Lock] = {}

    def _dir(self) -> Path:
        self.root.mkdir(mode=0o700, exist_ok=True)
        return self.root

    def part(self, upload_id: str) -> Path:
        if not _ID.match(upload_id):
            raise NotFoundError(f"no such upload: {upload_id[:40]!r}")
        return self._dir() / f"{upload_id}.part"

    def meta(self, upload_id: str) -> UploadMeta:
        path = self.part(upload_id).with_suffix(".json")
        try:
            return UploadMeta(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise NotFoundError(f"no such upload: {upload_id}") from None

    def offset(self, upload_id: str) -> int:
        try:
            return self.part(upload_id).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"no such upload: {upload_id}") from None

    def _save(self, meta: UploadMeta) -> None:
        path = self.part(meta.id).with_suffix(".json")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(meta)))
        os.replace(tmp, path)

    def all(self) -> list[UploadMeta]:
        out = []
        for p in sorted(self._dir().glob("*.json")):
            with contextlib.suppress(Exception):
                out.append(UploadMeta(**json.loads(p.read_text())))
        return out

    def expire(self) -> None:
        now = time.time()
        for m in self.all():
            if now - m.touched > self.idle_seconds:
                self.drop(m.id)

    def create(self, name: str, size: int, tags: list[str], mtime_ms: int | None) -> UploadMeta:
        self.expire()
        if len(self.all()) >= self.max_sessions:
            raise ApiProblem(
                429,
                "too_many_uploads",
                f"at most {self.max_sessions} open upload sessions: finish or cancel some",
            )
        free = shutil.disk_usage(self._dir()).free
        if size > free:
            # Refused before a byte is sent: the request is larger than this server is able
            # to process (RFC 9110 413). A disk filling up mid-upload stays a 507.
            raise ApiProblem(
                413,
                "storage_full",
                f"not enough space in the vault directory for the upload ({size} > {free} bytes free)",
            )
        meta = UploadMeta(
            secrets.token_hex(16), name, size, tags, mtime_ms, time.time(), time.time()
        )
        fd = os.open(self.part(meta.id), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        self._save(meta)
        return meta

    def drop(self, upload_id: str) -> None:
        part = self.part(upload_id)
        for p in (part, part.with_suffix(".json"), part.with_suffix(".tmp")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self._locks.pop(upload_id, None)

    def lock(self, upload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(upload_id, asyncio.Lock())

    async def append(self, meta: UploadMeta, request: Request, limit: int) -> int:
        """Append the request body (at most ``limit`` bytes) to the part file; new offset."""
        part = self.part(meta.id)
        f = await asyncio.to_thread(open, part, "ab")
        buf = bytearray()
        received = 0
        try:
            async for piece in request.stream():
                received += len(piece)
                if received > limit:
                    raise ApiProblem(
                        413,
                        "too_large",
                        f"the body goes past the upload's size or the chunk limit ({limit} bytes)",
                    )
                buf += piece
                if len(buf) >= BUFFER:
                    await asyncio.to_thread(f.write, bytes(buf))
                    buf.clear()
        except ClientDisconnect:
            pass  # keep what arrived: the client resumes from GET /uploads/{id}
        finally:
            if buf:
                await asyncio.to_thread(f.write, bytes(buf))
            await asyncio.to_thread(f.close)
        meta.touched = time.time()
        self._save(meta)
        return part.stat().st_size

    async def store(self, state: ApiState, meta: UploadMeta) -> PutResult:
        part = self.part(meta.id)
        os.chmod(part, 0o644)  # the mode the stored file gets (the directory stays 0700)
        if meta.mtime_ms is not None:
            ns = meta.mtime_ms * 1_000_000
            os.utime(part, ns=(ns, ns))
        async with state.vault.ctx.write():
            [result] = await state.vault.files.put([part], name=meta.name, tags=meta.tags)
        self.drop(meta.id)
        return result


class UploadCreate(BaseModel):
    name: str = Field(
        min_length=1, max_length=1024, description="Vault name to store the file under."
    )
    size: int = Field(ge=0, description="Total size of the file in bytes.")
    tags: list[str] = Field(default_factory=list, max_length=64)
    mtime_ms: int | None = Field(
        default=None,
        ge=0,
        le=MAX_MTIME_MS,
        description="The file's modification time (ms since the epoch).",
    )


class UploadOut(BaseModel):
    id: str
    name: str
    size: int
    offset: int
    tags: list[str]
    chunk_max: int
    created: float


class UploadList(BaseModel):
    uploads: list[UploadOut]


UploadId = Annotated[
    str, PathParam(pattern=ID_PATTERN, description="Upload session id (32 hex digits).")
]


def router(state: ApiState) -> APIRouter:
    """The resumable-upload routes, bound to ``state`` and one upload store.

    Long: seven small route handlers sharing the upload store they close over; one
    function keeps every route of the tag in one place.
    """
    r = APIRouter(tags=["uploads"], dependencies=[Depends(require_session(state.sessions))])
    uploads = UploadStore(
        state.vault.path / "uploads", state.limits.session_idle_seconds, state.limits.sessions
    )
    chunk_max = state.limits.upload_chunk

    def out(meta: UploadMeta) -> dict[str, Any]:
        return {
            "id": meta.id,
            "name": meta.name,
            "size": meta.size,
            "offset": uploads.offset(meta.id),
            "tags": meta.tags,
            "chunk_max": chunk_max,
            "created": meta.created,
        }

    @r.post(
        "/uploads",
        status_code=201,
        response_model=UploadOut,
        summary="Open a resumable upload session",
    )
    async def create(body: UploadCreate) -> JSONResponse:
        name = validate_object_name(body.name)
        tags = [validate_tag(t) for t in body.tags]
        if body.size > state.limits.upload_total:
            raise ApiProblem(
                413, "too_large", f"files over {state.limits.upload_total} bytes are refused"
            )
        meta = uploads.create(name, body.size, tags, body.mtime_ms)
        return JSONResponse(out(meta), status_code=201)

    @r.get(
        "/uploads",
        response_model=UploadList,
        summary="Open upload sessions (to resume after a reload)",
    )
    async def list_uploads() -> dict[str, Any]:
        return {"uploads": [out(m) for m in uploads.all()]}

    @r.get(
        "/uploads/{upload_id}", response_model=UploadOut, summary="An upload session and its offset"
    )
    async def get(upload_id: UploadId) -> dict[str, Any]:
        return out(uploads.meta(upload_id))

    @r.patch(
        "/uploads/{upload_id}",
        response_model=UploadOut,
        summary="Append bytes at the session's offset",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {OCTETS: {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def patch(
        request: Request,
        upload_id: UploadId,
        upload_offset: Annotated[
            int, Header(ge=0, description="Must equal the session's current offset.")
        ],
    ) -> dict[str, Any]:
        meta = uploads.meta(upload_id)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != OCTETS:
            raise ApiProblem(415, "unsupported_media_type", f"PATCH bodies are {OCTETS}")
        lock = uploads.lock(upload_id)
        if lock.locked():
            raise ApiProblem(409, "conflict", "another request is writing to this upload")
        async with lock:
            current = uploads.offset(upload_id)
            if upload_offset != current:
                raise ApiProblem(
                    409,
                    "conflict",
                    f"Upload-Offset is {upload_offset}, the upload is at {current}",
                    {"Upload-Offset": str(current)},
                )
            await uploads.append(meta, request, min(chunk_max, meta.size - current))
        return out(meta)

    @r.post(
        "/uploads/{upload_id}/finish",
        response_model=PutOut,
        summary="Store the uploaded file in the vault",
    )
    async def finish(upload_id: UploadId) -> dict[str, Any]:
        meta = uploads.meta(upload_id)
        async with uploads.lock(upload_id):
            have = uploads.offset(upload_id)
            if have != meta.size:
                raise ApiProblem(409, "conflict", f"the upload has {have} of {meta.size} bytes")
            result = await uploads.store(state, meta)
        return result.to_json()

    @r.delete("/uploads/{upload_id}", status_code=204, summary="Cancel an upload session")
    async def cancel(upload_id: UploadId) -> Response:
        uploads.meta(upload_id)
        async with uploads.lock(upload_id):
            uploads.drop(upload_id)
        return Response(status_code=204)

    @r.put(
        "/files/content",
        response_model=PutOut,
        tags=["files"],
        summary="Store a file from one streamed body (no resume)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        },
    )
    async def put_content(
        request: Request,
        name: Annotated[str, Query(min_length=1, max_length=1024)],
        tag: Annotated[list[str], Query(max_length=64)] = [],  # noqa: B006 - FastAPI copies defaults
        mtime_ms: Annotated[int | None, Query(ge=0, le=MAX_MTIME_MS)] = None,
    ) -> dict[str, Any]:
        name = validate_object_name(name)
        tags = [validate_tag(t) for t in tag]
        length = request.headers.get("content-length")
        declared = int(length) if length and length.isdigit() else None
        if declared is not None and declared > state.limits.upload_total:
            raise ApiProblem(
                413, "too_large", f"files over {state.limits.upload_total} bytes are refused"
            )
        meta = uploads.create(name, declared or 0, tags, mtime_ms)
        try:
            got = await uploads.append(meta, request, state.limits.upload_total)
            if declared is not None and got != declared:
                raise ApiProblem(400, "usage", f"the body ended after {got} of {declared} bytes")
            meta.size = got
            result = await uploads.store(state, meta)
        finally:
            uploads.drop(meta.id)
        return result.to_json()

    return r
