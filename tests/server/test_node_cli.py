"""``ownvault node serve``: argument checking (the serving itself is tested via NodeCluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.cli import main
from ownvault.cli.app import run_cli
from ownvault.cli.parse import parse_size
from ownvault.errors import UsageError


@pytest.mark.parametrize(
    ("text", "size"),
    [("512", 512), ("64MiB", 64 << 20), ("10G", 10 << 30), ("1.5k", 1536), ("2 TB", 2 << 40)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "ten", "-1M", "5X", "1e9"])
def test_parse_size_rejects(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_size(bad)


def test_help_lists_serve(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["node", "serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--quota-per-account" in out and "--jurisdiction" in out
    assert "--chaos" not in out  # a hidden testing aid
    # The safe default is said where an operator looks.
    assert "Required" in out and "1GiB" in out and "unlimited" in out
    assert callable(main)


@pytest.mark.parametrize(
    "args",
    [
        ["--accounts", "open", "--jurisdiction", "Swiss"],
        ["--accounts", "open", "--jurisdiction", "CH\n"],
        ["--accounts", "open", "--listen", "nowhere"],
        ["--accounts", "open", "--quota-per-account", "lots"],
        ["--accounts", "open", "--upload-budget", "1MiB"],  # below the largest object
        ["--accounts", "open", "--max-connections", "0"],
        ["--accounts", "allowlist"],
        ["--accounts", "open", "--chaos", "explode"],
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert run_cli(["node", "serve", "--data", str(tmp_path / "d"), *args]) == 2


def test_whom_to_serve_is_an_explicit_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No default opens the node to every key: without --accounts it refuses to start."""
    assert run_cli(["node", "serve", "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "--accounts allowlist" in err and "--accounts open" in err
    assert not (tmp_path / "d").exists()


def test_allowlist_with_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "allow.txt"
    bad.write_text("did:key:not-a-key\n")
    code = run_cli(
        [
            "node",
            "serve",
            "--data",
            str(tmp_path / "d"),
            "--accounts",
            "allowlist",
            "--allowlist",
            str(bad),
        ]
    )
    assert code == 2
