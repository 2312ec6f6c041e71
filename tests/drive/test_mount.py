"""`ownvault mount` as a real process, used with real tools: ls, find, cat, cp, diff -r,
rsync -a, dd with skip (ranged reads), mkdir/rm/mv, concurrent readers, a mount killed
mid-write, unmount while busy, `fusermount3 -u`, Ctrl-C; and `ownvault open GRANT --mount`."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.drive.helpers import cli_env, new_vault
from tests.engine.helpers import make_vault, run, write_random_tree

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None,
    reason="FUSE tests need root, /dev/fuse and fusermount3 (scripts/setup.d/drive.sh "
    "installs fuse3 as root)",
)


DT_DIR, DT_REG = 4, 8  # <dirent.h>


def ov(vault: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(vault), *args]
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, timeout=120)
    assert not check or proc.returncode == 0, proc.stderr.decode()
    return proc


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(cmd), capture_output=True, timeout=120)
    assert not check or proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    return proc


@contextmanager
def mounted(vault: Path, mnt: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    mnt.mkdir(exist_ok=True)
    err = open(mnt.parent / f"{mnt.name}.err", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(vault), "mount", str(mnt), *extra]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert json.loads(line) == {"mounted": str(mnt)}, (
            mnt.parent / f"{mnt.name}.err"
        ).read_text()
        yield proc
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
        assert proc.stdout is not None
        proc.stdout.close()
        err.close()


class _Dirent(ctypes.Structure):  # glibc's struct dirent on Linux (64-bit)
    _fields_ = [
        ("d_ino", ctypes.c_uint64),
        ("d_off", ctypes.c_int64),
        ("d_reclen", ctypes.c_ushort),
        ("d_type", ctypes.c_ubyte),
        ("d_name", ctypes.c_char * 256),
    ]


def dirent_types(folder: Path) -> dict[str, int]:
    """Each entry's d_type as readdir(3) gives it (DT_UNKNOWN, 0, makes `ls` and `find`
    stat the entry: one FUSE lookup per file)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.opendir.restype = ctypes.c_void_p
    libc.opendir.argtypes = [ctypes.c_char_p]
    libc.readdir.restype = ctypes.POINTER(_Dirent)
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    d = libc.opendir(os.fsencode(folder))
    assert d, os.strerror(ctypes.get_errno())
    out: dict[str, int] = {}
    try:
        while entry := libc.readdir(d):
            out[os.fsdecode(entry.contents.d_name)] = entry.contents.d_type
    finally:
        libc.closedir(d)
    return out


def unmount(proc: subprocess.Popen[bytes], mnt: Path) -> None:
    sh("fusermount3", "-u", str(mnt))
    assert proc.wait(30) == 0


def test_tools_through_the_mount(tmp_path: Path) -> None:
    vault = new_vault(tmp_path / "vault")
    src = tmp_path / "photos"
    write_random_tree(src, seed=5, files=6, max_size=300_000)
    big = random.Random(1).randbytes(3_000_000)
    (tmp_path / "big.bin").write_bytes(big)
    ov(vault, "put", str(src), str(tmp_path / "big.bin"))
    mnt = tmp_path / "mnt"
    with mounted(vault, mnt) as proc:
        assert sorted(os.listdir(mnt)) == [".versions", "big.bin", "photos"]
        # readdir gives each entry's type: `ls -R` and `find` need no lookup per file
        types = dirent_types(mnt)
        assert {n: types[n] for n in (".versions", "big.bin", "photos")} == {
            ".versions": DT_DIR, "big.bin": DT_REG, "photos": DT_DIR}  # fmt: skip
        inside = dirent_types(mnt / "photos")
        assert {t for n, t in inside.items() if n not in (".", "..")} - {DT_DIR} == {DT_REG}
        sh("mkdir", str(mnt / "media"))
        sh("mv", str(mnt / "big.bin"), str(mnt / "media" / "big.bin"))
        sh("diff", "-r", str(src), str(mnt / "photos"))
        found = sh("find", str(mnt / "photos"), "-type", "f").stdout.decode().split()
        assert len(found) == 6
        assert sh("cat", str(mnt / "media" / "big.bin")).stdout == big
        # ranged reads at random offsets (dd skip), against `ownvault get --range`
        rnd = random.Random(2)
        for i in range(6):
            block = 4096
            skip = rnd.randrange(len(big) // block)
            count = rnd.randrange(1, 40)
            got = sh("dd", f"if={mnt / 'media' / 'big.bin'}", f"bs={block}", f"skip={skip}",
                     f"count={count}", "status=none").stdout  # fmt: skip
            a, b = skip * block, min(len(big), (skip + count) * block) - 1
            assert got == big[a : b + 1]
            if i == 0:  # the same bytes as `ownvault get --range`
                out = tmp_path / "range.bin"
                ov(vault, "get", "media/big.bin", "--range", f"{a}-{b}", "-o", str(out))
                assert out.read_bytes() == got
        # 8 readers at once
        errors: list[str] = []

        def reader(seed: int) -> None:
            r = random.Random(seed)
            with open(mnt / "media" / "big.bin", "rb") as f:
                for _ in range(10):
                    off = r.randrange(len(big))
                    f.seek(off)
                    if f.read(70_000) != big[off : off + 70_000]:
                        errors.append(f"reader {seed} at {off}")

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        # write: cp a tree in, rsync -a another, mkdir / mv / rm
        sh("cp", "-r", str(src), str(mnt / "copied"))
        sh("diff", "-r", str(src), str(mnt / "copied"))
        if shutil.which("rsync"):
            sh("rsync", "-a", f"{src}/", f"{mnt / 'synced'}/")
            sh("diff", "-r", str(src), str(mnt / "synced"))
        one = next(p for p in sorted(src.rglob("*.bin")) if p.stat().st_size > 0)
        rel = one.relative_to(src)
        got = tmp_path / "got.bin"
        ov(vault, "get", f"copied/{rel}", "-o", str(got))
        assert got.read_bytes() == one.read_bytes()
        # the CLI keeps working during the mount (the write lock is held only to commit),
        # and what it stores shows in the mount
        (tmp_path / "cli.txt").write_bytes(b"from the CLI")
        ov(vault, "put", str(tmp_path / "cli.txt"))
        assert "cli.txt" in os.listdir(mnt)
        assert (mnt / "cli.txt").read_bytes() == b"from the CLI"
        (mnt / "notes").mkdir()
        (mnt / "notes" / "a.txt").write_bytes(b"one")
        (mnt / "notes" / "a.txt").write_bytes(b"two")
        assert (mnt / ".versions" / "notes" / "a.txt" / "1").read_bytes() == b"one"
        # a shell redirect closes a duplicate descriptor before it writes: one version
        # per write all the same, none empty
        f = mnt / "notes" / "sh.txt"
        sh("bash", "-c", f"echo one > {f}; echo two > {f}; echo three >> {f}; : > {f}.empty")
        versions = mnt / ".versions" / "notes" / "sh.txt"
        assert sorted(os.listdir(versions)) == ["1", "2", "3"]
        assert [(versions / n).read_bytes() for n in ("1", "2", "3")] == [
            b"one\n",
            b"two\n",
            b"two\nthree\n",
        ]
        assert os.listdir(mnt / ".versions" / "notes" / "sh.txt.empty") == ["1"]
        sh("rm", str(f), f"{f}.empty")
        sh("mv", str(mnt / "notes" / "a.txt"), str(mnt / "notes" / "b.txt"))
        assert os.listdir(mnt / "notes") == ["b.txt"]
        ov(vault, "get", "notes/b.txt", "-o", str(tmp_path / "b.txt"))
        assert (tmp_path / "b.txt").read_bytes() == b"two"
        sh("rm", str(mnt / "notes" / "b.txt"))
        sh("rmdir", str(mnt / "notes"))
        assert not (mnt / "notes").exists()
        # refusals: a name that is not UTF-8 (EINVAL, and the mount lives on), inside a
        # stored tree, under .versions
        bad = subprocess.run(["touch", os.fsencode(mnt) + b"/bad\xff"], capture_output=True)
        assert bad.returncode != 0 and b"Invalid argument" in bad.stderr
        assert "not valid UTF-8" in (mnt.parent / "mnt.err").read_text()
        assert sh("touch", str(mnt / "photos" / "new"), check=False).returncode != 0
        assert (
            sh("rm", str(mnt / ".versions" / "media" / "big.bin" / "1"), check=False).returncode
            != 0
        )
        # unmount while busy is refused; after closing, a clean unmount
        with open(mnt / "media" / "big.bin", "rb"):
            assert sh("fusermount3", "-u", str(mnt), check=False).returncode != 0
        unmount(proc, mnt)


def test_read_only_mount_and_a_mount_killed_mid_write(tmp_path: Path) -> None:
    vault = new_vault(tmp_path / "vault")
    (tmp_path / "doc.txt").write_bytes(b"the previous version")
    ov(vault, "put", str(tmp_path / "doc.txt"))
    mnt = tmp_path / "mnt"
    with mounted(vault, mnt, "--read-only") as proc:
        assert (mnt / "doc.txt").read_bytes() == b"the previous version"
        assert sh("touch", str(mnt / "x"), check=False).returncode != 0
        assert sh("rm", str(mnt / "doc.txt"), check=False).returncode != 0
        proc.send_signal(signal.SIGINT)  # Ctrl-C: libfuse unmounts, the command exits 0
        assert proc.wait(30) == 0
        assert not os.path.ismount(mnt)
    with mounted(vault, mnt) as proc:
        f = open(mnt / "doc.txt", "wb")  # noqa: SIM115
        f.write(os.urandom(2_000_000))
        f.flush()  # in the spool, not stored: the file is still open
        spooled = list((vault / "spool").glob("drive-*/*"))
        assert len(spooled) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        sh("fusermount3", "-u", "-z", str(mnt))
        with contextlib.suppress(OSError):  # the mount is gone
            f.close()
    listed = json.loads(ov(vault, "--json", "versions", "doc.txt").stdout)
    assert [v["version"] for v in listed["versions"]] == [1]
    ov(vault, "get", "doc.txt", "-o", str(tmp_path / "after.txt"))
    assert (tmp_path / "after.txt").read_bytes() == b"the previous version"
    # (the next drive removes the dead one's spool: tests/drive/test_drive.py)


@pytest.mark.skipif(
    not any(Path(d, "libfuse3.so.3").exists() for d in ("/usr/lib/x86_64-linux-gnu", "/lib"))
    or not any(Path(d, "libfuse.so.2").exists() for d in ("/usr/lib/x86_64-linux-gnu", "/lib")),
    reason="needs both libfuse 2 and libfuse 3 installed (the case where the choice matters)",
)
def test_the_mount_binds_libfuse_3_when_libfuse_2_is_there_too(tmp_path: Path) -> None:
    """mfusepy alone binds libfuse 2 when both are installed, and through it the kernel
    sends writes in 4 KiB requests (a 512 MiB cp: 131,000 calls, 3.5x slower than put).
    The mount process must have libfuse 3 mapped, and writes must still store exactly."""
    vault = new_vault(tmp_path / "vault")
    mnt = tmp_path / "mnt"
    data = os.urandom(3 << 20)
    with mounted(vault, mnt) as proc:
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "libfuse3.so.3" in maps
        assert "libfuse.so.2" not in maps
        (tmp_path / "src.bin").write_bytes(data)
        sh("cp", str(tmp_path / "src.bin"), str(mnt / "copied.bin"))
    ov(vault, "get", "copied.bin", "-o", str(tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == data


def test_open_grant_mount_is_read_only_and_verified(tmp_path: Path) -> None:
    alice = make_vault(tmp_path / "alice", providers=3, k=2)
    bob = make_vault(tmp_path / "bob", providers=3, k=1, n=2)
    src = tmp_path / "docs"
    write_random_tree(src, seed=9, files=5, max_size=200_000)
    big = random.Random(3).randbytes(1_500_000)
    (tmp_path / "big.bin").write_bytes(big)
    run(alice.files.put([src]))
    run(alice.files.put([tmp_path / "big.bin"], name="media/big.bin"))
    run(alice.files.put([tmp_path / "big.bin"], name="private.bin"))
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    token = run(alice.sharing.share(names=["docs", "media/big.bin"], to="bob")).token
    run(alice.close())
    run(bob.close())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cmd = [sys.executable, "-m", "ownvault", "--vault", str(tmp_path / "bob"), "open", token,
           "--mount", str(mnt)]  # fmt: skip
    with open(tmp_path / "grant-mount.err", "wb") as err:
        proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert json.loads(line) == {"mounted": str(mnt)}, (
                tmp_path / "grant-mount.err"
            ).read_text()
            assert sorted(os.listdir(mnt)) == ["docs", "media"]  # private.bin is not shared
            types = dirent_types(mnt / "media")
            assert types["big.bin"] == DT_REG and dirent_types(mnt)["media"] == DT_DIR
            sh("diff", "-r", str(src), str(mnt / "docs"))
            got = sh("dd", f"if={mnt / 'media' / 'big.bin'}", "bs=1000", "skip=700", "count=9",
                     "status=none").stdout  # fmt: skip
            assert got == big[700_000:709_000]
            assert sh("touch", str(mnt / "docs" / "new"), check=False).returncode != 0
            unmount(proc, mnt)
        finally:
            if proc.poll() is None:
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_mount_libfuse_refuses_is_a_clear_error(tmp_path: Path) -> None:
    """In a user namespace without its own mount namespace, libfuse cannot mount: the
    command says so (exit 9, the mount point named), never a Python traceback."""
    vault = tmp_path / "vault"
    run(make_vault(vault).close())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -rn is not allowed here")
    cmd = ["unshare", "-rn", sys.executable, "-m", "ownvault", "--vault", str(vault)]
    proc = subprocess.run(
        [*cmd, "mount", str(mnt)], env=cli_env(), capture_output=True, timeout=120
    )
    err = proc.stderr.decode()
    assert proc.returncode == 9, err
    assert f"cannot mount at {mnt}" in err and "Traceback" not in err
    assert not os.path.ismount(mnt)
