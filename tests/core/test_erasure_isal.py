"""The ISA-L engine of ``core.erasure`` against pyeclib, byte for byte.

pyeclib 1.8 (liberasurecode 1.8.0, ``isa_l_rs_cauchy``) wrote every fragment stored so far;
the ctypes engine (``core.isal``) must write the same bytes and read pyeclib's, for every
k, n the vault allows. Fragment headers are checked as strictly as pyeclib checks them (and
more: sizes that cannot belong to this k), always with a FormatError.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyeclib.ec_iface import ECDriver

from ownvault.core import erasure, isal
from ownvault.core.erasure import ErasureCode
from ownvault.core.fragment import HEADER_SIZE, LIBEC_VERSION, FragmentHeader
from ownvault.core.isal import DEFAULT_CANDIDATES, load_isal, system_isal
from ownvault.errors import FormatError, UsageError

MiB = 1 << 20


def _pair(k: int, n: int) -> tuple[ErasureCode, ErasureCode]:
    fast = ErasureCode(k, n, engine="isal")
    slow = ErasureCode(k, n, engine="pyeclib")
    assert (fast.engine_name, slow.engine_name) == ("isal", "pyeclib")
    return fast, slow


def _check_same_and_decodes(k: int, n: int, data: bytes, rng: random.Random) -> None:
    fast, slow = _pair(k, n)
    mine = fast.encode(data)
    theirs = slow.encode(data)
    assert mine == theirs
    assert [bytes(f) for f in fast.encode_fragments(data)] == theirs
    for _ in range(4):
        subset = rng.sample(range(n), k)
        given = {i: mine[i] for i in subset}
        assert fast.decode(given) == data
        assert slow.decode(given) == data
        # pyeclib's own decoder reads the ISA-L engine's fragments (and its own, above)
        assert ECDriver(k=k, m=n - k, ec_type="isa_l_rs_cauchy").decode(list(given.values())) == (
            data
        )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 31).flatmap(lambda k: st.tuples(st.just(k), st.integers(k + 1, 32))),
    st.one_of(st.integers(0, 70), st.integers(0, 300_000)),
    st.integers(0, 2**32),
)
def test_isal_fragments_are_pyeclibs_bytes(kn: tuple[int, int], size: int, seed: int) -> None:
    rng = random.Random(seed)
    _check_same_and_decodes(kn[0], kn[1], rng.randbytes(size), rng)


@pytest.mark.parametrize(
    ("k", "n"), [(1, 2), (2, 3), (3, 6), (4, 9), (10, 16), (16, 32), (31, 32), (1, 32)]
)
@pytest.mark.parametrize("size", [0, 1, 2, 3, 15, 16, 17, 4095, 65_537, 1_000_003])
def test_isal_matches_pyeclib_explicit_cases(k: int, n: int, size: int) -> None:
    rng = random.Random(k * 1000 + n * 7 + size)
    _check_same_and_decodes(k, n, rng.randbytes(size), rng)


@pytest.mark.parametrize(("k", "n"), [(3, 6), (4, 9), (10, 16)])
def test_isal_matches_pyeclib_on_16_mib_packs(k: int, n: int) -> None:
    data = os.urandom(16 * MiB)
    _check_same_and_decodes(k, n, data, random.Random(k))
    _check_same_and_decodes(k, n, data[:-1], random.Random(n))


def test_long_fragments_are_coded_in_column_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    # ISA-L takes the length as a C int: past MAX_CALL_BYTES the binding slices the columns.
    # Shrunk here so that slicing (and a last, shorter slice) happens on small data.
    monkeypatch.setattr(isal, "MAX_CALL_BYTES", 7)
    lib = system_isal()
    assert lib is not None
    lengths: list[int] = []
    real = lib.lib.ec_encode_data

    def counting(length: int, *rest: object) -> None:
        lengths.append(length)
        real(length, *rest)

    monkeypatch.setattr(lib.lib, "ec_encode_data", counting)
    rng = random.Random(7)
    _check_same_and_decodes(3, 6, rng.randbytes(1_000), rng)
    _check_same_and_decodes(4, 7, rng.randbytes(10_001), rng)
    assert max(lengths) == 7 and min(lengths) < 7 and len(lengths) > 400


def test_fragments_past_the_u32_size_field_are_refused() -> None:
    huge = mmap.mmap(-1, erasure.MAX_FRAGMENT + 1)  # address space only: never touched
    try:
        with pytest.raises(UsageError, match="at most 4294967295 bytes"):
            ErasureCode(1, 2).encode_fragments(memoryview(huge))
    finally:
        huge.close()


def test_the_header_is_liberasurecode_1_8_0s() -> None:
    frag = ErasureCode(3, 6).encode(b"hello world!" * 3)[4]
    assert frag[:HEADER_SIZE].hex() == (
        "04000000"
        "0c000000"
        "00000000"
        "2400000000000000"
        "01" + "00" * 32 + "00"
        "07"
        "010e0200"
        "cc5e0c0b"
        "00080100" + struct.pack("<I", zlib.crc32(frag[:59])).hex() + "00" * 9
    )
    assert LIBEC_VERSION == 0x010800


def test_crc32_fragments_from_pyeclib_are_checked() -> None:
    driver = ECDriver(k=3, m=3, ec_type="isa_l_rs_cauchy", chksum_type="inline_crc32")
    data = os.urandom(10_001)
    frags = driver.encode(data)
    header = FragmentHeader.decode(frags[0], 6)
    assert header.encode() == frags[0][:HEADER_SIZE]
    code = ErasureCode(3, 6)
    assert code.decode(dict(enumerate(frags))) == data
    assert code.decode({i: frags[i] for i in (1, 4, 5)}) == data
    bad = bytearray(frags[1])
    bad[-1] ^= 1
    with pytest.raises(FormatError, match="fragment 1 payload checksum mismatch"):
        code.decode({0: frags[0], 1: bytes(bad), 2: frags[2]})


def test_fast_path_slices_the_data_fragments() -> None:
    code = ErasureCode(3, 6)
    data = os.urandom(100_000)
    frags = code.encode(data)
    pieces = code.decode_pieces({i: frags[i] for i in range(6)})
    assert [p.obj for p in pieces] == frags[:3]  # views of the given fragments: no decoding
    assert b"".join(pieces) == data
    # the fast path does not read parity: garbage there is not even looked at
    assert code.decode({0: frags[0], 1: frags[1], 2: frags[2], 5: b"junk"}) == data


@pytest.mark.parametrize("engine", ["isal", "pyeclib"])
def test_missing_data_fragment_is_decoded(engine: erasure.Engine) -> None:
    code = ErasureCode(3, 6, engine=engine)
    data = os.urandom(100_001)
    frags = code.encode(data)
    pieces = code.decode_pieces({0: frags[0], 2: frags[2], 4: frags[4]})
    assert pieces[0].obj is frags[0] and pieces[2].obj is frags[2]
    assert pieces[1].obj is not frags[1]
    assert b"".join(pieces) == data


def test_encode_fragments_reads_the_input_in_place() -> None:
    code = ErasureCode(3, 6)
    data = os.urandom(3 * 1000 + 1)
    frags = code.encode_fragments(data)
    assert all(f.payload.obj is data for f in frags[:3])  # views of the input, even the last
    assert [f.payload.nbytes for f in frags] == [1001, 1001, 999, 1001, 1001, 1001]
    assert frags[2].padding == bytes(2)  # its zero padding is a piece of its own
    assert frags[2].pieces == (frags[2].header, frags[2].payload, bytes(2))
    assert len(frags[0].pieces) == 2
    assert all(f.payload.readonly for f in frags)
    assert [f.size for f in frags] == [HEADER_SIZE + 1001] * 6
    tiny = code.encode_fragments(b"ab")  # fragment 2 lies wholly past the end: all padding
    assert [(f.payload.nbytes, len(f.padding)) for f in tiny[:3]] == [(1, 0), (1, 0), (0, 1)]
    assert [bytes(f) for f in tiny] == ErasureCode(3, 6, engine="pyeclib").encode(b"ab")
    assert [bytes(f) for f in code.encode_fragments(bytearray(data))] == code.encode(data)
    ro = memoryview(bytearray(data)).toreadonly()  # ctypes cannot point into it: copied
    assert [bytes(f) for f in code.encode_fragments(ro)] == code.encode(data)


def test_caller_buffers_take_parity_and_decoded_fragments() -> None:
    code = ErasureCode(3, 6)
    data = os.urandom(30_001)
    size = 10_001
    parity = [bytearray(size + 5) for _ in range(3)]
    frags = code.encode_fragments(data, parity=parity)
    assert [f.payload.obj for f in frags[3:]] == parity  # written in place, no new buffers
    assert [bytes(f) for f in frags] == ErasureCode(3, 6, engine="pyeclib").encode(data)
    joined = [bytes(f) for f in frags]
    scratch = [memoryview(bytearray(size)) for _ in range(2)]
    pieces = code.decode_pieces({2: joined[2], 4: joined[4], 5: joined[5]}, scratch=scratch)
    assert pieces[0].obj is scratch[0].obj and pieces[1].obj is scratch[1].obj
    assert b"".join(pieces) == data
    cases: list[tuple[list[bytearray | memoryview], str]] = [
        ([bytearray(size)] * 2, "need 3 buffers"),
        ([bytearray(size - 1)] * 3, ">= 10001 bytes"),
        ([memoryview(bytes(size))] * 3, "writable"),
        ([memoryview(bytearray(2 * size))[::2]] * 3, "contiguous"),
    ]
    for bad, message in cases:
        with pytest.raises(UsageError, match=message):
            code.encode_fragments(data, parity=bad)


def test_decode_accepts_views_and_bytearrays() -> None:
    code = ErasureCode(4, 6)
    data = os.urandom(77_777)
    frags = code.encode(data)
    given: dict[int, erasure.Buffer] = {
        1: memoryview(frags[1]),
        3: bytearray(frags[3]),
        4: frags[4],
        5: frags[5],
    }
    assert code.decode(given) == data


def _corrupt(frag: bytes, offset: int, value: bytes, *, fix_crc: bool = True) -> bytes:
    out = bytearray(frag)
    out[offset : offset + len(value)] = value
    if fix_crc:
        out[67:71] = struct.pack("<I", zlib.crc32(out[:59]))
    return bytes(out)


@pytest.mark.parametrize("engine", ["isal", "pyeclib"])
def test_bad_headers_are_format_errors(engine: erasure.Engine) -> None:
    code = ErasureCode(3, 6, engine=engine)
    frags = code.encode(os.urandom(9_000))
    good = {0: frags[0], 4: frags[4], 5: frags[5]}
    cases = [
        (1, frags[1][:40], "too short"),
        (1, _corrupt(frags[1], 59, b"\0\0\0\0"), "bad magic"),
        (1, _corrupt(frags[1], 10, b"\x01", fix_crc=False), "header checksum mismatch"),
        (1, _corrupt(frags[1], 0, struct.pack("<I", 6)), "index 6 out of range"),
        (1, _corrupt(frags[1], 0, struct.pack("<I", 2)), "given as index 1 says index 2"),
        (1, _corrupt(frags[1], 12, struct.pack("<Q", 9_001)), "disagree on sizes"),
        (1, _corrupt(frags[1], 4, struct.pack("<I", 3_001)), "header says 3001"),
        (1, frags[1] + b"x", "payload is 3001 bytes, header says 3000"),
        (1, _corrupt(frags[1], 54, b"\x04"), "another backend"),
        (1, _corrupt(frags[1], 20, b"\x03"), "unsupported checksum type 3"),
        (1, _corrupt(frags[1], 63, b"\0\0\0\0"), "unsupported libec version"),
    ]
    for index, bad, message in cases:
        with pytest.raises(FormatError, match=message):
            code.decode({**good, index: bad})
    wrong_k = ErasureCode(2, 6, engine=engine)
    with pytest.raises(FormatError, match="does not fit 9000 bytes over k=2"):
        wrong_k.decode({0: frags[0], 4: frags[4]})
    with pytest.raises(UsageError, match="need 3 fragments"):
        code.decode({0: frags[0], 1: frags[1]})


@settings(max_examples=200, deadline=None)
@given(st.integers(0, HEADER_SIZE - 1), st.integers(1, 255), st.sampled_from([0, 2, 3]))
def test_any_header_flip_is_caught_or_harmless(offset: int, xor: int, which: int) -> None:
    code = ErasureCode(3, 5)
    data = random.Random(offset).randbytes(5_000)
    frags = code.encode(data)
    given = {i: frags[i] for i in (0, 2, 3)}
    bad = bytearray(given[which])
    bad[offset] ^= xor
    given[which] = bytes(bad)
    try:
        out = code.decode(given)
    except FormatError:
        return
    # not covered by the metadata CRC, and not needed to decode: libec_version (any from
    # 1.2.0 on, as liberasurecode accepts) and the padding
    assert 63 <= offset < 67 or offset >= 71
    assert out == data


def test_without_a_system_isal_the_code_falls_back_to_pyeclib(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(50_000)
    expected = ErasureCode(3, 6, engine="isal").encode(data)
    assert load_isal(["libisal-not-here.so.9", "find_library:isal-not-here"]) is None
    monkeypatch.setattr(erasure, "system_isal", lambda: None)
    code = ErasureCode(3, 6)
    assert code.engine_name == "pyeclib"
    assert code.encode(data) == expected
    assert code.decode({1: expected[1], 3: expected[3], 5: expected[5]}) == data
    with pytest.raises(UsageError, match="libisal2"):
        ErasureCode(3, 6, engine="isal")


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def test_the_system_isal_is_used_not_pyeclibs_private_copy() -> None:
    isal = system_isal()
    assert isal is not None, "install Debian's libisal2 (scripts/setup.d/isal.sh)"
    assert DEFAULT_CANDIDATES[0] == "libisal.so.2"
    assert type(isal.lib) is ctypes.CDLL  # not PyDLL: every call releases the GIL
    info = _DlInfo()
    libc = ctypes.CDLL(None)
    address = ctypes.cast(isal.lib.ec_encode_data, ctypes.c_void_p)
    assert libc.dladdr(address, ctypes.byref(info)) != 0
    where = Path(os.fsdecode(info.dli_fname or b"")).resolve()
    assert "pyeclib" not in str(where)
    assert where.name.startswith("libisal.so.2")
    assert ErasureCode(3, 6).engine_name == "isal"
