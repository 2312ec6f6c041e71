"""Every path that writes packs fails over: a provider that refuses writes during a
rebalance or a pack rewrite (revocation) does not abort it (engine.store.packwriter)."""

from __future__ import annotations

import json
from pathlib import Path

from ownvault.engine.vault import Vault
from ownvault.providers.wrappers import Fault, FaultyProvider

from .helpers import Vaults, run, tree_state, write_random_tree


def _fail_puts(vault: Vault, name: str) -> Fault:
    """From now on, every write to provider ``name`` fails (reads still work)."""
    pid = next(r.id for r in vault.catalog.providers() if r.name == name)
    fault = Fault("fail", ops=frozenset({"put"}))
    store = vault.store
    store.providers[pid] = FaultyProvider(store.providers[pid], [fault])
    return fault


def _holders(vault: Vault) -> set[str]:
    names = {r.id: r.name for r in vault.catalog.providers(include_removed=True)}
    return {
        names[s.provider] for p in vault.catalog.live_packs() for s in vault.catalog.shares_of(p)
    }


def test_rebalance_fails_over_to_another_provider(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    write_random_tree(src, 3, files=6, max_size=100_000)
    vault = vaults.create(tmp_path / "v", providers=8, k=3, n=6)
    run(vault.files.put([src]))
    assert _holders(vault) == {f"local-{i}" for i in range(1, 7)}
    # Draining local-1 moves its shares to the emptiest spare, local-7, which now
    # refuses every write: they must land on local-8 instead.
    fault = _fail_puts(vault, "local-7")
    out = run(vault.fleet.remove_provider("local-1"))
    assert out.removed and out.shares_moved >= 1
    assert fault.fired >= 1
    assert _holders(vault) == {"local-8", *(f"local-{i}" for i in range(2, 7))}
    report = run(vault.health.check()).to_json()
    assert report["healthy"] and report["policy_ok"], report
    run(vault.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)


def test_pack_rewrite_fails_over_to_another_provider(vaults: Vaults, tmp_path: Path) -> None:
    src = tmp_path / "docs"
    write_random_tree(src, 4, files=6, max_size=100_000)
    alice = vaults.create(tmp_path / "alice", providers=8, k=3, n=6)
    bob = vaults.create(tmp_path / "bob", providers=3, k=1, n=2)
    run(alice.sharing.add_contact(json.dumps(bob.sharing.contact_card("bob").to_json())))
    run(alice.files.put([src]))
    grant = run(alice.sharing.share(names=["docs"], to="bob"))
    # Revocation re-encrypts every pack of "docs" into new packs, placed first on the
    # empty local-7 and local-8; local-7 refuses writes.
    fault = _fail_puts(alice, "local-7")
    result = run(alice.sharing.revoke(grant.grant_id))
    assert result.repack is not None and result.repack.packs_written >= 1, result
    assert fault.fired >= 1
    assert "local-7" not in _holders(alice)
    report = run(alice.health.check()).to_json()
    assert report["healthy"] and report["policy_ok"], report
    run(alice.files.get("docs", tmp_path / "back"))
    assert tree_state(tmp_path / "back") == tree_state(src)
