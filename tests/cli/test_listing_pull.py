"""``ls`` and ``du`` list without the passphrase only while the local catalog is current:
when a local-folder provider holds another device's newer journal records, they pull first
(and so need the passphrase), like every command, instead of hiding that device's puts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_devices_converge import _devices
from tests.cli.test_keys import js, ov

SRC = Path(__file__).resolve().parents[2] / "src"


def _keyless(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OWNVAULT_PASSPHRASE"}
    env["PYTHONPATH"] = str(SRC)
    return subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def _names(doc: dict[str, object]) -> set[str]:
    return {o["name"] for o in doc["objects"]}  # type: ignore[attr-defined,index]


def test_ls_pulls_another_devices_put_and_lists_keyless_once_current(tmp_path: Path) -> None:
    a, b = _devices(tmp_path, 2)
    note = tmp_path / "note.txt"
    note.write_text("written on device b\n")
    ov(a, "ls")
    assert _keyless(a, "ls").returncode == 0  # current: no key needed

    ov(b, "put", str(note))  # device b commits a record to the shared folders
    for cmd in (["ls"], ["du"]):
        behind = _keyless(a, *cmd)
        assert behind.returncode != 0, behind.stdout  # a pull is due: it takes the key
        assert "passphrase" in (behind.stdout + behind.stderr)

    listed = js(ov(a, "--json", "ls"))  # with the passphrase: pulls, then lists
    assert "note.txt" in _names(listed)
    again = _keyless(a, "ls")  # current again: keyless, and the put is there
    assert again.returncode == 0, again.stderr
    assert "note.txt" in _names(js(again))
