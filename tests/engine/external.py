"""A vault whose data lives mostly on local-folder providers OUTSIDE the vault directory."""

from __future__ import annotations

from pathlib import Path

from ownvault.engine.placement import Policy
from ownvault.engine.vault import Vault
from ownvault.providers.local import LocalProvider

from .helpers import make_vault


def vault_with_external(base: Path, *, external: int = 4, k: int = 2, n: int = 4) -> tuple[Vault, list[Path]]:
    """Two embedded providers (inside the vault dir) plus ``external`` folders given by URL.

    Every pack and snapshot piece has at most 2 of its n shares on the embedded providers,
    so with k <= n - 2 the data survives the loss of the whole vault directory.
    """
    vault = make_vault(base / "vault", providers=2, k=1, n=2)
    dirs = []
    with vault.catalog.transaction():
        for i in range(external):
            d = base / f"ext-{i}"
            LocalProvider.create(d)
            vault.catalog.add_provider(f"ext-{i}", "local", d.as_uri(), "DE", {})
            dirs.append(d)
        vault.catalog.set_meta("policy", Policy(k, n).to_json())
    return vault, dirs
