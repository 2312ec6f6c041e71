"""The renderer at 80 and 200 columns (issue 19): tables never cut a name or a CID, become
one block per row when they do not fit, ``--wide``/``--json`` give everything; warnings are
never broken by the renderer; repeated messages are said once with a count."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from ownvault.cli import run_cli
from ownvault.cli.render import group_lines, warn

LONG = "friends-node-in-zurich"


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # A short directory: the locations shown are paths under it, and a real one
    # (~/.local/share/ownvault/providers/local-1) is short too.
    tmp_path = Path(tempfile.mkdtemp(prefix="ovr"))
    try:
        yield _vault(tmp_path, monkeypatch)
    finally:
        shutil.rmtree(tmp_path)


def _vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OWNVAULT_HOME", str(tmp_path / "vault"))
    monkeypatch.setenv("OWNVAULT_PASSPHRASE", "render")
    monkeypatch.setenv("OWNVAULT_INSECURE_FAST_KDF", "1")
    assert (
        run_cli(["init", "--providers", "3", "--k", "2", "--phrase-file", str(tmp_path / "p")]) == 0
    )
    (tmp_path / "disk").mkdir()
    assert (
        run_cli(["provider", "add", LONG, (tmp_path / "disk").as_uri(), "--jurisdiction", "CH"])
        == 0
    )
    (tmp_path / "report.pdf").write_bytes(os.urandom(3000))
    assert run_cli(["put", str(tmp_path / "report.pdf"), "--as", "work/report.pdf"]) == 0
    return tmp_path


def _run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int, *argv: str
) -> str:
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", str(columns))
    assert run_cli(list(argv)) == 0
    return capsys.readouterr().out


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, list[dict[str, str]]]:
    capsys.readouterr()
    assert run_cli([*argv, "--json"]) == 0
    doc: dict[str, list[dict[str, str]]] = json.loads(capsys.readouterr().out)
    return doc


def test_provider_ls_at_80_columns_shows_every_name_whole(
    vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = _json(capsys, "provider", "ls")["providers"]
    out = _run(capsys, monkeypatch, 80, "provider", "ls")
    assert "\u2026" not in out and "..." not in out
    # A line is longer than the terminal only when one value alone is.
    assert all(len(line) <= 80 or line.count(": ") == 1 for line in out.splitlines())
    blocks = [line for line in out.splitlines() if not line.startswith(" ")]
    assert blocks == [p["name"] for p in providers]  # one block per provider, named whole
    for p in providers:
        assert f"location: {p['location']}" in out


def test_provider_ls_at_200_columns_is_a_table(
    vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    providers = _json(capsys, "provider", "ls")["providers"]
    out = _run(capsys, monkeypatch, 200, "provider", "ls")
    header, *rows = out.splitlines()
    assert header.split()[:2] == ["name", "kind"] and "location" in header
    assert [row.split()[0] for row in rows] == [p["name"] for p in providers]
    for p, row in zip(providers, rows, strict=True):
        assert row.rstrip().endswith(p["location"])


def test_ls_never_cuts_a_cid(
    vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [obj] = _json(capsys, "ls")["objects"]
    for columns in (40, 80, 200):
        out = _run(capsys, monkeypatch, columns, "ls")
        assert obj["cid"] in out.split() and obj["name"] in out.split()
        assert "\u2026" not in out
    wide = _run(capsys, monkeypatch, 40, "ls", "--wide")
    header, row = wide.splitlines()
    assert header.split() == ["name", "kind", "size", "versions", "tags", "cid"]
    assert row.split()[0] == obj["name"] and row.split()[-1] == obj["cid"]


def test_a_pipe_gets_whole_rows(
    vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``$COLUMNS`` and standard output not a terminal: one line per row, to grep."""
    providers = _json(capsys, "provider", "ls")["providers"]
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_cli(["provider", "ls"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split()[0] == "name"
    assert [row.split()[0] for row in rows] == [p["name"] for p in providers]


def test_a_value_in_brackets_is_printed_as_is(
    vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (vault / "n.txt").write_text("x")
    assert run_cli(["put", str(vault / "n.txt"), "--as", "[draft] notes"]) == 0
    out = _run(capsys, monkeypatch, 200, "ls")
    assert "[draft] notes" in out


def test_warnings_are_not_broken_and_repeats_are_counted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    path = "/very/long/path/" + "/".join(f"directory-{i}" for i in range(12)) + "/file.bin"
    warn(f"cannot read {path}")
    err = capsys.readouterr().err
    assert err == f"warning: cannot read {path}\n"


def test_a_repeated_warning_is_counted_once_the_command_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with click.Context(click.Command("x")):
        for _ in range(87):
            warn("provider local-2 is unreachable")
        warn("something else")
        assert capsys.readouterr().err == (
            "warning: provider local-2 is unreachable\nwarning: something else\n"
        )
    assert capsys.readouterr().err == (
        "warning: 87\u00d7 (in all) provider local-2 is unreachable\n"
    )


def test_group_lines() -> None:
    lines = [
        "failed: pack 0123456789abcdef0123: cannot place 1 share",
        "failed: pack fedcba9876543210fedc: cannot place 1 share",
        "same line",
        "other",
        "same line",
    ]
    assert group_lines(lines) == [
        "2\u00d7 failed: pack \u2026: cannot place 1 share",
        "2\u00d7 same line",
        "other",
    ]


def test_repair_dry_run_groups_repeated_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWNVAULT_HOME", str(tmp_path / "vault"))
    monkeypatch.setenv("OWNVAULT_PASSPHRASE", "render")
    monkeypatch.setenv("OWNVAULT_INSECURE_FAST_KDF", "1")
    assert (
        run_cli(["init", "--providers", "3", "--k", "2", "--phrase-file", str(tmp_path / "p")]) == 0
    )
    for i in range(6):
        (tmp_path / f"r{i}").write_bytes(os.urandom(4000))
        assert run_cli(["put", str(tmp_path / f"r{i}")]) == 0
    lost = tmp_path / "vault" / "providers" / "local-2"
    shutil.rmtree(lost)
    lost.mkdir()
    capsys.readouterr()
    assert run_cli(["repair", "--dry-run"]) != 0
    err = capsys.readouterr().err
    failed = [line for line in err.splitlines() if "failed: pack" in line]
    assert len(failed) == 1
    assert failed[0].startswith("6\u00d7 failed: pack \u2026: cannot place")
