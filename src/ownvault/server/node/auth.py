"""Request authentication for the storage node: RFC 9421 signatures, time window, nonces.

A request is accepted when exactly one signature tagged ``ownvault-node/1`` verifies under
the Ed25519 key inside its ``keyid`` (a ``did:key``), covers every component in
:data:`~ownvault.providers.node.protocol.COVERED_COMPONENTS`, names this node in the covered
``ownvault-node`` field, was ``created`` within ``window`` seconds of the node's clock (and
not before the node process started: 503, sign again), and carries a ``nonce`` not seen in that window.
Checks run in that order; only a request that passes all of them spends its nonce.

The nonce memory is per process: a restart forgets it, which is why requests created
before the process started are refused (a replay across a restart would otherwise work).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import http_sf
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver
from http_message_signatures.exceptions import HTTPMessageSignaturesException

from ownvault.core.capability import CAPABILITY_HEADER
from ownvault.core.keys import ed25519_from_did_key
from ownvault.errors import FormatError
from ownvault.providers.node.protocol import (
    COVERED_COMPONENTS,
    NODE_HEADER,
    PROTOCOL,
    DidKeyEd25519,
)

__all__ = [
    "AuthFailure",
    "Authenticated",
    "Authenticator",
    "BodyDigest",
    "NonceCache",
    "SignedMessage",
]

MAX_NONCE_LENGTH = 128


class AuthFailure(Exception):
    """A request failed authentication; ``code`` is the stable error code for the client."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """The view of a request that the signature library reads: method, URL, headers."""

    method: str
    url: str
    headers: Any


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Who signed a request, and the read capability it carried (covered by the signature)."""

    signer: str
    capability: str | None


class _DidKeyResolver(HTTPSignatureKeyResolver):  # type: ignore[misc]
    def resolve_public_key(self, key_id: str) -> bytes | None:
        try:
            return ed25519_from_did_key(key_id)
        except FormatError:
            return None

    def resolve_private_key(self, key_id: str) -> bytes:
        raise KeyError("the node holds no private keys")


class NonceCache:
    """Nonces seen recently, each kept until it expires; bounded per account and in all.

    One account can fill only its own share (``per_account`` entries; beyond it that
    account's requests are refused as ``busy`` until its entries expire) and never
    blocks another. ``max_entries`` is a memory backstop over all accounts, reached only
    by ``max_entries / per_account`` accounts filling theirs at once.
    """

    def __init__(self, max_entries: int = 1_000_000, per_account: int = 100_000) -> None:
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._count: dict[str, int] = {}
        self._max = max_entries
        self._per_account = per_account

    def __len__(self) -> int:
        return len(self._seen)

    def count(self, account: str) -> int:
        return self._count.get(account, 0)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]
            left = self._count[key[0]] - 1
            if left:
                self._count[key[0]] = left
            else:
                del self._count[key[0]]

    def check_and_add(self, account: str, nonce: str, expires: float, now: float) -> str | None:
        """Record the nonce; return an error code if it was seen or the cache is full."""
        self._expire(now)
        key = (account, nonce)
        if key in self._seen:
            return "replayed_nonce"
        if self._count.get(account, 0) >= self._per_account or len(self._seen) >= self._max:
            return "busy"
        # Entries are appended in arrival order; expiry times are arrival + constant, so
        # the dict stays ordered by expiry and _expire only looks at its head.
        self._seen[key] = expires
        self._count[account] = self._count.get(account, 0) + 1
        return None


class BodyDigest:
    """A request's ``Content-Digest`` (RFC 9530), checked as the body streams in.

    Every member (``sha-256``, ``sha-512``) must match; a missing, repeated or malformed
    field never matches.
    """

    _HASHERS: ClassVar[dict[str, Callable[[], Any]]] = {
        "sha-256": hashlib.sha256,
        "sha-512": hashlib.sha512,
    }

    def __init__(self, message: SignedMessage) -> None:
        self._expected: list[tuple[bytes, Any]] = []
        values = [v for k, v in message.headers.items() if k.lower() == "content-digest"]
        if len(values) != 1:
            return
        try:
            members = http_sf.parse(values[0].encode("ascii"), tltype="dictionary")
        except (ValueError, TypeError, UnicodeEncodeError):
            return
        if not isinstance(members, dict):
            return
        for algorithm, member in members.items():
            hasher = self._HASHERS.get(algorithm)
            if hasher is None or not isinstance(member, tuple) or not isinstance(member[0], bytes):
                self._expected = []
                return
            self._expected.append((member[0], hasher()))

    def update(self, chunk: bytes) -> None:
        for _digest, hasher in self._expected:
            hasher.update(chunk)

    def matches(self) -> bool:
        return bool(self._expected) and all(
            hmac.compare_digest(digest, hasher.digest()) for digest, hasher in self._expected
        )


class Authenticator:
    def __init__(
        self,
        node_id: str,
        *,
        window: int,
        started: float,
        max_nonces: int = 1_000_000,
        nonces_per_account: int = 100_000,
    ) -> None:
        self.node_id = node_id
        self.window = window
        self.started = int(started)
        self.nonces = NonceCache(max_nonces, nonces_per_account)
        self._verifier = HTTPMessageVerifier(
            signature_algorithm=DidKeyEd25519, key_resolver=_DidKeyResolver()
        )
        # The library's own clock checks are relaxed: ours below gives the stable code.
        self._verifier.max_clock_skew = datetime.timedelta(days=3650)

    def authenticate(self, message: SignedMessage, *, now: float | None = None) -> str:
        """Return the account (``did:key``) that signed ``message``, or raise AuthFailure."""
        return self.verify(message, now=now).signer

    def verify(self, message: SignedMessage, *, now: float | None = None) -> Authenticated:
        """The signer and the (signed) ``ownvault-capability`` of ``message``, or AuthFailure.

        A request carrying that header must cover it with its signature (else
        ``bad_signature``): the capability travels only with the reader's own signature.
        """
        now = time.time() if now is None else now
        names = {name.lower() for name, _value in message.headers.items()}
        if "signature-input" not in names or "signature" not in names:
            raise AuthFailure("unsigned", "requests must carry an RFC 9421 signature")
        try:
            results = self._verifier.verify(
                message, max_age=None, expect_tag=PROTOCOL, require_components=COVERED_COMPONENTS
            )
        except HTTPMessageSignaturesException as exc:
            raise AuthFailure("bad_signature", f"signature rejected: {exc}"[:200]) from None
        if len(results) != 1:
            raise AuthFailure("bad_signature", "exactly one ownvault signature is required")
        params = results[0].parameters
        keyid, created, nonce = params.get("keyid"), params.get("created"), params.get("nonce")
        if params.get("alg") != DidKeyEd25519.algorithm_id:
            raise AuthFailure("bad_signature", 'the signature must state alg="ed25519"')
        if not isinstance(keyid, str) or not isinstance(created, int):
            raise AuthFailure("bad_signature", "keyid and created are required")
        covered = results[0].covered_components
        capability = covered.get(f'"{CAPABILITY_HEADER}"')
        if capability is None and CAPABILITY_HEADER in names:
            raise AuthFailure("bad_signature", f"the signature must cover {CAPABILITY_HEADER}")
        if capability is not None and not isinstance(capability, str):
            raise AuthFailure("bad_signature", f"malformed {CAPABILITY_HEADER}")
        if covered.get(f'"{NODE_HEADER}"') != self.node_id:
            raise AuthFailure("wrong_node", "the request is signed for another node")
        if abs(now - created) > self.window:
            raise AuthFailure(
                "stale_signature", f"created must be within {self.window}s of the node's clock"
            )
        if created < self.started:
            # Nonces from before a restart are forgotten: refuse such requests, but as a
            # retryable condition (a client whose clock lags a little signs again).
            raise AuthFailure(
                "node_restarted", "signed before this node process started; sign again", 503
            )
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= MAX_NONCE_LENGTH:
            raise AuthFailure("bad_signature", "a nonce of 16..128 characters is required")
        problem = self.nonces.check_and_add(keyid, nonce, now + 2 * self.window + 1, now)
        if problem == "replayed_nonce":
            raise AuthFailure("replayed_nonce", "this request was seen before")
        if problem is not None:
            raise AuthFailure(
                "busy", "too many requests from this account in the replay window", status=503
            )
        return Authenticated(keyid, capability)

    @staticmethod
    def check_body(message: SignedMessage, body: bytes) -> bool:
        """Whether ``body`` matches the request's (signed) Content-Digest."""
        digest = BodyDigest(message)
        digest.update(body)
        return digest.matches()
