"""Abuse of ``ownvault serve`` as a real process on 127.0.0.1: request smuggling pairs,
slow request heads, oversize and mis-declared bodies, many connections, path tricks,
unauthenticated writes. Each test asserts the status codes and that the server's peak
resident memory (VmHWM) stayed under :data:`PEAK_RSS`. Every loop is bounded in count
and in time."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ownvault.server.listener import HEAD_SECONDS
from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import serve_process

PEAK_RSS = 200 * 1024 * 1024  # the whole server process after every attack (measured: 87-92 MiB)
MIB = 1024 * 1024


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def alive_and_small(self) -> None:
        assert self.proc.poll() is None, "the server died"
        assert httpx.get(f"{self.url}/healthz", timeout=30).status_code == 200
        peak = self.peak_rss()
        print(f"server peak RSS (VmHWM): {peak / MIB:.0f} MiB")
        assert peak < PEAK_RSS, peak


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("abuse")
    vault = make_vault(base / "vault")
    (base / "a.txt").write_bytes(b"alpha\n")
    run(vault.files.put([base / "a.txt"], name="a.txt"))
    run(vault.close())
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS}
    with serve_process(base / "vault", env, base / "serve.err") as served:
        yield Server(
            served.proc,
            int(served.doc["listening"].rsplit(":", 1)[1]),
            served.doc["ui"].split("#token=", 1)[1],
        )


def exchange(
    server: Server, data: bytes, body: Iterator[bytes] | None = None, timeout: float = 10
) -> bytes:
    """Send ``data`` (then ``body`` while the server reads), read until close or quiet."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            for piece in body or ():
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it answered is below
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def statuses(answer: bytes) -> list[int]:
    return [
        int(part.split(b" ", 2)[0]) for part in answer.split(b"HTTP/1.1 ")[1:] if part[:3].isdigit()
    ]


def head(method: str, path: str, *lines: str) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"{x}\r\n" for x in lines)
        + "\r\n"
    ).encode()


def test_smuggling_pairs_are_refused(server: Server) -> None:
    auth = f"Authorization: Bearer {server.token}"
    cases = [
        (
            head("POST", "/api/v1/jobs", "Content-Length: 5", "Transfer-Encoding: chunked")
            + b"0\r\n\r\n",
            400,
        ),
        (
            head("POST", "/api/v1/jobs", "Transfer-Encoding: chunked", "Content-Length: 5")
            + b"0\r\n\r\n",
            400,
        ),
        (
            head("POST", "/api/v1/jobs", auth, "Content-Length: 4", "Content-Length: 5") + b"{}{}}",
            400,
        ),
        (head("POST", "/api/v1/jobs", auth, "Content-Length: 4, 5") + b"{}{}}", 400),
        (head("POST", "/api/v1/jobs", auth, "Content-Length: +4") + b"{}{}", 400),
        (head("POST", "/api/v1/jobs", auth, "Content-Length: -1"), 400),
        (
            head("POST", "/api/v1/jobs", auth, "Transfer-Encoding: chunked, identity")
            + b"0\r\n\r\n",
            400,
        ),
        (head("POST", "/api/v1/jobs", auth, "Transfer-Encoding: identity") + b"0\r\n\r\n", 400),
        (
            head(
                "POST",
                "/api/v1/jobs",
                auth,
                "Transfer-Encoding: chunked",
                "Transfer-Encoding: chunked",
            )
            + b"0\r\n\r\n",
            400,
        ),
        (head("POST", "/api/v1/jobs", auth, "Transfer-Encoding : chunked") + b"0\r\n\r\n", 400),
        (
            head(
                "PATCH",
                "/api/v1/uploads/" + "0" * 32,
                "Content-Length: 1",
                "Transfer-Encoding: chunked",
            )
            + b"0\r\n\r\n",
            400,
        ),
        (
            head("GET", "/ipfs/bafkqaaa", "Content-Length: 1", "Transfer-Encoding: chunked")
            + b"0\r\n\r\n",
            400,
        ),
    ]
    for request, expected in cases:
        got = statuses(exchange(server, request))
        assert got[:1] == [expected], (request, got)
    # The 3 GB request of issue 12, cut short: 64 MiB of chunked body behind a small
    # Content-Length is refused at its head and never buffered.
    piece = f"{MIB:x}\r\n".encode() + b"x" * MIB + b"\r\n"
    got = statuses(
        exchange(
            server,
            head("POST", "/api/v1/files/tags", "Content-Length: 2", "Transfer-Encoding: chunked"),
            iter([piece] * 64),
        )
    )
    assert got[:1] == [400]
    server.alive_and_small()


def test_oversize_and_misdeclared_bodies(server: Server) -> None:
    auth = f"Authorization: Bearer {server.token}"
    big = head(
        "POST",
        "/api/v1/files/tags",
        auth,
        "Content-Type: application/json",
        f"Content-Length: {2 * MIB}",
    )
    assert statuses(exchange(server, big, iter([b" " * MIB] * 2)))[:1] == [413]
    # A small Content-Length and a bigger body: the rest is read as the next request,
    # which is not HTTP, so the connection ends with 400.
    lying = head(
        "POST", "/api/v1/files/tags", auth, "Content-Type: application/json", "Content-Length: 2"
    )
    got = statuses(exchange(server, lying + b"{}" + b"z" * (4 * MIB)))
    assert got[0] in (400, 422) and got[-1] == 400, got
    # Chunked bodies past the route's budget: JSON routes want Content-Length (411); an
    # upload past upload_total (1 TiB by default: here the chunk limit, 64 MiB) is 413.
    chunked = head("POST", "/api/v1/files/tags", auth, "Transfer-Encoding: chunked")
    assert statuses(exchange(server, chunked + b"2\r\n{}\r\n0\r\n\r\n"))[:1] == [411]
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=60
    ) as c:
        s = c.post("/api/v1/uploads", json={"name": "big.bin", "size": 100 * MIB}).json()
    patch = head(
        "PATCH",
        f"/api/v1/uploads/{s['id']}",
        auth,
        "Content-Type: application/offset+octet-stream",
        "Upload-Offset: 0",
        "Transfer-Encoding: chunked",
    )
    piece = f"{MIB:x}\r\n".encode() + b"y" * MIB + b"\r\n"
    assert statuses(exchange(server, patch, iter([piece] * 80), timeout=30))[:1] == [413]
    declared = head("PATCH", f"/api/v1/uploads/{s['id']}", "Content-Length: 70000000")
    assert statuses(exchange(server, declared))[:1] == [413]  # before authentication
    unauth_put = head("PUT", "/api/v1/files/content?name=x", "Transfer-Encoding: chunked")
    assert statuses(exchange(server, unauth_put, iter([piece] * 8)))[:1] == [401]
    server.alive_and_small()


def test_slow_request_heads_are_cut(server: Server) -> None:
    socks = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=HEAD_SECONDS + 20)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(sock)
        assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
        deadline = time.monotonic() + HEAD_SECONDS + 20
        closed = 0
        for sock in socks:
            try:
                while time.monotonic() < deadline:
                    sock.sendall(b"a")  # one byte at a time: the head never ends
                    sock.settimeout(1)
                    try:
                        if sock.recv(1024) == b"":
                            closed += 1
                            break
                    except TimeoutError:
                        continue
            except (BrokenPipeError, ConnectionResetError):
                closed += 1
        assert closed == len(socks)
        # A head bigger than the limit is refused too.
        big = (
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
            + b"b" * (128 * 1024)
            + b"\r\n\r\n"
        )
        assert statuses(exchange(server, big))[:1] in ([431], [400], [])
    finally:
        for sock in socks:
            sock.close()
    server.alive_and_small()


def test_many_connections_are_bounded(server: Server) -> None:
    def one(_i: int) -> int:
        try:
            return statuses(
                exchange(server, head("GET", "/healthz", "Connection: close"), timeout=30)
            )[0]
        except (IndexError, OSError):
            return 0

    held = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(300)]
    try:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, range(64)))
    finally:
        for sock in held:
            sock.close()
    assert set(codes) <= {200, 503, 0} and 503 in codes, codes  # past 256 connections: 503
    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(300))) == {200}
    server.alive_and_small()


def test_path_tricks(server: Server) -> None:
    auth = f"Authorization: Bearer {server.token}"
    api = [
        "/api/v1/files/content?name=../keystore.json",
        "/api/v1/files/content?name=%2e%2e/keystore.json",
        "/api/v1/files/content?name=a%00b",
        "/api/v1/files/content?name=..%2F..%2Fetc%2Fpasswd",
        "/api/v1/uploads/..%2F..%2Fkeystore.json",
        "/api/v1/uploads/%2e%2e",
        "/api/v1/%2e%2e/healthz",
        "/api/v1/files/%0d%0aX:1",
        "/api/v1/files%00",
        "/api/v1/../../etc/passwd",
        "/api/v1/uploads/%00",
    ]
    for path in api:
        got = statuses(exchange(server, head("GET", path, auth, "Connection: close")))
        assert got[:1] and got[0] in (400, 404, 422), (path, got)
    gateway = [
        "/ipfs/../api/v1/files",
        "/ipfs/%2e%2e/api/v1/files",
        "/ipfs/bafkqaaa/%2e%2e/%2e%2e/etc/passwd",
        "/ipfs/bafkqaaa%2F..%2F..",
        "/ipfs/%00",
        "/ipfs/bafkqaaa/%0d%0aSet-Cookie:x",
        "/ui/%2e%2e/%2e%2e/app.py",
        "/ui/..%2f..%2fapp.py",
    ]
    for path in gateway:
        got = statuses(exchange(server, head("GET", path, "Connection: close")))
        assert got[:1] and got[0] in (400, 404), (path, got)
    raw_ctl = b"GET /api/v1/files\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert statuses(exchange(server, raw_ctl))[:1] in ([400], [404])
    server.alive_and_small()


def test_no_mutating_route_without_a_token(server: Server) -> None:
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    tried = 0
    for path, ops in doc["paths"].items():
        for method in ops:
            if method in ("get", "head"):
                continue
            url = "/api/v1" + path.replace("{upload_id}", "0" * 32).replace("{name}", "x").replace(
                "{grant_id}", "0" * 32
            ).replace("{job_id}", "x")
            for headers in (
                {},
                {"Cookie": f"ov_session={server.token}"},
                {"Authorization": "Bearer " + "z" * 43},
            ):
                r = httpx.request(
                    method.upper(), server.url + url, headers=headers, json={}, timeout=30
                )
                assert r.status_code == 401, (method, path, headers, r.status_code)
            tried += 1
    assert tried >= 20
    server.alive_and_small()
