"""Read capabilities: an account owner lets another did:key read some of its node objects.

Specified in docs/node-protocol.md ("Read capabilities"). A capability is canonical JSON
signed by the owner (the *account*) with its Ed25519 key::

    {"account": OWNER_DID, "expires": T | null, "grant": GRANT_ID hex, "list": [PREFIX...],
     "node": NODE_ID | "*", "ops": ["get", "list", "stat"], "prefixes": [PREFIX...],
     "reader": READER_DID, "v": 1}

    token := base64url(C(capability)) "." base64url(sig)        (no padding)
    sig   := Ed25519(owner signing, "ownvault/v1/read-capability" 0x00 || C(capability))

``prefixes`` bound ``get``/``stat`` (object names), ``list`` bounds listing prefixes. It is
not secret: it only works in a request signed by ``reader``'s own key. Pure: no clock
(callers pass ``now``), no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from ownvault.core import crypto
from ownvault.core.keys import ed25519_from_did_key
from ownvault.errors import FormatError, IntegrityError, UsageError

__all__ = [
    "CAPABILITY_HEADER",
    "CAPABILITY_OPS",
    "MAX_CAPABILITY_SIZE",
    "ReadCapability",
    "grant_capability",
]

CAPABILITY_HEADER = "ownvault-capability"
CAPABILITY_LABEL = b"ownvault/v1/read-capability\x00"
CAPABILITY_OPS = ("get", "list", "stat")
MAX_CAPABILITY_SIZE = 4096
MAX_PREFIXES = 16
_FIELDS = {"v", "account", "reader", "node", "grant", "expires", "ops", "prefixes", "list"}
_NODE = re.compile(r"^(\*|[0-9a-f]{1,64})\Z")
_GRANT = re.compile(r"^[0-9a-f]{32}\Z")
_PREFIX = re.compile(r"^[a-z0-9._-]+(/[a-z0-9._-]+)*/\Z")


class _Signer(Protocol):
    @property
    def did(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise FormatError("capability is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise FormatError("capability is not base64url") from None


def _prefixes(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_PREFIXES:
        raise FormatError(f"capability {what} malformed")
    for p in value:
        # Whole segments only ("shares/" never matches "sharesx/..."); never the empty prefix.
        if (
            not isinstance(p, str)
            or len(p) > 200
            or not _PREFIX.match(p)
            or "/../" in f"/{p}"
            or "/./" in f"/{p}"
        ):
            raise FormatError(f"capability {what} malformed")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class ReadCapability:
    account: str
    reader: str
    node: str
    grant: str
    expires: int | None
    ops: tuple[str, ...]
    prefixes: tuple[str, ...]
    list_prefixes: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {
            "v": 1,
            "account": self.account,
            "reader": self.reader,
            "node": self.node,
            "grant": self.grant,
            "expires": self.expires,
            "ops": list(self.ops),
            "prefixes": list(self.prefixes),
            "list": list(self.list_prefixes),
        }

    def sign(self, owner: _Signer) -> str:
        """The token, signed by ``owner`` (whose did must be ``account``)."""
        if owner.did != self.account:
            raise UsageError("a capability is signed by the account it opens")
        body = _canonical(self.body())
        return _b64(body) + "." + _b64(owner.sign(CAPABILITY_LABEL + body))

    @classmethod
    def parse(cls, token: str) -> ReadCapability:
        """A token's capability, owner signature verified.

        ``FormatError`` if malformed, ``IntegrityError`` if the signature does not verify.
        """
        if not isinstance(token, str) or len(token) > MAX_CAPABILITY_SIZE or token.count(".") != 1:
            raise FormatError("capability malformed")
        body_b64, sig_b64 = token.split(".")
        raw, sig = _unb64(body_b64), _unb64(sig_b64)
        try:
            d = json.loads(raw)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; deep nesting
            raise FormatError("capability is not JSON") from None
        if not isinstance(d, dict) or d.get("v") != 1:
            raise FormatError("not a version 1 read capability")
        if set(d) != _FIELDS:
            raise FormatError("capability has missing or unknown fields")
        ops = d["ops"]
        if not isinstance(ops, list) or not ops or not all(isinstance(op, str) for op in ops):
            raise FormatError("capability ops malformed")  # (a list item would break set())
        if not set(ops) <= set(CAPABILITY_OPS) or len(set(ops)) != len(ops):
            raise FormatError("capability ops malformed")
        expires = d["expires"]
        if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool)):
            raise FormatError("capability expiry malformed")
        if not isinstance(d["node"], str) or not _NODE.match(d["node"]):
            raise FormatError("capability node malformed")
        if not isinstance(d["grant"], str) or not _GRANT.match(d["grant"]):
            raise FormatError("capability grant malformed")
        for key in ("account", "reader"):
            if not isinstance(d[key], str):
                raise FormatError(f"capability {key} malformed")
            ed25519_from_did_key(d[key])  # FormatError if not an Ed25519 did:key
        cap = cls(
            d["account"],
            d["reader"],
            d["node"],
            d["grant"],
            expires,
            tuple(ops),
            _prefixes(d["prefixes"], "prefixes"),
            _prefixes(d["list"], "list prefixes"),
        )
        # Signed bytes are the canonical form: a re-encoded (reordered, respaced) body
        # is refused rather than verified against a different byte string.
        if _canonical(d) != raw:
            raise FormatError("capability is not in canonical form")
        if not crypto.ed25519_verify(
            ed25519_from_did_key(cap.account), sig, CAPABILITY_LABEL + raw
        ):
            raise IntegrityError("capability signature does not verify (forged or altered)")
        return cap

    def permits(self, op: str, name: str) -> bool:
        """Whether ``op`` on object ``name`` (for ``list``: the listing prefix) is allowed."""
        if op not in self.ops:
            return False
        allowed = self.list_prefixes if op == "list" else self.prefixes
        return any(name.startswith(p) for p in allowed)

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


def grant_capability(
    owner: _Signer, reader: str, grant_id: bytes, expires: int | None, node: str = "*"
) -> str:
    """The capability a grant carries: read its own objects and the shares, list its own."""
    own = f"grants/{grant_id.hex()}/"
    return ReadCapability(
        owner.did, reader, node, grant_id.hex(), expires, CAPABILITY_OPS, (own, "shares/"), (own,)
    ).sign(owner)
