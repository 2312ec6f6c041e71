"""Schemathesis against the OpenAPI document the server publishes: for generated requests
to every operation, no 5xx, and every response matches the documented status codes,
content types and schemas. Operations that touch the machine outside the vault (adding a
``file://`` provider creates a directory anywhere) or that cost an Argon2id run per call
(login, recovery phrase, guardian shares, passphrase change) are left to the hand-written
tests in test_api*.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.engine.helpers import make_vault, run
from tests.server.apiserver import TOKEN, Live, serve

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base: Path = tmp_path_factory.mktemp("schema")
    vault = make_vault(base / "vault")
    (base / "a.txt").write_text("alpha\n")
    run(vault.files.put([base / "a.txt"], name="a.txt", tags=["t"]))
    (base / "docs").mkdir()  # a backup profile, for the /backups paths
    (base / "docs" / "b.txt").write_text("beta\n")
    run(vault.backups.add("docs", base / "docs", every="1h"))
    try:
        with serve(vault) as s:
            yield s
    finally:
        run(vault.close())


@schemathesis.serializer("application/offset+octet-stream")
def _octets(_ctx: schemathesis.SerializationContext, value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


EXCLUDED = {
    ("POST", "/providers"),
    ("DELETE", "/providers/{name}"),
    ("POST", "/session"),
    ("POST", "/recovery/phrase"),
    ("POST", "/recovery/guardians"),
    ("POST", "/keys/passphrase"),
}


def test_api_matches_its_schema(live: Live) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/api/v1/openapi.json")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    tested = []
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in EXCLUDED:
            continue
        tested.append(f"{op.method.upper()} {op.path}")

        @given(case=op.as_strategy())
        @settings(
            max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=f"{live.url}/api/v1", headers=headers, checks=CHECKS)

        check()
    assert len(tested) >= 25, tested
