"""A vault whose data lives mostly on local-folder providers OUTSIDE the vault directory."""

from __future__ import annotations

from pathlib import Path

from ownvault.engine.store.placement import Policy
from ownvault.engine.vault import Vault

from .helpers import make_vault, run


def vault_with_external(
    base: Path, *, external: int = 4, k: int = 2, n: int = 4
) -> tuple[Vault, list[Path]]:
    """Two embedded providers (inside the vault dir) plus ``external`` folders added by URL.

    Every pack and snapshot piece has at most 2 of its n shares on the embedded providers,
    so with k <= n - 2 the data survives the loss of the whole vault directory.
    """
    vault = make_vault(base / "vault", providers=2, k=1, n=2)
    dirs = []
    for i in range(external):
        d = base / f"ext-{i}"
        run(vault.fleet.add_provider(f"ext-{i}", d.as_uri(), jurisdiction="DE"))
        dirs.append(d)
    run(vault.fleet.set_policy(Policy(k, n)))
    return vault, dirs
