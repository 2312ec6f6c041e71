"""No writer follows a symlink it did not create: hostile grants, planted links, temp modes."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ownvault.cli import run_cli
from ownvault.engine.sharing import grants as sharing
from ownvault.engine.sharing.reader import open_grant
from ownvault.engine.store.outdir import OutputDir, output_file
from ownvault.engine.vault import Vault
from ownvault.errors import FormatError, IntegrityError, UsageError

from .helpers import PASS, Vaults, make_vault, run

Rewrite = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Vault, Vault]]:
    alice = make_vault(tmp_path / "alice")
    bob = make_vault(tmp_path / "bob", providers=3, k=1, n=2)
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    yield alice, bob
    for v in (alice, bob):
        run(v.close())


def _hostile(monkeypatch: pytest.MonkeyPatch, rewrite: Rewrite) -> None:
    """Make the sender's manifest writer hostile: ``rewrite(entries)`` edits each item."""
    real = sharing._manifest_body  # noqa: SLF001  wrapped to play a hostile sender

    def body(vault: Vault, *args: object) -> dict[str, Any]:
        doc = real(vault, *args)
        for item in doc["items"]:
            item["entries"] = rewrite(item["entries"])
        return doc

    monkeypatch.setattr(sharing, "_manifest_body", body)


def test_grant_symlink_then_file_through_it_is_refused(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported attack: ``evil -> /somewhere`` then ``evil/pwned.sh`` (mode 4755)."""
    alice, bob = pair
    outside = tmp_path / "somewhere"
    outside.mkdir()
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"#!/bin/sh\necho pwned\n")
    run(alice.files.put([src]))

    def rewrite(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        file = next(e for e in entries if e["kind"] == "file")
        link = {**file, "path": "evil", "kind": "symlink", "target": str(outside), "chunks": []}
        return [e for e in entries if e["kind"] == "dir"] + [
            link,
            {**file, "path": "evil/pwned.sh", "mode": 0o4755},
        ]

    _hostile(monkeypatch, rewrite)
    info = run(alice.sharing.share(names=["docs"], to="bob"))
    reader = run(open_grant(bob.keys, info.token))
    try:
        with pytest.raises(UsageError, match="refusing to write through a symlink"):
            run(reader.get("docs", tmp_path / "out"))
    finally:
        run(reader.close())
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("path", ["../escape.txt", "a/../../escape.txt", "/etc/x", "a//b", "a/\0b"])
def test_grant_unsafe_paths_are_refused(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    alice, bob = pair
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"x")
    run(alice.files.put([src]))
    _hostile(
        monkeypatch, lambda es: [{**e, "path": path} if e["kind"] == "file" else e for e in es]
    )
    info = run(alice.sharing.share(names=["docs"], to="bob"))
    reader = run(open_grant(bob.keys, info.token))
    try:
        with pytest.raises(IntegrityError, match="unsafe path"):
            run(reader.get("docs", tmp_path / "out" / "deep"))
    finally:
        run(reader.close())
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / "escape.txt").exists()


def test_grant_modes_lose_setuid(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = pair
    src = tmp_path / "docs"
    src.mkdir()
    (src / "run.sh").write_bytes(b"x")
    run(alice.files.put([src]))
    _hostile(
        monkeypatch, lambda es: [{**e, "mode": 0o6777} if e["kind"] == "file" else e for e in es]
    )
    info = run(alice.sharing.share(names=["docs"], to="bob"))
    reader = run(open_grant(bob.keys, info.token))
    try:
        run(reader.get("docs", tmp_path / "out"))
    finally:
        run(reader.close())
    assert stat.S_IMODE((tmp_path / "out" / "run.sh").stat().st_mode) == 0o777


def _planted_tree(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.bin").write_bytes(b"new bytes")
    (src / "top.bin").write_bytes(b"top")
    os.chmod(src / "top.bin", 0o600)
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir()
    (victim_dir / "secret").write_bytes(b"keep me")
    os.chmod(victim_dir / "secret", 0o640)
    return src, victim_dir


def test_get_does_not_follow_planted_directory_symlink(vaults: Vaults, tmp_path: Path) -> None:
    vault = vaults.create(tmp_path / "v")
    src, victim = _planted_tree(tmp_path)
    run(vault.files.put([src]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(victim)
    with pytest.raises(UsageError, match="refusing to write through a symlink"):
        run(vault.files.get("src", out, overwrite=True))
    assert sorted(p.name for p in victim.iterdir()) == ["secret"]


def test_get_replaces_a_planted_file_symlink_without_touching_its_target(
    vaults: Vaults, tmp_path: Path
) -> None:
    vault = vaults.create(tmp_path / "v")
    src, victim = _planted_tree(tmp_path)
    run(vault.files.put([src]))
    out = tmp_path / "out"
    out.mkdir()
    (out / "top.bin").symlink_to(victim / "secret")
    run(vault.files.get("src", out, overwrite=True))
    assert not (out / "top.bin").is_symlink()
    assert (out / "top.bin").read_bytes() == b"top"
    assert (victim / "secret").read_bytes() == b"keep me"
    assert stat.S_IMODE((victim / "secret").stat().st_mode) == 0o640
    # A single-file get onto a symlink replaces the link too.
    (out / "one").symlink_to(victim / "secret")
    run(vault.files.get("src/top.bin", out / "one", overwrite=True))
    assert (victim / "secret").read_bytes() == b"keep me"


def test_temp_files_are_never_wider_than_0600_while_written(tmp_path: Path) -> None:
    seen: list[int] = []

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(3):
            for name in os.listdir(tmp_path / "o"):
                if name.endswith(".part"):
                    seen.append(stat.S_IMODE(os.lstat(tmp_path / "o" / name).st_mode))
            yield b"x" * 10

    async def go() -> None:
        with OutputDir(tmp_path / "o") as out:
            await out.write_file(["f"], pieces(), mode=0o600)
            await out.write_file(["g"], pieces(), mode=0o755)

    run(go())
    assert seen and all(m == 0o600 for m in seen)
    assert stat.S_IMODE((tmp_path / "o" / "f").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "o" / "g").stat().st_mode) == 0o755


def test_directory_mode_is_not_applied_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    out = tmp_path / "o"
    out.mkdir()

    async def go() -> None:
        with OutputDir(out) as tree:
            tree.mkdir(["d"], 0o777, None)
            os.rmdir(out / "d")
            (out / "d").symlink_to(victim)  # swapped in behind the writer's back
            with pytest.raises(UsageError, match="symlink"):
                tree.finish()

    run(go())
    assert stat.S_IMODE(victim.stat().st_mode) == 0o700


# -- files written at a path the user names (car export, cid --car, identity --card, share -o)


def _cli(monkeypatch: pytest.MonkeyPatch, vault: Path | None, *args: str) -> int:

    monkeypatch.setenv("OWNVAULT_PASSPHRASE", PASS)
    return run_cli([*(["--vault", str(vault)] if vault is not None else []), *args])


def _victims(tmp_path: Path) -> tuple[Path, Path]:
    one, two = tmp_path / "victim-1", tmp_path / "victim-2"
    for v in (one, two):
        v.write_bytes(b"precious")
        os.chmod(v, 0o644)
    return one, two


def _untouched(*victims: Path) -> bool:
    return all(
        v.read_bytes() == b"precious" and stat.S_IMODE(v.stat().st_mode) == 0o644 for v in victims
    )


def test_car_export_replaces_planted_links_and_never_writes_through_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make_vault(tmp_path / "v", providers=3, k=2)
    (tmp_path / "f.txt").write_bytes(b"hello" * 100)
    run(vault.files.put([tmp_path / "f.txt"]))
    run(vault.close())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    one, two = _victims(tmp_path)
    (out_dir / "f.car").symlink_to(one)
    (out_dir / ".f.car.part").symlink_to(two)  # the temp name the export used to use
    assert _cli(monkeypatch, vault.path, "car", "export", "f.txt", str(out_dir / "f.car")) == 0
    assert _untouched(one, two)
    car = out_dir / "f.car"
    assert not car.is_symlink() and car.read_bytes()[:1] != b"" and b"hello" in car.read_bytes()
    assert sorted(p.name for p in out_dir.iterdir()) == [".f.car.part", "f.car"]


def test_cid_car_and_identity_card_replace_planted_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = _victims(tmp_path)
    src = tmp_path / "f.txt"
    src.write_bytes(b"hello")
    (tmp_path / "x.car").symlink_to(one)
    assert _cli(monkeypatch, None, "cid", str(src), "--car", str(tmp_path / "x.car")) == 0
    vault = make_vault(tmp_path / "v", providers=3, k=2)
    run(vault.close())
    (tmp_path / "card.json").symlink_to(two)
    assert _cli(monkeypatch, vault.path, "identity", "--card", str(tmp_path / "card.json")) == 0
    assert _untouched(one, two)
    assert not (tmp_path / "x.car").is_symlink() and (tmp_path / "x.car").stat().st_size > 0
    assert json.loads((tmp_path / "card.json").read_text())["did"].startswith("did:key:")


def test_share_out_replaces_a_planted_link(
    pair: tuple[Vault, Vault], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _bob = pair
    (tmp_path / "doc.txt").write_bytes(b"for bob")
    run(alice.files.put([tmp_path / "doc.txt"]))
    one, _two = _victims(tmp_path)
    grant = tmp_path / "grant.json"
    grant.symlink_to(one)
    path = alice.path
    code = _cli(monkeypatch, path, "share", "doc.txt", "--to", "bob", "-o", str(grant))
    assert code == 0 and _untouched(one)
    assert not grant.is_symlink() and "sig" in json.loads(grant.read_text())


def test_output_file_rules(tmp_path: Path) -> None:

    (tmp_path / "d").mkdir()
    with pytest.raises(UsageError, match="directory is in the way"), output_file(tmp_path / "d"):
        pass
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="FIFO"), output_file(tmp_path / "fifo"):
        pass
    (tmp_path / "kept").write_bytes(b"old")
    with (
        pytest.raises(UsageError, match="exists already"),
        output_file(tmp_path / "kept", overwrite=False),
    ):
        pass
    old = os.umask(0o022)
    try:
        with output_file(tmp_path / "new.bin") as f:
            f.write(b"partial")
            temps = [p for p in tmp_path.iterdir() if p.name.startswith(".new.bin.")]
            assert len(temps) == 1 and stat.S_IMODE(temps[0].stat().st_mode) == 0o600
            assert not (tmp_path / "new.bin").exists()
    finally:
        os.umask(old)
    assert (tmp_path / "new.bin").read_bytes() == b"partial"
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o644
    with pytest.raises(RuntimeError), output_file(tmp_path / "kept") as f:
        f.write(b"half")
        raise RuntimeError("boom")
    assert (tmp_path / "kept").read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "fifo"), ("path", 7), ("mode", "0644"), ("cid", 1)]
)
def test_grant_entries_of_the_wrong_shape_are_refused(
    pair: tuple[Vault, Vault],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    field: str,
    value: object,
) -> None:
    """A hostile manifest's entries are checked field by field before they become results."""
    alice, bob = pair
    src = tmp_path / "docs"
    src.mkdir()
    (src / "a.txt").write_bytes(b"a")
    run(alice.files.put([src]))
    _hostile(monkeypatch, lambda entries: [{**e, field: value} for e in entries])
    info = run(alice.sharing.share(names=["docs"], to="bob"))
    reader = run(open_grant(bob.keys, info.token))
    try:
        with pytest.raises(FormatError, match="grant manifest"):
            reader.entries("docs")
    finally:
        run(reader.close())
