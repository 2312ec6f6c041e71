"""Every path that writes packs fails over: a provider that refuses writes during a
rebalance or a pack rewrite (revocation) does not abort it (engine.store.packwriter)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ownvault.core.chunking import ChunkerParams
from ownvault.core.pack import PackBuilder
from ownvault.engine.store import ingest
from ownvault.engine.store.packwriter import PackWriter, WrittenPack
from ownvault.engine.store.shares import EncodedPack, ShareStore
from ownvault.engine.vault import Vault
from ownvault.providers.wrappers import Fault, FaultyProvider

from .helpers import Vaults, run, tree_state, write_random_tree


def _fail_puts(vault: Vault, name: str) -> Fault:
    """From now on, every write to provider ``name`` fails (reads still work)."""
    pid = next(r.id for r in vault.catalog.providers() if r.name == name)
    fault = Fault("fail", ops=frozenset({"put"}))
    store = vault.store
    store.providers[pid] = FaultyProvider(store.providers[pid], [fault])
    return fault


def _holders(vault: Vault) -> set[str]:
    names = {r.id: r.name for r in vault.catalog.providers(include_removed=True)}
    return {
        names[s.provider] for p in vault.catalog.live_packs() for s in vault.catalog.shares_of(p)
    }


def test_rebalance_fails_over_to_another_provider(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    write_random_tree(src, 3, files=6, max_size=100_000)
    vault = vaults.create(tmp_path / "v", providers=8, k=3, n=6)
    run(vault.files.put([src]))
    assert _holders(vault) == {f"local-{i}" for i in range(1, 7)}
    # Draining local-1 moves its shares to the emptiest spare, local-7, which now
    # refuses every write: they must land on local-8 instead.
    fault = _fail_puts(vault, "local-7")
    out = run(vault.fleet.remove_provider("local-1"))
    assert out.removed and out.shares_moved >= 1
    assert fault.fired >= 1
    assert _holders(vault) == {"local-8", *(f"local-{i}" for i in range(2, 7))}
    report = run(vault.health.check()).to_json()
    assert report["healthy"] and report["policy_ok"], report
    run(vault.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_pack_rewrite_fails_over_to_another_provider(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    write_random_tree(src, 4, files=6, max_size=100_000)
    alice = vaults.create(tmp_path / "alice", providers=8, k=3, n=6)
    bob = vaults.create(tmp_path / "bob", providers=3, k=1, n=2)
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    run(alice.files.put([src]))
    grant = run(alice.sharing.share(names=["docs"], to="bob"))
    # Revocation re-encrypts every pack of "docs" into new packs, placed first on the
    # empty local-7 and local-8; local-7 refuses writes.
    fault = _fail_puts(alice, "local-7")
    result = run(alice.sharing.revoke(grant.grant_id))
    assert result.repack is not None and result.repack.packs_written >= 1, result
    assert fault.fired >= 1
    assert "local-7" not in _holders(alice)
    report = run(alice.health.check()).to_json()
    assert report["healthy"] and report["policy_ok"], report
    run(alice.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_lent_pack_buffers_are_reused_only_after_their_shares_are_written(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open pack is handed to the encoder as a view of the builder's buffer, and the
    data fragments are views of it: a buffer refilled before its pack's shares are
    written would store (and root) the next pack's bytes. Small packs, small read blocks,
    3 packs in flight and a slow encoder make the builder fill packs while others are
    being coded; every byte must come back and every share must verify."""
    monkeypatch.setattr(ingest, "BLOCK_SIZE", 64 * 1024)
    monkeypatch.setattr(ingest, "MAX_INFLIGHT", 3)
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (64 * 1024, 2))
    buffers: dict[int, object] = {}  # every buffer lent, held so that ids stay unique
    original_lend = PackBuilder.lend

    def recording_lend(self: PackBuilder) -> memoryview:
        view = original_lend(self)
        buffers[id(view.obj)] = view.obj
        return view

    original_encode = ShareStore.encode_sync

    def slow_encode(
        self: ShareStore, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> EncodedPack:
        time.sleep(0.01)  # the builder seals more packs meanwhile
        return original_encode(self, pack_id, data, k, n)

    monkeypatch.setattr(PackBuilder, "lend", recording_lend)
    monkeypatch.setattr(ShareStore, "encode_sync", slow_encode)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    small = ChunkerParams("test-small", 1024, 4096, 16384)
    vault = vaults.create(tmp_path / "v", providers=3, k=2, chunker=small)
    run(vault.files.put([src]))
    packs = vault.catalog.conn.execute("SELECT COUNT(*) FROM packs").fetchone()[0]
    assert packs >= 40
    assert len(buffers) < packs // 2  # buffers were given back and reused
    deep = run(vault.health.deep_check())
    assert deep.shares_bad == 0 and deep.shares_verified == 3 * packs, deep.to_json()
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_pack_rewrites_reuse_lent_pack_buffers_and_parity_sets(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite (here: revocation) hands each new pack to the writer as a view of the
    builder's buffer (no copy out of it, no fresh 16 MiB buffer per pack), and its shares
    to the providers as parts viewing that buffer and a parity set; both are reused for
    the next pack once the shares are written. Small packs make many: a few buffers serve
    them all, every share verifies and every byte comes back."""
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (64 * 1024, 2))
    lent: dict[int, object] = {}
    parity: dict[int, object] = {}
    original_lend = PackBuilder.lend
    original_encode = ShareStore.encode_sync

    def recording_lend(self: PackBuilder) -> memoryview:
        view = original_lend(self)
        lent[id(view.obj)] = view.obj
        return view

    def recording_encode(
        self: ShareStore, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> EncodedPack:
        enc = original_encode(self, pack_id, data, k, n)
        parity[id(enc.parity)] = enc.parity
        return enc

    src = tmp_path / "docs"
    write_random_tree(src, 5, files=12, max_size=200_000)
    (src / "big.bin").write_bytes(os.urandom(1_500_000))
    small = ChunkerParams("test-small", 1024, 4096, 16384)
    alice = vaults.create(tmp_path / "alice", providers=6, k=3, n=6, chunker=small)
    bob = vaults.create(tmp_path / "bob", providers=3, k=1, n=2)
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    run(alice.files.put([src]))
    grant = run(alice.sharing.share(names=["docs"], to="bob"))
    monkeypatch.setattr(PackBuilder, "lend", recording_lend)
    monkeypatch.setattr(ShareStore, "encode_sync", recording_encode)
    result = run(alice.sharing.revoke(grant.grant_id))
    assert result.repack is not None
    written = result.repack.packs_written
    assert written >= 10, result
    assert 1 <= len(lent) <= 3 and 1 <= len(parity) <= 3  # reused, not one per pack
    deep = run(alice.health.deep_check())
    assert deep.shares_bad == 0, deep.to_json()
    run(alice.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_a_put_keeps_max_inflight_packs_being_written(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While packs are coded and written the put goes on filling the next ones, up to
    ``MAX_INFLIGHT`` (3) at once: with 2, the ~100-150 ms a pack's shares take here held a
    put near 200 MB/s however fast it read. Writes are held until 3 are under way (or a
    deadline passes); the put must reach 3 and never more, and every byte comes back."""
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (64 * 1024, 2))
    monkeypatch.setattr(ingest, "BLOCK_SIZE", 64 * 1024)
    original_write = PackWriter.write_pack
    running = peak = 0
    full = asyncio.Event()

    async def held_write(self: PackWriter, data: bytes | memoryview, **kw: bytes) -> WrittenPack:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running >= ingest.MAX_INFLIGHT:
            full.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(full.wait(), 10)
            return await original_write(self, data, **kw)
        finally:
            running -= 1

    monkeypatch.setattr(PackWriter, "write_pack", held_write)
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))
    small = ChunkerParams("test-small", 1024, 4096, 16384)
    vault = vaults.create(tmp_path / "v", providers=3, k=2, chunker=small)
    run(vault.files.put([src]))
    assert ingest.MAX_INFLIGHT == 3 and peak == 3 and full.is_set()
    run(vault.files.get("src", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_packs_are_coded_even_while_every_pool_thread_is_writing() -> None:
    """Coding runs on the share store's encoder threads: while share writes (blocked in
    ``fsync``) hold every thread of the loop's shared pool, the next pack is still coded
    (it waited behind them), and its shares are the ones ``encode_sync`` makes."""
    store = ShareStore({}, {})
    data = os.urandom(3 * 65536)
    release = threading.Event()

    async def go() -> EncodedPack:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(2))
        writes = [asyncio.ensure_future(asyncio.to_thread(release.wait, 30)) for _ in range(2)]
        try:
            return await asyncio.wait_for(store.encode(b"p" * 16, data, 3, 6), 20)
        finally:
            release.set()
            await asyncio.gather(*writes)

    enc = asyncio.run(go())
    assert [bytes(p) for p in enc.pieces] == [
        bytes(p) for p in store.encode_sync(b"p" * 16, data, 3, 6).pieces
    ]
