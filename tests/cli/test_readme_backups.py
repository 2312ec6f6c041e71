"""The README's "Backups" commands, run by bash exactly as written (issue 19), in a home
directory with a ``Documents`` folder, against a fresh vault."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import ownvault

README = Path(__file__).resolve().parents[2] / "README.md"
PASS = "readme passphrase"


def readme_commands() -> list[str]:
    """The ``$ `` lines of the console block under "### Backups", continuations joined."""
    text = README.read_text()
    section = text[text.index("### Backups: folders on a schedule") :]
    block = re.search(r"```console\n(.*?)```", section, re.S)
    assert block is not None
    commands: list[str] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            commands.append(line[2:])
        else:
            commands[-1] += "\n" + line
    return commands


def test_readme_backup_commands_run_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    docs = home / "Documents"
    (docs / "node_modules" / "left-pad").mkdir(parents=True)
    (docs / "letter.txt").write_text("dear reader\n")
    (docs / "draft.tmp").write_text("scratch\n")
    (docs / "disk.iso").write_bytes(b"\0" * 4096)
    (docs / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ownvault").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m ownvault "$@"\n')
    (bin_dir / "ownvault").chmod(0o755)
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "OWNVAULT_HOME": str(home / "vault"),
        "OWNVAULT_PASSPHRASE": PASS,
        "OWNVAULT_INSECURE_FAST_KDF": "1",
        "PYTHONPATH": str(Path(ownvault.__file__).parent.parent),
        "XDG_CONFIG_HOME": str(home / ".config"),
    }

    def sh(command: str) -> str:
        proc = subprocess.run(
            ["bash", "-c", command], cwd=home, env=env, capture_output=True, text=True,
            timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
        return proc.stdout

    sh("ownvault init --phrase-file phrase.txt")
    commands = readme_commands()
    assert [c.split()[:3] for c in commands] == [
        ["printf", "'*.iso\\nnode_modules/\\n'", ">"],
        ["ownvault", "backup", "add"],
        ["ownvault", "backup", "run"],
        ["ownvault", "backup", "ls"],
        ["ownvault", "backup", "forget"],
        ["ownvault", "backup", "install-timer"],
    ]
    out = [sh(c) for c in commands]
    assert "keep 10 latest, 7 daily, 4 weekly, 12 monthly, 3 yearly snapshots" in out[1]
    assert "docs: version 1, 1 files" in out[2]  # only letter.txt: the rest is excluded
    assert "docs" in out[3] and "ok" in out[3] and "+1 ~0 -0" in out[3]
    assert "last snapshot" in out[4]
    assert "[Timer]" in out[5]
    assert f'ExecStart="{sys.executable}" "-m" "ownvault" "backup" "run"' in out[5]
    assert not (home / ".config" / "systemd").exists()  # --print writes nothing
