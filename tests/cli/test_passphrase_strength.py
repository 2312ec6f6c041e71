"""A weak passphrase is accepted with a warning (stderr, and ``warnings`` in --json) that says
the offline guess time at the keystore's Argon2id cost; a strong one is not warned about.
``init``, ``recover`` and ``keys passphrase`` all set a passphrase, so all three warn."""

from __future__ import annotations

from pathlib import Path

from ownvault.cli.strength import passphrase_warning
from ownvault.core.crypto import Argon2Params
from tests.cli.test_keys import js, ov

STRONG = "test passphrase"  # zxcvbn score 4
WEAK = "x"


def test_init_warns_on_a_weak_passphrase_and_says_what_argon2id_buys(tmp_path: Path) -> None:
    p = ov(tmp_path / "v", "init", "--providers", "2", "--k", "1", "--json",
           "--phrase-file", str(tmp_path / "phrase"), passphrase=WEAK)  # fmt: skip
    [warning] = js(p)["warnings"]
    assert warning.startswith("weak passphrase (zxcvbn score 0 of 4)")
    assert "Argon2id derivation at this keystore's cost (t=1, 8 MiB, p=1)" in warning
    assert "longer" in warning
    assert "warning: weak passphrase" in p.stderr
    # Not refused: the vault opens with it.
    ov(tmp_path / "v", "versions", "x", passphrase=WEAK, check=4)  # unlocked: then not found


def test_init_with_a_strong_passphrase_does_not_warn(tmp_path: Path) -> None:
    p = ov(tmp_path / "v", "init", "--providers", "2", "--k", "1", "--json",
           "--phrase-file", str(tmp_path / "phrase"), passphrase=STRONG)  # fmt: skip
    assert js(p)["warnings"] == []
    assert "weak passphrase" not in p.stderr
    p = ov(tmp_path / "v2", "init", "--providers", "2", "--k", "1",
           "--phrase-file", str(tmp_path / "phrase2"), passphrase=STRONG)  # fmt: skip
    assert "weak passphrase" not in p.stderr


def test_keys_passphrase_and_recover_warn_the_same_way(tmp_path: Path) -> None:
    home = tmp_path / "v"
    ov(home, "init", "--providers", "2", "--k", "1", "--json",
       "--phrase-file", str(tmp_path / "phrase"), passphrase=STRONG)  # fmt: skip
    weak = ov(home, "keys", "passphrase", "--json", passphrase=STRONG,
              env={"OWNVAULT_NEW_PASSPHRASE": "password1"})  # fmt: skip
    [warning] = js(weak)["warnings"]
    assert "very common password" in warning and "warning: weak passphrase" in weak.stderr
    strong = ov(home, "keys", "passphrase", passphrase="password1",
                env={"OWNVAULT_NEW_PASSPHRASE": STRONG})  # fmt: skip
    assert "weak passphrase" not in strong.stderr and "Passphrase changed." in strong.stdout

    # Providers outside the vault directory, so the new machine reaches them.
    for i in range(4):
        ext = (tmp_path / f"ext-{i}").as_uri()
        ov(home, "provider", "add", f"ext-{i}", ext, "--jurisdiction", "DE", passphrase=STRONG)
    ov(home, "policy", "set", "--k", "2", "--n", "4", passphrase=STRONG)
    (tmp_path / "note.txt").write_text("a note")
    ov(home, "put", str(tmp_path / "note.txt"), passphrase=STRONG)
    provider = (tmp_path / "ext-1").as_uri()
    rec = ov(tmp_path / "new", "recover", "--phrase-file", str(tmp_path / "phrase"),
             "--provider", provider, "--json", passphrase=WEAK)  # fmt: skip
    assert any(w.startswith("weak passphrase") for w in js(rec)["warnings"])
    assert "warning: weak passphrase" in rec.stderr
    human = ov(tmp_path / "new2", "recover", "--phrase-file", str(tmp_path / "phrase"),
               "--provider", provider, passphrase=WEAK)  # fmt: skip
    assert human.stderr.count("weak passphrase") == 1
    fine = ov(tmp_path / "new3", "recover", "--phrase-file", str(tmp_path / "phrase"),
              "--provider", provider, "--json", passphrase=STRONG)  # fmt: skip
    assert not any("weak passphrase" in w for w in js(fine)["warnings"])


def test_the_guess_time_scales_with_the_estimate() -> None:
    cheap = Argon2Params(1, 8192, 1)
    assert passphrase_warning(STRONG, cheap) is None
    short = passphrase_warning("hunter22x", cheap)
    assert short is not None and "zxcvbn score 1 of 4" in short and "guesses find it" in short
