"""The node's front door, with hand-made requests: signatures, replays, names, sizes.

Every refusal must come with the right status and stable error code, and change nothing.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from http_message_signatures.digests import ContentDigest
from prometheus_client.parser import text_string_to_metric_families

from ownvault.providers.node import SeedSigner, Signer, sign_request
from ownvault.server.node.store import account_dir_name
from tests.server.nodes import Node, NodeCluster


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with NodeCluster(tmp_path_factory.mktemp("auth")) as c:
        yield c.start(c.add(jurisdiction="DE", max_object_size="1MiB", quota="3MiB", window=30))


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def request(
    http: httpx.Client,
    node: Node,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    signer: Signer | None = None,
    send: bool = True,
    **sign_args: object,
) -> httpx.Response | httpx.Request:
    req = http.build_request(method, node.url + path, content=body if method == "PUT" else None)
    if signer is not None:
        sign_request(req, signer, node.node_id, body, **sign_args)  # type: ignore[arg-type]
    return http.send(req) if send else req


def call(
    http: httpx.Client, node: Node, method: str, path: str, body: bytes = b"", **kw: object
) -> httpx.Response:
    response = request(http, node, method, path, body, **kw)  # type: ignore[arg-type]
    assert isinstance(response, httpx.Response)
    return response


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def objects_on_disk(node: Node) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), node.data)
        for d, _dirs, files in os.walk(node.data / "accounts")
        for f in files
        if "/objects" in d
    )


def test_healthz_is_open(http: httpx.Client, node: Node) -> None:
    r = http.get(node.url + "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "protocol": "ownvault-node/1", "node_id": node.node_id}


def test_signed_roundtrip(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    assert call(http, node, "PUT", "/v1/objects/a/b", b"hello", signer=me).status_code == 201
    r = call(http, node, "GET", "/v1/objects/a/b", signer=me)
    assert r.status_code == 200 and r.content == b"hello"
    assert r.headers["content-digest"].startswith("sha-256=:")


def test_unsigned_refused(http: httpx.Client, node: Node) -> None:
    before = objects_on_disk(node)
    r = call(http, node, "PUT", "/v1/objects/u", b"x")
    assert (r.status_code, code(r)) == (401, "unsigned")
    for path in ("/v1/info", "/v1/objects", "/v1/objects/u"):
        r = call(http, node, "GET", path)
        assert (r.status_code, code(r)) == (401, "unsigned")
    assert objects_on_disk(node) == before


class _Impostor:
    """Claims one account's did, signs with another key."""

    def __init__(self, victim: Signer, key: Signer) -> None:
        self.did = victim.did
        self._key = key

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)


def test_wrong_key_refused(http: httpx.Client, node: Node) -> None:
    victim = SeedSigner.generate()
    assert call(http, node, "PUT", "/v1/objects/v", b"victim", signer=victim).status_code == 201
    impostor = _Impostor(victim, SeedSigner.generate())
    for method in ("GET", "DELETE"):
        r = call(http, node, method, "/v1/objects/v", signer=impostor)
        assert (r.status_code, code(r)) == (401, "bad_signature")
    r = call(http, node, "PUT", "/v1/objects/w", b"x", signer=impostor)
    assert (r.status_code, code(r)) == (401, "bad_signature")
    assert call(http, node, "GET", "/v1/objects/v", signer=victim).content == b"victim"
    assert call(http, node, "HEAD", "/v1/objects/w", signer=victim).status_code == 404


def test_tampered_body_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    req = request(http, node, "PUT", "/v1/objects/t", b"original", signer=me, send=False)
    assert isinstance(req, httpx.Request)
    forged = http.build_request("PUT", req.url, content=b"tampered", headers=req.headers)
    r = http.send(forged)
    assert (r.status_code, code(r)) == (400, "digest_mismatch")
    assert call(http, node, "HEAD", "/v1/objects/t", signer=me).status_code == 404


def test_tampered_digest_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    req = request(http, node, "PUT", "/v1/objects/t", b"original", signer=me, send=False)
    assert isinstance(req, httpx.Request)

    headers = httpx.Headers(req.headers)
    headers["content-digest"] = ContentDigest.create(b"tampered")
    r = http.send(http.build_request("PUT", req.url, content=b"tampered", headers=headers))
    assert (r.status_code, code(r)) == (401, "bad_signature")
    assert call(http, node, "HEAD", "/v1/objects/t", signer=me).status_code == 404


def test_tampered_path_and_method_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    call(http, node, "PUT", "/v1/objects/keep", b"k", signer=me)
    req = request(http, node, "GET", "/v1/objects/keep", signer=me, send=False)
    assert isinstance(req, httpx.Request)
    as_delete = http.build_request("DELETE", req.url, headers=req.headers)
    assert code(http.send(as_delete)) == "bad_signature"
    other_path = http.build_request("DELETE", node.url + "/v1/objects/other", headers=req.headers)
    assert code(http.send(other_path)) == "bad_signature"
    ranged = http.build_request("GET", str(req.url) + "?offset=1", headers=req.headers)
    assert code(http.send(ranged)) == "bad_signature"
    assert call(http, node, "GET", "/v1/objects/keep", signer=me).content == b"k"


def test_stale_and_future_created_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    now = datetime.datetime.now(datetime.UTC)
    for created in (now - datetime.timedelta(seconds=90), now + datetime.timedelta(seconds=90)):
        r = call(http, node, "PUT", "/v1/objects/s", b"x", signer=me, created=created)
        assert (r.status_code, code(r)) == (401, "stale_signature")
    assert call(http, node, "PUT", "/v1/objects/s", b"x", signer=me, created=now).status_code == 201


def test_signed_before_restart_is_retryable(tmp_path: Path) -> None:
    me = SeedSigner.generate()
    with NodeCluster(tmp_path) as c, httpx.Client(timeout=10) as http:
        n = c.start(c.add())
        req = request(http, n, "PUT", "/v1/objects/r", b"x", signer=me, send=False)
        assert isinstance(req, httpx.Request)
        time.sleep(1.1)
        c.restart(n)
        r = http.send(http.build_request("PUT", req.url, content=b"x", headers=req.headers))
        assert (r.status_code, code(r)) == (503, "node_restarted")
        assert call(http, n, "HEAD", "/v1/objects/r", signer=me).status_code == 404


def test_replayed_nonce_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    call(http, node, "PUT", "/v1/objects/r1", b"x", signer=me)
    req = request(http, node, "DELETE", "/v1/objects/r1", signer=me, send=False)
    assert isinstance(req, httpx.Request)
    assert http.send(req).status_code == 204
    call(http, node, "PUT", "/v1/objects/r1", b"again", signer=me)
    replay = http.send(http.build_request("DELETE", req.url, headers=req.headers))
    assert (replay.status_code, code(replay)) == (401, "replayed_nonce")
    assert call(http, node, "GET", "/v1/objects/r1", signer=me).content == b"again"
    # The same nonce in a fresh signature (new created) is still a replay.
    nonce = "n" * 24
    assert call(http, node, "HEAD", "/v1/objects/r1", signer=me, nonce=nonce).status_code == 200
    r = call(http, node, "GET", "/v1/objects/r1", signer=me, nonce=nonce)
    assert code(r) == "replayed_nonce"


def test_signed_for_another_node_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    req = http.build_request("PUT", node.url + "/v1/objects/x", content=b"x")
    sign_request(req, me, "0" * 32, b"x")
    r = http.send(req)
    assert (r.status_code, code(r)) == (401, "wrong_node")


def test_accounts_are_isolated(http: httpx.Client, node: Node) -> None:
    alice, bob = SeedSigner.generate(), SeedSigner.generate()
    call(http, node, "PUT", "/v1/objects/secret", b"alice's", signer=alice)
    r = call(http, node, "GET", "/v1/objects/secret", signer=bob)
    assert (r.status_code, code(r)) == (404, "object_not_found")
    assert call(http, node, "HEAD", "/v1/objects/secret", signer=bob).status_code == 404
    assert call(http, node, "GET", "/v1/objects", signer=bob).json()["objects"] == []
    assert call(http, node, "DELETE", "/v1/objects/secret", signer=bob).status_code == 204
    r = call(http, node, "PUT", "/v1/objects/secret", b"bob's", signer=bob)
    assert r.status_code == 201
    assert call(http, node, "GET", "/v1/objects/secret", signer=alice).content == b"alice's"
    assert call(http, node, "GET", "/v1/objects/secret", signer=bob).content == b"bob's"
    alice_dir = node.data / "accounts" / account_dir_name(alice.did)
    assert (alice_dir / "objects" / "secret").read_bytes() == b"alice's"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/objects/%2e%2e/%2e%2e/node.json",
        "/v1/objects/a/%2e%2e/%2e%2e/x",
        "/v1/objects/%2Fetc%2Fpasswd",
        "/v1/objects/a//b",
        "/v1/objects/UPPER",
        "/v1/objects/a%00b",
        "/v1/objects/" + "x" * 201,
        "/v1/objects/",
        "/v1/objects/a/",
    ],
)
def test_bad_names_refused(http: httpx.Client, node: Node, path: str) -> None:
    me = SeedSigner.generate()
    before = objects_on_disk(node)
    req = httpx.Request("PUT", httpx.URL(node.url), content=b"evil")
    req.url = req.url.copy_with(raw_path=path.encode())
    sign_request(req, me, node.node_id, b"evil")
    r = http.send(req)
    assert (r.status_code, code(r)) == (400, "bad_name"), path
    assert objects_on_disk(node) == before
    assert (node.data / "node.json").read_text().startswith("{")


def test_bad_listing_prefix_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    r = call(http, node, "GET", "/v1/objects?prefix=../", signer=me)
    assert (r.status_code, code(r)) == (400, "bad_name")
    r = call(http, node, "GET", "/v1/objects?limit=-1", signer=me)
    assert (r.status_code, code(r)) == (400, "bad_request")


def test_oversized_body_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    r = call(http, node, "PUT", "/v1/objects/big", os.urandom(1024 * 1024 + 1), signer=me)
    assert (r.status_code, code(r)) == (413, "too_large")
    assert call(http, node, "HEAD", "/v1/objects/big", signer=me).status_code == 404
    # A body longer than its Content-Length never gets past the HTTP parser either.
    body = os.urandom(1024 * 1024)
    assert call(http, node, "PUT", "/v1/objects/max", body, signer=me).status_code == 201


def test_over_quota_refused(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    for i in range(3):
        r = call(http, node, "PUT", f"/v1/objects/q{i}", os.urandom(1024 * 1024), signer=me)
        assert r.status_code == 201
    r = call(http, node, "PUT", "/v1/objects/q3", b"1", signer=me)
    assert (r.status_code, code(r)) == (507, "quota_exceeded")
    info = call(http, node, "GET", "/v1/info", signer=me).json()
    assert info["used_bytes"] == 3 * 1024 * 1024 and info["free_bytes"] == 0
    assert info["jurisdiction"] == "DE"


def test_exists_is_409(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    call(http, node, "PUT", "/v1/objects/once", b"1", signer=me)
    r = call(http, node, "PUT", "/v1/objects/once", b"2", signer=me)
    assert (r.status_code, code(r)) == (409, "object_exists")


def test_unknown_endpoint(http: httpx.Client, node: Node) -> None:
    r = http.get(node.url + "/v2/whatever")
    assert (r.status_code, code(r)) == (404, "not_found")
    r = http.post(node.url + "/v1/objects/x", content=b"")
    assert (r.status_code, code(r)) == (405, "method_not_allowed")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_parse_and_count(http: httpx.Client, node: Node) -> None:
    me = SeedSigner.generate()
    before = _samples(http.get(node.url + "/metrics").text)
    put_key = (
        "ownvault_node_requests_total",
        (("endpoint", "object"), ("method", "PUT"), ("status", "201")),
    )
    call(http, node, "PUT", "/v1/objects/m1", b"x" * 1000, signer=me)
    call(http, node, "PUT", "/v1/objects/m2", b"y" * 500, signer=me)
    call(http, node, "GET", "/v1/objects/m1", signer=me)
    call(http, node, "GET", "/v1/objects/nope", signer=me)
    after = _samples(http.get(node.url + "/metrics").text)
    assert after[put_key] - before.get(put_key, 0) == 2
    assert (
        after[("ownvault_node_received_bytes_total", ())]
        - before[("ownvault_node_received_bytes_total", ())]
        == 1500
    )
    assert (
        after[("ownvault_node_sent_bytes_total", ())]
        - before[("ownvault_node_sent_bytes_total", ())]
        >= 1000
    )
    stored = ("ownvault_node_shares_stored", ())
    assert after[stored] - before[stored] == 2
    nf = ("ownvault_node_errors_total", (("code", "object_not_found"),))
    assert after[nf] - before.get(nf, 0) == 1
    hist = ("ownvault_node_request_duration_seconds_count", (("endpoint", "object"),))
    assert after[hist] - before[hist] == 4
    assert "did:key" not in http.get(node.url + "/metrics").text


def test_data_layout(node: Node, tmp_path: Path) -> None:
    assert (node.data / "node.json").is_file()
    for entry in (node.data / "accounts").iterdir():
        assert (entry / "account.json").is_file()
        assert os.listdir(entry / "tmp") == []
