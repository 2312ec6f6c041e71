"""dag-pb / UnixFS codecs, importer invariants, the directory builder API and symlinks."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ownvault.core.cid import CID, DAG_PB, RAW
from ownvault.core.dagpb import (
    MAX_BLOCK_SIZE,
    UNIXFS_DIRECTORY,
    UNIXFS_FILE,
    PBLink,
    PBNode,
    UnixFSData,
    decode_node,
    decode_unixfs,
    encode_node,
    encode_unixfs,
)
from ownvault.core.unixfs import (
    PROFILES,
    DirEntry,
    FileImporter,
    ImportProfile,
    build_directory,
    get_profile,
    import_bytes,
    symlink_block,
)
from ownvault.engine.ipfs.localcid import cid_of_path
from ownvault.errors import FormatError, OwnvaultError, UsageError
from tests.core.ipfs_corpus import corpus_cases
from tests.core.ipfs_inputs import shake
from tests.oracle.oracle import require_oracle

cids = st.builds(
    lambda codec, digest: CID(1, codec, 0x12, digest),
    st.sampled_from([RAW, DAG_PB]),
    st.binary(min_size=32, max_size=32),
)
links = st.builds(
    PBLink,
    cids,
    st.one_of(st.none(), st.text(max_size=20)),
    st.one_of(st.none(), st.integers(0, 2**63)),
)
nodes = st.builds(
    PBNode, st.lists(links, max_size=5).map(tuple), st.one_of(st.none(), st.binary(max_size=50))
)


@given(nodes)
def test_dagpb_round_trip(node: PBNode) -> None:
    assert decode_node(encode_node(node)) == node


@given(
    st.builds(
        UnixFSData,
        st.integers(0, 5),
        st.one_of(st.none(), st.binary(min_size=1, max_size=30)),
        st.one_of(st.none(), st.integers(0, 2**63)),
        st.lists(st.integers(0, 2**40), max_size=5).map(tuple),
        st.one_of(st.none(), st.integers(0, 255)),
        st.one_of(st.none(), st.integers(0, 1024)),
        st.one_of(st.none(), st.integers(0, 0o7777)),
        st.one_of(
            st.none(),
            st.tuples(
                st.integers(-(2**40), 2**40), st.one_of(st.none(), st.integers(0, 999_999_999))
            ),
        ),
    )
)
def test_unixfs_round_trip(msg: UnixFSData) -> None:
    assert decode_unixfs(encode_unixfs(msg)) == msg


@given(st.binary(max_size=300))
def test_fuzz_decoders(raw: bytes) -> None:
    for decode in (decode_node, decode_unixfs):
        try:
            decode(raw)
        except OwnvaultError as exc:
            assert isinstance(exc, FormatError)


def test_block_size_limit() -> None:
    with pytest.raises(FormatError, match="larger than"):
        decode_node(b"\x0a" + bytes(MAX_BLOCK_SIZE))


@pytest.mark.parametrize(
    ("path", "error", "message"), corpus_cases("dagpb") + corpus_cases("unixfs")
)
def test_corrupt_corpus(path: Path, error: type[Exception], message: str) -> None:
    decode = decode_unixfs if path.name.startswith("unixfs") else decode_node
    with pytest.raises(OwnvaultError) as info:
        decode(path.read_bytes())
    assert type(info.value) is error
    assert message in str(info.value)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_emitted_blocks_form_the_dag(profile: str) -> None:
    small = dataclasses.replace(PROFILES[profile], chunk_size=64, max_links=4)
    data = shake("dag", 64 * 40 + 3)
    blocks: list[tuple[CID, bytes]] = []
    root = import_bytes(data, small, lambda c, b: blocks.append((c, b)))
    assert blocks[-1][0] == root.cid  # the root comes last
    store = dict(blocks)
    for cid, block in blocks:
        assert cid.verify(block)

    def walk(cid: CID) -> tuple[bytes, int]:
        block = store[cid]
        if cid.codec == RAW:
            return block, len(block)
        node = decode_node(block)
        assert node.data is not None
        meta = decode_unixfs(node.data)
        assert meta.type == UNIXFS_FILE
        content = meta.data or b""
        tsize = len(block)
        for link, size in zip(node.links, meta.blocksizes, strict=True):
            assert link.name == ""
            part, sub = walk(link.cid)
            assert len(part) == size and link.tsize == sub
            content += part
            tsize += sub
        assert meta.filesize == len(content)
        return content, tsize

    content, tsize = walk(root.cid)
    assert content == data and tsize == root.tsize and root.size == len(data)


def test_importer_misuse() -> None:
    imp = FileImporter(PROFILES["kubo-v1"])
    imp.finish()
    with pytest.raises(UsageError):
        imp.update(b"x")
    with pytest.raises(UsageError):
        imp.finish()
    with pytest.raises(UsageError, match="unknown import profile"):
        get_profile("kubo-v9")
    for bad in (
        dict(cid_version=0),
        dict(chunk_size=0),
        dict(max_links=1),
        dict(hamt_fanout=100),
        dict(hash_code=0x13),
        dict(name=""),
    ):
        with pytest.raises(UsageError):
            dataclasses.replace(PROFILES["kubo-v1"], **bad)  # type: ignore[arg-type]


def test_profiles_are_named_frozen_values() -> None:
    for name, profile in PROFILES.items():
        assert isinstance(profile, ImportProfile) and profile.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            profile.chunk_size = 1  # type: ignore[misc]
    assert PROFILES["unixfs-v1-2025"].hamt_estimation == "block"
    with pytest.raises(TypeError):
        PROFILES["x"] = PROFILES["kubo-v1"]  # type: ignore[index]


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_directory_from_catalog_entries_equals_walk(profile: str, tmp_path: Path) -> None:
    """A tree's CID from stored per-file roots (no rereading) equals walking the tree."""
    prof = PROFILES[profile]
    (tmp_path / "d" / "sub").mkdir(parents=True)
    files = {"b.txt": shake("b", 300_000), "a": b"", "sub/c": b"c" * 10}
    for rel, data in files.items():
        (tmp_path / "d" / rel).write_bytes(data)
    roots = {rel: import_bytes(data, prof) for rel, data in files.items()}
    sub = build_directory([DirEntry("c", roots["sub/c"].cid, roots["sub/c"].tsize)], prof)
    top = build_directory(
        [
            DirEntry("sub", sub.cid, sub.tsize, is_directory=True),
            DirEntry("b.txt", roots["b.txt"].cid, roots["b.txt"].tsize),
            DirEntry("a", roots["a"].cid, roots["a"].tsize),
        ],
        prof,
    )
    walked = cid_of_path(tmp_path / "d", prof)
    assert (top.cid, top.tsize) == (walked.cid, walked.tsize)
    assert not top.sharded


def test_directory_rejects_bad_names() -> None:
    prof = PROFILES["kubo-v1"]
    cid = CID.for_block(RAW, b"")
    for name in ("", ".", "..", "a/b", "nul\0", "\udcff-not-utf8", "x" * 5000):
        with pytest.raises(UsageError):
            build_directory([DirEntry(name, cid, 0)], prof)
    with pytest.raises(UsageError, match="duplicate"):
        build_directory([DirEntry("a", cid, 0), DirEntry("a", cid, 0)], prof)


def test_empty_directory() -> None:
    root = build_directory([], PROFILES["kubo-v0"])
    assert str(root.cid) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    node = decode_node(b"\x0a\x02\x08\x01")
    assert node.data is not None and decode_unixfs(node.data).type == UNIXFS_DIRECTORY


@pytest.mark.parametrize("target", ["foo/bar", "../x", "/abs/päth"])
def test_symlink_nodes_match_reference(target: str) -> None:
    ref = require_oracle().symlink(target)
    for profile, key in (("kubo-v1", "v1"), ("kubo-v0", "v0")):
        cid, block = symlink_block(target.encode(), PROFILES[profile])
        assert str(cid) == ref[key] and len(block) == ref["size"]


def test_symlinks_in_a_tree(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "file").write_bytes(b"data")
    os.symlink("file", tmp_path / "d" / "link")
    os.symlink("/nowhere", tmp_path / "d" / "dangling")
    prof = PROFILES["kubo-v1"]
    got = cid_of_path(tmp_path / "d", prof)
    entries = [DirEntry("file", import_bytes(b"data", prof).cid, 4)]
    for name, target in (("link", b"file"), ("dangling", b"/nowhere")):
        cid, block = symlink_block(target, prof)
        entries.append(DirEntry(name, cid, len(block)))
    assert got.cid == build_directory(entries, prof).cid
    top = cid_of_path(tmp_path / "d" / "link", prof)
    assert top.kind == "symlink" and top.cid == symlink_block(b"file", prof)[0]


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a regular file"):
        cid_of_path(tmp_path, PROFILES["kubo-v1"])
    with pytest.raises(UsageError, match="no such file"):
        cid_of_path(tmp_path / "missing", PROFILES["kubo-v1"])
