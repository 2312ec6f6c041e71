"""`car import`: reference CARs of every layout round-trip; malformed CARs are refused."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from ownvault.core.car import CARV2_PRAGMA, CarReader, encode_header, write_car
from ownvault.core.cid import CID, DAG_CBOR, DAG_PB, RAW
from ownvault.core.dagpb import PBLink, PBNode, UnixFSData, encode_node, encode_unixfs
from ownvault.engine.vault import Vault
from ownvault.errors import FormatError, IntegrityError, OwnvaultError, UsageError
from tests.oracle.oracle import require_oracle

from .helpers import Vaults, run


def _src(root: Path) -> Path:
    rnd = random.Random(5)
    (root / "d").mkdir(parents=True)
    (root / "d" / "big.bin").write_bytes(rnd.randbytes(600_000))
    (root / "small.txt").write_text("small\n")
    (root / "e").mkdir()
    return root


@pytest.fixture(scope="module")
def cars(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cars")
    src = _src(base / "src")
    jobs = {
        "kubo-v1": {"profile": "kubo-v1"},
        "kubo-v0": {"profile": "kubo-v0"},
        "2025": {"profile": "unixfs-v1-2025"},
        "chunk1000": {"chunk-size": 1000},  # no profile reproduces this
        "pbleaves": {"raw-leaves": False},  # CIDv1 with dag-pb leaves: neither
        "hamt": {"shard-threshold": 10},  # HAMT directories below any profile's threshold
    }
    out = {name: base / f"{name}.car" for name in jobs}
    require_oracle().batch([{"path": str(src), "car": str(out[n]), **o} for n, o in jobs.items()])
    out["file"] = base / "file.car"
    require_oracle().batch([{"path": str(src / "d" / "big.bin"), "car": str(out["file"])}])
    v1 = out["kubo-v1"].read_bytes()
    v2 = (
        CARV2_PRAGMA
        + bytes(16)
        + (51).to_bytes(8, "little")
        + len(v1).to_bytes(8, "little")
        + bytes(8)
    )
    out["v2"] = base / "v2.car"
    out["v2"].write_bytes(v2 + v1)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize(
    ("name", "profile", "source"),
    [
        ("kubo-v1", "kubo-v1", "profile"),
        ("kubo-v0", "kubo-v0", "profile"),
        ("2025", "unixfs-v1-2025", "profile"),
        ("v2", "kubo-v1", "profile"),
        ("chunk1000", "car-import", "car"),
        ("pbleaves", "car-import", "car"),
        ("hamt", "car-import", "car"),
    ],
)
def test_reference_cars_round_trip(
    vaults: Vaults, cars: dict[str, Path], tmp_path: Path, name: str, profile: str, source: str
) -> None:
    vault = vaults.create(tmp_path / "v")
    doc = run(vault.ipfs.import_car(cars[name], name="imp"))
    want_root = str(CarReader([cars[name].read_bytes()]).roots[0])
    assert (doc.root, doc.profile, doc.source, doc.files) == (
        want_root,
        profile,
        source,
        2,
    )
    run(vault.files.get("imp", tmp_path / "out"))
    assert _files(tmp_path / "out") == _src_files(cars)
    assert (tmp_path / "out" / "e").is_dir()
    out = bytearray()
    info = run(vault.ipfs.export_car("imp", out.extend))
    assert info.root == want_root
    v1 = cars["kubo-v1" if name == "v2" else name].read_bytes()
    assert bytes(out) == v1  # the same CAR back, byte for byte
    assert run(vault.ipfs.verify_cid("imp")).ok
    assert not list(vault.path.glob(".car-import-*"))


def _src_files(cars: dict[str, Path]) -> dict[str, bytes]:
    return _files(cars["kubo-v1"].parent / "src")


def test_single_file_car_and_publish(vaults: Vaults, cars: dict[str, Path], tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "v")
    doc = run(vault.ipfs.import_car(cars["file"], publish_it=True))
    assert doc.name == doc.root and doc.files == 1
    assert doc.published == f"ipfs://{doc.root}"
    got = tmp_path / "got"
    run(vault.files.get(doc.name, got))
    assert (
        hashlib.sha256(got.read_bytes()).digest()
        == hashlib.sha256((cars["kubo-v1"].parent / "src" / "d" / "big.bin").read_bytes()).digest()
    )


# -- malformed CARs ---------------------------------------------------------------------


def _raw(data: bytes) -> tuple[CID, bytes]:
    return CID.for_block(RAW, data), data


def _pb(node: PBNode) -> tuple[CID, bytes]:
    block = encode_node(node)
    return CID.for_block(DAG_PB, block), block


def _car(root: CID, blocks: list[tuple[CID, bytes]]) -> bytes:
    return b"".join(write_car([root], blocks))


def _file_node(leaves: list[tuple[CID, bytes]], sizes: list[int]) -> tuple[CID, bytes]:
    data = encode_unixfs(UnixFSData(2, filesize=sum(sizes), blocksizes=tuple(sizes)))
    return _pb(PBNode(tuple(PBLink(c, "", len(b)) for c, b in leaves), data))


def _dir(entries: list[tuple[str, CID]]) -> tuple[CID, bytes]:
    return _pb(PBNode(tuple(PBLink(c, n, 1) for n, c in entries), encode_unixfs(UnixFSData(1))))


def _bad_cars() -> dict[str, tuple[bytes, type[OwnvaultError], str]]:
    a, b = _raw(b"aaaa"), _raw(b"bbbb")
    node = _file_node([a, b], [4, 4])
    good = _car(node[0], [node, a, b])
    out: dict[str, tuple[bytes, type[OwnvaultError], str]] = {}
    out["truncated"] = (good[:-3], FormatError, "truncated CAR")
    flipped = bytearray(good)
    flipped[-1] ^= 1
    out["bad hash"] = (bytes(flipped), IntegrityError, "does not match its hash")
    out["missing block"] = (_car(node[0], [node, a]), IntegrityError, "incomplete")
    two = encode_header([a[0], b[0]])[0:]
    out["two roots"] = (two + good[len(encode_header([node[0]])) :], UsageError, "single-root")
    cbor = (CID.for_block(DAG_CBOR, b"\xa0"), b"\xa0")
    out["dag-cbor"] = (_car(cbor[0], [cbor]), FormatError, "not UnixFS")
    wrong = _file_node([a, b], [4, 5])
    out["blocksizes"] = (_car(wrong[0], [wrong, a, b]), FormatError, "blocksizes")
    evil = _dir([("..", a[0])])
    out["dotdot"] = (_car(evil[0], [evil, a]), FormatError, "unsafe")
    slash = _dir([("x/y", a[0])])
    out["slash"] = (_car(slash[0], [slash, a]), FormatError, "unsafe")
    dup = _dir([("x", a[0]), ("x", b[0])])
    out["duplicate name"] = (_car(dup[0], [dup, a, b]), FormatError, "twice")
    huge = encode_header([a[0]]) + b"\x80\x80\x80\x05"  # a 10 MiB section
    out["oversized"] = (huge, FormatError, "larger than")
    out["garbage"] = (b"not a car at all", FormatError, "CAR")
    out["empty"] = (b"", FormatError, "truncated")
    return out


@pytest.mark.parametrize("case", sorted(_bad_cars()))
def test_malformed_cars_are_refused(vaults: Vaults, case: str, tmp_path: Path) -> None:
    data, error, message = _bad_cars()[case]
    (tmp_path / "x.car").write_bytes(data)
    vault: Vault = vaults.create(tmp_path / "v")
    with pytest.raises(error, match=message):
        run(vault.ipfs.import_car(tmp_path / "x.car", name="x"))
    assert run(vault.files.ls()).objects == []
    assert not list(vault.path.glob(".car-import-*"))
