"""`ownvault devices`, `devices revoke`, `log` as real processes: two copies of one vault
(init, then recover on "another machine") sharing two local-folder providers."""

from __future__ import annotations

from pathlib import Path

from ownvault.core.journalops import Dot, Put, Remove, Tag
from ownvault.engine.store.journalstore import JournalStore
from tests.cli.test_keys import js, ov
from tests.engine.helpers import PASS, Vaults, run


def test_devices_revoke_and_log(tmp_path: Path, vaults: Vaults) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    phrase = tmp_path / "phrase.txt"
    ov(a, "init", "--providers", "0", "--k", "1", "--n", "2", "--device-name", "laptop",
       "--phrase-file", str(phrase))  # fmt: skip
    urls = [(tmp_path / f"ext-{i}").as_uri() for i in range(2)]
    for i, url in enumerate(urls):
        ov(a, "provider", "add", f"ext-{i}", url)
    assert [d["name"] for d in js(ov(a, "--json", "devices"))["devices"]] == ["laptop"]

    ov(b, "recover", "--phrase-file", str(phrase), "--provider", urls[0],
       "--device-name", "desktop")  # fmt: skip
    listed = js(ov(b, "--json", "devices"))["devices"]
    # The laptop's certificate, then one settings record per provider it added.
    assert [(d["name"], d["this_device"], d["last_seq"]) for d in listed] == [
        ("desktop", True, 1),
        ("laptop", False, 1 + len(urls)),
    ]
    assert len({d["id"] for d in listed}) == 2
    human = ov(a, "devices").stdout
    assert "desktop" in human and "laptop" in human and "this device" in human

    # Ops in the log: a put, a tag and an rm of that version, written by the laptop.
    vault = vaults.open(a, PASS)
    store = JournalStore(vault.ctx)
    put = store.body([Put("docs/a.txt", "file", 5, None, (), b"")])
    first = run(store.append(store.device, put))
    run(store.append(store.device, store.body([Tag("docs/a.txt", "work")])))
    rm = store.body([Remove((Dot(store.device.id, first.seq, 0),))])
    run(store.append(store.device, rm))
    vaults.close(vault)
    log = js(ov(b, "--json", "log"))["log"]
    assert [e["ops"] for e in log[:3]] == [
        ["rm docs/a.txt v1"],
        ["tag docs/a.txt work"],
        ["put docs/a.txt 5 B"],
    ]
    assert {e["ops"][0] for e in log if e["seq"] == 1} == {
        f"device add {listed[0]['id'][:8]} desktop",
        f"device add {listed[1]['id'][:8]} laptop",
    }
    assert len(js(ov(b, "--json", "log", "--limit", "2"))["log"]) == 2
    assert "laptop" in ov(b, "log", "--limit", "1").stdout

    # The laptop revokes the desktop; the desktop's later record is refused by the laptop.
    revoked = ov(a, "devices", "revoke", "desktop")
    assert "phrase is not revoked" in revoked.stdout and "epoch 1" in revoked.stdout
    desk = vaults.open(b, PASS)
    theirs = JournalStore(desk.ctx)
    run(theirs.append(theirs.device, theirs.body([Tag("x", "late")])))  # not pulled yet
    vaults.close(desk)
    after = ov(a, "--json", "devices")
    by_name = {d["name"]: d for d in js(after)["devices"]}
    assert by_name["desktop"]["revoked_after"] == 1 and by_name["desktop"]["last_seq"] == 1
    assert "revoked after seq 1" in after.stderr
    assert not any(
        e["seq"] == 2 and e["device_name"] == "desktop" for e in js(ov(a, "--json", "log"))["log"]
    )
    # The revocation, then the key rotation's new content-key epoch (a settings record).
    newest = [e["ops"] for e in js(ov(a, "--json", "log", "--limit", "2"))["log"]]
    assert newest[0] == ["set meta content_epoch"] and newest[1][0].startswith("device revoke")
    # A revoked device, once it has read its revocation, cannot write.
    assert "revoked" in ov(b, "devices", "revoke", "laptop", check=5).stderr
