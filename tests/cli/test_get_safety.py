"""`get` never destroys a user's files: no overwrite or merge without --overwrite, never a
device/FIFO replaced, `-o -` streams to stdout, `--range -N` is the last N bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_cli_tour import PASS, ov, vault  # noqa: F401 - the vault fixture


def test_get_refuses_to_overwrite_and_streams(vault: Path, tmp_path: Path) -> None:  # noqa: F811
    data = os.urandom(5000)
    (tmp_path / "f.bin").write_bytes(data)
    ov(vault, "put", str(tmp_path / "f.bin"))
    dest = tmp_path / "mine.bin"
    dest.write_bytes(b"precious")
    proc = ov(vault, "get", "f.bin", "-o", str(dest), check=None)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr
    assert dest.read_bytes() == b"precious"
    ov(vault, "get", "f.bin", "-o", str(dest), "--overwrite")
    assert dest.read_bytes() == data

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    proc = ov(vault, "get", "f.bin", "-o", str(fifo), "--overwrite", check=None)
    assert proc.returncode != 0 and "FIFO" in proc.stderr
    assert fifo.is_fifo()

    env = {**os.environ, "OWNVAULT_PASSPHRASE": PASS, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), "get", "f.bin", "-o", "-"],
        env=env,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=True,
    ).stdout
    assert out == data
    ov(vault, "get", "f.bin", "-o", str(tmp_path / "tail.bin"), "--range", "-100")
    assert (tmp_path / "tail.bin").read_bytes() == data[-100:]


def test_get_does_not_merge_into_an_existing_tree(vault: Path, tmp_path: Path) -> None:  # noqa: F811
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("stored\n")
    ov(vault, "put", str(docs))
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("mine\n")
    proc = ov(vault, "get", "docs", "-o", str(target), check=None)
    assert proc.returncode != 0 and "--overwrite" in proc.stderr
    assert (target / "a.txt").read_text() == "mine\n"
    ov(vault, "get", "docs", "-o", str(target), "--overwrite")
    assert (target / "a.txt").read_text() == "stored\n"
