"""``--listen`` / ``--metrics-listen``: one parser (cli/parse.py) for the three commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.cli import run_cli
from ownvault.cli.parse import parse_listen
from ownvault.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:65535", ("::1", 65535)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_parse_listen_accepts(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1",
        ":8787",
        "127.0.0.1:",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:+80",
        "127.0.0.1: 80",
        "127.0.0.1:\u0668\u0660",
    ],
)
def test_parse_listen_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--listen wants HOST:PORT \(got "):
        parse_listen(text)


def test_parse_listen_names_the_option_and_the_example() -> None:
    with pytest.raises(UsageError, match=r"^--metrics-listen wants HOST:PORT \(got 'x'\)$"):
        parse_listen("x", option="--metrics-listen")
    with pytest.raises(
        UsageError, match=r"^--listen wants HOST:PORT, e\.g\. 127\.0\.0\.1:8650 \(got"
    ):
        parse_listen("x", example="127.0.0.1:8650")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["serve", "--listen", "127.0.0.1:70000"],
            "--listen wants HOST:PORT (got '127.0.0.1:70000')",
        ),
        (
            ["daemon", "--metrics-listen", "127.0.0.1:70000"],
            "--metrics-listen wants HOST:PORT (got '127.0.0.1:70000')",
        ),
    ],
)
def test_commands_refuse_a_bad_listen_address(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["--vault", str(tmp_path / "none"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_node_serve_refuses_a_bad_listen_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(["node", "serve", "--data", str(tmp_path / "d"), "--listen", "127.0.0.1:70000"])
    assert code == 2
    assert "--listen wants HOST:PORT, e.g. 127.0.0.1:8650 (got '127.0.0.1:70000')" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "d").exists()
