"""Fuzz target ``drive``: what a WebDAV client or a FUSE caller hands the drive (issue 18).

The first byte picks the front end:

* even: one WebDAV request through the real ASGI stack of ``ownvault serve``'s ``/dav/``
  (Starlette ``Mount`` -> :class:`~ownvault.server.dav.DavApp` -> a2wsgi -> WsgiDAV ->
  :class:`~ownvault.server.dav.provider.VaultDAVProvider` -> the drive over a real vault).
  The second byte picks the method; the rest is ``PATH\\nDESTINATION\\nDEPTH\\nRANGE\\nBODY``
  (the request path as it arrives on the wire, percent-escapes and all; the path and
  header values a real HTTP server would refuse are left out, as it would). Properties:
  no 5xx but 507 (a 500 is an exception we did not expect), and what a 2xx ``PUT``,
  ``MKCOL``, ``MOVE`` or ``COPY`` created is the name its request spelt, percent-decoded
  exactly once as UTF-8 (never a U+FFFD standing for bytes that were not UTF-8, never a
  control character, never a name holding ``.`` or ``..``).
* odd: one FUSE operation on :class:`~ownvault.server.fuse.VaultFS` (the second byte picks
  it; the rest is ``PATH[\\nPATH2]``, decoded as mfusepy decodes what the kernel sends:
  UTF-8 with ``surrogateescape``). Property: only ``FuseOSError`` escapes, and never
  ``EIO`` (which the mount gives for an error it did not expect).

PROPPATCH and LOCK bodies are parsed by WsgiDAV (``xml_tools``, ElementTree or lxml): the
provider sees no property values (the property manager is off: PROPPATCH is 403 per
property), and the lock owner only as WsgiDAV's stored lock; they are fuzzed here through
the whole stack all the same. Range is parsed by WsgiDAV too; the provider sees a seek.

One vault (local providers in a temporary folder) and one event loop thread per process,
made on first use and removed at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from starlette.applications import Starlette
from starlette.routing import Mount

from ownvault.engine.files.drive import VERSIONS, Drive
from ownvault.errors import OwnvaultError
from ownvault.server.api.state import Sessions
from ownvault.server.dav import DAV_PREFIX, DavApp
from ownvault.server.fuse import Loop, VaultFS
from ownvault.server.fuselib import mfusepy
from tests.engine.helpers import make_vault

__all__ = ["drive", "drive_seeds"]

T = TypeVar("T")

TOKEN = "fuzz-token-" + "f" * 32
HOST = "127.0.0.1:8787"
METHODS = [
    "PROPFIND", "PROPPATCH", "LOCK", "UNLOCK", "GET", "HEAD", "PUT", "MKCOL", "DELETE",
    "MOVE", "COPY", "OPTIONS",
]  # fmt: skip
FUSE_OPS = [
    "getattr", "readdir", "mkdir", "create", "open_read", "open_write", "unlink", "rmdir",
    "rename", "truncate", "readlink",
]  # fmt: skip
PROPPATCH = (
    b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop>'
    b"<Z:author>me</Z:author></D:prop></D:set></D:propertyupdate>"
)
LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>fuzz</D:owner></D:lockinfo>"
)
PROPFIND = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'


BASE = {"a.txt": b"hello", "d/b.txt": b"world"}  # what every input starts from


@dataclass
class _Harness:
    app: Starlette
    dav: DavApp
    drive: Drive
    fs: VaultFS
    loop: Loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(asyncio.wait_for(coro, 30))

    def state(self) -> list[tuple[str, str, int]]:
        """What an input may have changed: the root and ``d`` (every stored name has its
        first segment in the root; every change under ``d`` shows in its listing)."""

        async def look() -> list[tuple[str, str, int]]:
            out = []
            for where in ("", "d"):
                with contextlib.suppress(OwnvaultError):
                    out += [(n.path, n.etag, n.size) for n in await self.drive.listdir(where)]
            return out

        return self.run(look())

    def restore(self) -> None:
        """Back to ``BASE`` only: every other name and folder removed (so each input is a
        test of its own, and a crash replays from its input alone)."""
        drive = self.drive

        async def restore() -> None:
            for node in await drive.listdir(""):
                if node.path == VERSIONS:
                    continue
                if node.kind == "dir":
                    await drive.rmdir(node.path, recursive=True)
                else:
                    await drive.remove(node.path)
            for name, data in BASE.items():
                handle = await drive.open_write(name, truncate=True)
                handle.spool.write(0, data)
                await drive.release(handle)

        self.run(restore())


@cache
def _harness() -> _Harness:
    tmp = Path(tempfile.mkdtemp(prefix="ownvault-fuzz-drive-"))
    vault = make_vault(tmp / "vault", providers=2, k=1)
    loop = Loop()
    drive = Drive(vault.ctx)
    dav = DavApp(drive, Sessions(TOKEN))
    app = Starlette(routes=[Mount(DAV_PREFIX, app=dav)])

    def close() -> None:
        loop.run(drive.close())
        loop.run(vault.close())
        loop.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(close)
    h = _Harness(app, dav, drive, VaultFS(drive, loop), loop)
    h.restore()
    return h


def _wire_ok(value: bytes) -> bool:
    """What an HTTP/1.1 server accepts in a header value (h11: visible ASCII, spaces and
    tabs inside, and obs-text, bytes 0x80-0xFF)."""
    return (
        value == value.strip(b" \t")
        and all(b >= 0x20 or b == 0x09 for b in value)
        and (0x7F not in value)
    )


def _name(raw: bytes) -> str | None:
    """The name a request path spells, decoded once as strict UTF-8 (None: not a name)."""
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.strip("/")


def _acceptable(name: str | None) -> bool:
    return (
        name is not None
        and name != ""
        and not any(ord(c) < 0x20 or c == "\x7f" for c in name)
        and not any(seg in ("", ".", "..") for seg in name.split("/"))
    )


def _dav(h: _Harness, data: bytes) -> None:
    if not data:
        return
    method = METHODS[data[0] % len(METHODS)]
    path, dest, depth, rng, body = (data[1:].split(b"\n", 4) + [b""] * 5)[:5]
    raw = b"/dav/" + path.lstrip(b"/")
    if not all(0x21 <= b <= 0x7E for b in raw) or b"#" in raw:
        return  # no HTTP server hands this on as a request target
    raw_path, _, query = raw.partition(b"?")
    auth = base64.b64encode(f"ownvault:{TOKEN}".encode())
    headers = [(b"host", HOST.encode()), (b"authorization", b"Basic " + auth)]
    for key, value in ((b"destination", dest), (b"depth", depth), (b"range", rng)):
        if value and _wire_ok(value):
            headers.append((key, value))
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("ascii")),  # as uvicorn makes it
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
    }
    status: list[int] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the answer is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    h.run(h.app(scope, receive, send))
    assert status, f"{method} {raw!r}: no answer"
    code = status[0]
    cross = method in ("MOVE", "COPY") and code == 502  # a destination on another server
    assert code < 500 or code == 507 or cross, f"{method} {raw!r} dest={dest!r}: {code}"
    if not 200 <= code < 300:
        return
    made: str | None = None
    if method in ("PUT", "MKCOL"):
        made = _name(raw_path[len(b"/dav/") :])
    elif method in ("MOVE", "COPY"):
        dest_path = urlsplit(dest.decode("latin-1")).path.encode("latin-1")
        assert dest_path.startswith(b"/dav/"), f"{method} to {dest!r} answered {code}"
        made = _name(dest_path[len(b"/dav/") :])
    else:
        return
    assert _acceptable(made), f"{method} {raw!r} dest={dest!r} made {made!r} ({code})"
    assert made is not None
    node = h.run(h.drive.stat(made))  # NotFoundError here: the name made is not the one spelt
    assert node.path == made


def _fuse(h: _Harness, data: bytes) -> None:
    for one_op in data.split(b"\0")[:16]:
        if one_op:
            _fuse_op(h, one_op)


def _fuse_op(h: _Harness, data: bytes) -> None:
    op = FUSE_OPS[data[0] % len(FUSE_OPS)]
    one, _, two = data[1:].partition(b"\n")
    # the kernel hands absolute paths (never NUL, the separator here); mfusepy decodes them
    p1 = "/" + one.lstrip(b"/").decode("utf-8", "surrogateescape")
    p2 = "/" + two.lstrip(b"/").decode("utf-8", "surrogateescape")
    fs = h.fs
    try:
        if op == "getattr":
            fs.getattr(p1)
        elif op == "readdir":
            fs.readdir(p1, 0)
        elif op == "mkdir":
            fs.mkdir(p1, 0o755)
        elif op == "create":
            fh = fs.create(p1, 0o644)
            try:
                fs.write(p1, two[:64], 0, fh)
                fs.flush(p1, fh)
            finally:
                fs.release(p1, fh)
        elif op in ("open_read", "open_write"):
            fh = fs.open(p1, os.O_RDONLY if op == "open_read" else os.O_RDWR)
            try:
                if op == "open_read":
                    fs.read(p1, 4096, len(two), fh)
                else:
                    fs.write(p1, two[:64], len(two), fh)
            finally:
                fs.release(p1, fh)
        elif op == "unlink":
            fs.unlink(p1)
        elif op == "rmdir":
            fs.rmdir(p1)
        elif op == "rename":
            fs.rename(p1, p2)
        elif op == "truncate":
            fs.truncate(p1, len(two))
        else:
            fs.readlink(p1)
    except mfusepy.FuseOSError as exc:
        assert exc.errno != errno.EIO, f"{op} {p1!r} {p2!r}: EIO (an unexpected error)"


def drive(data: bytes) -> None:
    if not data:
        return
    h = _harness()
    before = h.state()
    try:
        (_fuse if data[0] & 1 else _dav)(h, data[1:])
    finally:
        assert h.dav.wsgi.lock_manager is not None
        h.dav.wsgi.lock_manager.storage.clear()
        if h.state() != before:
            h.restore()


def _req(method: str, *parts: bytes) -> bytes:
    return b"\x00" + bytes((METHODS.index(method),)) + b"\n".join(parts)


def _op(name: str, *parts: bytes) -> bytes:
    return bytes((FUSE_OPS.index(name),)) + b"\n".join(parts)


def _ops(*ops: bytes) -> bytes:
    return b"\x01" + b"\0".join(ops)


def drive_seeds() -> list[bytes]:
    return [
        _req("PUT", b"a.txt", b"", b"", b"", b"hello"),
        _req("PUT", b"docs/100%25%20sure.txt", b"", b"", b"", b"x"),
        _req("MKCOL", b"folder/"),
        _req("PROPFIND", b"", b"", b"1", b"", PROPFIND),
        _req("GET", b"a.txt", b"", b"", b"bytes=1-3"),
        _req("MOVE", b"a.txt", b"http://" + HOST.encode() + b"/dav/b%C3%A9.txt"),
        _req("COPY", b"b%C3%A9.txt", b"/dav/c.txt"),
        _req("LOCK", b"locked.txt", b"", b"0", b"", LOCKINFO),
        _req("PROPPATCH", b"c.txt", b"", b"", b"", PROPPATCH),
        _req("DELETE", b"c.txt"),
        _req("GET", b"d/b.txt", b"", b"", b"bytes=-2"),
        _req("MOVE", b"d/", b"/dav/e/"),
        _ops(_op("create", b"f.txt", b"bytes"), _op("getattr", b"f.txt")),
        _ops(_op("readdir", b""), _op("readdir", b"d")),
        _ops(_op("open_read", b"a.txt", b"x"), _op("open_write", b"a.txt", b"yz")),
        _ops(_op("rename", b"a.txt", b"g/h.txt"), _op("truncate", b"g/h.txt", b"ab")),
        _ops(_op("mkdir", b"dir"), _op("rename", b"dir", b"dir2"), _op("rmdir", b"dir2")),
        _ops(_op("unlink", b"d/b.txt"), _op("rmdir", b"d")),
        _ops(_op("readlink", b"a.txt")),
    ]


def drive_fixtures() -> dict[str, bytes]:
    """Hand-made hostile inputs (``tests/fixtures/corrupt/drive/``): names that are not
    UTF-8, control characters, dot segments, ``?`` and raw non-ASCII bytes in a MOVE or
    COPY Destination, the root deleted, over-long names, malformed XML, Range and Depth."""
    long = b"n" * 5000
    return {
        "dav-move-dest-not-utf8": _req("MOVE", b"a.txt", b"/dav/%FF.txt"),
        "dav-copy-dest-control-char": _req("COPY", b"a.txt", b"/dav/a%01b"),
        "dav-copy-dest-dotdot": _req("COPY", b"a.txt", b"/dav/q/../../z"),
        "dav-copy-dest-dot": _req("COPY", b"a.txt", b"/dav/d/./z"),
        "dav-copy-dest-question-mark": _req("COPY", b"a.txt", b"/dav/a%3Fb"),
        "dav-move-dest-raw-utf8": _req(
            "MOVE", b"a.txt", b"http://" + HOST.encode() + b"/dav/\xc3\xa9"
        ),
        "dav-move-dest-raw-latin1": _req("MOVE", b"a.txt", b"/dav/caf\xe9"),
        "dav-move-dest-other-host": _req("MOVE", b"a.txt", b"http://elsewhere/dav/x"),
        "dav-delete-root": _req("DELETE", b""),
        "dav-put-path-not-utf8": _req("PUT", b"%C3%28.txt", b"", b"", b"", b"x"),
        "dav-put-path-nul": _req("PUT", b"a%00b", b"", b"", b"", b"x"),
        "dav-put-long-name": _req("PUT", long, b"", b"", b"", b"x"),
        "dav-put-double-escaped-dotdot": _req("PUT", b"%252e%252e/x", b"", b"", b"", b"x"),
        "dav-propfind-depth-infinity": _req("PROPFIND", b"", b"", b"infinity", b"", PROPFIND),
        "dav-propfind-bad-xml": _req("PROPFIND", b"", b"", b"1", b"", b"<D:propfind"),
        "dav-proppatch-entity": _req(
            "PROPPATCH",
            b"a.txt",
            b"",
            b"",
            b"",
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>',
        ),
        "dav-lock-bad-xml": _req("LOCK", b"a.txt", b"", b"0", b"", b"<x"),
        "dav-get-range-huge": _req("GET", b"a.txt", b"", b"", b"bytes=99999999999999999999-"),
        "dav-get-range-garbage": _req("GET", b"a.txt", b"", b"", b"bytes=5-1,x-,-"),
        "fuse-not-utf8": _ops(_op("create", b"a\xff", b"x"), _op("rename", b"a.txt", b"\xfe")),
        "fuse-long-name": _ops(_op("create", long[:300], b"x"), _op("mkdir", long[:1100])),
        "fuse-dotdot": _ops(_op("rename", b"a.txt", b"d/../x"), _op("getattr", b"d/..")),
        "fuse-versions": _ops(_op("create", b".versions/a.txt/9"), _op("unlink", b".versions")),
        "fuse-root": _ops(_op("rmdir", b""), _op("unlink", b""), _op("rename", b"", b"x")),
    }
