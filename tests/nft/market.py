"""Loopback HTTP servers for the NFT tests: a programmable "marketplace" and a small
trustless gateway over given blocks (optionally lying), both in a thread on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from ownvault.core.car import dfs_blocks, write_car
from ownvault.core.cid import CID

__all__ = ["Gateway", "Market", "Route"]


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the body (a hanging server)
    chunked: bool = False  # no Content-Length
    gzip: bool = False


Handler = Callable[["MarketRequest", str, dict[str, list[str]]], bool]


class MarketRequest(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.server.owner.hits.append(self.path)
        dynamic = self.server.owner.dynamic
        if dynamic is not None and dynamic(self, parts.path, urllib.parse.parse_qs(parts.query)):
            return
        route = self.server.owner.routes.get(parts.path)
        if route is None:
            self.send(404, b"not found", {"Content-Type": "text/plain"})
            return
        if route.delay:
            time.sleep(route.delay)
        body = gzip.compress(route.body) if route.gzip else route.body
        headers = dict(route.headers)
        if route.gzip:
            headers["Content-Encoding"] = "gzip"
        self.send(route.status, body, headers, chunked=route.chunked)

    def send(
        self, status: int, body: bytes, headers: dict[str, str], *, chunked: bool = False
    ) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for i in range(0, len(body), 65536):
                    piece = body[i : i + 65536]
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: Market


class Market:
    """``routes[path] = Route(...)``; ``dynamic(handler, path, query)`` answers first if set."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.dynamic: Handler | None = None
        self._server = _Server(("127.0.0.1", 0), MarketRequest)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, path: str, body: bytes | str = b"", **kw: object) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **kw)  # type: ignore[arg-type]
        return self.url + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Market:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Gateway(Market):
    """A trustless gateway (``/ipfs/CID?format=raw|car``) over ``blocks``.

    ``corrupt``: CIDs whose bytes are sent with one bit flipped; ``missing``: CIDs left out
    of CARs and 404 as raw; ``car=False``: CAR requests get 406 (raw blocks only).
    """

    def __init__(self, blocks: dict[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.blocks: dict[bytes, bytes] = dict(blocks or {})
        self.corrupt: set[bytes] = set()
        self.missing: set[bytes] = set()
        self.car = True
        self.dynamic = self._answer

    def add_blocks(self, blocks: dict[bytes, bytes]) -> None:
        self.blocks.update(blocks)

    def _block(self, cid: CID) -> bytes:
        data = self.blocks[cid.bytes]
        if cid.bytes in self.corrupt:
            data = bytes([data[0] ^ 1]) + data[1:]
        return data

    def _answer(self, h: MarketRequest, path: str, query: dict[str, list[str]]) -> bool:
        if not path.startswith("/ipfs/"):
            return False
        try:
            cid = CID.parse(path[6:].split("/")[0])
        except Exception:
            h.send(400, b"bad cid", {})
            return True
        fmt = query.get("format", [""])[0]
        if cid.bytes not in self.blocks or cid.bytes in self.missing:
            h.send(404, b"no such block", {})
            return True
        if fmt == "raw":
            h.send(200, self._block(cid), {"Content-Type": "application/vnd.ipld.raw"})
            return True
        if fmt == "car" and self.car:
            blocks = [
                (c, self._block(c))
                for c, _ in dfs_blocks(cid, lambda c: self.blocks[c.bytes])
                if c.bytes not in self.missing
            ]
            h.send(
                200,
                b"".join(write_car([cid], blocks)),
                {"Content-Type": "application/vnd.ipld.car; version=1"},
            )
            return True
        h.send(406, b"not acceptable", {})
        return True
