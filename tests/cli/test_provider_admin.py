"""Provider management a user expects (issue 14): the embedded folders get a jurisdiction,
a removed provider's name can be used again (its history kept), and `provider set` changes
labels. Through the real CLI."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .test_cli_tour import js, ov


def listing(vault: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    return {p["name"]: p for p in js(ov(vault, "provider", "ls", "--json"))["providers"]}


def test_init_gives_the_embedded_folders_a_jurisdiction(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"), "--jurisdiction", "de")
    rows = listing(vault)
    assert len(rows) == 6 and {p["jurisdiction"] for p in rows.values()} == {"DE"}
    # provider set works on an embedded folder too.
    doc = js(ov(vault, "provider", "set", "local-1", "--jurisdiction", "ch", "--json"))
    assert doc["jurisdiction"] == "CH" and listing(vault)["local-1"]["jurisdiction"] == "CH"
    ov(vault, "provider", "set", "local-1", "--jurisdiction", "DE")
    # A policy that needs them there can now be met: put works with "only DE".
    ov(vault, "policy", "set", "--jurisdictions", "DE")
    (tmp_path / "a.txt").write_text("a" * 3000)
    ov(vault, "put", str(tmp_path / "a.txt"))
    # Moving one out of DE now would leave no placement: refused, nothing changed.
    proc = ov(vault, "provider", "set", "local-2", "--jurisdiction", "FR", check=8)
    assert "local-2 (FR not in the allowed list)" in proc.stderr
    assert listing(vault)["local-2"]["jurisdiction"] == "DE"
    # A bad code is refused before anything is created.
    bad = tmp_path / "bad"
    proc = ov(bad, "init", "--phrase-file", str(tmp_path / "p2"), "--jurisdiction", "xyz", check=2)
    assert "not a two-letter" in proc.stderr
    assert not (tmp_path / "p2").exists() and not (bad / "catalog.db").exists()


def test_a_removed_providers_name_can_be_used_again(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(
        vault,
        "init",
        "--phrase-file",
        str(tmp_path / "phrase"),
        "--providers",
        "3",
        "--k",
        "2",
        "--n",
        "3",
    )
    ov(vault, "provider", "add", "usb", (tmp_path / "usb-a").as_uri(), "--jurisdiction", "FR")
    (tmp_path / "a.txt").write_text("a" * 3000)
    ov(vault, "put", str(tmp_path / "a.txt"))
    ov(vault, "audit")
    ov(vault, "provider", "rm", "usb", "--force")
    assert "usb" not in listing(vault)
    ov(vault, "provider", "add", "usb", (tmp_path / "usb-b").as_uri(), "--jurisdiction", "NL")
    assert listing(vault)["usb"]["jurisdiction"] == "NL"
    ov(vault, "provider", "rm", "usb")
    ov(vault, "provider", "add", "usb", (tmp_path / "usb-c").as_uri())
    assert "usb-c" in listing(vault)["usb"]["url"]
    # Both earlier ones keep their rows (and what was recorded against them).
    db = sqlite3.connect(vault / "catalog.db")
    try:
        rows = db.execute("SELECT id, name, state, url FROM providers ORDER BY id").fetchall()
        audited = db.execute("SELECT DISTINCT provider FROM audit_results").fetchall()
    finally:
        db.close()
    usb = [r for r in rows if r[1] == "usb" or r[1].startswith("usb~")]
    assert [(r[2], Path(r[3]).name) for r in usb] == [
        ("removed", "usb-a"),
        ("removed", "usb-b"),
        ("active", "usb-c"),
    ]
    assert usb[0][1] == f"usb~{usb[0][0]}" and usb[1][1] == f"usb~{usb[1][0]}"
    assert (usb[0][0],) in audited
    # An active provider's name is still taken.
    proc = ov(vault, "provider", "add", "usb", (tmp_path / "usb-d").as_uri(), check=2)
    assert "exists already" in proc.stderr


def test_provider_set_changes_labels(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"))
    ov(vault, "provider", "add", "usb", (tmp_path / "usb").as_uri(), "--label", "owner=ann")
    assert listing(vault)["usb"]["labels"] == {"owner": "ann"}
    doc = js(
        ov(vault, "provider", "set", "usb", "--label", "owner=bob", "--label", "rack=2", "--json")
    )
    assert doc["labels"] == {"owner": "bob", "rack": "2"}
    assert listing(vault)["usb"]["labels"] == {"owner": "bob", "rack": "2"}
    text = ov(vault, "provider", "set", "usb", "--unlabel", "owner").stdout
    assert "labels rack=2" in text and listing(vault)["usb"]["labels"] == {"rack": "2"}
    proc = ov(vault, "provider", "set", "usb", "--unlabel", "nope", check=2)
    assert "no label 'nope'" in proc.stderr
    assert "KEY=VALUE" in ov(vault, "provider", "set", "usb", "--label", "x", check=2).stderr
    assert listing(vault)["usb"]["labels"] == {"rack": "2"}
