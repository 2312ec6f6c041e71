"""Recovery on a new machine: the whole vault directory is gone; phrase/guardians + providers."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from ownvault.core.guardians import GuardianGroup, combine_guardian_shares
from ownvault.core.keys import phrase_to_entropy
from ownvault.core.snapshot import MAX_LOCATOR_SIZE
from ownvault.engine.keys.recovery import parse_provider_arg, recover_vault
from ownvault.engine.sharing.contacts import TagPolicy
from ownvault.engine.vault import Vault
from ownvault.errors import AuthError, DataUnavailableError, VaultStateError
from ownvault.providers.local import LocalProvider

from .external import vault_with_external
from .helpers import FAST_KDF, PASS, Vaults, make_vault, run, tree_state, write_random_tree

NEW = "new passphrase"


@pytest.fixture(scope="module")
def lost(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A vault with files, versions, tags, a contact, a grant and a tag policy; then its
    directory is deleted (a copy of its embedded providers is kept aside for one test)."""
    base = tmp_path_factory.mktemp("lost")
    vault, dirs = vault_with_external(base)
    src = base / "src"
    write_random_tree(src, 7, files=15)
    big = base / "big.bin"
    big.write_bytes(random.Random(3).randbytes(3_000_000))
    run(vault.files.put([src], tags=["work"]))
    run(vault.files.put([big], tags=["health"]))
    big_v1 = big.read_bytes()
    big.write_bytes(big_v1[:1000] + b"v2" + big_v1[1002:])
    run(vault.files.put([big]))
    friend = make_vault(base / "friend")
    card = friend.sharing.contact_card("friend").to_json()
    run(friend.close())

    run(vault.sharing.add_contact(json.dumps(card)))
    run(vault.sharing.set_tag_policy("health", never_share=True))
    grant = run(vault.sharing.share(names=["src"], to="friend"))

    run(vault.ipfs.publish("src"))
    published = [(d.root, d.path) for d in vault.catalog.dags.published()]
    assert published
    run(vault.snapshot())
    state = {
        "ls": run(vault.files.ls()),
        "versions": run(vault.files.versions("big.bin")),
        "grants": vault.sharing.grants(),
        "published": published,
        "phrase": vault.keys.phrase,
        "shares": vault.keyring.guardian_shares([GuardianGroup(2, 3)])[0],
    }
    run(vault.close())
    shutil.copytree(base / "vault" / "providers", base / "embedded-copy")
    shutil.rmtree(base / "vault")
    return {
        "base": base,
        "dirs": dirs,
        "src": src,
        "big_v1": big_v1,
        "big_v2": big.read_bytes(),
        "grant": grant,
        **state,
    }


def check_everything(vault: Vault, lost: dict[str, object], out: Path) -> None:
    assert run(vault.files.ls()) == lost["ls"]
    assert run(vault.files.versions("big.bin")) == lost["versions"]
    assert vault.sharing.grants() == lost["grants"]

    assert [(d.root, d.path) for d in vault.catalog.dags.published()] == lost["published"]
    assert [c.name for c in vault.sharing.contacts()] == ["friend"]
    assert vault.sharing.tag_policies() == [TagPolicy("health", never_share=True)]
    run(vault.files.get("src", out / "src"))
    assert tree_state(out / "src") == tree_state(lost["src"])  # type: ignore[arg-type]
    run(vault.files.get("big.bin", out / "v1", version=1))
    run(vault.files.get("big.bin", out / "v2"))
    assert (out / "v1").read_bytes() == lost["big_v1"]
    assert (out / "v2").read_bytes() == lost["big_v2"]


def test_recover_from_the_phrase_with_one_provider(
    vaults: Vaults, lost: dict[str, object], tmp_path: Path
) -> None:
    dirs: list[Path] = lost["dirs"]  # type: ignore[assignment]
    entropy = phrase_to_entropy(str(lost["phrase"]))
    res = run(recover_vault(tmp_path / "new", entropy, NEW, [dirs[2].as_uri()], kdf=FAST_KDF))
    assert res.objects == 2 and res.versions == 3
    states = {p.name: (p.reachable, p.missing, p.state) for p in res.providers}
    assert states["local-1"] == (False, True, "draining") and states["local-2"] == (
        False,
        True,
        "draining",
    )
    assert all(states[f"ext-{i}"] == (True, False, "active") for i in range(4))
    vault = vaults.open(tmp_path / "new", NEW)
    check_everything(vault, lost, tmp_path)


def test_old_passphrase_does_not_open_the_recovered_vault(
    lost: dict[str, object], tmp_path: Path
) -> None:
    dirs: list[Path] = lost["dirs"]  # type: ignore[assignment]
    run(
        recover_vault(
            tmp_path / "v",
            phrase_to_entropy(str(lost["phrase"])),
            NEW,
            [dirs[0].as_uri()],
            kdf=FAST_KDF,
        )
    )
    with pytest.raises(AuthError):
        Vault.open(tmp_path / "v", PASS)


def test_recover_from_guardian_shares_with_copied_embedded_providers(
    vaults: Vaults, lost: dict[str, object], tmp_path: Path
) -> None:
    dirs: list[Path] = lost["dirs"]  # type: ignore[assignment]
    shares: list[str] = lost["shares"]  # type: ignore[assignment]
    entropy = combine_guardian_shares([shares[2], shares[0]])
    target = tmp_path / "g"
    shutil.copytree(lost["base"] / "embedded-copy", target / "providers")  # type: ignore[operator]
    res = run(
        recover_vault(target, entropy, NEW, [dirs[1].as_uri(), dirs[3].as_uri()], kdf=FAST_KDF)
    )
    assert all(p.reachable and p.state == "active" for p in res.providers)
    vault = vaults.open(target, NEW)
    check_everything(vault, lost, tmp_path)
    assert run(vault.health.check()).to_json()["healthy"]


def test_wrong_phrase_too_few_providers_and_moved_providers(
    vaults: Vaults, lost: dict[str, object], tmp_path: Path
) -> None:
    dirs: list[Path] = lost["dirs"]  # type: ignore[assignment]
    with pytest.raises(AuthError, match="wrong recovery phrase"):
        run(recover_vault(tmp_path / "w", bytes(32), NEW, [dirs[0].as_uri()], kdf=FAST_KDF))
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    empty = tmp_path / "empty-provider"

    LocalProvider.create(empty)
    with pytest.raises(DataUnavailableError, match="no ownvault catalog"):
        run(
            recover_vault(
                tmp_path / "w",
                phrase_to_entropy(str(lost["phrase"])),
                NEW,
                [empty.as_uri()],
                kdf=FAST_KDF,
            )
        )
    # Providers that moved: NAME=URL points the vault at their new places (copies here, so
    # that the writes below leave the shared originals alone).
    moved = [tmp_path / f"moved-ext-{i}" for i in range(4)]
    for d, m in zip(dirs, moved, strict=True):
        shutil.copytree(d, m)
    assert parse_provider_arg(f"ext-0={moved[0].as_uri()}") == ("ext-0", moved[0].as_uri())
    res = run(
        recover_vault(
            tmp_path / "m",
            phrase_to_entropy(str(lost["phrase"])),
            NEW,
            [f"ext-{i}={m.as_uri()}" for i, m in enumerate(moved)],
            kdf=FAST_KDF,
        )
    )
    assert {p.name: p.url for p in res.providers}["ext-3"] == moved[3].as_uri()
    vault = vaults.open(tmp_path / "m", NEW)
    # The recovered vault keeps working: a new put lands on the reachable providers only.
    (tmp_path / "after.txt").write_text("written after recovery\n")
    run(vault.files.put([tmp_path / "after.txt"]))
    run(vault.files.get("after.txt", tmp_path / "after.out"))
    assert (tmp_path / "after.out").read_text() == "written after recovery\n"
    vaults.close(vault)
    with pytest.raises(VaultStateError, match="exists already"):
        run(
            recover_vault(
                tmp_path / "m", phrase_to_entropy(str(lost["phrase"])), NEW, [dirs[0].as_uri()]
            )
        )


def test_an_oversized_locator_is_refused_without_reading_it_whole(
    vaults: Vaults, lost: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider serving a huge object as the newest locator costs recovery the locator
    bound, not the object's size; recovery goes on from the next readable locator."""
    dirs: list[Path] = lost["dirs"]  # type: ignore[assignment]
    hostile = tmp_path / "hostile"
    shutil.copytree(dirs[2], hostile)
    [newest] = sorted((hostile / "objects" / "catalog").glob("*/locator"))[-1:]
    with newest.open("r+b") as f:
        f.truncate(2 * MAX_LOCATOR_SIZE)  # sparse: stands for an object of many gigabytes
    most = [0]
    real_get = LocalProvider.get

    async def measured(
        self: LocalProvider, name: str, offset: int = 0, length: int | None = None
    ) -> bytes:
        data = await real_get(self, name, offset, length)
        most[0] = max(most[0], len(data))
        return data

    monkeypatch.setattr(LocalProvider, "get", measured)
    entropy = phrase_to_entropy(str(lost["phrase"]))
    res = run(recover_vault(tmp_path / "new", entropy, NEW, [hostile.as_uri()], kdf=FAST_KDF))
    assert MAX_LOCATOR_SIZE < most[0] <= MAX_LOCATOR_SIZE + 1
    assert res.objects == 2
    vault = vaults.open(tmp_path / "new", NEW)
    assert run(vault.files.ls()) == lost["ls"]
