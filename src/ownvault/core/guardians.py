"""Guardian shares: the vault's 32-byte entropy split with SLIP-39 (Shamir's secret sharing).

Trezor's reference implementation (``shamir-mnemonic``) does the splitting and combining,
so the shares are ordinary SLIP-39 mnemonics that any SLIP-39 implementation accepts
(a hardware wallet, another tool) and turn back into the same 32 bytes.

Parameters (docs/design.md, "Keys: recovery, guardians, grants"):

* the master secret is the entropy itself (the BIP-39 phrase's 32 bytes), so a phrase and
  a set of shares restore exactly the same vault;
* the SLIP-39 passphrase is empty (the shares alone are enough; a vault passphrase is a
  local thing and never part of recovery);
* ``extendable`` = true (SLIP-39's extendable backup flag: more share sets for the same
  secret can be made later) and iteration exponent 1 (40,000 PBKDF2 iterations in all);
* one group of ``threshold``-of-``shares`` by default; with groups, any
  ``group_threshold`` groups each meeting its own member threshold.

Fewer than the threshold of shares reveal nothing about the entropy (Shamir over GF(256),
information-theoretically), but SLIP-39 shares are not authenticated against a wrong
*combination* below threshold 2; the vault check (a locator must open) catches that.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import shamir_mnemonic
from shamir_mnemonic import MnemonicError

from ownvault.errors import AuthError, FormatError, UsageError

__all__ = [
    "MAX_SHARES",
    "GuardianGroup",
    "combine_guardian_shares",
    "parse_share_text",
    "split_entropy",
]

MAX_SHARES = 16
ITERATION_EXPONENT = 1
MAX_SHARE_TEXT = 64 * 1024


@dataclass(frozen=True, slots=True)
class GuardianGroup:
    """One group of guardians: any ``threshold`` of its ``count`` shares."""

    threshold: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARES:
            raise UsageError(f"a group has 1 to {MAX_SHARES} shares (got {self.count})")
        if not 1 <= self.threshold <= self.count:
            raise UsageError(
                f"the threshold must be between 1 and the number of shares (got {self.threshold} of {self.count})"
            )
        if self.threshold == 1 and self.count > 1:
            raise UsageError(
                "a 1-of-N group would just copy the secret N times; use a threshold >= 2"
            )

    @classmethod
    def parse(cls, text: str) -> GuardianGroup:
        """``"2of3"`` / ``"2-of-3"`` / ``"2/3"``."""
        clean = text.strip().lower().replace("-of-", "of").replace("/", "of")
        a, sep, b = clean.partition("of")
        try:
            if not sep:
                raise ValueError
            return cls(int(a), int(b))
        except ValueError:
            raise UsageError(f"a group is written T-of-N, like 2of3 (got {text!r:.40})") from None


def split_entropy(
    entropy: bytes, groups: Sequence[GuardianGroup], group_threshold: int = 1
) -> list[list[str]]:
    """SLIP-39 mnemonics for ``entropy``: one list of share mnemonics per group."""
    if len(entropy) not in (16, 32):
        raise UsageError("guardian shares split a 16- or 32-byte secret")
    if not groups or len(groups) > MAX_SHARES:
        raise UsageError(f"1 to {MAX_SHARES} groups")
    if not 1 <= group_threshold <= len(groups):
        raise UsageError(f"the group threshold must be between 1 and {len(groups)}")
    try:
        return [
            list(g)
            for g in shamir_mnemonic.generate_mnemonics(
                group_threshold,
                [(g.threshold, g.count) for g in groups],
                entropy,
                b"",
                extendable=True,
                iteration_exponent=ITERATION_EXPONENT,
            )
        ]
    except (MnemonicError, ValueError) as exc:
        raise UsageError(f"cannot make guardian shares: {exc}") from None


def _normalize(mnemonic: str) -> str:
    return " ".join(unicodedata.normalize("NFKD", mnemonic).lower().split())


def parse_share_text(text: str) -> list[str]:
    """The SLIP-39 mnemonics in a text: one per line; blank lines and ``#`` comments ignored."""
    if len(text) > MAX_SHARE_TEXT:
        raise FormatError("guardian share file too large")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(_normalize(line))
    return out


def combine_guardian_shares(mnemonics: Iterable[str], passphrase: bytes = b"") -> bytes:
    """The secret behind enough SLIP-39 shares; ``AuthError`` saying what is wrong otherwise.

    The error names counts and thresholds only, never a word of a share. ownvault's own
    shares use the empty SLIP-39 passphrase; ``passphrase`` exists for other SLIP-39 sets
    (and the official test vectors, made with "TREZOR").
    """
    shares = [_normalize(m) for m in mnemonics if m.strip()]
    if not shares:
        raise AuthError("no guardian shares given")
    parsed = []
    for i, m in enumerate(shares, 1):
        try:
            parsed.append(shamir_mnemonic.Share.from_mnemonic(m))
        except MnemonicError:
            raise AuthError(
                f"guardian share {i} is not a valid SLIP-39 share (a word is wrong or missing)"
            ) from None
    first = parsed[0]
    if any(p.identifier != first.identifier for p in parsed):
        raise AuthError(
            "the guardian shares belong to different secrets (their identifiers differ)"
        )
    groups: dict[int, set[int]] = {}
    member_threshold: dict[int, int] = {}
    for p in parsed:
        groups.setdefault(p.group_index, set()).add(p.index)
        member_threshold[p.group_index] = p.member_threshold
    complete = [g for g, members in groups.items() if len(members) >= member_threshold[g]]
    if len(complete) < first.group_threshold:
        if first.group_count == 1:
            have = len(groups.get(0, set()))
            raise AuthError(
                f"too few guardian shares: {have} distinct share(s) given, {member_threshold[0]} needed"
            )
        detail = ", ".join(
            f"group {g + 1}: {len(m)} of {member_threshold[g]}" for g, m in sorted(groups.items())
        )
        raise AuthError(
            f"too few guardian shares: {len(complete)} complete group(s), "
            f"{first.group_threshold} needed ({detail})"
        )
    try:
        return bytes(shamir_mnemonic.combine_mnemonics(shares, passphrase))
    except MnemonicError as exc:
        # Messages of the reference library describe structure (thresholds, digests), not words.
        raise AuthError(f"guardian shares cannot be combined: {exc}") from None
