"""ownvault: own your data. Public API (explicit re-exports; see tests/test_exports.py).

The names are resolved on first use (PEP 562 ``__getattr__``): every ``ownvault.*`` import,
``ownvault.cli`` included, runs this file first, and importing the whole engine here would
cost every short command its start-up time (docs/design.md, "Engine architecture").
"""

import importlib as _importlib
import os as _os
import typing as _typing

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

if _typing.TYPE_CHECKING:
    from ownvault.engine.health.audit import AuditReport, AuditSample
    from ownvault.engine.health.repair import RepairReport
    from ownvault.engine.keys.recovery import recover_vault
    from ownvault.engine.maintenance import MaintenanceConfig, MaintenanceState, maintain
    from ownvault.engine.nft.collect import NftOptions
    from ownvault.engine.nft.preserve import verify_token
    from ownvault.engine.sharing.reader import GrantReader, open_grant
    from ownvault.engine.vault import PutResult, Vault, VaultOptions
    from ownvault.providers.webfetch import FetchLimits, NetworkPolicy

__version__ = "0.1.0"

# Public name -> the module that defines it, imported on first access.
_LAZY = {
    "AuditReport": "ownvault.engine.health.audit",
    "AuditSample": "ownvault.engine.health.audit",
    "FetchLimits": "ownvault.providers.webfetch",
    "GrantReader": "ownvault.engine.sharing.reader",
    "MaintenanceConfig": "ownvault.engine.maintenance",
    "MaintenanceState": "ownvault.engine.maintenance",
    "NetworkPolicy": "ownvault.providers.webfetch",
    "NftOptions": "ownvault.engine.nft.collect",
    "PutResult": "ownvault.engine.vault",
    "RepairReport": "ownvault.engine.health.repair",
    "Vault": "ownvault.engine.vault",
    "VaultOptions": "ownvault.engine.vault",
    "maintain": "ownvault.engine.maintenance",
    "open_grant": "ownvault.engine.sharing.reader",
    "recover_vault": "ownvault.engine.keys.recovery",
    "verify_token": "ownvault.engine.nft.preserve",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ownvault' has no attribute {name!r}")
    value: object = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def open_vault(path: str | _os.PathLike[str], passphrase: str) -> "Vault":
    """Open an existing vault. Its I/O methods are coroutines (``await vault.files.put([...])``)."""
    from ownvault.engine.vault import Vault  # noqa: PLC0415 (lazy: see the module docstring)

    return Vault.open(path, passphrase)


def create_vault(
    path: str | _os.PathLike[str], passphrase: str, options: "VaultOptions | None" = None
) -> "Vault":
    """Create a vault (see :class:`VaultOptions`); the phrase is ``vault.keys.phrase``."""
    from ownvault.engine.vault import Vault  # noqa: PLC0415 (lazy: see the module docstring)

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
