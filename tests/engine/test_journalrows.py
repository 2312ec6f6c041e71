"""The rows of a journal ``put``: a version encoded on one vault directory and inserted into
a second one that shares the providers reads back byte for byte (``engine.store.journalrows``,
``catalog.jrows``)."""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from ownvault.core.journalops import MAX_ROWS, Body, Hlc, Put, decode_body, encode_body
from ownvault.core.keys import phrase_to_entropy
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store import journalrows
from ownvault.engine.store.journalrows import (
    MAGIC,
    ChunkRow,
    ContentRow,
    EntryOut,
    PackRow,
    ShareOut,
    VersionRows,
    decode_rows,
    encode_rows,
)
from ownvault.engine.vault import Vault
from ownvault.errors import FormatError, VaultStateError

from .external import vault_with_external
from .helpers import FAST_KDF, Vaults, run, write_random_tree

NEW = "second device"


def _put_of(vault: Vault, name: str, number: int | None = None) -> Put:
    """The journal op that carries version ``number`` of ``name`` (through its JSON codec)."""
    v = vault.catalog.version(name, number)
    rows = encode_rows(vault.catalog.jrows.export(v.id))
    packs = decode_rows(rows).pack_ids()
    op = Put(v.name, v.kind, v.size, v.cid, packs, rows)
    body = decode_body(encode_body(Body(Hlc(1, 0), (op,), ())))
    put = body.ops[0]
    assert isinstance(put, Put)
    return put


def _apply(vault: Vault, put: Put) -> None:
    with vault.catalog.transaction():
        vault.catalog.jrows.insert(put.name, put.kind, put.size, put.cid, decode_rows(put.rows))


@pytest.fixture
def two(tmp_path: Path, vaults: Vaults) -> tuple[Vault, Vault, Path]:
    """Vault A with external folders, and B recovered from A's phrase: two devices."""
    a, dirs = vault_with_external(tmp_path)
    vaults.track(a)
    seed = tmp_path / "seed.txt"
    seed.write_text("before the second device\n")
    run(a.files.put([seed]))
    run(a.snapshot())
    entropy = phrase_to_entropy(a.keys.phrase)
    run(recover_vault(tmp_path / "b", entropy, NEW, [d.as_uri() for d in dirs], kdf=FAST_KDF))
    b = vaults.open(tmp_path / "b", NEW)
    return a, b, tmp_path


def test_a_version_written_on_one_device_reads_the_same_on_another(
    two: tuple[Vault, Vault, Path],
) -> None:
    a, b, tmp = two
    src = tmp / "tree"
    write_random_tree(src, 11, files=25, max_size=200_000)
    (src / "link").symlink_to("a-target")
    (src / "empty").mkdir()
    big = tmp / "big.bin"
    big.write_bytes(random.Random(5).randbytes(3_000_000))
    run(a.files.put([src], tags=["t"]))
    run(a.files.put([big]))
    big.write_bytes(big.read_bytes()[:100] + b"changed" + big.read_bytes()[107:])
    run(a.files.put([big]))
    for put in (_put_of(a, "tree"), _put_of(a, "big.bin", 1), _put_of(a, "big.bin", 2)):
        assert len(put.rows) <= MAX_ROWS and put.rows.startswith(MAGIC)
        _apply(b, put)

    assert run(b.files.ls("tree")) == run(a.files.ls("tree"))
    assert run(b.files.ls("tree/empty")) == run(a.files.ls("tree/empty"))
    assert run(b.files.versions("big.bin")) == run(a.files.versions("big.bin"))
    out_a, out_b = tmp / "out-a", tmp / "out-b"
    run(a.files.get("tree", out_a))
    run(b.files.get("tree", out_b))
    for f in sorted(out_a.rglob("*")):
        g = out_b / f.relative_to(out_a)
        assert g.is_symlink() == f.is_symlink() and g.is_dir() == f.is_dir()
        if f.is_file() and not f.is_symlink():
            assert g.read_bytes() == f.read_bytes()
    assert (out_b / "link").readlink() == Path("a-target")
    for number in (1, 2):

        async def cat(v: Vault, n: int = number) -> bytes:
            return b"".join([p async for p in v.files.read("big.bin", version=n)])

        assert run(cat(b)) == run(cat(a))
    # Every chunk of every content sits at the same place in its stream on both devices.
    va, vb = a.catalog.version("big.bin", 2), b.catalog.version("big.bin", 2)
    ca = a.catalog.content_chunks(a.catalog.entries(va.id)[0].content or 0)
    cb = b.catalog.content_chunks(b.catalog.entries(vb.id)[0].content or 0)
    assert [(c.chunk_id, c.stream_offset, c.pack_id) for c in ca] == [
        (c.chunk_id, c.stream_offset, c.pack_id) for c in cb
    ]
    # The rows B holds now encode to the same bytes of text as A's (one version, one doc).
    assert b.catalog.jrows.export(vb.id) == a.catalog.jrows.export(va.id)


def test_rows_reuse_the_packs_and_chunks_a_catalog_has(two: tuple[Vault, Vault, Path]) -> None:
    a, b, tmp = two
    f = tmp / "f.bin"
    f.write_bytes(random.Random(9).randbytes(600_000))
    run(a.files.put([f]))
    put = _put_of(a, "f.bin")
    _apply(b, put)
    _apply(b, put)  # the same rows again: a second version, no second pack or chunk
    assert [v.number for v in b.catalog.versions("f.bin")] == [1, 2]
    v1, v2 = (b.catalog.version("f.bin", n) for n in (1, 2))
    c1 = b.catalog.content_chunks(b.catalog.entries(v1.id)[0].content or 0)
    c2 = b.catalog.content_chunks(b.catalog.entries(v2.id)[0].content or 0)
    assert [c.row for c in c1] == [c.row for c in c2]
    assert b.catalog.packs_of_version(v1.id) == b.catalog.packs_of_version(v2.id)


def test_a_share_on_a_provider_this_catalog_does_not_know_is_refused(
    two: tuple[Vault, Vault, Path],
) -> None:
    a, b, tmp = two
    f = tmp / "g.txt"
    f.write_text("g")
    run(a.files.put([f]))
    rows = a.catalog.jrows.export(a.catalog.version("g.txt").id)
    text = json.loads(zlib.decompress(encode_rows(rows)[5:]))
    text["packs"][0][5][0][1] = "nowhere"
    blob = MAGIC + zlib.compress(json.dumps(text, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(VaultStateError, match="nowhere"), b.catalog.transaction():
        b.catalog.jrows.insert("g.txt", "file", 1, None, decode_rows(blob))
    assert b.catalog.object_id("g.txt") is None  # the transaction rolled back


def _doc_blob(edit: dict[str, object]) -> bytes:
    doc: dict[str, object] = {
        "created_at": 1,
        "file_count": 1,
        "cid_profile": None,
        "entries": [["", "file", 420, 0, 3, 0, None]],
        "contents": [[3, None, None, None, [0]]],
        "chunks": [["11" * 32, 0, 0, 40, 3, "22" * 40, 0]],
        "packs": [["33" * 16, 4096, 1, 2, 1, [[0, "p0", 4096, "44" * 32]]]],
    }
    doc.update(edit)
    return MAGIC + zlib.compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def test_the_rows_decoder_is_strict() -> None:
    assert decode_rows(_doc_blob({})).entries[0].size == 3
    bad = {
        "content out of order": {
            "entries": [["", "dir", 493, 0, 0, None, None], ["a", "file", 420, 0, 3, 1, None]]
        },
        "never used": {"chunks": [["11" * 32, 0, 0, 40, 3, "22" * 40, 0]] * 2},
        "unsorted": {
            "entries": [["b", "dir", 493, 0, 0, None, None], ["", "dir", 1, 0, 0, None, None]]
        },
        "wrong references": {"entries": [["", "file", 420, 0, 3, None, None]]},
        "not an integer": {"created_at": 1.0},
        "wrong fields": {"extra": 1},
        "hex": {"chunks": [["11" * 31, 0, 0, 40, 3, "22" * 40, 0]]},
    }
    for what, edit in bad.items():
        with pytest.raises(FormatError):
            decode_rows(_doc_blob(edit))
        assert what
    blob = _doc_blob({})
    text = zlib.decompress(blob[5:])
    with pytest.raises(FormatError, match="canonical"):
        decode_rows(MAGIC + zlib.compress(text.replace(b",", b", ", 1)))
    with pytest.raises(FormatError, match="truncated"):
        decode_rows(blob[:-3])
    with pytest.raises(FormatError, match="version"):
        decode_rows(b"OVRW\x02" + blob[5:])
    with pytest.raises(FormatError, match="expand"):
        decode_rows(MAGIC + zlib.compress(b" " * (journalrows.MAX_PLAIN + 1024 * 1024), 9))


def _many_small_files(n: int) -> VersionRows:
    rnd = random.Random(1)
    return VersionRows(
        1,
        n,
        None,
        (
            EntryOut("", "dir", 493, 0, 0, None, None),
            *(EntryOut(f"f{i:06d}", "file", 420, 0, 1, i, None) for i in range(n)),
        ),
        tuple(ContentRow(1, None, None, None, (i,)) for i in range(n)),
        tuple(ChunkRow(rnd.randbytes(32), 0, i, 40, 1, rnd.randbytes(40), 0) for i in range(n)),
        (PackRow(bytes(16), 4096, 1, 2, 1, (ShareOut(0, "p0", 4096, bytes(32)),)),),
    )


def test_a_tree_of_20000_files_fits_one_record() -> None:
    """The benchmark's tree of 10,000 small files, twice over, is one put's rows (the
    limit was once 1 MiB, about 5,000 files, and refused it)."""
    rows = _many_small_files(20_000)
    blob = encode_rows(rows)
    assert len(blob) <= MAX_ROWS
    assert decode_rows(blob) == rows


def test_rows_over_the_journal_limit_are_refused_with_the_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the bound of rows stored as objects (512 MiB, ``MAX_BIG_ROWS``); the bound a
    record carries inline (16 MiB) no longer refuses anything."""
    rows = _many_small_files(20_000)
    size = len(encode_rows(rows))
    monkeypatch.setattr(journalrows, "MAX_BIG_ROWS", size - 1)  # the same check, a lower bar
    with pytest.raises(
        FormatError, match=f"{size} bytes compressed, over the journal's {size - 1} per put"
    ):
        encode_rows(rows)


_ODD: list[object] = [
    None,
    -1,
    0,
    7,
    2**32,
    2**63,
    2**64,
    -(2**63) - 1,
    1.0,
    True,
    "",
    "x",
    "a\x00b",
    "\ud800",
    "é" * 3000,
    "11" * 32,
    "AB" * 32,
    "1 " * 32,
    "22" * 40,
    "223",
    [],
    [0],
    [0, 2**20],
    [2**20],
    {},
]
_VALID: dict[str, list[object]] = {
    "entry": ["d/f", "file", 420, -5, 3, 0, None],
    "content": [3, "bafy", "unixfs-v1-2025", 10, [0, 1]],
    "chunk": ["11" * 32, 0, 0, 40, 3, "22" * 40, 0],
}


def test_the_fast_item_decoders_agree_with_the_checking_ones() -> None:
    """Every field of a valid entry, content and chunk replaced by odd values: the fast path
    gives the same item, or the same error, as the decoder that checks field by field."""
    pairs = {
        "entry": (journalrows._entry_fast, journalrows._entry),  # noqa: SLF001
        "content": (journalrows._content_fast, journalrows._content),  # noqa: SLF001
        "chunk": (journalrows._chunk_fast, journalrows._chunk),  # noqa: SLF001
    }
    compared = 0
    for kind, (fast, checked) in pairs.items():
        valid = _VALID[kind]
        cases: list[object] = [valid, valid[:-1], [*valid, 0], "x", None]
        for at in range(len(valid)):
            cases += [[*valid[:at], odd, *valid[at + 1 :]] for odd in _ODD]
        for case in cases:
            want: object
            try:
                want = checked(case, f"{kind} 3")  # type: ignore[arg-type]
            except FormatError as exc:
                want = ("error", exc.message)
            try:
                got: object = fast(case, 3)  # type: ignore[arg-type]
            except FormatError as exc:
                got = ("error", exc.message)
            assert got == want, (kind, case)
            compared += 1
    assert compared > 3 * len(_ODD)


def test_rows_the_decoder_would_refuse_are_never_encoded() -> None:
    """``encode_rows`` checks its own doc with the decoder's checks: a field out of range,
    an id of the wrong size or a broken link never leaves as a put."""
    good = _many_small_files(3)
    assert decode_rows(encode_rows(good)) == good
    entry = good.entries[1]
    chunk = good.chunks[0]
    bad = {
        "mode": replace(
            good, entries=(good.entries[0], replace(entry, mode=2**32), *good.entries[2:])
        ),
        "chunk id": replace(good, chunks=(replace(chunk, chunk_id=b"\x01" * 31), *good.chunks[1:])),
        "link": replace(good, contents=(good.contents[0], good.contents[0], good.contents[2])),
        "kind": replace(
            good, entries=(good.entries[0], replace(entry, kind="fifo"), *good.entries[2:])
        ),
    }
    for what, rows in bad.items():
        with pytest.raises(FormatError):
            encode_rows(rows)
        assert what
