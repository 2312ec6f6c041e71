"""``ownvault completion bash|zsh|fish`` (issue 19): the bash script is valid bash, and
sourced in a real bash with ``COMP_WORDS`` set as bash sets them, it completes
subcommands and options by calling ``ownvault`` back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ownvault
from ownvault.cli import run_cli


def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert run_cli(["completion", shell]) == 0
    return capsys.readouterr().out


def _bash_complete(tmp_path: Path, script: str, words: list[str]) -> list[str]:
    """COMPREPLY after bash completes ``words`` (the last one is being typed)."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "ownvault"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m ownvault "$@"\n')
    shim.chmod(0o755)
    (tmp_path / "completion.bash").write_text(script)
    words_sh = " ".join(f"'{w}'" for w in words)
    program = (
        f". {tmp_path / 'completion.bash'}\n"
        f"COMP_WORDS=({words_sh}); COMP_CWORD={len(words) - 1}\n"
        "_ownvault_completion ownvault\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "PYTHONPATH": str(Path(ownvault.__file__).parent.parent),
    }
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return proc.stdout.split()


def test_bash_script_is_valid_and_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script("bash", capsys)
    assert "complete -o nosort -F _ownvault_completion ownvault" in script
    (tmp_path / "c.bash").write_text(script)
    subprocess.run(["bash", "-n", str(tmp_path / "c.bash")], check=True, timeout=30)

    assert _bash_complete(tmp_path, script, ["ownvault", "prov"]) == ["provider", "providers"]
    assert _bash_complete(tmp_path, script, ["ownvault", "provider", ""]) == [
        "add", "ls", "rm", "set",
    ]  # fmt: skip
    assert "--dry-run" in _bash_complete(tmp_path, script, ["ownvault", "repair", "--"])
    assert _bash_complete(tmp_path, script, ["ownvault", "completion", "z"]) == ["zsh"]


@pytest.mark.parametrize(("shell", "marker"), [("zsh", "#compdef ownvault"), ("fish", "complete")])
def test_zsh_and_fish_scripts(
    shell: str, marker: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(shell, capsys)
    assert marker in script and "_OWNVAULT_COMPLETE" in script
    if shutil.which(shell):
        (tmp_path / "c").write_text(script)
        subprocess.run([shell, "-n", str(tmp_path / "c")], check=True, timeout=30)


def test_completion_json_and_bad_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["completion", "bash", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["shell"] == "bash" and "_ownvault_completion" in doc["script"]
    assert run_cli(["completion", "tcsh"]) == 2
