"""WebDAV at /dav/ of a real `ownvault serve`, spoken raw with httpx: authentication,
PROPFIND depth, GET with Range, streamed PUT, MKCOL, MOVE, COPY, DELETE, LOCK/UNLOCK, and a
PUT cut short."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx

from ownvault.server.dav import BodyStream
from tests.drive.helpers import Served, served

PROPFIND = b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>'
LOCKINFO = (
    b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    b"<D:locktype><D:write/></D:locktype><D:owner>test</D:owner></D:lockinfo>"
)


def _hrefs(body: str) -> list[str]:
    return sorted(re.findall(r"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>", body))


def _ov_get(vault: Path, env: dict[str, str], name: str, out: Path) -> bytes:
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(vault), "get", name, "-o", str(out)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    return out.read_bytes()


def test_webdav_methods_over_a_real_server(tmp_path: Path) -> None:
    data = os.urandom(2_500_000)
    with served(tmp_path) as s, contextlib.ExitStack() as stack:
        anon = stack.enter_context(httpx.Client(base_url=s.url, timeout=60))
        assert anon.request("PROPFIND", "/dav/", headers={"Depth": "0"}).status_code == 401
        r = anon.get("/dav/", auth=("ownvault", "wrong-token-" + "y" * 32))
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert anon.get("/dav/", auth=("someone", s.token)).status_code == 401
        bearer = stack.enter_context(
            httpx.Client(base_url=s.url, timeout=60, headers={"Authorization": f"Bearer {s.token}"})
        )
        assert bearer.request("PROPFIND", "/dav/", headers={"Depth": "0"}).status_code == 207
        c = stack.enter_context(
            httpx.Client(base_url=s.url, timeout=60, auth=("ownvault", s.token))
        )

        def body() -> Iterator[bytes]:  # streamed: chunked, no Content-Length
            for i in range(0, len(data), 300_000):
                yield data[i : i + 300_000]

        assert c.request("MKCOL", "/dav/docs").status_code == 201
        assert c.request("MKCOL", "/dav/docs").status_code == 405
        r = c.put("/dav/docs/big.bin", content=body())
        assert r.status_code == 201, r.text
        stored = _ov_get(s.vault, s.env, "docs/big.bin", tmp_path / "got.bin")
        assert stored == data
        r = c.get("/dav/docs/big.bin")
        assert r.content == data
        listed = subprocess.run(
            [sys.executable, "-m", "ownvault", "--vault", str(s.vault), "--json", "ls", "docs/"],
            env=s.env, check=True, capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        [obj] = json.loads(listed)["objects"]
        cid = obj["cid"]
        assert r.headers["etag"] == f'"{cid}"'
        assert r.headers["last-modified"].endswith("GMT")
        assert len(r.headers.get_list("date")) == 1
        # ranges: inside, suffix, and If-None-Match with the ETag
        r = c.get("/dav/docs/big.bin", headers={"Range": "bytes=1000000-1000099"})
        assert r.status_code == 206 and r.content == data[1_000_000:1_000_100]
        assert r.headers["content-range"] == f"bytes 1000000-1000099/{len(data)}"
        r = c.get("/dav/docs/big.bin", headers={"Range": "bytes=-10"})
        assert r.status_code == 206 and r.content == data[-10:]
        r = c.get("/dav/docs/big.bin", headers={"If-None-Match": f'"{cid}"'})
        assert r.status_code == 304
        # PROPFIND: depth 0 and 1; infinity (or no Depth) refused
        r = c.request("PROPFIND", "/dav/", headers={"Depth": "1"}, content=PROPFIND)
        assert r.status_code == 207
        assert _hrefs(r.text) == ["/dav/", "/dav/.versions/", "/dav/docs/"]
        r = c.request("PROPFIND", "/dav/docs/", headers={"Depth": "1"})
        assert "/dav/docs/big.bin" in _hrefs(r.text)
        assert "<D:getcontentlength>2500000</" in r.text.replace("ns0:", "D:")
        for depth in ({"Depth": "infinity"}, {}):
            r = c.request("PROPFIND", "/dav/", headers=depth)
            assert r.status_code == 403 and "propfind-finite-depth" in r.text
        # a second version; the first stays under .versions
        assert c.put("/dav/docs/big.bin", content=b"v2").status_code == 204
        assert c.get("/dav/docs/big.bin").content == b"v2"
        assert c.get("/dav/.versions/docs/big.bin/1").content == data
        assert c.put("/dav/.versions/docs/big.bin/1", content=b"x").status_code == 403
        # COPY and MOVE (a rename keeps the versions)
        dest = {"Destination": f"{s.url}/dav/docs/copy.bin"}
        assert c.request("COPY", "/dav/docs/big.bin", headers=dest).status_code == 201
        assert c.get("/dav/docs/copy.bin").content == b"v2"
        dest = {"Destination": f"{s.url}/dav/moved/big.bin"}
        assert c.request("MKCOL", "/dav/moved").status_code == 201
        assert c.request("MOVE", "/dav/docs/big.bin", headers=dest).status_code == 201
        assert c.get("/dav/docs/big.bin").status_code == 404
        assert c.get("/dav/.versions/moved/big.bin/1").content == data
        no = {"Destination": f"{s.url}/dav/docs/copy.bin", "Overwrite": "F"}
        assert c.request("MOVE", "/dav/moved/big.bin", headers=no).status_code == 412
        # a Destination is checked as a request path is, and decoded once as UTF-8 (raw
        # non-ASCII bytes too: a client sending "é" unescaped gets "é", not "Ã©")
        for bad in ("%FF.bin", "a%01b", "x/./y", "%3F.bin"):
            dest = {"Destination": f"{s.url}/dav/{bad}"}
            r = c.request("COPY", "/dav/docs/copy.bin", headers=dest)
            assert r.status_code == 400, (bad, r.status_code)
        raw = [("Destination", f"{s.url}/dav/caf\u00e9%25.bin".encode())]
        assert c.request("COPY", "/dav/docs/copy.bin", headers=raw).status_code == 201
        assert c.get("/dav/caf%C3%A9%25.bin").content == b"v2"
        assert c.delete("/dav/caf%C3%A9%25.bin").status_code == 204
        assert c.delete("/dav/").status_code in (403, 409)  # not the 500 it was
        # LOCK / UNLOCK (class 2)
        assert "2" in c.request("OPTIONS", "/dav/").headers["dav"]
        r = c.request("LOCK", "/dav/docs/copy.bin", content=LOCKINFO,
                      headers={"Timeout": "Second-60"})  # fmt: skip
        assert r.status_code == 200, r.text
        token = r.headers["lock-token"].strip("<>")
        assert c.put("/dav/docs/copy.bin", content=b"no").status_code == 423
        r = c.put("/dav/docs/copy.bin", content=b"yes", headers={"If": f"(<{token}>)"})
        assert r.status_code == 204
        headers = {"Lock-Token": f"<{token}>"}
        assert c.request("UNLOCK", "/dav/docs/copy.bin", headers=headers).status_code == 204
        assert c.get("/dav/docs/copy.bin").content == b"yes"
        # a lock on a new name makes an empty file (Windows, Office)
        r = c.request("LOCK", "/dav/docs/new.txt", content=LOCKINFO)
        assert r.status_code in (200, 201)
        assert c.get("/dav/docs/new.txt", headers={"If": "x"}).status_code in (200, 423)
        # names the vault cannot store, folders inside folders, DELETE
        for bad in ("/dav/docs/..%2F..%2Fx", "/dav/%FF", "/dav/a%00b", "/dav/docs/%2E"):
            assert c.put(bad, content=b"x").status_code == 400, bad
        assert c.delete("/dav/moved").status_code == 204
        assert c.get("/dav/moved/big.bin").status_code == 404
        _cut_put(s, c)
        _cut_chunked_put(s, c)


def _cut_chunked_put(s: Served, c: httpx.Client) -> None:
    """The same with a chunked body (no Content-Length): only the disconnect tells."""
    assert c.put("/dav/chunked.txt", content=b"kept").status_code == 201
    port = int(s.url.rsplit(":", 1)[1])
    auth = "Basic " + base64.b64encode(f"ownvault:{s.token}".encode()).decode()
    spool = s.vault / "spool"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"PUT /dav/chunked.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: {auth}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + (b"10000\r\n" + b"y" * 0x10000 + b"\r\n") * 5
        )
        for _ in range(400):
            parts = [p for p in spool.glob("drive-*/*") if p.stat().st_size >= 5 * 0x10000]
            if parts:
                break
            time.sleep(0.05)
        [part] = parts
    for _ in range(400):
        if not part.exists():
            break
        time.sleep(0.05)
    assert not part.exists()
    assert c.get("/dav/chunked.txt").content == b"kept"


def test_a_put_larger_than_the_server_memory_is_streamed(tmp_path: Path) -> None:
    """A PUT body is never held whole: after a first PUT has brought the put pipeline to
    its working size, a PUT four times as large (and ten times the drive's pack cache)
    raises the server's peak RSS by far less than its own size."""
    mib = 1 << 20

    def body(n: int, seed: int) -> Iterator[bytes]:
        rnd = random.Random(seed)  # fresh bytes: nothing deduplicates
        for _ in range(n):
            yield rnd.randbytes(mib)

    with served(tmp_path) as s, httpx.Client(base_url=s.url, timeout=600,
                                             auth=("ownvault", s.token)) as c:  # fmt: skip
        assert c.put("/dav/warm.bin", content=body(160, 1)).status_code == 201
        before = s.peak_rss()
        big = 640
        assert c.put("/dav/big.bin", content=body(big, 2)).status_code == 201
        grown = s.peak_rss() - before
        r = c.request("PROPFIND", "/dav/big.bin", headers={"Depth": "0"})
        assert f">{big * mib}<" in r.text  # getcontentlength
    assert grown < big * mib // 4, f"peak RSS grew by {grown // mib} MiB for a {big} MiB PUT"


def test_put_body_reads_hand_on_the_received_bytes() -> None:
    """A PUT's wsgi.input returns each received message as it is (no copy), splits one only
    for a smaller read, and ends at a disconnect."""
    first, second = os.urandom(70_000), os.urandom(10)
    messages = [
        {"type": "http.request", "body": first, "more_body": True},
        {"type": "http.request", "body": second, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        stream = BodyStream(SimpleNamespace(loop=loop, receive=receive))  # as a2wsgi's Body
        assert stream.read(1 << 20) is first
        assert stream.read(4) == second[:4] and stream.read(1 << 20) == second[4:]
        assert stream.read(1 << 20) == b"" and stream.read(1 << 20) == b""
        assert messages == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _cut_put(s: Served, c: httpx.Client) -> None:
    """A PUT whose client goes away mid-body stores nothing: the previous version stays."""
    assert c.put("/dav/keep.txt", content=b"the previous version").status_code == 201
    port = int(s.url.rsplit(":", 1)[1])
    auth = "Basic " + base64.b64encode(f"ownvault:{s.token}".encode()).decode()
    spool = s.vault / "spool"

    def spooled() -> list[Path]:
        return list(spool.glob("drive-*/*"))

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"PUT /dav/keep.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: {auth}\r\n".encode()
            + b"Content-Length: 1000000\r\n\r\n"
            + b"x" * 400_000
        )
        for _ in range(400):  # the PUT has a spool (private, 0600)
            if spooled():
                break
            time.sleep(0.05)
        [part] = spooled()
        assert part.stat().st_mode & 0o777 == 0o600
    for _ in range(400):  # the cut is noticed: the spool goes
        if not part.exists():
            break
        time.sleep(0.05)
    assert not part.exists()
    assert c.get("/dav/keep.txt").content == b"the previous version"
    r = c.request("PROPFIND", "/dav/.versions/keep.txt/", headers={"Depth": "1"})
    assert _hrefs(r.text) == ["/dav/.versions/keep.txt/", "/dav/.versions/keep.txt/1"]
