"""CAR writing (byte-identical to the JS reference) and verified streaming reading."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ownvault.core.car import (
    CARV2_PRAGMA,
    MAX_SECTION_SIZE,
    CarReader,
    dfs_blocks,
    encode_header,
    encode_section,
    write_car,
)
from ownvault.core.cid import CID, RAW
from ownvault.core.unixfs import PROFILES, import_bytes
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.errors import FormatError, IntegrityError, OwnvaultError
from tests.core.ipfs_corpus import corpus_cases
from tests.core.ipfs_inputs import shake
from tests.oracle.oracle import require_oracle


def car_of(root: CID, blocks: dict[CID, bytes]) -> bytes:
    return b"".join(write_car([root], dfs_blocks(root, blocks.__getitem__)))


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def small_dag() -> tuple[CID, dict[CID, bytes], bytes]:
    profile = dataclasses.replace(PROFILES["kubo-v1"], chunk_size=100, max_links=3)
    blocks: dict[CID, bytes] = {}
    root = import_bytes(shake("car", 2000), profile, blocks.__setitem__)
    return root.cid, blocks, car_of(root.cid, blocks)


def make_tree(path: Path) -> Path:
    (path / "sub" / "deeper").mkdir(parents=True)
    (path / "empty").mkdir()
    (path / "a.bin").write_bytes(shake("a", 700_000))
    (path / "same-as-a.bin").write_bytes(shake("a", 700_000))  # duplicate blocks
    (path / "zeros").write_bytes(bytes(3 * 262144 + 10))  # identical leaves
    (path / "sub" / "deeper" / "b.txt").write_bytes(b"hello")
    (path / "sub" / "c.txt").write_bytes(b"")
    for i in range(40):
        (path / "sub" / f"n{i}").write_bytes(bytes([i]))
    return path


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_car_is_byte_identical_to_reference(profile: str, tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    blocks: dict[CID, bytes] = {}
    root = cid_of_path(tree, PROFILES[profile], on_block=blocks.__setitem__)
    ours = car_of(root.cid, blocks)
    theirs = tmp_path / "ref.car"
    require_oracle().batch([{"path": str(tree), "profile": profile, "car": str(theirs)}])
    assert ours == theirs.read_bytes()
    # a HAMT directory too (sub has 42 entries, threshold 100 bytes)
    hamt = dataclasses.replace(PROFILES[profile], hamt_threshold=100)
    blocks = {}
    root = cid_of_path(tree, hamt, on_block=blocks.__setitem__)
    require_oracle().batch(
        [{"path": str(tree), "profile": profile, "car": str(theirs), "shard-threshold": 100}]
    )
    assert car_of(root.cid, blocks) == theirs.read_bytes()


def test_reference_accepts_our_car_and_we_read_theirs(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    blocks: dict[CID, bytes] = {}
    root = cid_of_path(tree, PROFILES["kubo-v0"], on_block=blocks.__setitem__)
    ours = tmp_path / "ours.car"
    ours.write_bytes(car_of(root.cid, blocks))
    report = require_oracle().car_ls(ours)
    assert report["exit"] == 0
    assert report["badHashes"] == 0 and report["missing"] == [] and report["unreachable"] == 0
    assert report["roots"] == [str(root.cid)]
    assert report["blocks"] == len(blocks)
    read = CarReader(chunked(ours.read_bytes(), 4096))
    assert read.version == 1 and read.roots == (root.cid,)
    got = {b.cid: b.data for b in read}
    assert got == blocks


def test_writer_drops_duplicates_and_keeps_order() -> None:
    root, blocks, car = small_dag()
    listed = [b.cid for b in CarReader([car])]
    assert listed[0] == root
    assert len(listed) == len(set(listed)) == len(blocks)
    assert listed == [cid for cid, _ in dfs_blocks(root, blocks.__getitem__)]
    doubled = b"".join(write_car([root], [*blocks.items(), *blocks.items()]))
    assert len([b for b in CarReader([doubled])]) == len(blocks)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_reader_any_chunking(chunk: int) -> None:
    root, blocks, car = small_dag()
    reader = CarReader(chunked(car, chunk))
    offsets = []
    for block in reader:
        assert blocks[block.cid] == block.data
        offsets.append(block.offset)
    assert offsets[0] == len(encode_header([root]))
    assert offsets == sorted(offsets)


def carv2(v1: bytes, pad: int = 0, trailer: bytes = b"") -> bytes:
    offset = len(CARV2_PRAGMA) + 40 + pad
    header = (
        bytes(16)
        + offset.to_bytes(8, "little")
        + len(v1).to_bytes(8, "little")
        + (offset + len(v1) + 3).to_bytes(8, "little")
    )
    return CARV2_PRAGMA + header + bytes(pad) + v1 + bytes(3) + trailer


@pytest.mark.parametrize("pad", [0, 13, 4096])
def test_carv2_payload(pad: int) -> None:
    root, blocks, car = small_dag()
    data = carv2(car, pad, trailer=b"\x01index that is ignored")
    reader = CarReader(chunked(data, 333))
    assert reader.version == 2 and reader.roots == (root,)
    assert reader.data_offset == 51 + pad and reader.data_size == len(car)
    assert {b.cid: b.data for b in reader} == blocks


def test_tampered_block_is_an_integrity_error() -> None:
    root, _blocks, car = small_dag()
    for pos in range(len(encode_header([root])) + 40, len(car), 97):
        bad = bytearray(car)
        bad[pos] ^= 0x40
        with pytest.raises(OwnvaultError) as info:
            list(CarReader([bytes(bad)]))
        assert isinstance(info.value, IntegrityError)


def test_truncation_is_a_format_error() -> None:
    root, blocks, car = small_dag()
    ends = {len(encode_header([root]))}
    pos = ends.copy().pop()
    for cid, _ in dfs_blocks(root, blocks.__getitem__):
        pos += len(encode_section(cid, blocks[cid]))
        ends.add(pos)
    for cut in range(0, len(car), 11):
        if cut in ends:
            continue
        with pytest.raises(FormatError, match="truncated"):
            list(CarReader([car[:cut]]))


def test_section_limit() -> None:
    cid = CID.for_block(RAW, b"x")
    car = encode_header([cid]) + encode_section(cid, b"x" * 100)
    with pytest.raises(FormatError, match="larger than 50"):
        list(CarReader([car], max_section_size=50))
    big = bytes(MAX_SECTION_SIZE)
    with pytest.raises(FormatError):
        list(write_car([cid], [(CID.for_block(RAW, big), big)]))


def test_writer_needs_a_root() -> None:
    with pytest.raises(FormatError):
        list(write_car([], []))


@pytest.mark.parametrize(("path", "error", "message"), corpus_cases("car"))
def test_corrupt_corpus(path: Path, error: type[Exception], message: str) -> None:
    with pytest.raises(OwnvaultError) as info:
        list(CarReader(chunked(path.read_bytes(), 64)))
    assert type(info.value) is error
    assert message in str(info.value)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    with contextlib.suppress(OwnvaultError):
        list(CarReader([data]))


@settings(max_examples=300)
@given(st.data())
def test_fuzz_mutated_car(data: st.DataObject) -> None:
    _, _, car = SMALL
    bad = bytearray(car)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(bad) - 1))
        bad[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(bad)))
    with contextlib.suppress(OwnvaultError):
        list(CarReader(chunked(bytes(bad[:cut]), data.draw(st.integers(1, 64)))))


SMALL = small_dag()
