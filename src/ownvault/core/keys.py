"""Recovery phrase -> root key -> named derived keys, and ``did:key`` identities.

Key hierarchy (every label is listed in docs/design.md, "Keys")::

    entropy (32 random bytes)  ==  24-word BIP-39 phrase (the recovery phrase)
      seed  = BIP-39 PBKDF2-HMAC-SHA512(phrase, "mnemonic", 2048)       (64 bytes)
      root  = HKDF-SHA256(seed, info="ownvault/v1/root")
        content    = HKDF(root, "ownvault/v1/key/content")    wraps per-chunk data keys
        dedup      = HKDF(root, "ownvault/v1/key/dedup")      keys BLAKE3 chunk ids
        catalog    = HKDF(root, "ownvault/v1/key/catalog")    seals catalog snapshots/locators
        pack       = HKDF(root, "ownvault/v1/key/pack")       keys share/pack object names
        signing    = HKDF(root, "ownvault/v1/key/signing")    Ed25519 seed -> did:key
        agreement  = HKDF(root, "ownvault/v1/key/agreement")  X25519 secret (grants)
        grants     = HKDF(root, "ownvault/v1/key/grants")     wraps per-grant manifest keys
        content/<e> = HKDF(root, "ownvault/v1/key/content/<e>")  content key of epoch e >= 1
                                                              (epoch 0 is ``content``)

The entropy is the one secret: SLIP-39 guardian shares split it, the keystore stores it
sealed under the passphrase, and everything else is derived on demand.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, field

from mnemonic import Mnemonic

from ownvault.core import crypto
from ownvault.core.multibase import b58_decode, b58_encode
from ownvault.errors import AuthError, FormatError, UsageError

__all__ = [
    "ENTROPY_SIZE",
    "KEY_LABELS",
    "VaultKeys",
    "did_key_from_ed25519",
    "ed25519_from_did_key",
    "entropy_to_phrase",
    "new_entropy",
    "phrase_to_entropy",
    "phrase_to_seed",
    "x25519_from_multibase",
    "x25519_multibase",
]

ENTROPY_SIZE = 32
ROOT_LABEL = b"ownvault/v1/root"
KEY_LABELS: dict[str, bytes] = {
    "content": b"ownvault/v1/key/content",
    "dedup": b"ownvault/v1/key/dedup",
    "catalog": b"ownvault/v1/key/catalog",
    "pack": b"ownvault/v1/key/pack",
    "signing": b"ownvault/v1/key/signing",
    "agreement": b"ownvault/v1/key/agreement",
    "grants": b"ownvault/v1/key/grants",
}
CONTENT_EPOCH_LABEL = b"ownvault/v1/key/content/"
MAX_CONTENT_EPOCH = 1_000_000
_ED25519_PUB = b"\xed\x01"  # multicodec ed25519-pub (varint 0xed)
_X25519_PUB = b"\xec\x01"  # multicodec x25519-pub (varint 0xec)
_MNEMONIC = Mnemonic("english")


def new_entropy() -> bytes:
    return crypto.random_bytes(ENTROPY_SIZE)


def entropy_to_phrase(entropy: bytes) -> str:
    if len(entropy) not in (16, 20, 24, 28, 32):
        raise UsageError("entropy must be 16..32 bytes in steps of 4")
    return str(_MNEMONIC.to_mnemonic(entropy))


def _normalize_phrase(phrase: str) -> str:
    return " ".join(unicodedata.normalize("NFKD", phrase).lower().split())


def phrase_to_entropy(phrase: str) -> bytes:
    """The entropy of a BIP-39 phrase; ``AuthError`` if a word or the checksum is wrong."""
    words = _normalize_phrase(phrase)
    if len(words) > 1000:
        raise FormatError("recovery phrase too long")
    n = len(words.split())
    if n not in (12, 15, 18, 21, 24):
        raise AuthError(f"a recovery phrase has 12 to 24 words; this one has {n}")
    if not _MNEMONIC.check(words):
        unknown = [i for i, w in enumerate(words.split(), 1) if w not in _MNEMONIC.wordlist]
        if unknown:
            # The position only: even a misspelt word of a recovery phrase is a secret.
            raise AuthError(f"word {unknown[0]} of the recovery phrase is not a BIP-39 word")
        raise AuthError("recovery phrase checksum does not match (a word is wrong or missing)")
    return bytes(_MNEMONIC.to_entropy(words))


def phrase_to_seed(phrase: str, passphrase: str = "") -> bytes:
    """The BIP-39 seed: PBKDF2-HMAC-SHA512(phrase, "mnemonic" + passphrase, 2048)."""
    words = unicodedata.normalize("NFKD", _normalize_phrase(phrase))
    salt = unicodedata.normalize("NFKD", "mnemonic" + passphrase)
    return hashlib.pbkdf2_hmac("sha512", words.encode(), salt.encode(), 2048)


@dataclass(frozen=True, slots=True)
class VaultKeys:
    """All keys of a vault, derived from its 32-byte entropy. Never serialised in clear."""

    entropy: bytes = field(repr=False)
    root: bytes = field(init=False, repr=False)
    content: bytes = field(init=False, repr=False)
    dedup: bytes = field(init=False, repr=False)
    catalog: bytes = field(init=False, repr=False)
    pack: bytes = field(init=False, repr=False)
    signing: bytes = field(init=False, repr=False)
    agreement: bytes = field(init=False, repr=False)
    grants: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.entropy) != ENTROPY_SIZE:
            raise UsageError("vault entropy must be 32 bytes")
        seed = phrase_to_seed(entropy_to_phrase(self.entropy))
        root = crypto.hkdf(seed, ROOT_LABEL)
        object.__setattr__(self, "root", root)
        for name, label in KEY_LABELS.items():
            object.__setattr__(self, name, crypto.hkdf(root, label))

    @classmethod
    def from_phrase(cls, phrase: str) -> VaultKeys:
        return cls(phrase_to_entropy(phrase))

    @property
    def phrase(self) -> str:
        return entropy_to_phrase(self.entropy)

    def content_key(self, epoch: int) -> bytes:
        """The key that wraps chunk keys written in content-key ``epoch`` (0 = the original)."""
        if epoch == 0:
            return self.content
        if not 0 < epoch <= MAX_CONTENT_EPOCH:
            raise UsageError(f"content key epoch out of range: {epoch}")
        return crypto.hkdf(self.root, CONTENT_EPOCH_LABEL + str(epoch).encode())

    @property
    def signing_public(self) -> bytes:
        return crypto.ed25519_public(self.signing)

    @property
    def agreement_public(self) -> bytes:
        return crypto.x25519_public(self.agreement)

    @property
    def did(self) -> str:
        return did_key_from_ed25519(self.signing_public)

    def sign(self, message: bytes) -> bytes:
        return crypto.ed25519_sign(self.signing, message)


def did_key_from_ed25519(public: bytes) -> str:
    if len(public) != 32:
        raise UsageError("Ed25519 public key must be 32 bytes")
    return "did:key:z" + b58_encode(_ED25519_PUB + public)


def ed25519_from_did_key(did: str) -> bytes:
    """The raw Ed25519 public key inside a ``did:key``; ``FormatError`` if it is not one."""
    if not isinstance(did, str) or not did.startswith("did:key:z") or len(did) > 200:
        raise FormatError(f"not an Ed25519 did:key: {did!r:.80}")
    raw = b58_decode(did[len("did:key:z") :])
    if len(raw) != 34 or raw[:2] != _ED25519_PUB:
        raise FormatError(f"not an Ed25519 did:key: {did!r:.80}")
    return raw[2:]


def x25519_multibase(public: bytes) -> str:
    """An X25519 public key as a multibase (base58btc) multicodec string."""
    return "z" + b58_encode(_X25519_PUB + public)


def x25519_from_multibase(text: str) -> bytes:
    """The raw X25519 public key of :func:`x25519_multibase` text; ``FormatError`` otherwise."""
    if not isinstance(text, str) or not text.startswith("z") or len(text) > 100:
        raise FormatError(f"not an X25519 multibase key: {text!r:.80}")
    raw = b58_decode(text[1:])
    if len(raw) != 34 or raw[:2] != _X25519_PUB:
        raise FormatError(f"not an X25519 multibase key: {text!r:.80}")
    return raw[2:]
