"""With ``--json``, every error is one JSON document on stdout (issue 19): usage errors that
click raises (an unknown option, a missing argument, a bad value) as well as the
:class:`~ownvault.errors.OwnvaultError` tree, each with its code, message and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ownvault.cli import run_cli


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["ls", "--json", "--no-such-option"], ["--no-such-option"]),
        (["--json", "get"], ["get", "NAME"]),
        (["get", "x", "--version", "two", "--json"], ["--version", "two"]),
        (["--json", "no-such-command"], ["no-such-command"]),
        (["--json", "provider"], ["provider", "missing command"]),
        (["daemon", "--json", "--audit-every", "soon"], ["soon"]),
    ],
    ids=[
        "unknown-option",
        "missing-argument",
        "bad-value",
        "unknown-command",
        "missing-command",
        "bad-duration",
    ],
)
def test_usage_errors_are_one_json_document(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    words: list[str],
) -> None:
    code = run_cli(["--vault", str(tmp_path / "none"), *argv])
    out, err = capsys.readouterr()
    assert code == 2
    doc = json.loads(out)  # exactly one document: json.loads refuses trailing data
    assert set(doc) == {"error"}
    assert doc["error"]["code"] == "usage"
    assert doc["error"]["exit_code"] == 2
    for word in words:
        assert word in doc["error"]["message"]
    assert err.startswith("ownvault: ")


def test_engine_errors_carry_their_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWNVAULT_PASSPHRASE", "x")
    code = run_cli(["--vault", str(tmp_path / "none"), "ls", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 9
    assert doc["error"]["code"] == "vault_state"
    assert doc["error"]["exit_code"] == 9


def test_without_json_stdout_stays_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["--vault", str(tmp_path / "none"), "ls", "--no-such-option"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "--no-such-option" in err


def test_json_after_double_dash_is_an_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["--vault", str(tmp_path / "none"), "put", "--", "--json"]) == 2
    assert capsys.readouterr().out == ""


def test_a_bare_group_shows_its_help(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["provider"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("Usage: ownvault provider [OPTIONS] COMMAND")
