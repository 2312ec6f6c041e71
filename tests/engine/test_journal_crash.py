"""kill -9 of a real process in the middle of a journal append: after the record is on the
providers but before the catalog moved its head, and before any provider write. The next
append neither forks the chain nor loses the record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ownvault.core.journalops import Tag
from ownvault.engine.store.journalstore import JournalStore, record_name

from .helpers import PASS, Vaults, run
from .test_journalstore import folder_vault, second_device

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from ownvault.core.journalops import Tag
    from ownvault.engine.store.journalstore import JournalStore
    from ownvault.engine.vault import Vault

    path, point = sys.argv[1], sys.argv[2]
    vault = Vault.open(path, sys.argv[3])
    js = JournalStore(vault.ctx)
    written = js._write_copies

    async def stop_after(targets, name, data):
        if point == "before":
            print("stopped", flush=True)
            time.sleep(600)
        out = await written(targets, name, data)
        print("stopped", flush=True)  # the copies are durable; the head is not moved yet
        time.sleep(600)
        return out

    async def main():
        await js.enroll()
        js._write_copies = stop_after
        await js.append(js.device, js.body([Tag("crash", "x")]))

    asyncio.run(main())
    """
)


def kill_at(vault: Path, point: str, child: str = CHILD) -> None:
    """Run ``child`` (by default an append) in a process and SIGKILL it at ``point``: the
    script prints ``stopped`` there and waits."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", child, str(vault), point, PASS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"stopped\n", (line, proc.stderr.read() if proc.stderr else b"")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("point", ["after", "before"])
def test_kill_during_an_append_neither_forks_nor_loses(
    vaults: Vaults, tmp_path: Path, point: str
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    b = second_device(vaults, a, tmp_path, dirs[0])
    path = a.path
    # The vault's setup (providers, policy) went out as settings records: count from there.
    base = a.catalog.journal.head(JournalStore(a.ctx).device.id).seq
    vaults.close(a)
    kill_at(path, point)
    a = vaults.open(path)
    ja = JournalStore(a.ctx)
    own = ja.device.id
    assert a.catalog.journal.pending() == (own, base + 1)  # the mark the killed append left
    assert a.catalog.journal.head(own).seq == base
    on_disk = [(d / "objects" / record_name(own, base + 1)).is_file() for d in dirs]
    assert on_disk == [point == "after"] * len(dirs)

    # Reading every chain settles the mark first (the record is this device's, no fork).
    assert [r.seq for r in run(ja.history()) if r.device == own] == list(
        range(1, base + 2 if point == "after" else base + 1)
    )
    assert a.catalog.journal.pending() is None
    rec = run(ja.append(ja.device, ja.body([Tag("next", "y")])))
    jb = JournalStore(b.ctx)
    mine = [r for r in run(jb.pull()) if r.device == own]
    if point == "after":  # adopted: the killed process's record stays, the next follows it
        assert rec.seq == base + 2
        assert [(r.seq, r.ops) for r in mine] == [  # up to base: read when b was recovered
            (base + 1, (Tag("crash", "x"),)),
            (base + 2, (Tag("next", "y"),)),
        ]
    else:  # never written: the next record takes seq base + 1
        assert rec.seq == base + 1
        assert [(r.seq, r.ops[0]) for r in mine] == [(base + 1, Tag("next", "y"))]
    run(ja.pull())  # its own chain checks out against every provider
