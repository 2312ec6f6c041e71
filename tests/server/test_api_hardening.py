"""Issue 12: request framing, bodies counted as read, names with control characters, the
Host rule, and ``ownvault ui``'s one-time launch link (regression tests)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ownvault.server.api.state import ApiLimits, Launches
from ownvault.server.app import create_app
from ownvault.server.guard import parse_host
from ownvault.server.headers import content_disposition
from tests.engine.helpers import PASS, make_vault, run
from tests.server.apiserver import TOKEN, Live, serve

LIMITS = ApiLimits(json_body=64 * 1024, upload_chunk=256 * 1024, upload_total=1024 * 1024)
CRLF_NAME = 'evil\r\nSet-Cookie: x=1\r\n\r\n"q"\\ \x01\x7f é 名.txt'


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("hardening")
    vault = make_vault(base / "vault")
    (base / "a.txt").write_bytes(b"alpha\n")
    (base / "crlf.bin").write_bytes(b"bytes of a name with CR LF\r\n\x00\xff")
    run(vault.files.put([base / "a.txt"], name="a.txt"))
    run(vault.files.put([base / "crlf.bin"], name="dir/" + CRLF_NAME))
    try:
        with serve(vault, limits=LIMITS) as s:
            yield s
    finally:
        run(vault.close())


def raw(live: Live, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` as it is; the whole answer until the server closes or goes quiet."""
    port = int(live.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_content_length_with_chunked_is_refused_before_auth(live: Live) -> None:
    body = b'{"kind": "check"}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    for path in ("/api/v1/jobs", "/api/v1/uploads/" + "0" * 32, "/ipfs/x", "/healthz"):
        for auth in (b"", f"Authorization: Bearer {TOKEN}\r\n".encode()):
            answer = raw(
                live,
                (
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                ).encode()
                + auth
                + b"\r\n"
                + chunked,
            )
            assert status(answer) == 400, (path, answer[:200])
            assert b"Content-Length and Transfer-Encoding" in answer


def test_bodies_are_counted_as_read_even_past_a_small_content_length(tmp_path: Path) -> None:
    """An HTTP server that does not stop at Content-Length (or a chunked upload) cannot
    push more than the route's budget into the app: the guard counts what it reads."""
    vault = make_vault(tmp_path / "vault")
    app = create_app(vault, token=TOKEN, limits=LIMITS)

    async def call(
        method: str, path: str, declared: int | None, pieces: int, size: int
    ) -> tuple[int, int]:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/json"),
        ]
        headers.append(
            (b"content-length", str(declared).encode())
            if declared is not None
            else (b"transfer-encoding", b"chunked")
        )
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"name=big.bin",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = 0
        answer: list[int] = []

        async def receive() -> dict[str, object]:
            nonlocal sent
            if sent >= pieces:
                return {"type": "http.request", "body": b"", "more_body": False}
            sent += 1
            return {"type": "http.request", "body": b" " * size, "more_body": True}

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                answer.append(int(message["status"]))  # type: ignore[call-overload]

        await app(scope, receive, send)
        return answer[0], sent

    async def all_calls() -> list[tuple[int, int]]:
        return [
            await call("POST", "/api/v1/files/tags", 10, 1000, 16 * 1024),
            await call("PUT", "/api/v1/files/content", None, 1000, 64 * 1024),
            await call("PUT", "/api/v1/files/content", 100, 1000, 64 * 1024),
        ]

    try:
        results = asyncio.run(all_calls())
    finally:
        run(vault.close())
    tags, put_chunked, put_lying = results
    assert tags[0] == 413 and tags[1] <= LIMITS.json_body // (16 * 1024) + 1, tags
    assert put_chunked[0] == 413 and put_chunked[1] <= LIMITS.upload_total // (64 * 1024) + 1, (
        put_chunked
    )
    assert put_lying[0] == 413 and put_lying[1] <= LIMITS.upload_total // (64 * 1024) + 1, put_lying


def test_chunked_upload_past_the_chunk_limit_is_cut(live: Live) -> None:
    with live.client() as c:
        s = c.post("/api/v1/uploads", json={"name": "cut.bin", "size": LIMITS.upload_total}).json()

        def body() -> Iterator[bytes]:
            for _ in range(40):  # 40 x 64 KiB = 2.5 MiB against a 256 KiB chunk limit
                yield b"x" * 65536

        r = c.patch(
            f"/api/v1/uploads/{s['id']}",
            content=body(),
            headers={"Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        assert c.get(f"/api/v1/uploads/{s['id']}").json()["offset"] <= LIMITS.upload_chunk
        c.delete(f"/api/v1/uploads/{s['id']}")


def test_a_name_with_cr_lf_downloads_with_its_exact_bytes(live: Live) -> None:
    name = "dir/" + CRLF_NAME
    with live.client() as c:
        r = c.get("/api/v1/files/content", params={"name": name})
        assert r.status_code == 200, r.text
        assert r.content == b"bytes of a name with CR LF\r\n\x00\xff"
        value = r.headers["content-disposition"]
        assert all(32 <= ord(ch) < 127 for ch in value), value
        encoded = value.split("filename*=UTF-8''", 1)[1]
        assert urllib.parse.unquote(encoded, errors="strict") == CRLF_NAME
        assert c.head("/api/v1/files/content", params={"name": name}).status_code == 200


def test_content_disposition_is_ascii_and_exact() -> None:
    for filename in (CRLF_NAME, "plain.txt", 'q"uote\\.txt', "\t", "é", "a;b=c.txt"):
        value = content_disposition(filename)
        assert all(32 <= ord(ch) < 127 for ch in value), value
        fallback = value.split('filename="', 1)[1].split('"', 1)[0]
        assert len(fallback) == len(filename)
        if "filename*=" in value:
            assert urllib.parse.unquote(value.split("UTF-8''", 1)[1]) == filename
        else:
            assert fallback == filename


GOOD_HOSTS = ["127.0.0.1", "127.0.0.1:8787", "localhost", "LOCALHOST:1", "[::1]", "[::1]:65535"]
HOSTILE_HOSTS = {
    "127.0.0.1:x@evil.com": 400,
    "user@127.0.0.1": 400,
    "127.0.0.1@evil.com": 400,
    "localhost.": 400,
    "127.0.0.1.:80": 400,
    "127.0.0.1:": 400,
    "127.0.0.1:0": 400,
    "127.0.0.1:65536": 400,
    "127.0.0.1:99999999": 400,
    "127.0.0.1:+80": 400,
    "127.0.0.1: 80": 400,
    "127.0.0.1:80:80": 400,
    "::1": 400,
    "[::1": 400,
    "[::1]x": 400,
    "[::1]:": 400,
    "[evil.com]": 400,
    "127.0.0.1/evil": 400,
    "127.0.0.1\\evil": 400,
    "127.0.0.1#": 400,
    "127.0.0.1?": 400,
    "": 400,
    "evil.example": 421,
    "evil.example:8787": 421,
    "127.0.0.1.evil.example": 421,
    "localhost.evil.example:80": 421,
    "[::2]": 421,
    "127.0.0.2": 421,
    "0.0.0.0": 421,
    "[::ffff:127.0.0.1]": 421,
    "attacker:8787": 421,
}


def test_host_is_parsed_strictly(live: Live) -> None:
    for host in GOOD_HOSTS:
        answer = raw(
            live, f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
        assert status(answer) == 200, (host, answer[:200])
    for host, expected in HOSTILE_HOSTS.items():
        answer = raw(
            live,
            f"GET /api/v1/session/info HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode(),
        )
        assert status(answer) == expected, (host, answer[:200])
    answer = raw(live, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n")
    assert status(answer) == 400
    assert status(raw(live, b"GET /healthz HTTP/1.0\r\n\r\n")) == 400
    assert parse_host("[::1]:8080") is not None and parse_host("[::1]:8080").host == "::1"  # type: ignore[union-attr]


def test_launch_links_work_once_and_expire() -> None:
    launches = Launches(seconds=0.2)
    a, b = launches.new(), launches.new()
    assert launches.redeem(a) and not launches.redeem(a)
    assert not launches.redeem("x" * 43) and not launches.redeem("")
    time.sleep(0.3)
    assert not launches.redeem(b)


def test_ownvault_ui_keeps_the_token_off_the_browser_command_line(tmp_path: Path) -> None:
    run(make_vault(tmp_path / "vault").close())
    record = tmp_path / "argv.json"
    browser = tmp_path / "browser.py"
    browser.write_text(
        f"#!{sys.executable}\nimport json, os, stat, sys\n"
        f"page = sys.argv[1].removeprefix('file://')\n"
        f"doc = {{'argv': sys.argv, 'mode': stat.S_IMODE(os.stat(page).st_mode),\n"
        f"       'dir_mode': stat.S_IMODE(os.stat(os.path.dirname(page)).st_mode),\n"
        f"       'page': open(page).read()}}\n"
        f"open({str(record)!r}, 'w').write(json.dumps(doc))\n"
    )
    browser.chmod(0o700)
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "BROWSER": str(browser), "DISPLAY": ""}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ownvault",
            "--vault",
            str(tmp_path / "vault"),
            "ui",
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        doc = json.loads(proc.stdout.readline())
        token = doc["ui"].split("#token=", 1)[1]
        deadline = time.monotonic() + 30
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = json.loads(record.read_text())
        assert token not in " ".join(seen["argv"]) and "token" not in " ".join(seen["argv"])
        assert seen["mode"] == 0o600 and seen["dir_mode"] == 0o700
        assert token not in seen["page"]
        link = seen["page"].split("url=", 1)[1].split('"', 1)[0].replace("&amp;", "&")
        assert link.startswith(doc["listening"] + "/launch/")
        first = httpx.get(link, follow_redirects=False)
        assert first.status_code == 303 and first.headers["cache-control"] == "no-store"
        issued = first.headers["location"].split("#token=", 1)[1]
        assert issued != token
        ok = httpx.get(
            f"{doc['listening']}/api/v1/files", headers={"Authorization": f"Bearer {issued}"}
        )
        assert ok.status_code == 200
        second = httpx.get(link, follow_redirects=False)
        assert second.status_code == 404 and "location" not in second.headers
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()
    page = Path(seen["argv"][1].removeprefix("file://"))
    assert not page.exists() and not page.parent.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ownvault_ui_stopped_by_a_signal_removes_its_launch_page(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """uvicorn re-raises the signal that stopped it; the command must still remove the
    launch page it wrote (the browser never opened it) and close the vault."""
    run(make_vault(tmp_path / "vault").close())
    record = tmp_path / "page.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {record}\n')
    browser.chmod(0o700)
    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "BROWSER": str(browser), "DISPLAY": ""}
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(tmp_path / "vault"), "ui"]
    proc = subprocess.Popen(
        [*cmd, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())
        deadline = time.monotonic() + 30
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        page = Path(record.read_text().removeprefix("file://"))
        assert page.exists()
        proc.send_signal(sig)
        assert proc.wait(30) == 128 + sig
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert not page.parent.exists()
