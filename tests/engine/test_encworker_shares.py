"""The encoder side of a large put in a worker process (``engine.store.encworker``): the
shares it codes are the in-process encoder's byte for byte, a put codes its packs there,
its slots are reused only after their pack's shares are written, and nothing of its
shared memory outlives the put."""

from __future__ import annotations

import asyncio
import gc
import os
import random
from pathlib import Path

import pytest

from ownvault.core.pack import MAX_PACK_SIZE, PACK_HEADER, PackBuilder
from ownvault.engine.store import ingest
from ownvault.engine.store.encworker import RemoteEncoder
from ownvault.engine.store.shares import EncodedPack, ShareParts, ShareStore

from .helpers import Vaults, memfd_in_use, run
from .test_cutter import SMALL

PACK = 64 * 1024


def shared_memory() -> list[str]:
    """This process's descriptors and mappings of the encoder's shared slots."""
    return memfd_in_use("ownvault-packs")


def shm_names() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def joined(enc: EncodedPack) -> list[bytes]:
    return [bytes(p) for p in enc.pieces]


@pytest.mark.parametrize(("k", "n", "size"), [(3, 6, PACK), (2, 3, PACK), (3, 6, MAX_PACK_SIZE)])
def test_the_worker_codes_the_shares_the_in_process_encoder_codes(
    k: int, n: int, size: int
) -> None:
    """For packs filling their slot and shorter ones (the last data fragments padded), the
    worker's shares and roots are the in-process encoder's, byte for byte; a pack outside
    the shared slots, or one when every parity slot is taken, is declined (None)."""
    rnd = random.Random(size + k)
    store = ShareStore({}, {})
    remote = RemoteEncoder(k, n, size, 2, 2)
    try:
        slots = remote.pack_buffers()
        encoded = []
        for i, length in enumerate((size, size - 4096 - 7)):
            slots[i][:length] = rnd.randbytes(length)
            pack = slots[i][:length]
            pack_id = rnd.randbytes(16)
            enc = remote.encode(pack_id, pack, k, n)
            assert enc is not None
            local = store.encode_sync(pack_id, bytes(pack), k, n)
            assert enc.roots == local.roots
            assert joined(enc) == joined(local)
            assert all(isinstance(p, ShareParts) for p in enc.pieces)
            encoded.append(enc)
        # both parity slots are held by packs not released yet
        assert remote.encode(b"\1" * 16, slots[0][:1000], k, n) is None
        store.release(encoded[0])
        assert remote.encode(b"\1" * 16, memoryview(bytearray(1000)), k, n) is None
        assert remote.encode(b"\1" * 16, slots[0][:1000], k, n) is not None
        del encoded, enc, local, pack, slots
    finally:
        remote.close()
    gc.collect()
    assert not shared_memory()


def test_a_put_codes_its_packs_in_the_worker_and_leaves_no_shared_memory(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put of two large files codes most packs in the worker, cycling its few pack
    slots; every share verifies, the bytes come back, and no descriptor, mapping or
    /dev/shm name of the shared slots is left."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (PACK, 2))
    monkeypatch.setattr(ingest, "BLOCK_SIZE", PACK)  # a range fills about one pack
    coded = [0]
    real = RemoteEncoder.encode

    def counting(
        self: RemoteEncoder, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> EncodedPack | None:
        enc = real(self, pack_id, data, k, n)
        coded[0] += enc is not None
        return enc

    monkeypatch.setattr(RemoteEncoder, "encode", counting)
    before = shm_names()
    files = []
    for name in ("a.bin", "b.bin"):
        (tmp_path / name).write_bytes(os.urandom(2_000_000))
        files.append(tmp_path / name)
    vault = vaults.create(tmp_path / "v", providers=6, k=3, n=6, chunker=SMALL)
    run(vault.files.put(files))
    packs = vault.catalog.conn.execute("SELECT COUNT(*) FROM packs").fetchone()[0]
    assert packs >= 50
    # most packs in the worker, through 6 pack slots (the others, when the reader ran
    # ahead and every slot was taken, in fresh buffers in-process)
    assert coded[0] >= packs // 2
    gc.collect()
    assert not shared_memory()
    assert shm_names() <= before
    deep = run(vault.health.deep_check())
    assert deep.shares_bad == 0 and deep.shares_verified == 6 * packs, deep.to_json()
    for src in files:
        run(vault.files.get(src.name, tmp_path / f"back-{src.name}"))
        assert (tmp_path / f"back-{src.name}").read_bytes() == src.read_bytes()


def test_a_slot_is_reused_only_after_its_packs_shares_are_written(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slow share writes, 3 packs in flight, 4 pack slots and 1 parity slot: each share's
    bytes when its write ends are the bytes it had when the write began (a pack slot
    refilled, or the parity slot recoded, before ``write_pack`` returned would change
    them); the slots were reused many times."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(PackBuilder.__init__, "__defaults__", (PACK, 2))
    monkeypatch.setattr(ingest, "BLOCK_SIZE", PACK)  # a range fills about one pack
    coded = [0]
    changed: list[str] = []
    real_encode = RemoteEncoder.encode
    real_put = ShareStore.put_share

    def counting(
        self: RemoteEncoder, pack_id: bytes, data: bytes | memoryview, k: int, n: int
    ) -> EncodedPack | None:
        enc = real_encode(self, pack_id, data, k, n)
        coded[0] += enc is not None
        return enc

    async def slow_put(
        self: ShareStore, provider: int, name: str, data: object, *, adopt: bool = True
    ) -> None:
        first = bytes(data) if isinstance(data, ShareParts) else None
        await asyncio.sleep(0.01)  # the builder and the worker go on meanwhile
        await real_put(self, provider, name, data, adopt=adopt)  # type: ignore[arg-type]
        if first is not None and bytes(data) != first:  # type: ignore[call-overload]
            changed.append(name)

    real_init = RemoteEncoder.__init__

    def few_slots(self: RemoteEncoder, k: int, n: int, size: int, *_: int) -> None:
        real_init(self, k, n, size, 4, 1)

    monkeypatch.setattr(RemoteEncoder, "__init__", few_slots)
    monkeypatch.setattr(RemoteEncoder, "encode", counting)
    monkeypatch.setattr(ShareStore, "put_share", slow_put)
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(2_500_000))
    vault = vaults.create(tmp_path / "v", providers=6, k=3, n=6, chunker=SMALL)
    run(vault.files.put([src]))
    assert coded[0] >= 10  # far more packs than slots (the others coded in-process)
    assert changed == []
    deep = run(vault.health.deep_check())
    assert deep.shares_bad == 0, deep.to_json()
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


def test_a_builder_cycles_the_shared_buffers_then_drops_them() -> None:
    """``use_buffers``: the builder seals into the given buffers (header written), takes a
    given-back one again, and forgets them all on ``drop_buffers``."""
    shared = bytearray(3 * PACK)
    views = [memoryview(shared)[i * PACK : (i + 1) * PACK] for i in range(3)]
    builder = PackBuilder(PACK, keep=1)
    builder.use_buffers(views[:2])
    builder.add(b"x" * 100)
    first = builder.lend()
    builder.add(b"y" * 100)
    second = builder.lend()
    assert {bytes(first[:8]), bytes(second[:8])} == {PACK_HEADER}
    starts = {bytes(shared[i * PACK + 8 : i * PACK + 9]) for i in range(2)}
    assert starts == {b"x", b"y"}
    builder.give_back(first)
    builder.add(b"z" * 100)
    starts = {bytes(shared[i * PACK + 8 : i * PACK + 9]) for i in range(2)}
    assert starts == {b"z", b"y"}  # into the buffer given back, over the "x" pack
    builder.drop_buffers()
    assert builder.allocated == 0
    builder.add(b"w" * 100)  # a buffer of its own now
    assert b"w" not in shared


def test_without_isal_a_large_put_codes_in_process(
    vaults: Vaults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker codes with the system's ISA-L: without it no worker is started and the
    put codes its packs in-process (the engine's own fallback), byte for byte readable."""
    monkeypatch.setattr(ingest, "PROCESS_CUT_MIN", 0)
    monkeypatch.setattr(ingest, "system_isal", lambda: None)
    started: list[RemoteEncoder] = []
    real_init = RemoteEncoder.__init__

    def init(self: RemoteEncoder, *args: int) -> None:
        started.append(self)
        real_init(self, *args)

    monkeypatch.setattr(RemoteEncoder, "__init__", init)
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(1_000_000))
    vault = vaults.create(tmp_path / "v", providers=3, k=2, n=3, chunker=SMALL)
    run(vault.files.put([src]))
    assert started == []
    run(vault.files.get("a.bin", tmp_path / "back"))
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
