"""The per-file work of a small-file put without a format change (docs/design.md, "Many
small files", round 4): base32 by whole-integer steps, randomness drawn in batches, the
content key set up once, a one-raw-leaf file's CID without an importer. Each is checked
to give exactly the bytes of the code it replaces."""

from __future__ import annotations

import base64
import threading

import pytest

from ownvault.core import crypto
from ownvault.core.cid import CID
from ownvault.core.multibase import b32_decode, b32_encode
from ownvault.core.pack import (
    CHUNK_AD,
    ChunkKeyWrapper,
    PackBuilder,
    open_chunk,
    unwrap_chunk_key,
)
from ownvault.core.unixfs import PROFILES, FileImporter, import_bytes
from ownvault.errors import UsageError


def _reference_b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def test_base32_is_the_standard_encoding_lowered_and_unpadded_at_every_length() -> None:
    # every length up to 300 bytes (every padding case, many spread-step counts), random
    # bytes and the edge patterns of all-zero and all-one bits
    for n in range(301):
        for data in (crypto.random_bytes(n) if n else b"", bytes(n), b"\xff" * n):
            text = b32_encode(data)
            assert text == _reference_b32(data)
            assert b32_decode(text) == data


def test_a_file_cids_text_is_unchanged() -> None:
    # the CID of "hello world\n" as a raw leaf (Kubo: ipfs add --raw-leaves --cid-version 1)
    cid = CID.parse("bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
    assert str(cid) == "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    assert str(cid) == "b" + _reference_b32(cid.bytes)
    profile = PROFILES["unixfs-v1-2025"]
    assert import_bytes(b"hello world\n", profile).cid == cid


def test_the_random_pool_hands_each_byte_out_once_and_draws_again_when_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws: list[int] = []
    real = crypto.secrets.token_bytes

    def counted(n: int) -> bytes:
        draws.append(n)
        return real(n)

    monkeypatch.setattr(crypto.secrets, "token_bytes", counted)
    pool = crypto.RandomPool(64)
    parts = [pool.take(12) for _ in range(5)]  # 60 of 64 bytes: one draw
    assert draws == [64]
    parts.append(pool.take(12))  # 4 left: a new draw, the 4 dropped, never handed out
    assert draws == [64, 64]
    assert len({bytes(p) for p in parts}) == len(parts)
    with pytest.raises(UsageError):
        pool.take(65)
    with pytest.raises(UsageError):
        pool.take(0)
    with pytest.raises(UsageError):
        crypto.RandomPool(16)


def test_the_random_pool_never_hands_the_same_bytes_to_two_threads() -> None:
    pool = crypto.RandomPool(256)
    got: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [pool.take(16) for _ in range(2000)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8000 and len(set(got)) == 8000


def test_a_box_sealer_makes_the_boxes_seal_makes() -> None:
    key = crypto.random_bytes(crypto.KEY_SIZE)
    sealer = crypto.BoxSealer(key, crypto.RandomPool())
    boxes = [sealer.seal(b"payload %d" % i, b"ad") for i in range(3)]
    for i, box in enumerate(boxes):
        assert box[0] == 1 and len(box) == len(b"payload %d" % i) + crypto.AEAD_OVERHEAD
        assert crypto.open_box(key, box, b"ad") == b"payload %d" % i
        with pytest.raises(crypto.IntegrityError):
            crypto.open_box(key, box, b"other ad")
    assert len({box[1:13] for box in boxes}) == 3  # a fresh nonce per box


def test_a_wrapped_chunk_key_and_a_chunk_sealed_with_pool_nonces_open_as_before() -> None:
    content_key = crypto.random_bytes(crypto.KEY_SIZE)
    pool = crypto.RandomPool()
    wrapper = ChunkKeyWrapper(content_key, pool)
    chunk_id = crypto.random_bytes(32)
    chunk_key = pool.take(crypto.KEY_SIZE)
    wrapped = wrapper.wrap(chunk_id, chunk_key)
    assert unwrap_chunk_key(content_key, chunk_id, wrapped) == chunk_key
    with pytest.raises(crypto.IntegrityError):
        unwrap_chunk_key(content_key, crypto.random_bytes(32), wrapped)
    builder = PackBuilder()
    offset, size = builder.add_chunk(chunk_key, chunk_id, b"chunk bytes", pool)
    pack = builder.seal()
    blob = pack[offset : offset + size]
    assert open_chunk(chunk_key, chunk_id, blob) == b"chunk bytes"
    assert crypto.open_box(chunk_key, blob, CHUNK_AD + chunk_id) == b"chunk bytes"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_import_bytes_gives_the_importers_root_for_every_profile_and_size(name: str) -> None:
    profile = PROFILES[name]
    sizes = (0, 1, 4096, profile.chunk_size - 1, profile.chunk_size, profile.chunk_size + 1)
    for size in sizes:
        data = crypto.random_bytes(size) if size else b""
        importer = FileImporter(profile)
        importer.update(data)
        assert import_bytes(data, profile) == importer.finish(), (name, size)
        assert import_bytes(memoryview(data), profile) == import_bytes(data, profile)
