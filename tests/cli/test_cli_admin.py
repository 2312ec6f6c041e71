"""provider add/ls/rm, policy show/set, rebalance and check through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .test_cli_tour import js, ov


def test_providers_policy_rebalance(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--providers", "0", "--phrase-file", str(tmp_path / "phrase"))
    regions = ["CH", "CH", "DE", "DE", "FR", "FR", "IS", "IS", "NL"]
    for i, cc in enumerate(regions):
        doc = js(
            ov(
                vault,
                "provider",
                "add",
                f"disk-{i}",
                (tmp_path / f"disk{i}").as_uri(),
                "--jurisdiction",
                cc.lower(),
                "--label",
                f"rack=r{i % 2}",
                "--json",
            )
        )
        assert doc["kind"] == "local" and doc["jurisdiction"] == cc
    p = ov(vault, "provider", "add", "disk-0", (tmp_path / "x").as_uri(), check=2)
    assert "exists already" in p.stderr
    p = ov(vault, "provider", "add", "Bad Name", (tmp_path / "x").as_uri(), check=2)
    listing = js(ov(vault, "provider", "ls", "--json"))["providers"]
    assert [p["jurisdiction"] for p in listing] == regions
    assert all(p["reachable"] and p["latency_ms"] is not None for p in listing)
    (tmp_path / "f.bin").write_bytes(os.urandom(3_000_000))
    ov(vault, "put", str(tmp_path / "f.bin"))
    # Exclude IS: the stored piece is out of policy until rebalance moves it.
    doc = js(
        ov(
            vault,
            "policy",
            "set",
            "--exclude",
            "IS",
            "--max-per-jurisdiction",
            "2",
            "--survive-jurisdiction-loss",
            "--json",
        )
    )
    assert doc["policy"]["exclude"] == ["IS"] and doc["policy"]["survive_jurisdiction_loss"]
    check = js(ov(vault, "check", "--json"))
    assert check["healthy"]
    if doc["packs_out_of_policy"]:
        assert not check["policy_ok"]
    moved = js(ov(vault, "rebalance", "--json"))
    assert moved["failures"] == []
    check = js(ov(vault, "check", "--json"))
    assert check["healthy"] and check["policy_ok"]
    assert "survives losing any one jurisdiction" in ov(vault, "policy", "show").stdout
    # A policy nothing can satisfy is refused with the reason (exit 8), the old one stays.
    p = ov(vault, "policy", "set", "--jurisdictions", "CH", check=8)
    assert "add providers" in p.stderr
    assert js(ov(vault, "policy", "show", "--json"))["policy"]["exclude"] == ["IS"]
    # Removing a provider moves its shares first.
    out = js(ov(vault, "provider", "rm", "disk-0", "--json"))
    assert out["removed"]
    names = [p["name"] for p in js(ov(vault, "provider", "ls", "--json"))["providers"]]
    assert "disk-0" not in names
    ov(vault, "get", "f.bin", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == (tmp_path / "f.bin").read_bytes()
    assert json.loads(ov(vault, "check", "--json").stdout)["policy_ok"]


def test_policy_happy(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"))
    doc = js(ov(vault, "policy", "show", "--json"))
    assert (
        doc["policy"]["happy"] is None and "a write needs 5 placed (default n-1)" in doc["describe"]
    )
    doc = js(ov(vault, "policy", "set", "--happy", "4", "--json"))
    assert doc["policy"]["happy"] == 4 and "a write needs 4 placed" in doc["describe"]
    # Other changes keep it; below k or above n is a usage error (exit 2) and nothing changes.
    assert (
        js(ov(vault, "policy", "set", "--max-per-provider", "1", "--json"))["policy"]["happy"] == 4
    )
    p = ov(vault, "policy", "set", "--happy", "2", check=2)
    assert "--happy must be between k and n" in p.stderr
    ov(vault, "policy", "set", "--happy", "7", check=2)
    ov(vault, "policy", "set", "--happy", "4", "--default-happy", check=2)
    assert js(ov(vault, "policy", "show", "--json"))["policy"]["happy"] == 4
    doc = js(ov(vault, "policy", "set", "--default-happy", "--json"))
    assert doc["policy"]["happy"] is None
