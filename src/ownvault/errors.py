"""The one exception tree of ownvault, and the exit codes the CLI maps it to.

::

    OwnvaultError                      exit 1   (base; never raised bare)
    ├── UsageError                     exit 2   bad arguments, bad names, missing local paths
    │   └── NotFoundError              exit 4   an unknown file name, version or provider name
    ├── AuthError                      exit 3   wrong passphrase, wrong key, keystore unreadable
    ├── VaultStateError                exit 9   no vault here, vault exists already, vault locked
    ├── IntegrityError                 exit 5   bytes failed authentication or a hash check
    │   ├── ShareCorruptError                   one share is tampered or truncated (names provider, share)
    │   ├── FormatError                         a stored or wire structure is malformed or over a limit
    │   └── JournalError                        a catalog journal record or chain is refused (names device, seq)
    ├── ProviderError                  exit 6   transport / storage trouble at one provider
    │   ├── ObjectNotFoundError                 the provider does not hold that object
    │   ├── ObjectExistsError                   a write would overwrite a different object
    │   ├── ProviderUnavailableError            retryable: unreachable, timeout, throttled, 5xx
    │   ├── ProviderPermanentError              not retryable: denied, misconfigured
    │   └── StorageFullError           exit 10  the provider (or local disk) is out of space
    ├── DataUnavailableError           exit 7   fewer than k good shares of some piece could be read
    ├── PolicyError                    exit 8   the placement policy cannot be satisfied
    │   └── SharePolicyError                    a tag policy forbids sharing this data
    └── GrantError                     exit 11  a sharing grant cannot be used (tampering is IntegrityError)
        ├── GrantRecipientError                 the grant is addressed to someone else
        ├── GrantExpiredError                   the grant is past its expiry time
        └── GrantRevokedError                   the sender revoked the grant

Integrity, transport and usage errors are on separate branches so that callers can tell
"the data is bad" from "the network is bad" from "you asked for something wrong". Every
error carries structured context (provider, share, name) besides its message, and the
message is one line meant for a person.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

__all__ = [
    "AuthError",
    "DataUnavailableError",
    "FormatError",
    "GrantError",
    "GrantExpiredError",
    "GrantRecipientError",
    "GrantRevokedError",
    "IntegrityError",
    "JournalError",
    "NotFoundError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "OwnvaultError",
    "PolicyError",
    "ProviderError",
    "ProviderPermanentError",
    "ProviderUnavailableError",
    "ShareCorruptError",
    "SharePolicyError",
    "StorageFullError",
    "UsageError",
    "VaultStateError",
    "exit_code_for",
    "exit_code_for_faults",
]


class OwnvaultError(Exception):
    """Base of every error ownvault raises on purpose."""

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        share: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.share = share
        self.name = name

    def context(self) -> dict[str, str]:
        """Structured context for logs and JSON error bodies (never secrets)."""
        out: dict[str, str] = {}
        if self.provider is not None:
            out["provider"] = self.provider
        if self.share is not None:
            out["share"] = self.share
        if self.name is not None:
            out["name"] = self.name
        return out


class UsageError(OwnvaultError):
    exit_code = 2
    code = "usage"


class NotFoundError(UsageError):
    exit_code = 4
    code = "not_found"


class AuthError(OwnvaultError):
    exit_code = 3
    code = "auth"


class VaultStateError(OwnvaultError):
    exit_code = 9
    code = "vault_state"


class IntegrityError(OwnvaultError):
    exit_code = 5
    code = "integrity"


class ShareCorruptError(IntegrityError):
    code = "share_corrupt"


class FormatError(IntegrityError):
    code = "format"


class JournalError(IntegrityError):
    """A journal record is tampered, out of order, forked, rolled back or from a revoked device.

    ``device`` (hex device id) and ``seq`` name the record; the message says what is wrong."""

    code = "journal"

    def __init__(
        self,
        message: str,
        *,
        device: str | None = None,
        seq: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.device = device
        self.seq = seq

    def context(self) -> dict[str, str]:
        out = super().context()
        if self.device is not None:
            out["device"] = self.device
        if self.seq is not None:
            out["seq"] = str(self.seq)
        return out


class ProviderError(OwnvaultError):
    exit_code = 6
    code = "provider"
    retryable: ClassVar[bool] = False


class ObjectNotFoundError(ProviderError):
    code = "object_not_found"


class ObjectExistsError(ProviderError):
    code = "object_exists"


class ProviderUnavailableError(ProviderError):
    code = "provider_unavailable"
    retryable = True


class ProviderPermanentError(ProviderError):
    code = "provider_permanent"


class StorageFullError(ProviderError):
    exit_code = 10
    code = "storage_full"


class DataUnavailableError(OwnvaultError):
    exit_code = 7
    code = "data_unavailable"


class PolicyError(OwnvaultError):
    exit_code = 8
    code = "policy"


class SharePolicyError(PolicyError):
    code = "share_policy"


class GrantError(OwnvaultError):
    exit_code = 11
    code = "grant"


class GrantRecipientError(GrantError):
    code = "grant_recipient"


class GrantExpiredError(GrantError):
    code = "grant_expired"


class GrantRevokedError(GrantError):
    code = "grant_revoked"


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for an exception: the one place that mapping lives."""
    if isinstance(exc, OwnvaultError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    return 1


def exit_code_for_faults(kinds: Iterable[str]) -> int:
    """The exit code of a run that reports share faults instead of raising (``check --deep``):
    a share that is corrupt, truncated or missing is an integrity finding (5, as
    :class:`IntegrityError`); only unreachable providers is a transport finding (6, as
    :class:`ProviderError`); nothing found is 0."""
    found = set(kinds)
    if found - {"unreachable"}:
        return IntegrityError.exit_code
    if found:
        return ProviderError.exit_code
    return 0
