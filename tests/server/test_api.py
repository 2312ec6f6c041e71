"""The vault API over real HTTP (uvicorn on 127.0.0.1 in a thread): contract and security."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ownvault.server.api.state import ApiLimits, Sessions
from tests.engine.helpers import make_vault, run
from tests.server.apiserver import Live, serve

OCTETS = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("api")
    vault = make_vault(base / "vault")
    (base / "a.txt").write_text("alpha\n")
    run(vault.files.put([base / "a.txt"], name="docs/a.txt", tags=["t1"]))
    limits = ApiLimits(json_body=64 * 1024, upload_chunk=1024 * 1024, upload_total=64 * 1024 * 1024)
    try:
        with serve(vault, limits=limits) as s:
            yield s
    finally:
        run(vault.close())


@pytest.fixture()
def c(live: Live) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def test_every_private_route_needs_the_token(live: Live) -> None:
    doc = httpx.get(f"{live.url}/api/v1/openapi.json").json()
    with live.client(auth=False) as anon:
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if "security" not in op:
                    continue
                url = "/api/v1" + path.replace("{upload_id}", "0" * 32).replace(
                    "{job_id}", "x"
                ).replace("{name}", "x")
                r = anon.request(method.upper(), url, params={"name": "docs/a.txt"})
                assert r.status_code == 401, (method, path, r.status_code)
                if method != "head":
                    assert r.json()["error"]["code"] == "unauthorized"
                r = anon.request(
                    method.upper(),
                    url,
                    params={"name": "docs/a.txt"},
                    headers={"Authorization": "Bearer " + "y" * 40},
                )
                assert r.status_code == 401
    assert not any("security" not in op for op in doc["paths"]["/files"].values())


def test_cookie_works_for_downloads_only(live: Live) -> None:
    with live.client(auth=False) as anon:
        r = anon.post("/api/v1/session", headers={"Authorization": f"Bearer {live.token}"})
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/api/v1" in cookie
        assert (
            anon.get("/api/v1/files/content", params={"name": "docs/a.txt"}).content == b"alpha\n"
        )
        for method, url in (
            ("DELETE", "/api/v1/files"),
            ("POST", "/api/v1/files/tags"),
            ("POST", "/api/v1/jobs"),
        ):
            r = anon.request(
                method,
                url,
                params={"name": "docs/a.txt"},
                json={"name": "docs/a.txt", "add": ["x"], "kind": "check"},
            )
            assert r.status_code == 401, url
            assert "cookie alone" in r.json()["error"]["message"]


def test_login_with_passphrase_and_logout(live: Live) -> None:
    with live.client(auth=False) as anon:
        assert (
            anon.post("/api/v1/session", json={"passphrase": "nope"}).json()["error"]["code"]
            == "auth"
        )
        token = anon.post("/api/v1/session", json={"passphrase": "test passphrase"}).json()["token"]
        h = {"Authorization": f"Bearer {token}"}
        assert anon.get("/api/v1/identity", headers=h).json()["did"].startswith("did:key:z6Mk")
        assert anon.delete("/api/v1/session", headers=h).status_code == 204
        anon.cookies.clear()
        assert anon.get("/api/v1/identity", headers=h).status_code == 401


def test_sessions_compare_every_token() -> None:
    s = Sessions("p" * 43)
    t = s.issue()
    assert (
        s.valid("p" * 43)
        and s.valid(t)
        and not s.valid(t[:-1])
        and not s.valid("")
        and not s.valid(None)
    )
    s.revoke(t)
    assert not s.valid(t)


def test_host_header_must_be_loopback(live: Live) -> None:
    for host in ("evil.example", "127.0.0.1.evil.example:80", "attacker:8787"):
        r = httpx.get(f"{live.url}/api/v1/session/info", headers={"Host": host})
        assert r.status_code == 421
    assert httpx.get(f"{live.url}/healthz", headers={"Host": "localhost"}).status_code == 200


def test_security_headers(live: Live, c: httpx.Client) -> None:
    for path in ("/", "/ui/js/app.js", "/api/v1/files"):
        r = c.get(path)
        csp = r.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp
            and "default-src 'none'" in csp
        )
        assert (
            r.headers["x-frame-options"] == "DENY"
            and r.headers["x-content-type-options"] == "nosniff"
        )
    html = c.get("/").text
    assert (
        "<script>" not in html
        and "style=" not in html
        and "http" not in html.replace("http-equiv", "")
    )


def test_no_path_traversal(live: Live, c: httpx.Client) -> None:
    for name in ("../etc/passwd", "docs/../../x", "/etc/passwd/..", "a//b/./c"):
        r = c.get("/api/v1/files/content", params={"name": name})
        assert r.status_code in (400, 404), name
    for path in (
        "/ui/../api.py",
        "/ui/%2e%2e/__init__.py",
        "/ui/js/../../__init__.py",
        "/ui//etc/passwd",
    ):
        assert c.get(path).status_code == 404, path
    for upload in ("..%2F..%2Fkeystore.json", "../keystore", "0" * 31 + "g"):
        assert c.get(f"/api/v1/uploads/{upload}").status_code in (404, 422), upload
    r = c.post("/api/v1/uploads", json={"name": "../x", "size": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "usage"


def test_request_size_limits(live: Live, c: httpx.Client) -> None:
    r = c.post(
        "/api/v1/files/tags",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

    def chunked() -> Iterator[bytes]:
        yield b'{"name": "docs/a.txt"}'

    r = c.post(
        "/api/v1/files/tags", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 411
    s = c.post("/api/v1/uploads", json={"name": "limit.bin", "size": 3 * 1024 * 1024}).json()
    r = c.patch(
        f"/api/v1/uploads/{s['id']}",
        content=b"x" * (1024 * 1024 + 1),
        headers={**OCTETS, "Upload-Offset": "0"},
    )
    assert r.status_code == 413
    assert (
        c.post("/api/v1/uploads", json={"name": "huge.bin", "size": 65 * 1024 * 1024}).status_code
        == 413
    )
    c.delete(f"/api/v1/uploads/{s['id']}")


def test_resumable_upload_survives_a_cut_connection(live: Live, c: httpx.Client) -> None:
    data = random.Random(3).randbytes(2_500_000)
    s = c.post(
        "/api/v1/uploads",
        json={
            "name": "up/resumed.bin",
            "size": len(data),
            "tags": ["r"],
            "mtime_ms": 1_600_000_000_000,
        },
    ).json()
    assert s["offset"] == 0 and s["chunk_max"] == 1024 * 1024
    assert (
        c.patch(
            f"/api/v1/uploads/{s['id']}",
            content=data[:1_000_000],
            headers={**OCTETS, "Upload-Offset": "0"},
        ).json()["offset"]
        == 1_000_000
    )
    # a client that dies half-way through its second chunk: raw socket, body cut short
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PATCH /api/v1/uploads/{s['id']} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {live.token}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: 1000000\r\nContent-Length: 1000000\r\n\r\n"
        )
        sock.sendall(head.encode() + data[1_000_000:1_400_000])
    for _ in range(100):
        got = c.get(f"/api/v1/uploads/{s['id']}").json()["offset"]
        if got == 1_400_000:
            break

        time.sleep(0.05)
    assert got == 1_400_000
    r = c.patch(
        f"/api/v1/uploads/{s['id']}",
        content=data[got : got + 10],
        headers={**OCTETS, "Upload-Offset": "0"},
    )
    assert r.status_code == 409 and r.headers["upload-offset"] == str(got)
    assert c.post(f"/api/v1/uploads/{s['id']}/finish").status_code == 409
    while got < len(data):
        got = c.patch(
            f"/api/v1/uploads/{s['id']}",
            content=data[got : got + 1024 * 1024],
            headers={**OCTETS, "Upload-Offset": str(got)},
        ).json()["offset"]
    put = c.post(f"/api/v1/uploads/{s['id']}/finish").json()
    assert put["name"] == "up/resumed.bin" and put["size"] == len(data)
    assert c.get("/api/v1/files/content", params={"name": "up/resumed.bin"}).content == data
    st = c.get("/api/v1/files/stat", params={"name": "up/resumed.bin"}).json()
    assert st["mtime_ns"] == 1_600_000_000_000 * 1_000_000 and st["mode"] == "0o644"
    assert c.get(f"/api/v1/uploads/{s['id']}").status_code == 404
    assert not list((live.vault.path / "uploads").glob(f"{s['id']}*"))


def test_download_ranges_and_head(c: httpx.Client) -> None:
    data = random.Random(4).randbytes(100_000)
    assert c.put("/api/v1/files/content", params={"name": "r.bin"}, content=data).json()[
        "size"
    ] == len(data)
    r = c.get("/api/v1/files/content", params={"name": "r.bin"}, headers={"Range": "bytes=10-19"})
    assert (
        r.status_code == 206
        and r.content == data[10:20]
        and r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    )
    assert (
        c.get(
            "/api/v1/files/content", params={"name": "r.bin"}, headers={"Range": "bytes=-5"}
        ).content
        == data[-5:]
    )
    assert (
        c.get(
            "/api/v1/files/content", params={"name": "r.bin"}, headers={"Range": "bytes=99990-"}
        ).content
        == data[99990:]
    )
    r = c.get("/api/v1/files/content", params={"name": "r.bin"}, headers={"Range": "bytes=200000-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{len(data)}"
    h = c.head("/api/v1/files/content", params={"name": "r.bin"})
    assert (
        h.status_code == 200 and h.headers["content-length"] == str(len(data)) and h.content == b""
    )
    assert "attachment" in h.headers["content-disposition"]
    assert c.get("/api/v1/files/content", params={"name": "docs"}).status_code == 404


def test_versions_restore_tags_delete_and_errors(c: httpx.Client) -> None:
    c.put("/api/v1/files/content", params={"name": "v.txt"}, content=b"one")
    c.put("/api/v1/files/content", params={"name": "v.txt", "tag": ["a", "b"]}, content=b"two")
    vs = c.get("/api/v1/files/versions", params={"name": "v.txt"}).json()["versions"]
    assert [v["version"] for v in vs] == [1, 2]
    r = c.post("/api/v1/files/restore", json={"name": "v.txt", "version": 1}).json()
    assert r["version"] == 3 and r["new_bytes"] == 0
    assert c.get("/api/v1/files/content", params={"name": "v.txt"}).content == b"one"
    assert c.post(
        "/api/v1/files/tags", json={"name": "v.txt", "add": ["c"], "remove": ["a"]}
    ).json()["tags"] == ["b", "c"]
    names = [o["name"] for o in c.get("/api/v1/files", params={"tag": "c"}).json()["objects"]]
    assert names == ["v.txt"]
    assert [o["name"] for o in c.get("/api/v1/files", params={"q": "V.T"}).json()["objects"]] == [
        "v.txt"
    ]
    assert (
        c.post("/api/v1/files/tags", json={"name": "v.txt", "add": ["has space"]}).json()["error"][
            "code"
        ]
        == "usage"
    )
    r = c.delete("/api/v1/files", params={"name": "v.txt", "version": 2})
    assert r.json()["versions_removed"] == 1
    assert c.delete("/api/v1/files", params={"name": "v.txt"}).json()["versions_removed"] == 2
    e = c.get("/api/v1/files/versions", params={"name": "v.txt"})
    assert e.status_code == 404 and e.json()["error"]["code"] == "not_found"
    e = c.post("/api/v1/files/restore", json={"name": "x", "version": "one"})
    assert e.status_code == 422 and e.json()["error"]["code"] == "usage"


def test_tree_browse_publish_health_jobs_policy(
    live: Live, c: httpx.Client, tmp_path: Path
) -> None:
    tree = tmp_path / "site"
    (tree / "sub").mkdir(parents=True)
    (tree / "index.html").write_text("<p>hi</p>")
    (tree / "sub" / "x.txt").write_text("x")
    run_put = live.vault  # the server owns the vault: store through the API's engine
    del run_put
    for rel in ("index.html", "sub/x.txt"):
        c.put(
            "/api/v1/files/content",
            params={"name": f"flat/{rel}"},
            content=(tree / rel).read_bytes(),
        )
    listing = c.get("/api/v1/files", params={"prefix": "flat/"}).json()["objects"]
    assert {o["name"] for o in listing} == {"flat/index.html", "flat/sub/x.txt"}
    assert c.get("/api/v1/files/entries", params={"name": "flat/index.html"}).status_code == 400
    p = c.post("/api/v1/publish", json={"name": "flat/index.html"}).json()
    assert p["url"] == f"ipfs://{p['cid']}" and p["gateway"] == f"/ipfs/{p['cid']}"
    g = httpx.get(live.url + p["gateway"])
    assert (
        g.status_code == 200
        and g.content == b"<p>hi</p>"
        and "sandbox" in g.headers["content-security-policy"]
    )
    assert [d["name"] for d in c.get("/api/v1/published").json()["published"]] == [
        "flat/index.html"
    ]
    assert (
        c.get("/api/v1/files", params={"prefix": "flat/"}).json()["objects"][0]["published"]
        == p["url"]
    )
    assert c.post("/api/v1/unpublish", json={"target": p["cid"]}).status_code == 200
    assert httpx.get(live.url + p["gateway"]).status_code == 404
    h = c.get("/api/v1/health").json()
    assert (
        h["status"] == "ok" and len(h["providers"]) == 6 and h["regions"][0]["jurisdiction"] == "??"
    )
    job = c.post("/api/v1/jobs", json={"kind": "rebalance"})
    assert job.status_code == 202
    for _ in range(200):
        j = c.get(f"/api/v1/jobs/{job.json()['id']}").json()
        if j["state"] != "running":
            break
    assert j["state"] == "done" and j["result"]["failures"] == []
    assert c.post("/api/v1/jobs", json={"kind": "format-disk"}).status_code == 422
    pol = c.get("/api/v1/policy").json()
    assert pol["policy"]["k"] == 3
    assert (
        c.put("/api/v1/policy", json={**pol["policy"], "k": 9}).json()["error"]["code"] == "usage"
    )
    assert c.get("/api/v1/du").json()["policy"] == {"k": 3, "n": 6}


def test_unmatched_api_paths_are_json_errors(c: httpx.Client) -> None:
    """Found by schemathesis: a job id with a newline fell through to a plain-text 404."""
    for path in ("/api/v1/jobs/ab%0Acd", "/api/v1/jobs/%C2%8F%0A", "/api/v1/no-such-thing"):
        r = c.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["error"]["code"] == "not_found"


def test_oversized_upload_sessions_are_refused_up_front_with_a_4xx(c: httpx.Client) -> None:
    """Found by schemathesis: a 432 GB upload session answered 507. A session larger than
    the limit or the free space is refused before a byte is sent, as a 413."""
    r = c.post("/api/v1/uploads", json={"name": "huge.bin", "size": 900 * 2**30})
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] in ("too_large", "storage_full")
