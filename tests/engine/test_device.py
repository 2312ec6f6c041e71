"""Each vault copy's device key: made by init, new on recover, enrolled once for a vault
made before devices existed, carried over a passphrase change, sealed in the keystore."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ownvault.core.keystore import Keystore
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.store.device import device_identity
from ownvault.errors import FormatError, IntegrityError

from .helpers import FAST_KDF, PASS, Vaults, run


def keystore(path: Path) -> Keystore:
    return Keystore.from_json((path / "keystore.json").read_bytes())


def test_init_recover_and_passphrase_change_keep_one_device_per_copy(
    vaults: Vaults, tmp_path: Path
) -> None:
    a = vaults.create(tmp_path / "a", providers=2, k=1, n=2, device_name="laptop")
    raw = json.loads((tmp_path / "a" / "keystore.json").read_text())
    assert raw["version"] == 2 and raw["device"]["name"] == "laptop"
    seed_hex = device_identity(a.path, a.keys).key.seed.hex()
    assert seed_hex not in (tmp_path / "a" / "keystore.json").read_text()  # sealed
    mine = device_identity(a.path, a.keys)
    assert mine.name == "laptop" and mine.id.hex() == raw["device"]["id"]
    run(a.keyring.change_passphrase(PASS, "another one", FAST_KDF))
    assert device_identity(a.path, a.keys) == mine
    run(a.keyring.change_passphrase("another one", PASS, FAST_KDF))
    run(a.snapshot())
    shutil.copytree(tmp_path / "a" / "providers", tmp_path / "b" / "providers")
    run(
        recover_vault(
            tmp_path / "b",
            a.keys.entropy,
            PASS,
            [(tmp_path / "b" / "providers" / "local-1").as_uri()],
            kdf=FAST_KDF,
            device_name="desktop",
        )
    )
    b = vaults.open(tmp_path / "b")
    theirs = device_identity(b.path, b.keys)
    assert theirs.name == "desktop" and theirs.id != mine.id


def test_a_vault_made_before_devices_enrolls_one_once(vaults: Vaults, tmp_path: Path) -> None:
    a = vaults.create(tmp_path / "a", providers=2, k=1, n=2)
    path = tmp_path / "a" / "keystore.json"
    old = json.loads(path.read_text())
    del old["device"]
    old["version"] = 1
    path.write_text(json.dumps(old))
    assert keystore(tmp_path / "a").device is None
    first = device_identity(a.path, a.keys, "old-box")
    assert json.loads(path.read_text())["version"] == 2
    assert device_identity(a.path, a.keys) == first and first.name == "old-box"
    vaults.close(a)
    vaults.open(tmp_path / "a")  # the passphrase still opens it


def test_the_keystore_refuses_a_mismatched_or_tampered_device(
    vaults: Vaults, tmp_path: Path
) -> None:
    a = vaults.create(tmp_path / "a", providers=2, k=1, n=2)
    path = tmp_path / "a" / "keystore.json"
    good = json.loads(path.read_text())
    for broken in (
        {**good, "version": 1},  # a v1 keystore has no device
        {k: v for k, v in good.items() if k != "device"},  # and a v2 one has
        {**good, "device": {**good["device"], "extra": "x"}},
        {**good, "device": {**good["device"], "name": ""}},
    ):
        with pytest.raises(FormatError):
            Keystore.from_json(json.dumps(broken))
    box = bytearray.fromhex(good["device"]["box"])
    box[5] ^= 1
    path.write_text(json.dumps({**good, "device": {**good["device"], "box": box.hex()}}))
    with pytest.raises(IntegrityError):
        device_identity(a.path, a.keys)
