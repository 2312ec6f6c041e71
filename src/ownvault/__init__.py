"""ownvault: own your data. Public API (explicit re-exports; see tests/test_exports.py)."""

from __future__ import annotations

from ownvault.errors import (
    AuthError,
    DataUnavailableError,
    IntegrityError,
    NotFoundError,
    OwnvaultError,
    PolicyError,
    ProviderError,
    UsageError,
    VaultStateError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "DataUnavailableError",
    "IntegrityError",
    "NotFoundError",
    "OwnvaultError",
    "PolicyError",
    "ProviderError",
    "UsageError",
    "VaultStateError",
    "__version__",
]
