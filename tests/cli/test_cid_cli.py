"""`ownvault cid` and `ownvault car ls`: output, JSON, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ownvault.cli import main
from ownvault.core.car import encode_header, encode_section
from ownvault.core.cid import CID, RAW
from tests.core.ipfs_corpus import CORPUS
from tests.core.ipfs_inputs import load_vectors, shake, write_tree
from tests.oracle.oracle import require_oracle

VECTORS = load_vectors()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, out, err


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    vector = next(v for v in VECTORS["vectors"] if v["kind"] == "tree")
    return write_tree(
        tmp_path / vector["name"],
        [(rel, size) for rel, size in vector["entries"]],
        f"{VECTORS['seed']}/{vector['name']}",
    )


@pytest.mark.parametrize("profile", ["kubo-v1", "kubo-v0", "unixfs-v1-2025"])
def test_cid_of_tree(capsys: pytest.CaptureFixture[str], tree: Path, profile: str) -> None:
    want = next(v for v in VECTORS["vectors"] if v["kind"] == "tree")[profile]
    code, out, _ = run(capsys, "cid", str(tree), "--profile", profile)
    assert (code, out) == (0, want + "\n")
    code, out, _ = run(capsys, "cid", str(tree), "--profile", profile, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["cid"] == want and doc["profile"] == profile
    assert doc["kind"] == "directory" and doc["files"] == 3 and doc["size"] == 300012


def test_cid_default_profile_is_kubo_v1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(shake("cli", 600_000))
    code, out, _ = run(capsys, "cid", str(path))
    assert code == 0 and out.strip() == require_oracle().cid(path)


def test_cid_car_output(capsys: pytest.CaptureFixture[str], tree: Path, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.car", tmp_path / "theirs.car"
    code, out, _ = run(capsys, "cid", str(tree), "--car", str(ours))
    assert code == 0
    require_oracle().batch([{"path": str(tree), "car": str(theirs)}])
    assert ours.read_bytes() == theirs.read_bytes()
    code, out, _ = run(capsys, "car", "ls", str(ours), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["roots"] == [out_root(tree)] and doc["complete"]
    assert doc["version"] == 1 and doc["block_count"] == len(doc["blocks"])
    code, out, err = run(capsys, "car", "ls", str(ours))
    assert code == 0 and out.startswith("root\t") and "all hashes ok, complete" in err


def out_root(tree: Path) -> str:
    return str(next(v for v in VECTORS["vectors"] if v["kind"] == "tree")["kubo-v1"])


def test_hidden_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / ".dot").write_bytes(b"x")
    (tmp_path / "d" / "plain").write_bytes(b"y")
    _, without, _ = run(capsys, "cid", str(tmp_path / "d"))
    _, with_hidden, _ = run(capsys, "cid", str(tmp_path / "d"), "--hidden")
    oracle = require_oracle()
    assert without.strip() == oracle.cid(tmp_path / "d")
    assert with_hidden.strip() == oracle.cid(tmp_path / "d", hidden=True)
    assert without != with_hidden


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["cid", "/nonexistent/path"], 2, "no such file or directory"),
        (["cid", "x", "--profile", "nope"], 2, "Invalid value for '--profile'"),
        (["car", "ls", "/nonexistent.car"], 2, "cannot open"),
    ],
)
def test_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = run(capsys, *args)
    assert got == code and message in err and "Traceback" not in err + out


@pytest.mark.parametrize(
    "name", sorted(p.name for p in CORPUS.iterdir() if p.name.startswith("car"))
)
def test_car_ls_corrupt(capsys: pytest.CaptureFixture[str], name: str) -> None:
    expected = json.loads((CORPUS / "expected.json").read_text())[name]
    code, out, err = run(capsys, "car", "ls", str(CORPUS / name), "--json")
    assert code == 5  # IntegrityError and its FormatError
    assert json.loads(out)["error"]["code"] in ("format", "integrity")
    assert expected["message"] in err and "Traceback" not in err


def test_car_ls_missing_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:

    other = CID.for_block(RAW, b"other")
    path = tmp_path / "x.car"
    path.write_bytes(encode_header([other]) + encode_section(CID.for_block(RAW, b"a"), b"a"))
    code, _, err = run(capsys, "car", "ls", str(path))
    assert code == 5 and "root not among its blocks" in err


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.car"
    bad.write_bytes(b"\x05garbage")
    proc = subprocess.run(
        [sys.executable, "-m", "ownvault", "car", "ls", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 5 and proc.stderr.startswith("ownvault: ")
    assert "Traceback" not in proc.stderr
