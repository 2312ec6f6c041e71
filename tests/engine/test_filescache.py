"""The files cache: an unchanged re-put reads no file; any change of size, mtime, ctime or
inode is read again; forgotten, removed or non-live content is never reused; rows age out.

The vault's clock runs a minute ahead here, so that files written by the test are old
enough to be remembered (a file changed within GRANULARITY_NS of the put is not);
test_a_freshly_changed_file_is_not_remembered runs on the real clock."""

from __future__ import annotations

import os
import random
import shutil
import time
import tracemalloc
from pathlib import Path

import pytest

from ownvault.core.pack import MAX_PACK_SIZE
from ownvault.engine.store.catalog import SCHEMA_VERSION
from ownvault.engine.store.catalog.filescache import TTL, FileIdentity
from ownvault.engine.store.filescache import GRANULARITY_NS
from ownvault.engine.store.ingest import Ingestor
from ownvault.engine.store.versions import put_paths
from ownvault.engine.vault import Vault

from .helpers import PASS, Vaults, run, tree_state
from .test_crash import cli, kill_after, wait_ok

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden"


def _ahead() -> float:
    return time.time() + 60


def _tree(root: Path, files: int = 6) -> dict[str, bytes]:
    out = {}
    (root / "sub").mkdir(parents=True)
    for i in range(files):
        rel = f"sub/f{i}.bin" if i % 2 else f"f{i}.bin"
        data = os.urandom(1000 + 50_000 * i)
        (root / rel).write_bytes(data)
        out[rel] = data
    return out


def _vault(vaults: Vaults, tmp_path: Path) -> Vault:
    vault = vaults.create(tmp_path / "v", providers=3, k=2, n=3)
    vault.clock = _ahead
    return vault


def _restored(vault: Vault, name: str, out: Path) -> dict[str, tuple[str, int, int, bytes]]:
    run(vault.files.get(name, out))
    return tree_state(out)


def test_unchanged_reput_reads_no_file(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    total = sum(map(len, files.values()))
    vault = _vault(vaults, tmp_path)
    first = run(vault.files.put([src]))[0]
    assert (first.unchanged, first.read_bytes, first.new_bytes) == (0, total, total)
    assert vault.catalog.filescache.count() == len(files)
    second = run(vault.files.put([src]))[0]
    assert (second.unchanged, second.read_bytes, second.new_bytes) == (len(files), 0, 0)
    assert (second.size, second.files, second.cid) == (first.size, first.files, first.cid)
    assert second.to_json()["unchanged"] == len(files)

    # Not one file is opened: a put that would read one fails.
    def no_reading(self: Ingestor, path: Path) -> None:
        raise AssertionError(f"read {path}")

    monkeypatch.setattr(Ingestor, "open_file", no_reading)
    third = run(vault.files.put([src]))[0]
    assert third.unchanged == len(files)
    assert _restored(vault, "src", tmp_path / "out") == tree_state(src)
    assert run(vault.health.check()).to_json()["healthy"]


def test_unchanged_reput_allocates_no_pack_or_read_buffer(vaults: Vaults, tmp_path: Path) -> None:
    """A put that reads no file makes neither the 16 MiB pack buffer nor the 12 MiB read
    buffer (each zeroed under the GIL when made: 16-18 ms apiece here). Measured as the
    put's peak of Python allocations, well under either."""
    src = tmp_path / "src"
    _tree(src)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    tracemalloc.start()
    try:
        again = run(vault.files.put([src]))[0]
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again.read_bytes == 0 and again.new_bytes == 0
    assert peak < MAX_PACK_SIZE // 4, peak


def test_force_read_reads_every_file(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    forced = run(vault.files.put([src], force_read=True))[0]
    assert (forced.unchanged, forced.read_bytes) == (0, sum(map(len, files.values())))
    assert forced.new_bytes == 0  # read and chunked again, every chunk known
    # ... and it remembers them again.
    assert run(vault.files.put([src]))[0].unchanged == len(files)


def _touch_same_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_content_changed_with_size_and_mtime_restored_is_seen_by_ctime(
    vaults: Vaults, tmp_path: Path
) -> None:
    """borg's documented limit: size and mtime can be put back, ctime cannot."""
    src = tmp_path / "src"
    files = _tree(src)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    target = src / "sub" / "f3.bin"
    before = target.stat()
    time.sleep(0.02)  # past the kernel's coarse timestamp tick
    new = os.urandom(len(files["sub/f3.bin"]))
    _touch_same_mtime(target, new)
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert after.st_ctime_ns != before.st_ctime_ns
    again = run(vault.files.put([src]))[0]
    assert (again.unchanged, again.read_bytes) == (len(files) - 1, len(new))
    run(vault.files.get("src/sub/f3.bin", tmp_path / "f3"))
    assert (tmp_path / "f3").read_bytes() == new


def _grow(p: Path) -> None:
    with p.open("ab") as f:
        f.write(b"more")


def _mtime(p: Path) -> None:
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))


def _ctime(p: Path) -> None:
    os.chmod(p, p.stat().st_mode & 0o7777)  # the same mode: only ctime moves


def _inode(p: Path) -> None:
    copy = p.with_name(p.name + ".tmp")
    shutil.copy2(p, copy)  # same bytes, size and mtime, another inode
    os.replace(copy, p)


@pytest.mark.parametrize("change", [_grow, _mtime, _ctime, _inode])
def test_each_identity_field_makes_the_file_read_again(
    vaults: Vaults, tmp_path: Path, change: object
) -> None:
    assert callable(change)
    src = tmp_path / "src"
    files = _tree(src)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    target = src / "f2.bin"
    time.sleep(0.02)
    change(target)
    again = run(vault.files.put([src]))[0]
    assert again.unchanged == len(files) - 1
    assert again.read_bytes == target.stat().st_size
    assert _restored(vault, "src", tmp_path / "out") == tree_state(src)


def test_a_freshly_changed_file_is_not_remembered(vaults: Vaults, tmp_path: Path) -> None:
    """mtime/ctime within GRANULARITY_NS of the put: a write in the same timestamp tick
    after the read would go unseen, so such a file is read again next time."""
    src = tmp_path / "src"
    files = _tree(src)
    vault = vaults.create(tmp_path / "v", providers=3, k=2, n=3)  # the real clock
    run(vault.files.put([src]))
    assert vault.catalog.filescache.count() == 0
    again = run(vault.files.put([src]))[0]
    assert (again.unchanged, again.read_bytes) == (0, sum(map(len, files.values())))


def test_removed_or_forgotten_content_is_not_reused(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    total = sum(map(len, files.values()))
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    run(vault.files.put([src]))  # v2 shares v1's contents (cache hits)
    run(vault.files.rm("src", version=1))
    assert vault.catalog.filescache.count() == len(files)  # v2 still holds the content
    run(vault.files.rm("src"))  # every version: the contents go, and their packs
    assert vault.catalog.filescache.count() == 0
    again = run(vault.files.put([src]))[0]
    assert (again.unchanged, again.read_bytes, again.new_bytes) == (0, total, total)
    assert _restored(vault, "src", tmp_path / "out1") == tree_state(src)

    run(vault.keyring.forget("src"))  # crypto-shred
    assert vault.catalog.filescache.count() == 0
    again = run(vault.files.put([src]))[0]
    assert (again.unchanged, again.new_bytes) == (0, total)
    assert _restored(vault, "src", tmp_path / "out2") == tree_state(src)
    assert run(vault.health.check()).to_json()["healthy"]


def test_content_with_a_chunk_outside_a_live_pack_is_not_reused(
    vaults: Vaults, tmp_path: Path
) -> None:
    """Defence in depth: the catalog never lets a content's chunk leave a live pack, but a
    row whose content has one is not used."""
    src = tmp_path / "src"
    _tree(src, files=1)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    conn = vault.catalog.conn
    ((path, params, dev, ino, size, mtime, ctime, pack),) = conn.execute(
        "SELECT f.path, f.params, f.device, f.inode, f.size, f.mtime_ns, f.ctime_ns, c.pack "
        "FROM filescache f JOIN content_chunks cc ON cc.content = f.content "
        "JOIN chunks c ON c.id = cc.chunk"
    )
    ident = FileIdentity(dev, ino, size, mtime, ctime)
    assert vault.catalog.filescache.lookup(path, ident, params) is not None
    conn.execute("UPDATE packs SET state = 'pending' WHERE id = ?", (pack,))
    assert vault.catalog.filescache.lookup(path, ident, params) is None
    conn.execute("UPDATE packs SET state = 'live' WHERE id = ?", (pack,))


def test_other_parameters_miss(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, files=1)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    ((path, params, dev, ino, size, mtime, ctime),) = vault.catalog.conn.execute(
        "SELECT path, params, device, inode, size, mtime_ns, ctime_ns FROM filescache"
    )
    ident = FileIdentity(dev, ino, size, mtime, ctime)
    assert vault.catalog.filescache.lookup(path, ident, params) is not None
    assert vault.catalog.filescache.lookup(path, ident, params + "x") is None
    assert vault.catalog.filescache.lookup(path + b"x", ident, params) is None


def test_huge_inode_and_device_numbers_fit(vaults: Vaults, tmp_path: Path) -> None:
    """st_ino and st_dev are unsigned 64-bit; SQLite's INTEGER is signed."""
    src = tmp_path / "src"
    _tree(src, files=1)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src]))
    content, size = vault.catalog.conn.execute("SELECT content, size FROM filescache").fetchone()
    big = FileIdentity(2**64 - 1, 2**63 + 5, size + 1, 2, 3)
    with vault.catalog.transaction():
        vault.catalog.filescache.record(b"/x", [], [(b"/x", big, content, "p")], [])
    assert vault.catalog.filescache.lookup(b"/x", big, "p") is None  # not the content's size
    small = FileIdentity(2**64 - 1, 2**63 + 5, size, 2, 3)
    with vault.catalog.transaction():
        vault.catalog.filescache.record(b"/x", [], [(b"/x", small, content, "p")], [])
    assert vault.catalog.filescache.lookup(b"/x", small, "p") is not None


def test_rows_age_out_only_under_the_put_root(vaults: Vaults, tmp_path: Path) -> None:
    src, other = tmp_path / "src", tmp_path / "other"
    files = _tree(src, files=3)
    _tree(other, files=2)
    vault = _vault(vaults, tmp_path)
    run(vault.files.put([src, other]))
    assert vault.catalog.filescache.count() == len(files) + 2
    gone = src / "f0.bin"
    gone.unlink()
    key = os.fsencode(gone)

    def row() -> tuple[int] | None:
        r = vault.catalog.conn.execute(
            "SELECT age FROM filescache WHERE path = ?", (key,)
        ).fetchone()
        return None if r is None else (int(r[0]),)

    for i in range(TTL):
        run(vault.files.put([src]))
        assert row() == (i + 1,)
    run(vault.files.put([src]))
    assert row() is None
    # The other tree's rows were not aged by puts of src, and still hit.
    assert run(vault.files.put([other]))[0].unchanged == 2
    # A file coming back within the TTL is seen again (age 0).
    assert run(vault.files.put([src]))[0].unchanged == len(files) - 1


def test_temporary_paths_are_not_remembered(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _tree(src, files=2)
    vault = _vault(vaults, tmp_path)
    run(put_paths(vault.ctx, [src], files_cache=False))
    assert vault.catalog.filescache.count() == 0


def test_golden_vault_migrates_to_an_empty_files_cache(vaults: Vaults, tmp_path: Path) -> None:
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN / "vault-v1", copy)
    vault = vaults.open(copy, "golden")
    assert vault.catalog.meta("schema_version") == str(SCHEMA_VERSION)
    assert vault.catalog.filescache.count() == 0
    # Its contents can be remembered, and a row goes with its content.
    content, size = vault.catalog.conn.execute(
        "SELECT id, size FROM contents ORDER BY id LIMIT 1"
    ).fetchone()
    ident = FileIdentity(1, 2, size, 3, 4)
    with vault.catalog.transaction():
        vault.catalog.filescache.record(b"/g", [], [(b"/g", ident, content, "p")], [])
    assert vault.catalog.filescache.lookup(b"/g", ident, "p") is not None
    run(vault.files.rm("note.txt"))
    run(vault.files.rm("tree"))
    assert vault.catalog.filescache.count() == 0


def test_backup_runs_reuse_unchanged_files(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = _tree(src)
    vault = _vault(vaults, tmp_path)
    run(vault.backups.add("docs", src, every="1h"))
    run(vault.backups.run("docs"))
    assert vault.catalog.filescache.count() == len(files)
    (src / "f0.bin").write_bytes(b"changed")
    run(vault.backups.run("docs"))
    second = run(vault.files.put([src], name="probe"))[0]  # the backup left every row fresh
    assert second.unchanged == len(files)


@pytest.mark.slow
def test_kill_during_reput_never_leaves_a_wrong_row(vaults: Vaults, tmp_path: Path) -> None:
    """kill -9 during re-puts of a changing tree (real processes, the real clock): every
    row refers to a content a visible version holds, and the next put stores the tree as
    it is, never a stale file."""
    tree = tmp_path / "tree"
    files = _tree(tree, files=8)
    time.sleep(GRANULARITY_NS / 1e9 + 0.2)  # old enough to be remembered
    vault_path = tmp_path / "vault"
    wait_ok(cli(vault_path, "init", "--phrase-file", str(tmp_path / "phrase")), 60)
    t0 = time.monotonic()
    wait_ok(cli(vault_path, "ls"), 300)
    start_up = time.monotonic() - t0  # kills before this land in imports and unlock
    t0 = time.monotonic()
    wait_ok(cli(vault_path, "put", str(tree)), 300)
    window = time.monotonic() - t0
    rnd = random.Random(15)
    kills = attempt = 0
    # Until 3 kills have hit a running put (at most 20 rounds): a kill that came after the
    # put ended shrinks the window, so a loaded machine's timing cannot starve the test.
    while kills < 3 and attempt < 20:
        attempt += 1
        for rel in rnd.sample(sorted(files), 3):
            _touch_same_mtime(tree / rel, os.urandom(len(files[rel])))
        if attempt % 2:
            time.sleep(GRANULARITY_NS / 1e9 + 0.2)  # these changes may be remembered
        hit = kill_after(cli(vault_path, "put", str(tree)), rnd.uniform(0.8 * start_up, window))
        kills += hit
        if not hit:
            window = max(0.8 * start_up, 0.7 * window)
        vault = vaults.open(vault_path, PASS)
        orphans = vault.catalog.conn.execute(
            "SELECT COUNT(*) FROM filescache WHERE content NOT IN "
            "(SELECT content FROM entries WHERE content IS NOT NULL)"
        ).fetchone()[0]
        assert orphans == 0
        vaults.close(vault)
        wait_ok(cli(vault_path, "put", str(tree)), 300)
        vault = vaults.open(vault_path, PASS)
        assert _restored(vault, "tree", tmp_path / f"out{attempt}") == tree_state(tree)
        vaults.close(vault)
    assert kills >= 3
