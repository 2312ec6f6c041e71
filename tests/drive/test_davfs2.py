"""davfs2 (the kernel-level WebDAV client) mounts /dav/ of a real `ownvault serve` as root: a
tree copied in comes back identical, through the mount and, after unmounting, through a fresh
mount with an empty cache (so the bytes come from the server, not davfs2's cache).

davfs2 1.6.1 answers 16 KiB (its default ``buf_size``) as the FUSE ``max_read``, and refuses
with EINVAL any FUSE_READDIR asking for more than that; Linux 6.18 asks for 32 KiB, so every
``ls`` failed. ``buf_size 64`` in the mount's configuration file makes it work."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.drive.helpers import Served, served
from tests.engine.helpers import write_random_tree

CACHE_ROOT = Path("/var/cache/davfs2")  # davfs2 drops to its own user: the cache must be its

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not os.path.exists("/dev/fuse")
    or shutil.which("mount.davfs") is None
    or not CACHE_ROOT.is_dir(),
    reason="davfs2 tests need root, /dev/fuse and mount.davfs (scripts/setup.d/drive.sh "
    "installs davfs2 as root)",
)


def sh(*cmd: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(cmd), capture_output=True, timeout=120)
    assert proc.returncode == 0, (cmd, proc.stdout, proc.stderr)
    return proc


@contextmanager
def davfs(s: Served, mnt: Path, private: Path) -> Iterator[Path]:
    """`mount -t davfs` with its own configuration, secrets and cache, all removed after."""
    mnt.mkdir(exist_ok=True)
    cache = Path(tempfile.mkdtemp(prefix="ownvault-test-", dir=CACHE_ROOT))
    shutil.chown(cache, group="davfs2")
    cache.chmod(0o775)
    conf, secrets = private / "davfs2.conf", private / "secrets"
    for path in (conf, secrets):  # created private: the token is never world-readable
        path.touch(mode=0o600, exist_ok=False)
    secrets.write_text(f"{s.dav} ownvault {s.token}\n")
    conf.write_text(f"secrets {secrets}\ncache_dir {cache}\nbuf_size 64\n")
    try:
        sh("mount", "-t", "davfs", "-o", f"conf={conf}", s.dav, str(mnt))
        try:
            yield mnt
        finally:
            sh("umount", str(mnt))  # waits for mount.davfs to upload what is cached
    finally:
        conf.unlink()
        secrets.unlink()
        shutil.rmtree(cache)


def _diff(src: Path, mnt: Path) -> subprocess.CompletedProcess[bytes]:
    # .versions is ownvault's history folder, lost+found davfs2's own local folder
    return subprocess.run(
        ["diff", "-r", "--exclude=.versions", "--exclude=lost+found", str(src), str(mnt)],
        capture_output=True, timeout=120,
    )  # fmt: skip


def test_davfs2_mount_copy_and_diff(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_random_tree(src, seed=18)
    (src / "big.bin").write_bytes(os.urandom(3_000_000))
    (src / "empty").touch()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with served(tmp_path) as s:
        with davfs(s, tmp_path / "mnt", private) as mnt:
            assert _diff(src, mnt).returncode == 1  # not yet there: the check can fail
            sh("cp", "-r", f"{src}/.", str(mnt))
            r = _diff(src, mnt)
            assert r.returncode == 0, r.stdout.decode()
        with davfs(s, tmp_path / "mnt2", private) as mnt:  # empty cache: read from the server
            r = _diff(src, mnt)
            assert r.returncode == 0, r.stdout.decode()
            assert (mnt / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    assert not any(private.iterdir())
