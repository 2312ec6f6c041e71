"""A pull beside another process of the same device that is appending (two commands of one
device at once: a ``get`` while a ``put`` commits). The pull must not touch the writer's
append in progress: settling its pending mark before the record is written would drop
it, and the writer's record would then read as a fork for ever. So a pull takes the
vault's write lock, and when another process holds it, it pulls nothing and says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from ownvault.core.journalops import Tag
from ownvault.engine.store.journalstore import JournalStore, record_name

from .helpers import PASS, Vaults, run
from .test_journalstore import folder_vault

WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from ownvault.core.journalops import Tag
    from ownvault.engine.store.journalstore import JournalStore
    from ownvault.engine.vault import Vault

    vault = Vault.open(sys.argv[1], sys.argv[2])
    js = JournalStore(vault.ctx)
    written = js._write_copies

    async def paused(targets, name, data):
        print("pending", flush=True)  # the mark is set, no copy written yet
        sys.stdin.readline()
        out = await written(targets, name, data)
        print("written", flush=True)  # the copies are durable; the head is not moved yet
        time.sleep(600)
        return out

    async def main():
        async with vault.ctx.lock.hold():
            await js.enroll()
            js._write_copies = paused
            await js.append(js.device, js.body([Tag("writer", "x")]))

    asyncio.run(main())
    """
)


def test_a_pull_beside_a_writing_process_leaves_its_append_alone(
    vaults: Vaults, tmp_path: Path
) -> None:
    a, dirs = folder_vault(vaults, tmp_path)
    run(JournalStore(a.ctx).enroll())
    path = a.path
    vaults.close(a)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), PASS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == b"pending\n", writer.stderr
        reader = vaults.open(path)
        warnings: list[str] = []
        reader.warn = warnings.append
        own = JournalStore(reader.ctx).device.id
        assert reader.catalog.journal.pending() == (own, 2)
        assert run(reader.pull()) == 0
        assert reader.catalog.journal.pending() == (own, 2)  # the writer's mark stays
        assert any("another ownvault process is writing" in w for w in warnings), warnings
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == b"written\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=30)
    assert all((d / "objects" / record_name(own, 2)).is_file() for d in dirs)

    # The writer was killed before it moved its head: the next pull adopts its record
    # (the mark it left says it is this device's), no fork.
    warnings.clear()
    run(reader.pull())
    assert reader.catalog.journal.head(own).seq == 2 and reader.catalog.journal.pending() is None
    js = JournalStore(reader.ctx)
    assert run(js.append(js.device, js.body([Tag("next", "y")]))).seq == 3
    run(reader.pull())
    assert not [w for w in warnings if "fork" in w]
