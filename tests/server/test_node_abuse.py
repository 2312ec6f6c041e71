"""The storage node under abuse, as a real process on loopback (issue 12).

Every test asserts the status codes it provokes and that the node's peak resident memory
(VmHWM) stayed under RSS_BOUND. Loops are bounded in count and time; nothing here
asserts a duration.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_message_signatures import HTTPMessageSigner

from ownvault.errors import UsageError
from ownvault.providers.base import ObjectInfo, validate_name
from ownvault.providers.node import NodeProvider, SeedSigner, Signer, sign_request
from ownvault.providers.node.protocol import (
    COVERED_COMPONENTS,
    NODE_HEADER,
    PROTOCOL,
    SIGNATURE_LABEL,
    DidKeyEd25519,
)
from ownvault.server.node.store import account_dir_name
from tests.server.nodes import Node, NodeCluster

from ..providers.contract import run

RSS_BOUND = 200 * 1024 * 1024
MiB = 1 << 20


def peak_rss(node: Node) -> int:
    assert node.process is not None
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeCluster]:
    with NodeCluster(tmp_path_factory.mktemp("abuse")) as c:
        yield c


@pytest.fixture(scope="module")
def node(cluster: NodeCluster) -> Node:
    extra = ("--max-connections", "64", "--header-timeout", "2", "--idle-timeout", "3")
    extra += ("--upload-budget", "128MiB")
    return cluster.start(cluster.add(quota="200MiB", extra=extra))


@pytest.fixture(autouse=True)
def memory_bounded(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("node", "tight"):
        if name in request.fixturenames:
            target = request.getfixturevalue(name)
            assert target.alive, target.stderr[-10:]
            assert peak_rss(target) < RSS_BOUND, f"node peak RSS {peak_rss(target)} bytes"


# -- helpers ---------------------------------------------------------------------------------


def signed(
    node: Node,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    signer: Signer,
    raw_path: bytes | None = None,
) -> httpx.Request:
    url = httpx.URL(node.url + path)
    if raw_path is not None:
        url = url.copy_with(raw_path=raw_path)
    req = httpx.Request(method, url, content=body if method in ("PUT", "POST") else None)
    sign_request(req, signer, node.node_id, body)
    return req


def send(req: httpx.Request) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.send(req)


def head_bytes(req: httpx.Request, **replace: str) -> bytes:
    """The request line and headers of ``req`` as sent on the wire (with ``replace``d
    headers: a value of "" drops the header)."""
    headers = {k.lower(): v for k, v in req.headers.items()}
    for key, value in replace.items():
        key = key.replace("_", "-")
        if value:
            headers[key] = value
        else:
            headers.pop(key, None)
    target = req.url.raw_path.decode()
    lines = [f"{req.method} {target} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def exchange(node: Node, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send raw bytes, read until the node closes the connection (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def statuses(raw: bytes) -> list[int]:
    out = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            out.append(int(line.split()[1]))
    return out


def chunked(body: bytes, size: int = 65536) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def objects_on_disk(node: Node, signer: Signer) -> list[str]:
    base = node.data / "accounts" / account_dir_name(signer.did) / "objects"
    return sorted(
        os.path.relpath(os.path.join(d, f), base)
        for d, _dirs, files in os.walk(base)
        for f in files
    )


def temp_files(node: Node) -> list[str]:
    return [
        f
        for d, _dirs, files in os.walk(node.data / "accounts")
        for f in files
        if d.endswith("/tmp")
    ]


def metric(node: Node, name: str, label: str = "") -> float:
    text = httpx.get(node.url + "/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and label in line and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- request smuggling and framing -----------------------------------------------------------


@pytest.mark.parametrize(
    "te",
    ["chunked", "Chunked", "chunked, chunked", "gzip, chunked", "identity", "xchunked", " chunked"],
)
def test_content_length_with_transfer_encoding_is_400_and_closes(node: Node, te: str) -> None:
    me = SeedSigner.generate()
    req = signed(node, "PUT", "/v1/objects/smuggle", b"hello", signer=me)
    smuggled = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"
    raw = head_bytes(req, transfer_encoding=te) + chunked(b"hello") + smuggled
    got = statuses(exchange(node, raw))
    # One answer, a 400, and the connection closed: the smuggled request is never served.
    assert got == [400], got
    assert objects_on_disk(node, me) == []


def test_two_content_lengths_are_400(node: Node) -> None:
    me = SeedSigner.generate()
    req = signed(node, "PUT", "/v1/objects/twice", b"hello", signer=me)
    raw = head_bytes(req).replace(b"\r\n\r\n", b"\r\ncontent-length: 4\r\n\r\n") + b"hello"
    assert statuses(exchange(node, raw))[:1] == [400]
    assert objects_on_disk(node, me) == []


def test_small_content_length_with_a_big_chunked_body_stores_nothing(node: Node) -> None:
    """The quota pre-check reads Content-Length: a small one must not let a big body in."""
    me = SeedSigner.generate()
    body = os.urandom(3 * MiB)
    req = signed(node, "PUT", "/v1/objects/big", body, signer=me)
    raw = head_bytes(req, content_length="10", transfer_encoding="chunked") + chunked(body)
    assert statuses(exchange(node, raw))[:1] == [400]
    assert objects_on_disk(node, me) == [] and temp_files(node) == []


def test_chunked_without_length_is_411(node: Node) -> None:
    me = SeedSigner.generate()
    body = os.urandom(1000)
    req = signed(node, "PUT", "/v1/objects/nolen", body, signer=me)
    raw = head_bytes(req, content_length="", transfer_encoding="chunked") + chunked(body)
    assert statuses(exchange(node, raw))[:1] == [411]
    assert objects_on_disk(node, me) == []


# -- slow and many connections ---------------------------------------------------------------


def test_slow_headers_are_cut(node: Node) -> None:
    """A head trickled one byte at a time is cut at the header deadline (2 s here)."""
    head = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: " + b"a" * 200
    closed = False
    with socket.create_connection(("127.0.0.1", node.port), timeout=2) as sock:
        deadline = time.monotonic() + 12
        for byte in head:
            if time.monotonic() > deadline:
                break
            try:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
                sock.setblocking(False)
                try:
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert closed, "the node kept a connection whose head never completed"
    assert metric(node, "ownvault_node_connections_closed_total", 'reason="header_timeout"') >= 1


def test_many_half_open_connections_do_not_lock_clients_out(node: Node) -> None:
    """300 connections that each send half a head (cap 64 here): clients still get in."""
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            s.sendall(b"PUT /v1/objects/x HTTP/1.1\r\nhost: a\r\n")
            socks.append(s)
        me = SeedSigner.generate()
        provider = NodeProvider(node.url, me, timeout=10)
        run(provider.put("through", b"still served"))
        assert run(provider.get("through")) == b"still served"
        run(provider.close())
        assert httpx.get(node.url + "/healthz", timeout=10).status_code == 200
    finally:
        for s in socks:
            s.close()
    assert metric(node, "ownvault_node_connections_closed_total", 'reason="evicted"') >= 300 - 64


def test_error_flood_logs_one_line_per_kind(node: Node) -> None:
    before = len([x for x in node.stderr if "Invalid HTTP request" in x])
    for _ in range(100):
        exchange(node, b"NOT HTTP AT ALL\r\n\r\n", timeout=5)
    lines = [x for x in node.stderr if "Invalid HTTP request" in x]
    assert len(lines) - before <= 1, lines
    assert metric(node, "ownvault_node_log_lines_suppressed") >= 99


# -- uploads: memory, budget, quota ----------------------------------------------------------


_SIGNER = HTTPMessageSigner(signature_algorithm=DidKeyEd25519)


def sign_streamed(req: httpx.Request, signer: Signer, node_id: str, sha256: bytes) -> None:
    """Sign a request whose body is streamed: its Content-Digest is computed beforehand."""
    req.headers[NODE_HEADER] = node_id
    req.headers["content-digest"] = f"sha-256=:{base64.b64encode(sha256).decode()}:"
    prepared = _SIGNER.prepare(
        req,
        key_id=signer.did,
        created=datetime.datetime.now(datetime.UTC),
        nonce=base64.urlsafe_b64encode(os.urandom(18)).decode(),
        label=SIGNATURE_LABEL,
        tag=PROTOCOL,
        include_alg=True,
        covered_component_ids=COVERED_COMPONENTS,
        use_existing_digest=True,
    )
    _SIGNER.apply(req, prepared, signer.sign(prepared.signature_base))


def stream_put(node: Node, signer: Signer, name: str, size: int, out: list[object]) -> None:
    """PUT ``size`` bytes (a repeated 1 MiB block) without holding them; record the outcome."""
    block = hashlib.sha256(name.encode()).digest() * (MiB // 32)
    blocks = size // MiB
    digest = hashlib.sha256()
    for _ in range(blocks):
        digest.update(block)

    def body() -> Iterator[bytes]:
        for _ in range(blocks):
            yield block

    req = httpx.Request(
        "PUT",
        node.url + f"/v1/objects/{name}",
        content=body(),
        headers={"content-length": str(blocks * MiB)},
    )
    sign_streamed(req, signer, node.node_id, digest.digest())
    try:
        with httpx.Client(timeout=60) as client:
            r = client.send(req)
            out.append((r.status_code, r.headers.get("retry-after"), r.text[:80]))
    except httpx.TransportError as exc:
        out.append(exc)


def test_concurrent_big_uploads_stream_under_the_budget(node: Node) -> None:
    """12 accounts upload 60 MiB each at once: the node holds none in memory (it held all,
    1.1 GB, before), refuses beyond its 128 MiB in-flight budget with 503 + Retry-After,
    and leaves no partial object or temp file."""
    signers = [SeedSigner.generate() for _ in range(12)]
    out: list[object] = []
    threads = [
        threading.Thread(target=stream_put, args=(node, s, "big/one", 60 * MiB, out))
        for s in signers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert len(out) == 12, out
    answers = [o for o in out if isinstance(o, tuple)]
    assert any(a[:2] == (201, None) for a in answers), out
    busy = [a for a in answers if a[0] == 503]
    assert busy and all(a[1] is not None for a in busy), out
    assert {a[0] for a in answers} <= {201, 503}, out
    stored = sum(len(objects_on_disk(node, s)) for s in signers)
    assert stored == sum(1 for a in answers if a[0] == 201)
    for s in signers:
        for name in objects_on_disk(node, s):
            path = node.data / "accounts" / account_dir_name(s.did) / "objects" / name
            assert path.stat().st_size == 60 * MiB
    assert temp_files(node) == []
    print(f"\nnode peak RSS after 12 x 60 MiB uploads: {peak_rss(node) / MiB:.0f} MiB; {out}")


def test_quota_counts_bytes_as_they_arrive(cluster: NodeCluster) -> None:
    """Two 20 MiB uploads at once into a 30 MiB quota: each passes the pre-check, one is
    cut off mid-body (507) and leaves nothing behind."""
    small = cluster.start(cluster.add(quota="30MiB"))
    me = SeedSigner.generate()
    out: list[object] = []
    threads = [
        threading.Thread(target=stream_put, args=(small, me, f"q/{i}", 20 * MiB, out))
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    codes = sorted(o[0] if isinstance(o, tuple) else 0 for o in out)
    assert codes in ([201, 507], [0, 201]), out
    assert len(objects_on_disk(small, me)) == 1 and temp_files(small) == []
    assert peak_rss(small) < RSS_BOUND
    cluster.kill(small)


def test_oversize_body_is_413_and_leaves_nothing(node: Node) -> None:
    me = SeedSigner.generate()
    body = os.urandom(65 * MiB)
    r = send(signed(node, "PUT", "/v1/objects/huge", body, signer=me))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    assert objects_on_disk(node, me) == [] and temp_files(node) == []


# -- hostile documents and parameters --------------------------------------------------------


def test_deeply_nested_audit_json_is_400(node: Node) -> None:
    me = SeedSigner.generate()
    body = b'{"challenges":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    r = send(signed(node, "POST", "/v1/audit", body, signer=me))
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_request")


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("offset=999999999999999999", 400),
        ("offset=0&length=999999999999999999", 400),
        ("offset=1099511627777", 400),
        ("offset=1000000", 200),  # past the end: empty (the Provider contract)
        ("offset=0&length=1000000000000", 200),  # longer than the object: to its end
    ],
)
def test_ranges_out_of_bounds(node: Node, query: str, status: int) -> None:
    me = SeedSigner.generate()
    assert send(signed(node, "PUT", "/v1/objects/r", b"0123456789", signer=me)).status_code == 201
    r = send(signed(node, "GET", f"/v1/objects/r?{query}", signer=me))
    assert r.status_code == status, r.text
    if status == 200:
        assert r.content in (b"", b"0123456789")


# -- names and paths -------------------------------------------------------------------------


def test_validator_refuses_a_trailing_newline() -> None:
    for bad in ("abc\n", "a/b\n", "abc\r", "abc\x00"):
        with pytest.raises(UsageError):
            validate_name(bad)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/v1/objects/abc%0A",
        b"/v1/objects/abc%0a",
        b"/v1/objects/%2e%2e/%2e%2e/node.json",
        b"/v1/objects/a/%2e%2e/%2e%2e/%2e%2e/node.json",
        b"/v1/objects/..%2F..%2Fnode.json",
        b"/v1/objects/a%00b",
        b"/v1/objects/a%2Fb%2F..%2F..%2F..",
        b"/v1/objects/%252e%252e/x",
        b"/v1/objects/a%5C..%5Cx",
        b"/v1/objects//abs",
    ],
)
def test_path_tricks_never_store_outside_the_account(node: Node, raw_path: bytes) -> None:
    me = SeedSigner.generate()
    before = sorted(p.name for p in node.data.iterdir())
    r = send(signed(node, "PUT", "/v1/objects/x", b"evil", signer=me, raw_path=raw_path))
    assert r.status_code in (400, 404), (r.status_code, r.text)
    assert sorted(p.name for p in node.data.iterdir()) == before
    assert objects_on_disk(node, me) == []
    g = send(signed(node, "GET", "/v1/objects/x", signer=me, raw_path=raw_path))
    assert g.status_code in (400, 404)


# -- replay and other accounts ---------------------------------------------------------------


def test_replayed_request_is_refused(node: Node) -> None:
    me = SeedSigner.generate()
    req = signed(node, "PUT", "/v1/objects/once", b"first", signer=me)
    assert send(req).status_code == 201
    assert send(signed(node, "DELETE", "/v1/objects/once", signer=me)).status_code == 204
    again = send(req)
    assert (again.status_code, again.json()["error"]["code"]) == (401, "replayed_nonce")
    assert objects_on_disk(node, me) == []


def test_other_accounts_objects_are_out_of_reach(node: Node) -> None:
    owner, other = SeedSigner.generate(), SeedSigner.generate()
    assert (
        send(signed(node, "PUT", "/v1/objects/mine", b"owner's", signer=owner)).status_code == 201
    )
    assert send(signed(node, "GET", "/v1/objects/mine", signer=other)).status_code == 404
    assert send(signed(node, "HEAD", "/v1/objects/mine", signer=other)).status_code == 404
    assert send(signed(node, "DELETE", "/v1/objects/mine", signer=other)).status_code == 204
    listing = send(signed(node, "GET", "/v1/objects?prefix=", signer=other)).json()
    assert listing == {"objects": [], "next": None}
    assert send(signed(node, "GET", "/v1/objects/mine", signer=owner)).content == b"owner's"


@pytest.fixture(scope="module")
def tight(cluster: NodeCluster) -> Node:
    return cluster.start(cluster.add(extra=("--max-nonces-per-account", "20")))


def test_nonce_cache_is_bounded_per_account(tight: Node) -> None:
    """One account that fills its share of the replay cache is refused (503, retry); a
    second account is served all along."""
    noisy, quiet = SeedSigner.generate(), SeedSigner.generate()
    codes = [send(signed(tight, "GET", "/v1/info", signer=noisy)).status_code for _ in range(25)]
    assert codes[:20] == [200] * 20 and codes[20:] == [503] * 5
    busy = send(signed(tight, "GET", "/v1/info", signer=noisy))
    assert (busy.status_code, busy.json()["error"]["code"]) == (503, "busy")
    for _ in range(10):
        assert send(signed(tight, "GET", "/v1/info", signer=quiet)).status_code == 200


# -- listings --------------------------------------------------------------------------------


def test_paged_listing_of_20k_objects(cluster: NodeCluster) -> None:
    """20,000 objects (written to the account's folder while the node is down, then a few
    puts and deletes through the node): paging gives every name once, in order."""
    lister = cluster.add()
    cluster.start(lister)
    me = SeedSigner.generate()
    provider = NodeProvider(lister.url, me)
    run(provider.put("seed", b"x"))
    cluster.kill(lister)
    objects = lister.data / "accounts" / account_dir_name(me.did) / "objects"
    names = {"seed"}
    for i in range(20_000):
        name = f"shares/{i % 7}/{i:06d}" if i % 3 else f"s{i:06d}"
        path = objects / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"%d" % i)
        names.add(name)
    cluster.restart(lister)
    for i in range(5):
        run(provider.put(f"late/{i}", b"late"))
        names.add(f"late/{i}")
    for gone in ("s000000", "shares/1/000001", "late/0"):
        run(provider.delete(gone))
        names.discard(gone)
    start = time.perf_counter()
    listed = [info.name for info in run(_collect(provider, ""))]
    elapsed = time.perf_counter() - start
    assert listed == sorted(names)
    sub = [info.name for info in run(_collect(provider, "shares/3/"))]
    assert sub == sorted(n for n in names if n.startswith("shares/3/"))
    sizes = {info.name: info.size for info in run(_collect(provider, "s0000"))}
    assert sizes and all(sizes[n] == len(b"%d" % int(n[1:])) for n in sizes)
    run(provider.close())
    print(f"\nlisted {len(listed)} objects in {len(listed) // 1000 + 1} pages: {elapsed:.2f} s")
    assert peak_rss(lister) < RSS_BOUND


async def _collect(provider: NodeProvider, prefix: str) -> list[ObjectInfo]:
    return [info async for info in provider.list(prefix)]
