"""Fast S3 provider tests: config parsing, error classification, the contract on moto (an
emulator: quick, not the real thing; see test_s3_ceph.py), and a hostile gateway that
answers ranges wrongly (a tiny HTTP server on loopback)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import botocore.exceptions as bx
import pytest
from moto import mock_aws

from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    ShareCorruptError,
    StorageFullError,
    UsageError,
)
from ownvault.providers.s3 import S3Config, S3Provider, classify_error
from ownvault.providers.s3.writes import PartsReader

from .contract import ProviderContract, run

# ----------------------------------------------------------------------------- config


def test_from_url_bucket_and_prefix() -> None:
    c = S3Config.from_url("s3://my-bucket/backups/vault1/", endpoint="http://127.0.0.1:9000/")
    assert (c.bucket, c.prefix, c.endpoint) == (
        "my-bucket",
        "backups/vault1",
        "http://127.0.0.1:9000",
    )
    assert c.url == "s3://my-bucket/backups/vault1"
    assert S3Config.from_url("s3://b-1").prefix == ""
    assert S3Config.from_url("s3://b-1", region="eu-central-1", profile="p").profile == "p"


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket/x",
        "s3:///x",
        "s3://Upper/x",
        "s3://ab",
        "s3://a..b/x",
        "s3://-bucket",
        "s3://bucket/a//b",
        "s3://bucket/a/../b",
        "s3://bucket/sp ace",
        "s3://bucket/x?y=1",
        "s3://user@bucket/x",
        "s3://bucket:80/x",
    ],
)
def test_from_url_rejects(url: str) -> None:
    with pytest.raises(UsageError):
        S3Config.from_url(url)


@pytest.mark.parametrize(
    "kw",
    [
        {"endpoint": "ftp://h"},
        {"endpoint": "http://h/path"},
        {"endpoint": "h:9000"},
        {"access_key_env": "AK"},
        {"access_key_env": "AK", "secret_key_env": "not a name"},
    ],
)
def test_from_url_rejects_options(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        S3Config.from_url("s3://bucket", **kw)


@pytest.mark.parametrize(
    "kw",
    [
        {"part_size": 4 * 1024 * 1024},
        {"max_connections": 0},
        {"list_page_size": 1001},
        {"max_attempts": 0},
        {"multipart_threshold": -1},
    ],
)
def test_config_limits(kw: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        S3Config(bucket="bucket", **kw)


def test_location() -> None:
    aws = S3Provider(S3Config.from_url("s3://bucket/p"))
    assert aws.location == "s3://bucket/p"
    ceph = S3Provider(S3Config.from_url("s3://bucket/p", endpoint="http://127.0.0.1:7480"))
    assert ceph.location == "http://127.0.0.1:7480/bucket/p"
    run(aws.close())
    run(ceph.close())


# ----------------------------------------------------------------------------- errors


def _client_error(code: str, status: int, op: str = "GetObject") -> bx.ClientError:
    return bx.ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        op,
    )


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, ObjectNotFoundError),
        ("404", 404, ObjectNotFoundError),  # HEAD has no body
        ("NoSuchBucket", 404, ProviderPermanentError),
        ("NoSuchUpload", 404, ProviderPermanentError),
        ("PreconditionFailed", 412, ObjectExistsError),
        ("AccessDenied", 403, ProviderPermanentError),
        ("403", 403, ProviderPermanentError),
        ("InvalidAccessKeyId", 403, ProviderPermanentError),
        ("SignatureDoesNotMatch", 403, ProviderPermanentError),
        ("RequestTimeTooSkewed", 403, ProviderPermanentError),
        ("QuotaExceeded", 403, StorageFullError),  # Ceph: 403, yet a full store
        ("XMinioStorageFull", 507, StorageFullError),
        ("SlowDown", 503, ProviderUnavailableError),
        ("Throttling", 400, ProviderUnavailableError),
        ("TooManyRequests", 429, ProviderUnavailableError),
        ("RequestTimeout", 400, ProviderUnavailableError),
        ("InternalError", 500, ProviderUnavailableError),
        ("502", 502, ProviderUnavailableError),
        ("ServiceUnavailable", 503, ProviderUnavailableError),
        ("BadDigest", 400, ProviderUnavailableError),
        ("ConditionalRequestConflict", 409, ProviderUnavailableError),
        ("NotImplemented", 501, ProviderPermanentError),
        ("PermanentRedirect", 301, ProviderPermanentError),
        ("InvalidArgument", 400, ProviderPermanentError),
    ],
)
def test_classify_client_errors(code: str, status: int, expected: type[ProviderError]) -> None:
    err = classify_error(_client_error(code, status), provider="p", name="n")
    assert type(err) is expected
    assert err.retryable == (expected is ProviderUnavailableError)
    assert err.provider == "p"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (bx.EndpointConnectionError(endpoint_url="http://x"), ProviderUnavailableError),
        (bx.ConnectionClosedError(endpoint_url="http://x"), ProviderUnavailableError),
        (bx.ReadTimeoutError(endpoint_url="http://x"), ProviderUnavailableError),
        (bx.ConnectTimeoutError(endpoint_url="http://x"), ProviderUnavailableError),
        (bx.IncompleteReadError(actual_bytes=1, expected_bytes=2), ProviderUnavailableError),
        (bx.ResponseStreamingError(error="reset"), ProviderUnavailableError),
        (ConnectionResetError(), ProviderUnavailableError),
        (bx.NoCredentialsError(), ProviderPermanentError),
        (bx.ProfileNotFound(profile="x"), ProviderPermanentError),
    ],
)
def test_classify_transport_errors(exc: Exception, expected: type[ProviderError]) -> None:
    assert type(classify_error(exc)) is expected


# ----------------------------------------------------------------------------- moto


@pytest.fixture
def moto_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


class TestS3MotoContract(ProviderContract):
    @pytest.fixture
    def provider(self, moto_env: None) -> Iterator[S3Provider]:
        p = S3Provider(
            S3Config(
                bucket="moto-bucket", prefix="v", region="eu-west-1", multipart_threshold=5 << 20
            )
        )
        run(p.create_bucket())
        yield p
        run(p.close())


def test_moto_create_bucket_idempotent(moto_env: None) -> None:
    p = S3Provider(S3Config(bucket="moto-b2", region="eu-west-1"))
    run(p.create_bucket())
    run(p.create_bucket())
    assert run(p.info()).kind == "s3"
    run(p.close())


# ----------------------------------------------------------------------------- hostile


class _Hostile(BaseHTTPRequestHandler):
    """Answers every GET with the behaviour named by the key's last segment."""

    body: ClassVar[bytes] = bytes(range(256)) * 4

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mode = self.path.rsplit("/", 1)[-1].split("?")[0]
        body = self.body
        if mode == "ignores-range":  # 200 and the whole object, Range or not
            self._send(200, body, {})
        elif mode == "wrong-start":
            self._send(206, body[:10], {"Content-Range": f"bytes 0-9/{len(body)}"})
        elif mode == "too-long":
            self._send(206, body[:500], {"Content-Range": f"bytes 100-599/{len(body)}"})
        elif mode == "short":  # promises 1024 bytes, sends 100, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:100])
            self.wfile.flush()
            self.close_connection = True
        else:
            self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", {})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Provider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    monkeypatch.setenv("H_AK", "AKIAHOSTILE")
    monkeypatch.setenv("H_SK", "hostile-secret")
    cfg = S3Config(
        bucket="bucket", endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        access_key_env="H_AK", secret_key_env="H_SK", max_attempts=1,
    )  # fmt: skip
    p = S3Provider(cfg)
    yield p
    run(p.close())
    server.shutdown()
    server.server_close()


def test_hostile_ignored_range_is_cut_to_what_was_asked(hostile: S3Provider) -> None:
    body = _Hostile.body
    assert run(hostile.get("ignores-range", 100, 50)) == body[100:150]
    assert run(hostile.get("ignores-range", 1000)) == body[1000:]
    assert run(hostile.get("ignores-range", 5000, 10)) == b""
    assert run(hostile.get("ignores-range")) == body


def test_hostile_wrong_range_is_refused(hostile: S3Provider) -> None:
    with pytest.raises(ShareCorruptError):
        run(hostile.get("wrong-start", 100, 10))
    with pytest.raises(ShareCorruptError):
        run(hostile.get("too-long", 100, 10))


def test_hostile_short_body_is_retryable(hostile: S3Provider) -> None:
    with pytest.raises(ProviderUnavailableError):
        run(hostile.get("short"))


def test_classified_errors_pass_through() -> None:
    err = ProviderPermanentError("already classified")
    assert classify_error(err) is err


def test_parts_reader_reads_and_seeks_across_parts() -> None:
    parts = [memoryview(b) for b in (b"0123", b"45", b"6789abcdef")]
    whole = b"0123456789abcdef"
    r = PartsReader(parts)
    assert len(r) == 16 and r.read(3) == b"012" and r.read(4) == b"3456" and r.tell() == 7
    assert r.read() == whole[7:] and r.read(5) == b""
    assert r.seek(0) == 0 and r.read() == whole  # botocore seeks back to retry
    r.seek(-2, io.SEEK_END)
    assert r.read(10) == b"ef"
    part = PartsReader(parts, 3, 9)  # a multipart upload's part
    assert len(part) == 6 and part.read() == whole[3:9]
    part.seek(1)
    buf = bytearray(3)
    assert part.readinto(buf) == 3 and bytes(buf) == whole[4:7]
    assert len(PartsReader(parts, 12, 99)) == 4 and len(PartsReader(parts, 99)) == 0
