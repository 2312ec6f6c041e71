"""One option vocabulary across the command tree (issue 19), walked from the click group:
every command takes ``--json``, ``--vault`` and ``--wide``; an option name shared by two
commands means one thing (same kind of value) and is listed in the README's "Options"
table; ``-o`` is always ``--output``; old spellings survive only as hidden, deprecated
aliases of the current name."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from ownvault.cli import cli, run_cli

README = Path(__file__).resolve().parents[2] / "README.md"

# Spellings a command must not show for a concept the vocabulary already names.
SYNONYMS = {
    "--out": "--output",
    "--out-dir": "--output",
    "--output-dir": "--output",
    "--outfile": "--output",
    "--to-file": "--output (or --phrase-file for the recovery phrase)",
    "--dryrun": "--dry-run",
    "--simulate": "--dry-run",
    "--assume-yes": "--yes",
    "--no-confirm": "--yes",
    "--clobber": "--overwrite",
    "--replace": "--overwrite",
    "--providers-url": "--provider",
    "--node": "--provider",
    "--bind": "--listen",
    "--address": "--listen",
    "--home": "--vault",
    "--vault-dir": "--vault",
    "--machine": "--json",
    "--format": "--json",
}
EVERY_COMMAND = ("--json", "--vault", "--wide", "--help")
# The storage node has no vault, and its only output is always one JSON line.
WITHOUT_COMMON = {"ownvault node serve": ("--json", "--vault", "--wide")}


def _commands(group: click.Group, path: str = "ownvault") -> Iterator[tuple[str, click.Command]]:
    # list_commands/get_command, not .commands: the root group imports its modules lazily.
    ctx = click.Context(group, info_name=path)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{path} {name}")
        else:
            yield f"{path} {name}", cmd


def _options(cmd: click.Command) -> list[click.Option]:
    ctx = click.Context(cmd, info_name=cmd.name)
    return [p for p in cmd.get_params(ctx) if isinstance(p, click.Option)]


def _kind(opt: click.Option) -> str:
    """A flag, or the type of value (a file or a directory are both paths; a repeatable
    option takes the same kind of value)."""
    if opt.is_flag:
        return "flag"
    if isinstance(opt.type, click.Path):
        return "path"
    return opt.type.name


def _readme_vocabulary() -> dict[str, str]:
    text = README.read_text()
    section = text.split("\n## Options\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ((?:`[^`]+`(?:, )?)+) \| (.+?) \|$", section, re.M)
    out = {}
    for names, meaning in rows:
        for name in re.findall(r"`([^`]+)`", names):
            if name.startswith("--"):
                out[name.split()[0]] = meaning
    return out


def test_every_command_takes_the_common_options() -> None:
    missing = {
        path: [
            o
            for o in EVERY_COMMAND
            if o not in WITHOUT_COMMON.get(path, ()) and not any(o in p.opts for p in _options(cmd))
        ]
        for path, cmd in _commands(cli)
    }
    assert {path: m for path, m in missing.items() if m} == {}


def test_no_command_uses_a_synonym_of_the_vocabulary() -> None:
    found = [
        f"{path} {name}: use {SYNONYMS[name]}"
        for path, cmd in _commands(cli)
        for opt in _options(cmd)
        if not opt.hidden
        for name in opt.opts + opt.secondary_opts
        if name in SYNONYMS
    ]
    assert found == []


def test_dash_o_is_always_output() -> None:
    wrong = [
        f"{path}: {'/'.join(opt.opts)}"
        for path, cmd in _commands(cli)
        for opt in _options(cmd)
        if "-o" in opt.opts and "--output" not in opt.opts
    ]
    assert wrong == []


def test_a_shared_option_means_one_thing_and_is_in_the_readme() -> None:
    kinds: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, cmd in _commands(cli):
        for opt in _options(cmd):
            if opt.hidden:
                continue
            for name in opt.opts + opt.secondary_opts:
                if name.startswith("--") and name not in EVERY_COMMAND:
                    kinds[name][_kind(opt)].append(path)
    shared = {name: k for name, k in kinds.items() if sum(len(p) for p in k.values()) > 1}
    assert {name: dict(k) for name, k in shared.items() if len(k) > 1} == {}
    vocabulary = _readme_vocabulary()
    assert sorted(set(shared) - set(vocabulary)) == []  # every shared name is listed
    assert sorted(set(vocabulary) - set(kinds) - set(EVERY_COMMAND)) == []  # and exists


def test_old_spellings_are_hidden_deprecated_aliases() -> None:
    aliases = []
    for path, cmd in _commands(cli):
        options = _options(cmd)
        for opt in options:
            if opt.hidden and opt.deprecated:
                current = [o for o in options if o.name == opt.name and not o.hidden]
                assert current, f"{path} {opt.opts}: an alias of nothing"
                aliases.append(f"{path} {opt.opts[0]} -> {current[0].opts[-1]}")
    assert aliases == [
        "ownvault keys guardians --out-dir -> --output",
        "ownvault keys phrase --to-file -> --phrase-file",
        "ownvault provider add --profile -> --aws-profile",
        "ownvault share --out -> --output",
    ]


@pytest.mark.parametrize(
    ("argv", "current"),
    [
        (["keys", "phrase", "--to-file", "p.txt"], "--phrase-file"),
        (["keys", "guardians", "--threshold", "2", "--shares", "3", "--out-dir", "g"], "--output"),
    ],
)
def test_an_old_spelling_still_works_and_says_so(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    current: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OWNVAULT_HOME", str(tmp_path / "vault"))
    monkeypatch.setenv("OWNVAULT_PASSPHRASE", "words")
    monkeypatch.setenv("OWNVAULT_INSECURE_FAST_KDF", "1")
    assert run_cli(["init", "--providers", "3", "--k", "2", "--phrase-file", "first.txt"]) == 0
    capsys.readouterr()
    assert run_cli(argv) == 0
    err = capsys.readouterr().err
    assert "deprecated" in err and current in err
    written = tmp_path / argv[argv.index(argv[-2]) + 1]
    assert written.exists()
