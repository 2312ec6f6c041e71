"""ownvault: own your data. Public API (explicit re-exports; see tests/test_exports.py)."""

import os as _os

from ownvault.engine.health.audit import AuditReport, AuditSample
from ownvault.engine.health.repair import RepairReport
from ownvault.engine.keys.recovery import recover_vault
from ownvault.engine.maintenance import MaintenanceConfig, MaintenanceState, maintain
from ownvault.engine.nft.collect import NftOptions
from ownvault.engine.nft.preserve import verify_token
from ownvault.engine.sharing.reader import GrantReader, open_grant
from ownvault.engine.vault import PutResult, Vault, VaultOptions
from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    GrantError,
    IntegrityError,
    NotFoundError,
    OwnvaultError,
    PolicyError,
    ProviderError,
    UsageError,
    VaultStateError,
)
from ownvault.providers.webfetch import FetchLimits, NetworkPolicy

__version__ = "0.1.0"


def open_vault(path: str | _os.PathLike[str], passphrase: str) -> Vault:
    """Open an existing vault. Its I/O methods are coroutines (``await vault.files.put([...])``)."""
    return Vault.open(path, passphrase)


def create_vault(
    path: str | _os.PathLike[str], passphrase: str, options: VaultOptions | None = None
) -> Vault:
    """Create a vault (see :class:`VaultOptions`); the phrase is ``vault.keys.phrase``."""
    return Vault.create(path, passphrase, options)


__all__ = [
    "AuditReport",
    "AuditSample",
    "AuthError",
    "DataUnavailableError",
    "FetchLimits",
    "GrantError",
    "GrantReader",
    "IntegrityError",
    "MaintenanceConfig",
    "MaintenanceState",
    "NetworkPolicy",
    "NftOptions",
    "NotFoundError",
    "OwnvaultError",
    "PolicyError",
    "ProviderError",
    "PutResult",
    "RepairReport",
    "UsageError",
    "Vault",
    "VaultOptions",
    "VaultStateError",
    "__version__",
    "create_vault",
    "maintain",
    "open_grant",
    "open_vault",
    "recover_vault",
    "verify_token",
]
