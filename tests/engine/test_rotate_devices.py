"""Content-key rotation on one device reaches the others (docs/design.md, "Content-key
epochs"): the new epoch travels as a ``set meta content_epoch`` op, and with ``--rewrap``
every chunk key wrapped again travels as a ``chunks`` op, so the other device's catalog,
its later puts and a device recovered afterwards hold no wrap of the old epoch."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ownvault.core.journal import Record
from ownvault.core.journalops import MoveChunks
from ownvault.core.pack import unwrap_chunk_key
from ownvault.engine.store.repack import rewrite_packs
from ownvault.engine.vault import Vault

from .helpers import Vaults, run
from .test_journalstore import folder_vault, second_device


@pytest.fixture
def pair(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, list[Path]]:
    a, dirs = folder_vault(vaults, tmp_path, count=2)
    return a, second_device(vaults, a, tmp_path, dirs[0]), dirs


def _wraps(v: Vault) -> dict[str, tuple[str, int]]:
    rows = v.catalog.conn.execute("SELECT chunk_id, wrapped_key, key_epoch FROM chunks").fetchall()
    return {bytes(r[0]).hex(): (bytes(r[1]).hex(), int(r[2])) for r in rows}


def _read(v: Vault, name: str) -> bytes:
    async def go() -> bytes:
        return b"".join([p async for p in v.files.read(name)])

    return run(go())


def test_a_rewrap_on_one_device_reaches_the_other_and_its_later_puts(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, vaults: Vaults
) -> None:
    a, b, dirs = pair
    data = {n: random.Random(i).randbytes(60_000 + i) for i, n in enumerate(("x", "y"))}
    for n, blob in data.items():
        (tmp_path / n).write_bytes(blob)
    run(a.files.put([tmp_path / "x"]))
    run(b.files.put([tmp_path / "y"]))
    run(a.ctx.pull())
    run(b.ctx.pull())
    assert {e for _w, e in _wraps(b).values()} == {0}
    result = run(a.keyring.rotate_content_key(rewrap=True))
    assert result.epoch == 1 and result.rewrapped == len(_wraps(a))
    # A's record carries the new wraps (a chunks op per pack) and the epoch.
    own = a.ctx.journal.device.id
    last = [r for r in run(a.ctx.journal.history()) if r.device == own][-1]
    sent = {c.chunk_id.hex() for op in last.ops if isinstance(op, MoveChunks) for c in op.chunks}
    assert sent == set(_wraps(a))
    run(b.ctx.pull())
    assert b.catalog.meta("content_epoch") == "1"
    assert _wraps(b) == _wraps(a)
    assert {e for _w, e in _wraps(b).values()} == {1}
    key = b.ctx.keys.content_key(1)
    for chunk, (wrapped, _e) in _wraps(b).items():
        unwrap_chunk_key(key, bytes.fromhex(chunk), bytes.fromhex(wrapped))
    for n, blob in data.items():
        assert _read(b, n) == blob
    # B's later put wraps under the new epoch; A reads it.
    (tmp_path / "z").write_bytes(random.Random(9).randbytes(70_000))
    run(b.files.put([tmp_path / "z"]))
    assert {e for _w, e in _wraps(b).values()} == {1}
    run(a.ctx.pull())
    assert _wraps(a) == _wraps(b)
    assert _read(a, "z") == (tmp_path / "z").read_bytes()
    # A device recovered now (the newest snapshot, then the records after it) holds no
    # old wrap.
    c = second_device(vaults, a, tmp_path / "c", dirs[1])
    assert c.catalog.meta("content_epoch") == "1"
    assert _wraps(c) == _wraps(b)
    assert _read(c, "x") == data["x"]


def test_a_rotation_without_rewrap_moves_the_epoch_for_later_puts_only(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path
) -> None:
    a, b, _dirs = pair
    (tmp_path / "x").write_bytes(random.Random(1).randbytes(40_000))
    run(a.files.put([tmp_path / "x"]))
    run(b.ctx.pull())
    before = _wraps(b)
    assert run(a.keyring.rotate_content_key()).rewrapped == 0
    run(b.ctx.pull())
    assert b.catalog.meta("content_epoch") == "1" and _wraps(b) == before
    (tmp_path / "y").write_bytes(random.Random(2).randbytes(40_000))
    run(b.files.put([tmp_path / "y"]))
    new = {k: v for k, v in _wraps(b).items() if k not in before}
    assert new and {e for _w, e in new.values()} == {1}


def _chunks(v: Vault) -> dict[str, tuple[str, int, int, str, int]]:
    rows = v.catalog.conn.execute(
        "SELECT c.chunk_id, p.pack_id, c.offset, c.length, c.wrapped_key, c.key_epoch "
        "FROM chunks c JOIN packs p ON p.id = c.pack"
    ).fetchall()
    return {
        bytes(r[0]).hex(): (bytes(r[1]).hex(), r[2], r[3], bytes(r[4]).hex(), r[5]) for r in rows
    }


def test_a_rewrap_racing_a_repack_of_the_same_pack_converges_readable(
    pair: tuple[Vault, Vault, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B repacks the pack (its chunks move to a new pack, the old one is deleted) while A,
    not seeing it, re-wraps the chunks' keys in the old pack, with the later clock. The
    move wins where it names the only pack left: both devices end with the chunks in B's
    pack, read the file and check clean."""
    a, b, _dirs = pair
    data = random.Random(5).randbytes(90_000)
    (tmp_path / "doc").write_bytes(data)
    run(a.files.put([tmp_path / "doc"]))
    run(b.ctx.pull())

    async def offline(*_args: object) -> list[Record]:
        return []

    async def repack() -> None:
        async with b.ctx.write():
            await rewrite_packs(
                b.ctx, set(b.catalog.live_packs()), lambda _c: "keep", reason="test"
            )

    with monkeypatch.context() as m:
        m.setattr(b.ctx.journal, "pull", offline)
        run(repack())
    with monkeypatch.context() as m:
        m.setattr(a.ctx.journal, "pull", offline)
        run(a.keyring.rotate_content_key(rewrap=True))
    for v in (a, b, a):
        run(v.ctx.pull())
    assert _chunks(a) == _chunks(b)
    for v in (a, b):
        assert _read(v, "doc") == data
        report = run(v.health.deep_check())
        assert report.shares_bad == 0 and report.healthy
