"""``ownvault gc`` between three devices of one vault as real processes on shared
local-folder providers: an ``rm`` on one device frees nothing while another has not seen
it; once every device wrote a record after seeing it the next gc deletes; a device that
never comes back holds GC back until revoked; a put racing a gc keeps its data; a gc killed
with SIGKILL leaves the vault consistent (``check --deep`` clean)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.cli.test_devices_converge import _devices, _spawn
from tests.cli.test_keys import js, ov
from tests.engine.helpers import PASS


def _shares(tmp_path: Path) -> set[str]:
    """Every data share object on the providers (by path under the folders)."""
    return {
        str(p.relative_to(tmp_path))
        for i in range(2)
        for p in (tmp_path / f"ext-{i}" / "objects" / "shares").rglob("*")
        if p.is_file()
    }


def _device_id(vault: Path, name: str) -> str:
    found = js(ov(vault, "--json", "devices"))["devices"]
    return str(next(d["id"] for d in found if d["name"] == name))


def _deep_clean(vault: Path) -> None:
    report = js(ov(vault, "--json", "check", "--deep"))
    assert report["healthy"] and report["shares_bad"] == 0, report


def test_gc_waits_for_every_device_and_a_revocation_lets_it_proceed(tmp_path: Path) -> None:
    a, b, c = _devices(tmp_path, 3)
    files = tmp_path / "files"
    files.mkdir()
    (files / "doc").write_bytes(random.Random(1).randbytes(400_000))
    (files / "keep").write_bytes(random.Random(2).randbytes(100_000))
    empty = _shares(tmp_path)
    ov(a, "put", str(files / "doc"))
    doc_shares = _shares(tmp_path) - empty
    ov(a, "put", str(files / "keep"))
    ov(b, "devices")  # B and C pull: they have seen doc
    ov(c, "devices")

    # rm on A while B and C have not written since: nothing is deleted.
    assert "0 pack(s) freed" in ov(a, "rm", "doc").stdout
    assert doc_shares <= _shares(tmp_path)
    dry = js(ov(a, "--json", "gc", "--dry-run"))
    assert dry["dry_run"] and dry["packs"] == []
    held = {h["name"]: h for h in dry["held_back"]}
    assert sorted(held) == ["dev-1", "dev-2"]
    assert held["dev-1"]["bytes"] >= 400_000 and held["dev-1"]["packs"] >= 1
    assert "dev-2" in ov(a, "gc", "--dry-run").stdout

    # B pulls and writes (its gc acknowledges); C never comes back: still nothing.
    ov(b, "gc")
    got = js(ov(a, "--json", "gc"))
    assert got["packs_deleted"] == 0
    assert [h["name"] for h in got["held_back"]] == ["dev-2"]
    assert doc_shares <= _shares(tmp_path)

    # Revoking C lets the gc proceed; what is kept still reads on A and B.
    ov(a, "devices", "revoke", _device_id(a, "dev-2"))
    got = js(ov(a, "--json", "gc"))
    assert got["packs_deleted"] >= 1 and got["held_back"] == [], got
    assert got["bytes"] >= 400_000
    assert not doc_shares & _shares(tmp_path)
    for v in (a, b):
        out = tmp_path / f"keep-{v.name}"
        ov(v, "get", "keep", "-o", str(out))
        assert out.read_bytes() == (files / "keep").read_bytes()
        _deep_clean(v)


def test_a_put_racing_a_gc_keeps_its_data_and_a_killed_gc_leaves_the_vault_consistent(
    tmp_path: Path,
) -> None:
    a, b = _devices(tmp_path, 2)
    files = tmp_path / "files"
    files.mkdir()
    data = random.Random(3).randbytes(600_000)
    (files / "doc").write_bytes(data)
    ov(a, "put", str(files / "doc"))
    ov(b, "devices")
    ov(a, "rm", "doc")
    ov(b, "gc")  # B saw the rm and acknowledged it

    # B stores the same bytes while A collects the pack they were in: B's put stays whole.
    procs = [_spawn(b, "put", str(files / "doc"), "--as", "copy"), _spawn(a, "gc")]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode in (0, 9), (p.args, out, err)  # 9: that vault was busy
    ov(a, "gc")
    for v in (b, a):
        out_file = tmp_path / f"copy-{v.name}"
        ov(v, "get", "copy", "-o", str(out_file))
        assert out_file.read_bytes() == data
        _deep_clean(v)

    # kill -9 in the middle of a gc, before and after its first share deletion; then
    # check and a gc that completes.
    rnd = random.Random(4)
    for point in ("before", "after"):
        base = _shares(tmp_path)
        for i in range(4):
            (files / f"{point}-{i}").write_bytes(rnd.randbytes(120_000))
            ov(a, "put", str(files / f"{point}-{i}"))
        ov(b, "devices")
        for i in range(4):
            ov(a, "rm", f"{point}-{i}")
        ov(b, "gc")
        before = _shares(tmp_path)
        _kill_gc(a, point)
        for v in (a, b):
            _deep_clean(v)
        got = js(ov(a, "--json", "gc"))
        assert got["held_back"] == []
        assert _shares(tmp_path) == base != before  # nothing left behind by the kill
        _deep_clean(a)
    for v in (a, b):
        out_file = tmp_path / f"copy-again-{v.name}"
        ov(v, "get", "copy", "-o", str(out_file))
        assert out_file.read_bytes() == data


CHILD = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from ownvault.engine.vault import Vault

    vault = Vault.open(sys.argv[1], sys.argv[3])
    point = sys.argv[2]
    store = vault.ctx.store
    delete = store.delete_share

    async def killing(provider, name):
        if point == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        await delete(provider, name)
        os.kill(os.getpid(), signal.SIGKILL)

    store.delete_share = killing

    async def main():
        await vault.pull()
        await vault.files.gc()

    asyncio.run(main())
    """
)


def _kill_gc(vault: Path, point: str) -> None:
    """A gc in a real process that SIGKILLs itself at ``point`` of its first share delete."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(vault), point, PASS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.stdout, proc.stderr)
