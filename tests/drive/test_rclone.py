"""rclone (Debian's, a real WebDAV client) against /dav/ of a real `ownvault serve`:
copy a tree in and back byte-identical, `rclone check --download`, ls, cat, moveto, delete."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.drive.helpers import served
from tests.engine.helpers import write_random_tree

needs_rclone = pytest.mark.skipif(
    shutil.which("rclone") is None,
    reason="rclone is not installed (scripts/setup.d/drive.sh installs it as root: "
    "apt-get install rclone)",
)


def _same_tree(a: Path, b: Path) -> None:
    cmp = filecmp.dircmp(a, b)
    assert (cmp.left_only, cmp.right_only, cmp.diff_files) == ([], [], []), (a, b)
    _, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert (mismatch, errors) == ([], [])
    for d in cmp.common_dirs:
        _same_tree(a / d, b / d)


@needs_rclone
def test_rclone_copy_check_ls_cat_moveto_delete(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_random_tree(src, seed=18, files=8, max_size=400_000)
    for d in sorted((p for p in src.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(d.iterdir()):
            d.rmdir()  # rclone copies files, not empty folders
    with served(tmp_path) as s:
        env = {**os.environ, "RCLONE_CONFIG": str(tmp_path / "rclone.conf")}
        # the README's setup, as written there
        subprocess.run(
            ["rclone", "config", "create", "ov", "webdav", f"url={s.dav}", "vendor=other",
             "user=ownvault", f"pass={s.token}", "--obscure"],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip

        def rclone(*args: str) -> str:
            proc = subprocess.run(
                ["rclone", "--low-level-retries", "1", "--retries", "1", *args],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
            return proc.stdout

        rclone("copy", str(src), "ov:tree")
        rclone("check", "--download", str(src), "ov:tree")
        rclone("copy", "ov:tree", str(tmp_path / "back"))
        _same_tree(src, tmp_path / "back")
        listed = sorted(rclone("lsf", "-R", "--files-only", "ov:tree").split())
        expected = sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())
        assert listed == expected
        one = next(p for p in sorted(src.rglob("*")) if p.is_file() and p.stat().st_size > 100)
        rel = str(one.relative_to(src))
        cat = subprocess.run(
            ["rclone", "cat", f"ov:tree/{rel}"], env=env, capture_output=True, timeout=120
        )
        assert cat.returncode == 0 and cat.stdout == one.read_bytes()
        rclone("moveto", f"ov:tree/{rel}", "ov:moved/renamed.bin")
        assert rclone("lsf", "ov:moved") == "renamed.bin\n"
        assert rel not in rclone("lsf", "-R", "ov:tree").split()
        # the vault has the renamed name, with its bytes (read by `ownvault get`)
        out = tmp_path / "renamed.bin"
        subprocess.run(
            [sys.executable, "-m", "ownvault", "--vault", str(s.vault), "get", "moved/renamed.bin",
             "-o", str(out)],
            env=s.env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        assert out.read_bytes() == one.read_bytes()
        rclone("delete", "ov:moved")
        assert rclone("lsf", "ov:moved") == ""  # the folder stays, empty, until rmdir
        rclone("rmdir", "ov:moved")
        rclone("purge", "ov:tree")
        assert rclone("lsf", "ov:") == ".versions/\n"  # no name is left
