"""`status` and `check` say whether the vault would survive losing this machine, and what
to add if not (issue 14), through the real CLI."""

from __future__ import annotations

from pathlib import Path

from .test_cli_tour import js, ov


def test_status_and_check_say_whether_losing_this_machine_is_survivable(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"))  # six embedded folders, 3-of-6
    (tmp_path / "a.txt").write_text("a" * 5000)
    ov(vault, "put", str(tmp_path / "a.txt"))

    status = js(ov(vault, "status", "--json"))
    ml = status["machine_loss"]
    assert not ml["survives"] and ml["pieces_lost"] == ml["pieces"] == 1
    assert not ml["catalog_survives"] and ml["capacity_elsewhere"] == 0
    assert "add at least 3 provider(s) on other machines" in ml["advice"]
    assert any("NOT survivable" in line for line in status["advice"])
    text = ov(vault, "status").stdout
    assert "losing this machine: NOT survivable (1 of 1 piece(s) and the catalog" in text
    check = js(ov(vault, "check", "--json"))
    assert check["machine_loss"] == {k: v for k, v in ml.items()}
    assert [f["survives_machine_loss"] for f in check["files"]] == [False]
    assert "add at least 3 provider(s)" in ov(vault, "check").stdout

    # Two remote disks: not enough yet; the advice counts what is missing.
    for i in range(2):
        ov(
            vault,
            "provider",
            "add",
            f"usb-{i}",
            (tmp_path / f"usb-{i}").as_uri(),
            "--domain",
            f"usb-{i}",
        )
    ml = js(ov(vault, "check", "--json"))["machine_loss"]
    assert ml["capacity_elsewhere"] == 2 and "add at least 1 provider(s)" in ml["advice"]

    # A third: the catalog is placed there at once; the stored piece needs a rebalance.
    ov(vault, "provider", "add", "usb-2", (tmp_path / "usb-2").as_uri(), "--domain", "usb-2")
    ml = js(ov(vault, "status", "--json"))["machine_loss"]
    assert ml["catalog_survives"] and ml["pieces_lost"] == 1
    assert "run `ownvault rebalance`" in ml["advice"]
    ov(vault, "rebalance")
    status = js(ov(vault, "status", "--json"))
    assert status["machine_loss"]["survives"] and status["machine_loss"]["advice"] is None
    assert not any("survivable" in line for line in status["advice"])
    assert "losing this machine: survivable" in ov(vault, "status").stdout
    check = js(ov(vault, "check", "--json"))
    assert check["machine_loss"]["survives"] and check["files"][0]["survives_machine_loss"]
    assert "losing this machine: survivable" in ov(vault, "check").stdout


def test_provider_set_changes_domain_and_jurisdiction(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ov(vault, "init", "--phrase-file", str(tmp_path / "phrase"))
    for i in range(3):  # folders on this machine's disk: the same domain as the vault
        ov(vault, "provider", "add", f"disk-{i}", (tmp_path / f"disk-{i}").as_uri())
    listing = js(ov(vault, "provider", "ls", "--json"))["providers"]
    assert {p["domain"] for p in listing} == {"this-machine"}
    (tmp_path / "a.txt").write_text("a" * 5000)
    ov(vault, "put", str(tmp_path / "a.txt"))
    assert js(ov(vault, "check", "--json"))["machine_loss"]["capacity_elsewhere"] == 0
    # They are in fact removable disks: say so; the stored piece now could be placed better.
    for i in range(3):
        doc = js(
            ov(
                vault,
                "provider",
                "set",
                f"disk-{i}",
                "--domain",
                f"Disk-{i}",
                "--jurisdiction",
                "ch",
                "--json",
            )
        )
        assert doc["domain"] == f"disk-{i}" and doc["jurisdiction"] == "CH"
    assert doc["packs_out_of_policy"] == 1
    assert (
        "run `ownvault rebalance`"
        in ov(vault, "provider", "set", "disk-2", "--domain", "disk-2").stdout
    )
    ov(vault, "rebalance")
    assert js(ov(vault, "status", "--json"))["machine_loss"]["survives"]
    listing = {p["name"]: p for p in js(ov(vault, "provider", "ls", "--json"))["providers"]}
    assert listing["disk-1"]["domain"] == "disk-1" and listing["disk-1"]["jurisdiction"] == "CH"
    # Back to the default: this machine again, and status says so.
    assert (
        js(ov(vault, "provider", "set", "disk-1", "--default-domain", "--json"))["domain"]
        == "this-machine"
    )
    assert not js(ov(vault, "status", "--json"))["machine_loss"]["survives"]
    assert (
        "not a two-letter"
        in ov(vault, "provider", "set", "disk-1", "--jurisdiction", "xyz", check=2).stderr
    )
    assert (
        "not a failure-domain label"
        in ov(vault, "provider", "set", "disk-1", "--domain", "a b", check=2).stderr
    )
    proc = ov(vault, "provider", "set", "nope", "--domain", "x", check=4)
    assert "no such provider" in proc.stderr
