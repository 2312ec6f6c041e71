"""The only module that imports cryptographic libraries.

Primitives and why (figures in docs/design.md, "Dependencies"):

* AEAD: AES-256-GCM (``cryptography``; AES-NI, ~5.7 GB/s here). Every sealed box is
  ``version(1) || nonce(12) || ciphertext || tag(16)``, nonces random (96 bit). A key seals
  at most 2^32 boxes (NIST SP 800-38D random-nonce bound); per-chunk keys seal one box each,
  the catalog key seals one box per catalog change.
* Keyed hashing for chunk ids and Merkle trees: BLAKE3 (``blake3``).
* Key derivation: HKDF-SHA256 (RFC 5869) with a named, versioned ``info`` label per key.
* Passphrase KDF: Argon2id (``argon2-cffi``), cost parameters stored with the keystore.
* Signatures / identity: Ed25519; key agreement: X25519 (``cryptography``).
* Public-key encryption to a grant recipient: HPKE (RFC 9180) base mode, single shot,
  suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (``cryptography`` >= 47).
* Randomness: ``os.urandom`` via ``secrets``.

Nothing here performs I/O or keeps global state: ``RandomPool`` and ``BoxSealer`` are
objects a caller keeps (per put), so the per-chunk path of a put draws randomness in
batches and sets its wrapping key up once (the boxes are the same, byte for byte).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import methodcaller

import blake3 as _blake3
from argon2.low_level import Type as _Argon2Type
from argon2.low_level import hash_secret_raw as _argon2_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke as _hpke
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ownvault.errors import FormatError, IntegrityError, UsageError

__all__ = [
    "AEAD_OVERHEAD",
    "KEY_SIZE",
    "Argon2Params",
    "BoxSealer",
    "IntegrityError",
    "RandomPool",
    "argon2id",
    "blake3_hash",
    "blake3_hash_each",
    "blake3_keyed",
    "constant_time_equal",
    "ed25519_public",
    "ed25519_sign",
    "ed25519_verify",
    "hkdf",
    "hpke_open",
    "hpke_seal",
    "open_box",
    "open_box_into",
    "random_bytes",
    "seal",
    "seal_into",
    "sha256",
    "x25519_public",
    "x25519_shared",
]

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
BOX_VERSION = 1
AEAD_OVERHEAD = 1 + NONCE_SIZE + TAG_SIZE
_BOX_PREFIX = bytes((BOX_VERSION,))


def random_bytes(n: int) -> bytes:
    return secrets.token_bytes(n)


class RandomPool:
    """Random bytes from the OS's CSPRNG (``secrets``), drawn ``size`` at a time and handed
    out once each: a put's chunk keys and nonces (three draws of 12-32 bytes a chunk) cost
    one ``getrandom`` per ``size`` bytes instead of three syscalls, each of which let the
    GIL go. Every byte comes from the same source and is used once, so keys and nonces are
    as random as drawn one by one. Safe from several threads (a lock around the take)."""

    __slots__ = ("_buf", "_lock", "_pos", "_size")

    def __init__(self, size: int = 4096) -> None:
        if size < KEY_SIZE:
            raise UsageError("random pool smaller than a key")
        self._size = size
        self._buf = b""
        self._pos = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bytes:
        """``n`` fresh random bytes (at most the pool's size)."""
        if not 0 < n <= self._size:
            raise UsageError("random bytes asked out of the pool's range")
        with self._lock:
            pos = self._pos
            end = pos + n
            if end > len(self._buf):
                self._buf = secrets.token_bytes(self._size)
                pos, end = 0, n
            self._pos = end
            return self._buf[pos:end]


class BoxSealer:
    """:func:`seal` with one key, set up once (``AESGCM(key)`` each call is a key
    schedule), nonces from a :class:`RandomPool`: the same box format, ``0x01 || nonce ||
    ciphertext || tag``. For a key that seals many boxes (a content key wrapping every
    chunk key of a put); the 2^32-box bound of random nonces is the key's, as before."""

    __slots__ = ("_aead", "_pool")

    def __init__(self, key: bytes, pool: RandomPool) -> None:
        self._aead = AESGCM(key)
        self._pool = pool

    def seal(self, plaintext: bytes, associated_data: bytes) -> bytes:
        nonce = self._pool.take(NONCE_SIZE)
        return _BOX_PREFIX + nonce + self._aead.encrypt(nonce, plaintext, associated_data)


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def hkdf(key: bytes, info: bytes, length: int = KEY_SIZE, salt: bytes | None = None) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``key`` with the domain-separation label ``info``."""
    if len(key) < 16:
        raise UsageError("hkdf input key too short")
    return HKDF(algorithm=SHA256(), length=length, salt=salt, info=info).derive(key)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM box: ``0x01 || nonce || ciphertext||tag``, binding ``associated_data``."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    ct = AESGCM(key).encrypt(nonce, plaintext, associated_data)
    return bytes((BOX_VERSION,)) + nonce + ct


def seal_into(
    key: bytes,
    plaintext: bytes | memoryview,
    associated_data: bytes,
    out: memoryview,
    pool: RandomPool | None = None,
) -> int:
    """:func:`seal` written into ``out`` (at least ``len(plaintext) + AEAD_OVERHEAD`` bytes)
    instead of returned: the same box byte for byte, without the copies of joining it.
    The nonce comes from ``pool`` if given. Returns the box's length."""
    size = len(plaintext) + AEAD_OVERHEAD
    if len(out) < size:
        raise UsageError("sealed box does not fit in the buffer")
    nonce = secrets.token_bytes(NONCE_SIZE) if pool is None else pool.take(NONCE_SIZE)
    out[0] = BOX_VERSION
    out[1 : 1 + NONCE_SIZE] = nonce
    AESGCM(key).encrypt_into(nonce, plaintext, associated_data, out[1 + NONCE_SIZE : size])
    return size


def open_box(key: bytes, box: bytes | memoryview, associated_data: bytes) -> bytes:
    """Open a box made by :func:`seal`; ``IntegrityError`` if anything was changed."""
    if len(box) < AEAD_OVERHEAD:
        raise FormatError("sealed box too short")
    if box[0] != BOX_VERSION:
        raise FormatError(f"unknown sealed box version {box[0]}")
    try:
        return AESGCM(key).decrypt(box[1 : 1 + NONCE_SIZE], box[1 + NONCE_SIZE :], associated_data)
    except InvalidTag:
        raise IntegrityError("authentication failed (wrong key or tampered data)") from None


def open_box_into(
    key: bytes, box: bytes | memoryview, associated_data: bytes, out: memoryview
) -> int:
    """:func:`open_box` written into ``out`` (at least ``len(box) - AEAD_OVERHEAD`` bytes)
    instead of returned; the plaintext's length. On ``IntegrityError`` ``out`` may hold
    unauthenticated bytes: the caller must discard them."""
    if len(box) < AEAD_OVERHEAD:
        raise FormatError("sealed box too short")
    if box[0] != BOX_VERSION:
        raise FormatError(f"unknown sealed box version {box[0]}")
    size = len(box) - AEAD_OVERHEAD
    if len(out) < size:
        raise UsageError("opened box does not fit in the buffer")
    try:
        return AESGCM(key).decrypt_into(
            box[1 : 1 + NONCE_SIZE], box[1 + NONCE_SIZE :], associated_data, out[:size]
        )
    except InvalidTag:
        raise IntegrityError("authentication failed (wrong key or tampered data)") from None


_digest = methodcaller("digest")


def blake3_hash(data: bytes | bytearray | memoryview) -> bytes:
    return _blake3.blake3(data).digest()


def blake3_hash_each(items: Iterable[bytes | bytearray | memoryview]) -> Iterator[bytes]:
    """:func:`blake3_hash` of each item, lazily, with no Python-level call per item."""
    return map(_digest, map(_blake3.blake3, items))


def blake3_keyed(key: bytes, data: bytes | memoryview) -> bytes:
    """Keyed BLAKE3 (a PRF): 32-byte output."""
    return _blake3.blake3(data, key=key).digest()


def sha256(data: bytes | memoryview) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """Argon2id cost parameters; stored next to every salt they were used with."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.time_cost <= 64:
            raise UsageError("argon2 time_cost out of range")
        if not 8 * self.parallelism <= self.memory_cost_kib <= 4 * 1024 * 1024:
            raise UsageError("argon2 memory_cost out of range")
        if not 1 <= self.parallelism <= 16:
            raise UsageError("argon2 parallelism out of range")


def argon2id(passphrase: bytes, salt: bytes, params: Argon2Params) -> bytes:
    """Derive a 32-byte key from a passphrase with Argon2id (RFC 9106)."""
    return _argon2_raw(
        secret=passphrase,
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=_Argon2Type.ID,
    )


def ed25519_public(seed: bytes) -> bytes:
    """The raw 32-byte Ed25519 public key for a 32-byte private seed."""
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def x25519_public(secret: bytes) -> bytes:
    return (
        X25519PrivateKey.from_private_bytes(secret)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def x25519_shared(secret: bytes, peer_public: bytes) -> bytes:
    try:
        return X25519PrivateKey.from_private_bytes(secret).exchange(
            X25519PublicKey.from_public_bytes(peer_public)
        )
    except ValueError as exc:
        raise IntegrityError("invalid X25519 public key") from exc


_HPKE_SUITE = _hpke.Suite(_hpke.KEM.X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.AES_256_GCM)
HPKE_ENC_SIZE = 32


def hpke_seal(recipient_public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot encryption (RFC 9180): ``enc(32) || ciphertext || tag``.

    ``info`` is bound into the key schedule: a ciphertext opens only with the same info.
    """
    try:
        public = X25519PublicKey.from_public_bytes(recipient_public)
    except ValueError as exc:
        raise FormatError("invalid X25519 public key") from exc
    return _HPKE_SUITE.encrypt(plaintext, public, info)


def hpke_open(recipient_secret: bytes, sealed: bytes, info: bytes) -> bytes:
    """Open :func:`hpke_seal` output; ``IntegrityError`` for a wrong key, info or any change."""
    if len(sealed) < HPKE_ENC_SIZE + TAG_SIZE:
        raise FormatError("HPKE ciphertext too short")
    try:
        return _HPKE_SUITE.decrypt(
            sealed, X25519PrivateKey.from_private_bytes(recipient_secret), info
        )
    except (InvalidTag, ValueError):
        raise IntegrityError("HPKE decryption failed (not for this key, or tampered)") from None
