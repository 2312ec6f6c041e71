"""Key commands as real subprocesses: recover, guardians, identity/contacts, share/open/revoke,
forget; exit codes; and no secret ever in --json output (or anywhere in the output)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ownvault.core.keys import KEY_LABELS, VaultKeys, phrase_to_entropy
from ownvault.errors import GrantExpiredError, GrantRevokedError, exit_code_for
from tests.engine.helpers import PASS, tree_state, write_random_tree

OUTPUTS: list[str] = []


def ov(
    vault: Path,
    *args: str,
    passphrase: str = PASS,
    check: int | None = 0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "OWNVAULT_PASSPHRASE": passphrase,
        "OWNVAULT_INSECURE_FAST_KDF": "1",
        **(env or {}),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "ownvault", "--vault", str(vault), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    OUTPUTS.append(proc.stdout + proc.stderr)
    if check is not None:
        assert proc.returncode == check, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def js(proc: subprocess.CompletedProcess[str]) -> dict:  # type: ignore[type-arg]
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def test_lose_everything_recover_share_revoke_forget(tmp_path: Path) -> None:
    # A vault with 4 of its 6 providers outside the vault directory, added by URL.
    home = tmp_path / "vault"
    ov(
        home,
        "init",
        "--providers",
        "2",
        "--k",
        "1",
        "--json",
        "--phrase-file",
        str(tmp_path / "init-phrase"),
    )
    dirs = [tmp_path / f"ext-{i}" for i in range(4)]
    for i, d in enumerate(dirs):
        ov(home, "provider", "add", f"ext-{i}", d.as_uri(), "--jurisdiction", "DE", "--json")
    ov(home, "policy", "set", "--k", "2", "--n", "4", "--json")
    src = tmp_path / "docs"
    write_random_tree(src, 21, files=10)
    (tmp_path / "lab.csv").write_bytes(random.Random(2).randbytes(50_000))
    ov(home, "put", str(src), "--tag", "work", "--json")
    ov(home, "put", str(tmp_path / "lab.csv"), "--tag", "health", "--json")
    ov(home, "tag", "policy", "health", "--never-share", "--json")
    phrase_file = tmp_path / "phrase.txt"
    doc = js(ov(home, "keys", "phrase", "--json", "--phrase-file", str(phrase_file)))
    assert (
        doc["phrase_file"] == str(phrase_file)
        and oct(phrase_file.stat().st_mode & 0o777) == "0o600"
    )
    assert phrase_file.read_text() == (tmp_path / "init-phrase").read_text()
    ov(home, "keys", "phrase", "--json", check=2)  # never to JSON
    g = js(
        ov(
            home,
            "keys",
            "guardians",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--output",
            str(tmp_path / "g"),
            "--json",
        )
    )
    files = g["groups"][0]["files"]
    assert len(files) == 3 and all(oct(Path(f).stat().st_mode & 0o777) == "0o600" for f in files)
    ov(home, "keys", "guardians", "--threshold", "2", "--shares", "3", "--json", check=2)

    # Bob, who will receive a grant, has his own vault.
    bob = tmp_path / "bob"
    ov(
        bob,
        "init",
        "--providers",
        "3",
        "--k",
        "1",
        "--json",
        "--phrase-file",
        str(tmp_path / "bob-phrase"),
        passphrase="bob",
    )
    ident = js(
        ov(
            bob,
            "identity",
            "--name",
            "Bob",
            "--card",
            str(tmp_path / "bob.json"),
            "--json",
            passphrase="bob",
        )
    )
    assert ident["did"].startswith("did:key:z6Mk") and ident["agreement"].startswith("z")
    ov(home, "contacts", "add", str(tmp_path / "bob.json"), "--json")
    assert [c["name"] for c in js(ov(home, "contacts", "ls", "--json"))["contacts"]] == ["Bob"]
    refused = ov(home, "share", "lab.csv", "--to", "Bob", "--json", check=8)
    assert js(refused)["error"]["code"] == "share_policy" and "never be shared" in refused.stderr
    grant = js(
        ov(
            home,
            "share",
            "--tag",
            "work",
            "--to",
            "Bob",
            "--expires",
            "30d",
            "-o",
            str(tmp_path / "grant.json"),
            "--json",
        )
    )
    assert grant["items"] == ["docs v1"] and grant["token"].startswith("ovgrant1:")

    # The laptop is lost: only the phrase (or the guardians) and the providers remain.
    shutil.rmtree(home)
    new = tmp_path / "new"
    rec = js(
        ov(
            new,
            "recover",
            "--phrase-file",
            str(phrase_file),
            "--provider",
            dirs[1].as_uri(),
            "--json",
            passphrase="new",
        )
    )
    assert rec["objects"] == 2 and {p["name"] for p in rec["providers"] if p["missing"]} == {
        "local-1",
        "local-2",
    }
    listing = js(ov(new, "ls", "--json", passphrase="new"))["objects"]
    assert [o["name"] for o in listing] == ["docs", "lab.csv"] and listing[0]["tags"] == ["work"]
    ov(new, "get", "docs", "-o", str(tmp_path / "out"), passphrase="new")
    assert tree_state(tmp_path / "out") == tree_state(src)
    grants = js(ov(new, "grants", "--json", passphrase="new"))["grants"]
    assert [(x["grant"], x["state"], x["contact"]) for x in grants] == [
        (grant["grant"], "active", "Bob")
    ]
    via_guardians = tmp_path / "new2"
    rec2 = js(
        ov(
            via_guardians,
            "recover",
            "--guardian-shares",
            files[2],
            files[0],
            "--provider",
            dirs[3].as_uri(),
            "--provider",
            dirs[0].as_uri(),
            "--json",
            passphrase="g",
        )
    )
    assert rec2["did"] == rec["did"]
    ov(via_guardians, "get", "lab.csv", "-o", str(tmp_path / "lab.out"), passphrase="g")
    assert (tmp_path / "lab.out").read_bytes() == (tmp_path / "lab.csv").read_bytes()

    # Bob opens the grant (from the file, and from the short string).
    opened = js(
        ov(
            bob,
            "open",
            str(tmp_path / "grant.json"),
            "docs",
            "-o",
            str(tmp_path / "bob-docs"),
            "--json",
            passphrase="bob",
        )
    )
    assert opened["items"][0]["name"] == "docs" and tree_state(tmp_path / "bob-docs") == tree_state(
        src
    )
    ov(bob, "open", grant["token"], passphrase="bob")
    # Someone else's vault, a tampered grant: clear errors, exit codes from the one table.
    p = ov(new, "open", grant["token"], "--json", passphrase="new", check=11)
    assert js(p)["error"]["code"] == "grant_recipient"
    bad = json.loads((tmp_path / "grant.json").read_text())
    bad["expires"] = None
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    p = ov(bob, "open", str(tmp_path / "bad.json"), passphrase="bob", check=5)
    assert "altered or forged" in p.stderr
    ov(bob, "open", "nonsense", passphrase="bob", check=2)

    # Revoke: re-encrypted, the old grant opens nothing.
    rv = js(ov(new, "revoke", grant["grant"][:12], "--json", passphrase="new"))
    assert rv["chunks_rekeyed"] > 0
    p = ov(bob, "open", str(tmp_path / "grant.json"), "--json", passphrase="bob", check=11)
    assert js(p)["error"]["code"] == "grant_revoked"
    assert js(ov(new, "grants", "--json", passphrase="new"))["grants"][0]["state"] == "revoked"
    ov(new, "get", "docs", "-o", str(tmp_path / "out2"), passphrase="new")
    assert tree_state(tmp_path / "out2") == tree_state(src)

    # Forget: gone for good.
    ov(
        new, "forget", "lab.csv", "--json", passphrase="new", check=2
    )  # needs --yes without a terminal
    fg = js(ov(new, "forget", "lab.csv", "--yes", "--json", passphrase="new"))
    assert fg["versions_forgotten"] == 1 and fg["chunks_shredded"] == 1
    ov(new, "get", "lab.csv", "-o", str(tmp_path / "nope"), passphrase="new", check=4)

    # Rotation and passphrase change.
    assert js(ov(new, "keys", "rotate", "--rewrap", "--json", passphrase="new"))["epoch"] == 1
    ov(
        new,
        "keys",
        "passphrase",
        "--json",
        passphrase="new",
        env={"OWNVAULT_NEW_PASSPHRASE": "newer"},
    )
    ov(new, "versions", "docs", passphrase="new", check=3)
    ov(new, "versions", "docs", passphrase="newer")

    # Bad recovery input changes nothing.
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(" ".join(["abandon"] * 23 + ["art"]))
    p = ov(
        tmp_path / "w",
        "recover",
        "--phrase-file",
        str(wrong),
        "--provider",
        dirs[0].as_uri(),
        passphrase="x",
        check=3,
    )
    assert "wrong recovery phrase" in p.stderr and not (tmp_path / "w" / "ownvault.json").exists()
    p = ov(
        tmp_path / "w",
        "recover",
        "--guardian-shares",
        files[1],
        "--provider",
        dirs[0].as_uri(),
        passphrase="x",
        check=3,
    )
    assert "too few guardian shares" in p.stderr

    typo = phrase_file.read_text().split()
    typo[5] += "q"
    (tmp_path / "typo.txt").write_text(" ".join(typo))
    p = ov(
        tmp_path / "w",
        "recover",
        "--phrase-file",
        str(tmp_path / "typo.txt"),
        "--provider",
        dirs[0].as_uri(),
        passphrase="x",
        check=3,
    )
    assert (
        "word 6 of the recovery phrase is not a BIP-39 word" in p.stderr and typo[5] not in p.stderr
    )

    # No secret anywhere in what any command printed (JSON or not, except `keys phrase` on
    # a terminal, never run here).
    phrase = phrase_file.read_text().strip()
    keys = VaultKeys(phrase_to_entropy(phrase))
    secrets = [
        phrase,
        " ".join(phrase.split()[:4]),
        keys.entropy.hex(),
        keys.root.hex(),
        *(getattr(keys, n).hex() for n in KEY_LABELS),
        keys.content_key(1).hex(),
    ]
    secrets += [" ".join(Path(f).read_text().splitlines()[1].split()[:6]) for f in files]
    blob = "\n".join(OUTPUTS)
    for s in secrets:
        assert s not in blob


def test_exit_codes_of_grant_errors() -> None:
    assert (
        exit_code_for(GrantExpiredError("x")) == 11 and exit_code_for(GrantRevokedError("x")) == 11
    )


@pytest.mark.parametrize(
    "args",
    [
        ["recover", "--provider", "file:///nowhere"],
        ["recover", "--phrase-file", "p", "--guardian-shares", "--provider", "file:///x"],
    ],
)
def test_recover_usage_errors(tmp_path: Path, args: list[str]) -> None:
    p = ov(tmp_path / "v", *args, check=2)
    assert "exactly one of" in p.stderr
