"""An IPFS trustless gateway (and deserialized path gateway) over a vault's PUBLISHED content.

``GET|HEAD /ipfs/{cid}[/{path}]`` with, by the ``format`` query parameter (which wins) or
the ``Accept`` header (specs.ipfs.tech/http-gateways/trustless-gateway, path-gateway):

* ``raw`` / ``application/vnd.ipld.raw``: one block (the path's terminal block);
* ``car`` / ``application/vnd.ipld.car``: a CARv1 (``version=1; order=dfs``, ``dups=n``
  unless ``dups=y`` is asked) with the blocks that resolve the path, then the terminal
  DAG per ``dag-scope`` (``all`` | ``entity`` | ``block``) and ``entity-bytes=from:to``;
* anything else (a browser, ``*/*``, no Accept): the deserialized content, i.e. a file's
  bytes (``Range``, ``Content-Type`` from the name or sniffed), a directory's
  ``index.html`` or a generated listing (301 to add the trailing slash first).

Status codes: 400 for an invalid CID or parameter, 404 for content that is not published
(the block index holds only published DAGs, so a block of private content is 404 even
when asked for by its CID), 406 for formats this gateway does not produce (tar,
dag-json, ...), 416 for unsatisfiable ranges, 500 if regenerated data fails its hash.
Every block leaves only after it was regenerated from the stored data and re-hashed.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from ownvault.core.car import encode_header, encode_section
from ownvault.core.cid import CID
from ownvault.engine.ipfs.dagindex import PublishedIndexes
from ownvault.engine.ipfs.dagwalk import Resolved, Scope, inspect, resolve, walk
from ownvault.engine.ipfs.publish import BlockReader
from ownvault.engine.store.dag import BlockRef
from ownvault.engine.vault import Vault
from ownvault.errors import FormatError, NotFoundError, OwnvaultError
from ownvault.server.headers import content_disposition

__all__ = ["Gateway", "gateway_app"]

IMMUTABLE = "public, max-age=29030400, immutable"
RAW_TYPE = "application/vnd.ipld.raw"
CAR_TYPE = "application/vnd.ipld.car"
UNSUPPORTED_FORMATS = {
    "tar": "application/x-tar",
    "dag-json": "application/vnd.ipld.dag-json",
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "json": "application/json",
    "cbor": "application/cbor",
    "ipns-record": "application/vnd.ipfs.ipns-record",
}
_UNSUPPORTED_TYPES = set(UNSUPPORTED_FORMATS.values())
DIR_INDEX_VERSION = "ownvault1"


class HTTPProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Want:
    kind: str  # raw | car | plain
    dups: bool = False
    negotiated: bool = False  # chosen by Accept, not by ?format=


def _params(text: str) -> tuple[str, dict[str, str]]:
    parts = [p.strip() for p in text.split(";")]
    params = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        params[k.strip().lower()] = v.strip().strip('"')
    return parts[0].lower(), params


def _car_want(params: dict[str, str], negotiated: bool) -> Want:
    if params.get("version", "1") != "1":
        raise HTTPProblem(406, "only CAR version 1 is produced")
    if params.get("order", "dfs") not in ("dfs", "unk", ""):
        raise HTTPProblem(406, f"unsupported CAR order {params['order']!r} (dfs only)")
    dups = params.get("dups", "n")
    if dups not in ("y", "n"):
        raise HTTPProblem(400, f"invalid CAR dups {dups!r}")
    return Want("car", dups == "y", negotiated)


def _accepted(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The media ranges of an ``Accept`` header, best first (q=0 dropped, ties keep order)."""
    ranges = []
    for i, item in enumerate(a for a in accept.split(",") if a.strip()):
        media, params = _params(item)
        try:
            weight = float(params.get("q", "1"))
        except ValueError:
            weight = 1.0
        if weight > 0:
            ranges.append((-weight, i, media, params))
    ranges.sort()
    return [(media, params) for _w, _i, media, params in ranges]


def negotiate(request: Request) -> Want:
    """``format=`` picks the kind (it wins over Accept's media type); with ``format=car`` a
    CAR's ``order`` and ``dups`` come from the first CAR range in Accept (``format=car``
    itself means version 1), each overridden by its ``car-*`` query parameter
    (trustless-gateway spec, IPIP-0523)."""
    q = request.query_params
    fmt = q.get("format")
    car_q = {k[4:]: v for k, v in q.items() if k in ("car-version", "car-order", "car-dups")}
    ranges = _accepted(request.headers.get("accept", ""))
    if fmt:
        if fmt == "raw":
            return Want("raw")
        if fmt == "car":
            accept_car = next((params for media, params in ranges if media == CAR_TYPE), {})
            accept_car = {k: v for k, v in accept_car.items() if k in ("order", "dups")}
            return _car_want({**accept_car, **car_q}, False)
        if fmt in UNSUPPORTED_FORMATS:
            raise HTTPProblem(406, f"format={fmt} is not supported by this gateway")
        raise HTTPProblem(400, f"unknown format {fmt!r}")
    if not ranges:
        return Want("plain")
    refused: HTTPProblem | None = None
    for media, params in ranges:
        if media == RAW_TYPE:
            return Want("raw", negotiated=True)
        if media == CAR_TYPE:
            try:
                return _car_want({**params, **car_q}, True)
            except HTTPProblem as exc:  # a CAR we cannot make: the next acceptable type
                if exc.status != 406:
                    raise
                refused = refused or exc
                continue
        if media not in _UNSUPPORTED_TYPES:
            return Want("plain")
    raise refused or HTTPProblem(406, "none of the accepted types is produced by this gateway")


def _entity_bytes(text: str) -> tuple[int, int | None]:
    a, sep, b = text.partition(":")
    try:
        start = int(a)
        end = None if b == "*" else int(b)
    except ValueError:
        raise HTTPProblem(400, f"invalid entity-bytes {text!r}") from None
    if not sep:
        raise HTTPProblem(400, f"invalid entity-bytes {text!r}")
    return start, end


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range -> [start, end); None to ignore the header."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    a, sep, b = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if not a:
            n = int(b)
            return (max(0, size - n), size) if n > 0 else (size, size)
        start = int(a)
        end = size if not b else min(size, int(b) + 1)
    except ValueError:
        return None
    return start, end


def _sniff(name: str, head: bytes) -> str:
    guessed, _ = mimetypes.guess_type(name) if name else (None, None)
    if guessed:
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head[:512]):
        return "image/svg+xml"
    for magic, kind in (
        (b"\x89PNG", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF8", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
    ):
        if head.startswith(magic):
            return kind
    lowered = head[:256].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "text/html; charset=utf-8"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text/plain; charset=utf-8"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:
                return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` (RFC 9110 13.1.2): ``*`` or a list of (weak or strong) entity tags,
    compared weakly."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in header.split(","))


def header_path(path: str) -> str:
    """A content path as an HTTP header value: every byte outside printable ASCII (a name
    above U+00FF, an NFD accent, a Latin-1 letter) and ``%`` itself percent-encoded as UTF-8,
    as a URL path is, so the value is ASCII and decodes back to the exact name."""
    return urllib.parse.quote(path, safe="/:@!$&'()*+,;=~-._")


class Gateway:
    """The request handler; holds the vault and the published block index."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.store = vault.catalog.dags
        self._shared = BlockReader(vault.ctx, self.store.lookup)
        self.indexes = PublishedIndexes(vault.ctx)  # publications other devices made

    async def close(self) -> None:
        await self._shared.close()

    def app(self) -> Starlette:
        methods = ["GET", "HEAD"]
        return Starlette(
            routes=[
                Route("/{cid}", self.handle, methods=methods),
                Route("/{cid}/{path:path}", self.handle, methods=methods),
            ],
        )

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except HTTPProblem as exc:
            return _problem(exc.status, exc.message)
        except NotFoundError as exc:
            return _problem(404, exc.message)
        except OwnvaultError as exc:
            return _problem(500, exc.message)

    async def _handle(self, request: Request) -> Response:
        text = request.path_params["cid"]
        try:
            cid = CID.parse(text)
        except FormatError as exc:
            raise HTTPProblem(400, f"invalid CID {text!r}: {exc.message}") from None
        raw_path = request.url.path
        rest = request.path_params.get("path", "")
        segments = [s for s in rest.split("/") if s]
        if (
            not rest
            and not raw_path.endswith("/")
            and request.headers.get("service-worker") == "script"
        ):
            raise HTTPProblem(400, "a service worker needs a path ending in '/'")
        want = negotiate(request)
        ipfs_path = "/ipfs/" + text + ("/" + rest if rest or raw_path.endswith("/") else "")
        await self.indexes.ready(cid)
        resolved = await resolve(self._shared, cid, segments)
        headers = {
            "X-Ipfs-Path": header_path(ipfs_path),
            "X-Ipfs-Roots": ",".join(str(c) for c in resolved.roots),
            "Cache-Control": IMMUTABLE,
            "Vary": "Accept",
        }
        if want.kind == "raw":
            return self._raw(request, resolved, want, headers)
        if want.kind == "car":
            return self._car(request, cid, resolved, want, headers, rest)
        return await self._plain(request, resolved, segments, headers)

    # -- raw blocks -------------------------------------------------------------------

    def _raw(self, request: Request, r: Resolved, want: Want, headers: dict[str, str]) -> Response:
        etag = f'"{r.cid}.raw"'
        headers |= {
            "Etag": etag,
            "Content-Disposition": content_disposition(
                request.query_params.get("filename") or f"{r.cid}.bin"
            ),
            "X-Content-Type-Options": "nosniff",
            "Accept-Ranges": "bytes",
        }
        if want.negotiated:
            headers["Content-Location"] = header_path(f"{request.url.path}") + "?format=raw"
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        body = r.block
        status = 200
        rng = request.headers.get("range")
        if rng:
            span = _byte_range(rng, len(body))
            if span is not None:
                start, end = span
                if start >= len(body) or start >= end:
                    headers["Content-Range"] = f"bytes */{len(body)}"
                    return Response(status_code=416, headers=headers)
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
                body = body[start:end]
                status = 206
        headers["Content-Length"] = str(len(body))
        return Response(body if request.method == "GET" else b"", status, headers, RAW_TYPE)

    # -- CAR --------------------------------------------------------------------------

    def _car(
        self,
        request: Request,
        cid: CID,
        r: Resolved,
        want: Want,
        headers: dict[str, str],
        rest: str,
    ) -> Response:
        q = request.query_params
        scope_text = q.get("dag-scope", "all")
        if scope_text not in ("all", "entity", "block"):
            raise HTTPProblem(400, f"invalid dag-scope {scope_text!r}")
        scope: Scope = scope_text  # type: ignore[assignment]
        span: tuple[int, int] | None = None
        eb = q.get("entity-bytes")
        if eb is not None:
            start, end = _entity_bytes(eb)
            scope = "entity"
            if r.node.kind == "file":
                size = r.node.size
                lo = size + start if start < 0 else start
                hi = size - 1 if end is None else (size + end if end < 0 else end)
                lo = max(0, lo)
                hi = min(hi, size - 1)
                if lo >= size or hi < lo:
                    scope = (
                        "block"  # a range outside the file: the spec's dag-scope=block equivalent
                    )
                else:
                    span = (lo, hi + 1)
        dups = "y" if want.dups else "n"
        key = f"{rest}|{scope}|{span}|{dups}".encode()
        etag = f'"{cid}.car.{hashlib.sha256(key).hexdigest()[:16]}"'
        headers |= {
            "Etag": etag,
            "Content-Disposition": content_disposition(
                request.query_params.get("filename") or f"{cid}.car"
            ),
            "X-Content-Type-Options": "nosniff",
            "Accept-Ranges": "none",
        }
        if want.negotiated:
            headers["Content-Location"] = header_path(f"{request.url.path}") + "?format=car"
        media = f"{CAR_TYPE}; version=1; order=dfs; dups={dups}"
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        if request.method == "HEAD":
            head = Response(None, 200, headers, media)
            del head.headers["content-length"]  # a CAR is streamed: its length is not known
            return head
        reader = BlockReader(self.vault.ctx, self.store.lookup)
        return StreamingResponse(
            self._car_body(reader, cid, r, scope, span, want.dups),
            200,
            headers,
            media,
            background=BackgroundTask(reader.close),
        )

    async def _car_body(
        self,
        reader: BlockReader,
        cid: CID,
        r: Resolved,
        scope: Scope,
        span: tuple[int, int] | None,
        dups: bool,
    ) -> AsyncIterator[bytes]:
        yield encode_header([cid])
        sent: set[bytes] = set()
        for pcid, block in r.path_blocks:
            if pcid.hash_code == 0 or (not dups and pcid.bytes in sent):
                continue
            sent.add(pcid.bytes)
            yield encode_section(pcid, block)
        async for bcid, block in walk(
            reader, r.cid, scope, byte_range=span, dups=dups, first=r.block
        ):
            if not dups and bcid.bytes in sent:
                continue
            sent.add(bcid.bytes)
            yield encode_section(bcid, block)

    # -- deserialized -----------------------------------------------------------------

    async def _plain(
        self, request: Request, r: Resolved, segments: list[str], headers: dict[str, str]
    ) -> Response:
        if r.node.kind in ("directory", "shard"):
            if not request.url.path.endswith("/"):
                target = (
                    request.url.path + "/" + (f"?{request.url.query}" if request.url.query else "")
                )
                return RedirectResponse(target, 301, headers)
            try:
                index = await resolve(self._shared, r.cid, ["index.html"])
            except NotFoundError:
                index = None
            if index is not None and index.node.kind == "file":
                headers["X-Ipfs-Roots"] += f",{index.cid}"
                return await self._file(request, index, "index.html", headers)
            return await self._listing(request, r, headers)
        if r.node.kind == "symlink":
            headers["Etag"] = f'"{r.cid}"'
            if _matches(request.headers.get("if-none-match"), headers["Etag"]):
                return Response(status_code=304, headers=headers)
            headers["Content-Length"] = str(len(r.node.inline))
            return Response(
                r.node.inline if request.method == "GET" else b"",
                200,
                headers,
                "text/plain; charset=utf-8",
            )
        if r.node.kind != "file":
            raise HTTPProblem(406, f"{r.cid} is not UnixFS: ask for format=raw or format=car")
        name = request.query_params.get("filename") or (segments[-1] if segments else "")
        return await self._file(request, r, name, headers)

    async def _file(
        self, request: Request, r: Resolved, name: str, headers: dict[str, str]
    ) -> Response:
        size = r.node.size
        etag = f'"{r.cid}"'
        headers |= {"Etag": etag, "Accept-Ranges": "bytes"}
        q = request.query_params
        if q.get("download") == "true":
            headers["Content-Disposition"] = content_disposition(name or f"{r.cid}", "attachment")
        elif q.get("filename"):
            headers["Content-Disposition"] = content_disposition(q["filename"], "inline")
        if _matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        ref = None if r.cid.hash_code == 0 else self.store.lookup(r.cid.bytes)
        head = b"".join([p async for p in self._bytes(r, ref, 0, min(size, 512))])
        media = _sniff(name, head)
        start, end, status = 0, size, 200
        rng = request.headers.get("range")
        if rng:
            span = _byte_range(rng, size)
            if span is not None:
                start, end = span
                if start >= size or start >= end:
                    headers["Content-Range"] = f"bytes */{size}"
                    return Response(status_code=416, headers=headers)
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
                status = 206
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return Response(None, status, headers, media)
        return StreamingResponse(self._bytes(r, ref, start, end), status, headers, media)

    async def _bytes(
        self, r: Resolved, ref: BlockRef | None, start: int, end: int
    ) -> AsyncIterator[bytes]:
        """File bytes [start, end) straight from the stored content (no DAG walk)."""
        if start >= end:
            return
        if ref is None or ref.content is None or ref.kind not in ("leaf", "file"):
            data = r.node.inline if r.node.pb is None or not r.node.pb.links else b""
            if r.cid.hash_code != 0 and not data:
                raise NotFoundError(f"{r.cid}: no stored bytes for this file")
            yield data[start:end]
            return
        async for piece in self._shared.plaintext(
            ref.content, ref.offset + start, ref.offset + end
        ):
            yield piece

    async def _listing(self, request: Request, r: Resolved, headers: dict[str, str]) -> Response:
        headers["Etag"] = f'"DirIndex-{DIR_INDEX_VERSION}_CID-{r.cid}"'
        if _matches(request.headers.get("if-none-match"), headers["Etag"]):
            return Response(status_code=304, headers=headers)  # no shard is read
        rows: list[tuple[str, CID, int | None]] = []
        stack = [(r.cid, r.block)]
        while stack:
            cid, block = stack.pop()
            node = inspect(cid, block)
            assert node.pb is not None
            width = len(f"{node.fanout - 1:X}") if node.kind == "shard" else 0
            for link in node.pb.links:
                name = link.name or ""
                if node.kind == "shard" and len(name) == width:
                    stack.append((link.cid, await self._shared.get(link.cid)))
                    continue
                rows.append((name[width:], link.cid, link.tsize))
        rows.sort(key=lambda row: row[0].encode())
        base = request.url.path
        items = "\n".join(
            f'<tr><td><a href="{html.escape(base + urllib.parse.quote(name))}">{html.escape(name)}</a></td>'
            f"<td>{html.escape(str(cid))}</td><td>{'' if tsize is None else tsize}</td></tr>"
            for name, cid, tsize in rows
        )
        page = (
            '<!doctype html><html><head><meta charset="utf-8"><title>'
            f"{html.escape(base)}</title></head><body><h1>Index of {html.escape(base)}</h1>"
            f"<p>{html.escape(str(r.cid))}</p><table><tr><th>name</th><th>CID</th><th>size</th></tr>"
            f"{items}</table></body></html>"
        ).encode()
        headers["Content-Length"] = str(len(page))
        return Response(
            page if request.method == "GET" else b"", 200, headers, "text/html; charset=utf-8"
        )


def _problem(status: int, message: str) -> Response:
    return Response(
        f"{status} {message}\n", status, {"Cache-Control": "no-store"}, "text/plain; charset=utf-8"
    )


def gateway_app(vault: Vault) -> Starlette:
    """The gateway as an ASGI app, to be mounted at ``/ipfs`` (close it with the vault)."""
    return Gateway(vault).app()
