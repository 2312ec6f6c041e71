"""The README's CLI tour, as real subprocesses: output contract and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PASS = "tour passphrase"


def ov(
    vault: Path, *args: str, passphrase: str = PASS, check: int | None = 0
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OWNVAULT_PASSPHRASE": passphrase, "OWNVAULT_INSECURE_FAST_KDF": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def js(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    doc = json.loads(proc.stdout)
    assert isinstance(doc, (dict, list))
    return doc  # type: ignore[return-value]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    doc = js(ov(v, "init", "--json", "--phrase-file", str(tmp_path / "phrase")))
    assert doc["did"].startswith("did:key:z6Mk") and doc["k"] == 3 and doc["n"] == 6
    phrase = (tmp_path / "phrase").read_text().split()
    assert len(phrase) == 24
    assert " ".join(phrase) not in json.dumps(doc)
    assert oct((tmp_path / "phrase").stat().st_mode & 0o777) == "0o600"
    return v


def test_tour(vault: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("hello\n")
    (docs / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    put = js(ov(vault, "put", str(docs), "--tag", "work", "--json"))["stored"][0]
    assert put["name"] == "docs" and put["kind"] == "tree" and put["files"] == 2
    single = js(ov(vault, "put", str(docs / "a.txt"), "--as", "notes/a.txt", "--json"))["stored"][0]
    assert single["cid"] == "bafkreiddkuomseetqqwlmilvyrkvyvirnphaclbfqfmemn2fjalhqpdhea" or single[
        "cid"
    ].startswith("bafk")
    listing = js(ov(vault, "ls", "--json"))["objects"]
    assert [o["name"] for o in listing] == ["docs", "notes/a.txt"]
    assert {"name", "kind", "size", "versions", "tags", "cid", "version", "created"} <= set(
        listing[0]
    )
    assert listing[0]["tags"] == ["work"]
    inner = js(ov(vault, "ls", "docs/sub", "--json"))
    assert [e["path"] for e in inner["entries"]] == ["sub/b.bin"]
    ov(vault, "get", "docs", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "sub" / "b.bin").read_bytes() == (
        docs / "sub" / "b.bin"
    ).read_bytes()
    ov(vault, "get", "docs/sub/b.bin", "-o", str(tmp_path / "b.bin"), "--range", "10-19")
    assert (tmp_path / "b.bin").read_bytes() == (docs / "sub" / "b.bin").read_bytes()[10:20]
    (docs / "a.txt").write_text("hello again\n")
    ov(vault, "put", str(docs))
    versions = js(ov(vault, "versions", "docs", "--json"))["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    ov(vault, "get", "docs", "--version", "1", "-o", str(tmp_path / "v1"))
    assert (tmp_path / "v1" / "a.txt").read_text() == "hello\n"
    du = js(ov(vault, "du", "--json"))
    assert du["dedup_ratio"] > 1.0 and du["stored_bytes"] > 0
    # Honest expansion: every stored byte per unique byte, pack padding included (these
    # small files fill a fraction of one pack size class, so far above n/k = 2).
    assert du["expansion"] == round(du["stored_bytes"] / du["unique_bytes"], 4)
    assert du["expansion"] > du["stored_bytes"] / du["packed_bytes"] >= 2.0
    provs = js(ov(vault, "providers", "--json"))["providers"]
    assert len(provs) == 6 and all(p["reachable"] and p["kind"] == "local" for p in provs)
    check = js(ov(vault, "check", "--json"))
    assert check["healthy"] and all(
        f["shares_present"] == 6 and f["shares_needed"] == 3 for f in check["files"]
    )
    rm = js(ov(vault, "rm", "docs", "--version", "1", "--json"))
    assert rm["versions_removed"] == 1
    human = ov(vault, "ls")
    assert "docs" in human.stdout and "notes/a.txt" in human.stdout


def test_exit_codes_and_json_errors(vault: Path, tmp_path: Path) -> None:
    p = ov(vault, "get", "nope", "--json", check=4)
    assert json.loads(p.stdout)["error"]["code"] == "not_found"
    assert p.stderr.startswith("ownvault: ") and "Traceback" not in p.stderr
    p = ov(vault, "versions", "docs", passphrase="wrong", check=3)
    assert "wrong passphrase" in p.stderr
    ov(vault, "ls", passphrase="wrong")  # the plaintext catalog needs no key (design.md)
    p = ov(tmp_path / "none", "ls", check=9)
    assert "no vault" in p.stderr
    p = ov(vault, "put", str(tmp_path / "missing"), check=2)
    assert "no such file" in p.stderr
    p = ov(vault, "get", "x", "--range", "abc", check=2)
    p = ov(vault, "init", check=9)
    # An existing --phrase-file is never overwritten, and no vault is made without it.
    (tmp_path / "taken").write_text("keep me")
    p = ov(tmp_path / "v2", "init", "--phrase-file", str(tmp_path / "taken"), check=2)
    assert (tmp_path / "taken").read_text() == "keep me" and not (tmp_path / "v2").exists()
    p = ov(vault, "frobnicate", check=2)
    # A damaged vault: lose 4 of 6 providers -> check reports unreadable with exit 7.
    (tmp_path / "f").write_bytes(os.urandom(1000))
    ov(vault, "put", str(tmp_path / "f"))
    for i in (1, 2, 3, 4):
        os.rename(vault / "providers" / f"local-{i}", vault / "providers" / f"gone-{i}")
    doc = json.loads(ov(vault, "check", "--json", check=7).stdout)
    assert not doc["readable"]
    p = ov(vault, "get", "f", "-o", str(tmp_path / "g"), check=7)
    assert "good shares" in p.stderr
