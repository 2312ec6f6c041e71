"""``ownvault node serve``: argument checking (the serving itself is tested via NodeCluster)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ownvault.cli import main
from ownvault.cli.app import run_cli
from ownvault.cli.node import parse_size
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
    assert callable(main)


@pytest.mark.parametrize(
    "args",
    [
        ["--jurisdiction", "Swiss"],
        ["--listen", "nowhere"],
        ["--quota-per-account", "lots"],
        ["--accounts", "allowlist"],
        ["--chaos", "explode"],
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    assert run_cli(["node", "serve", "--data", str(tmp_path / "d"), *args]) == 2


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
