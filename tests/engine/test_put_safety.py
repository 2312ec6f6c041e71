"""put stores what it read, says when a file would not hold still, skips names that are not
UTF-8 with a warning, and leaves no pack behind when it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from io import FileIO
from pathlib import Path

import pytest

from ownvault.core.unixfs import FileImporter
from ownvault.engine.store.ingest import FILE_TRIES, Ingestor
from ownvault.engine.vault import Vault
from ownvault.errors import UsageError

from .helpers import make_vault, run

SealedPack = tuple[bytes, list[tuple[bytes, int, int, int, bytes]]]
NON_UTF8 = b"caf\xe9-latin1.txt"  # "café" in Latin-1: not UTF-8


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    v = make_vault(tmp_path / "vault", providers=3, k=2)
    yield v
    run(v.close())


def _shares_on_disk(vault: Vault) -> int:
    return sum(1 for p in (vault.path / "providers").rglob("shares/*/*") if p.is_file())


def _packs(vault: Vault) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in vault.catalog.conn.execute("SELECT id, state FROM packs")]


def _change_after_read(monkeypatch: pytest.MonkeyPatch, path: Path, times: int) -> list[int]:
    """After the last block of ``path`` is read, append to it (``times`` times at most):
    the change lands between the read and the re-stat, deterministically. Both reads are
    wrapped: a batch's reader thread (a small file) and a file read on its own."""
    real = Ingestor._read_process  # noqa: SLF001  wrapped to change the file mid-read
    real_small = Ingestor._read_small_bytes  # noqa: SLF001
    reads = [0]

    def change(fd: int) -> None:
        if os.fstat(fd).st_ino == path.stat().st_ino:
            reads[0] += 1
            if reads[0] <= times:
                with open(path, "ab") as appended:
                    appended.write(b"+appended")

    def read_process(
        self: Ingestor, f: FileIO, buf: bytearray, carry: int, importer: FileImporter
    ) -> tuple[int, bool, list[tuple[bytes, int]], list[SealedPack], int]:
        out = real(self, f, buf, carry, importer)
        if out[1]:  # the final block
            change(f.fileno())
        return out

    def read_small_bytes(fd: int, limit: int) -> bytes:
        out = real_small(fd, limit)
        change(fd)
        return out

    monkeypatch.setattr(Ingestor, "_read_process", read_process)
    monkeypatch.setattr(Ingestor, "_read_small_bytes", staticmethod(read_small_bytes))
    return reads


def test_a_file_changed_while_read_is_read_again(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "log.txt"
    src.write_bytes(b"line\n" * 10_000)
    reads = _change_after_read(monkeypatch, src, times=2)
    warnings: list[str] = []
    vault.warn = warnings.append
    [res] = run(vault.files.put([src]))
    assert reads[0] == 3 and res.warnings == () and warnings == []
    assert res.size == src.stat().st_size  # what was stored is the file as it now is
    stat = run(vault.files.stat("log.txt"))
    assert stat.size == src.stat().st_size and stat.mtime_ns == src.stat().st_mtime_ns
    run(vault.files.get("log.txt", tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == src.read_bytes()


def test_a_file_that_never_holds_still_is_stored_with_a_warning(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    busy = tree / "busy.log"
    busy.write_bytes(os.urandom(50_000))
    (tree / "quiet.bin").write_bytes(os.urandom(50_000))
    reads = _change_after_read(monkeypatch, busy, times=10**6)
    warnings: list[str] = []
    vault.warn = warnings.append
    [res] = run(vault.files.put([tree]))
    assert reads[0] == FILE_TRIES
    assert len(res.warnings) == 1 and "changed while it was stored" in res.warnings[0]
    assert str(busy) in res.warnings[0] and warnings == list(res.warnings)
    assert res.to_json()["warnings"] == list(res.warnings)
    # the packs of the abandoned reads that nothing refers to are gone
    live = vault.catalog.conn.execute("SELECT COUNT(*) FROM packs").fetchone()[0]
    assert vault.catalog.unreferenced_packs() == [] and live >= 1


def _non_utf8_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_bytes(b"fine" * 1000)
    (tree / "sub").mkdir()
    (tree / "sub" / "also-ok.txt").write_bytes(b"ok" * 1000)
    raw = os.fsencode(tree)
    with open(os.path.join(raw, NON_UTF8), "wb") as f:
        f.write(os.urandom(30_000))
    bad_dir = os.path.join(raw, b"dir-\xff")
    os.mkdir(bad_dir)
    with open(os.path.join(bad_dir, b"inside.txt"), "wb") as f:
        f.write(os.urandom(30_000))
    os.symlink(b"target-\xfe", os.path.join(raw, b"link"))
    return tree


def test_names_that_are_not_utf8_are_skipped_with_a_warning(vault: Vault, tmp_path: Path) -> None:
    tree = _non_utf8_tree(tmp_path)
    warnings: list[str] = []
    vault.warn = warnings.append
    [res] = run(vault.files.put([tree]))
    assert res.files == 2 and res.cid is not None
    assert len(res.warnings) == 3 and warnings == list(res.warnings)
    text = "\n".join(res.warnings)
    assert "caf\\xe9-latin1.txt" in text and "dir-\\xff" in text and "link" in text
    paths = {e.path for e in run(vault.files.ls("tree")).entries}
    assert paths == {"ok.txt", "sub"}
    run(vault.files.get("tree", tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["ok.txt", "sub"]
    assert vault.catalog.unreferenced_packs() == []


def test_a_top_level_name_that_is_not_utf8_needs_as(vault: Vault, tmp_path: Path) -> None:
    path = os.path.join(os.fsencode(tmp_path), NON_UTF8)
    with open(path, "wb") as f:
        f.write(b"x" * 1000)
    with pytest.raises(UsageError, match="--as NAME"):
        run(vault.files.put([os.fsdecode(path)]))
    assert _packs(vault) == []
    [res] = run(vault.files.put([os.fsdecode(path)], name="cafe.txt"))
    assert res.name == "cafe.txt" and res.size == 1000


def test_a_failed_put_leaves_no_pack(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 20 MB file fills a pack (uploaded, live) before the next file turns out to be
    gone: the put fails, and neither that pack nor its shares stay behind."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a-big.bin").write_bytes(os.urandom(20_000_000))
    doomed = tree / "b-gone.bin"
    doomed.write_bytes(b"soon gone")
    real = Ingestor.open_file

    def open_file(self: Ingestor, path: Path) -> tuple[int, os.stat_result]:
        if path == doomed:
            doomed.unlink()
        return real(self, path)

    monkeypatch.setattr(Ingestor, "open_file", open_file)
    with pytest.raises(UsageError, match="vanished"):
        run(vault.files.put([tree]))
    assert _packs(vault) == [] and _shares_on_disk(vault) == 0
    assert vault.catalog.conn.execute("SELECT COUNT(*) FROM versions").fetchone()[0] == 0


def test_put_of_a_non_utf8_tree_via_the_cli_warns_without_a_traceback(tmp_path: Path) -> None:
    tree = _non_utf8_tree(tmp_path)
    env = {**os.environ, "OWNVAULT_PASSPHRASE": "p", "OWNVAULT_INSECURE_FAST_KDF": "1"}

    def ov(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ownvault", "--vault", str(tmp_path / "v"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    assert (
        ov("init", "--providers", "3", "--k", "2", "--phrase-file", str(tmp_path / "ph")).returncode
        == 0
    )
    proc = ov("put", str(tree), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "not valid UTF-8" in proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["stored"][0]["warnings"]) == 3 and doc["stored"][0]["files"] == 2
