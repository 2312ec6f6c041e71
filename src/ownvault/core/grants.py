"""Contact cards, sharing grants, grant manifests and revocation notices: byte for byte.

Everything here is specified in docs/design.md ("Keys: recovery, guardians, grants"), with
a real example of each. In short::

    contact card  JSON {"format": "ownvault-contact", "version": 1, "did", "agreement",
                        "name", "created", "sig"}
                  sig = Ed25519(signing, "ownvault/v1/contact" 0x00 || C(card without sig))

    grant         JSON {"format": "ownvault-grant", "version": 1, "id", "from", "to",
                        "to_agreement", "created", "expires", "access", "providers",
                        "key", "sig"}
                  key = HPKE-Seal(to_agreement, info = "ownvault/v1/grant" || SHA-256(C(header)),
                                  "OVGK" || 0x01 || manifest_key(32))
                  sig = Ed25519(signing, "ownvault/v1/grant" 0x00 || C(grant without sig))
                  short form: "ovgrant1:" || base64url(C(grant)), no padding

    manifest      "OVGM" || 0x01 || sig(64) || box(manifest_key, "OVGB" || 0x01 || zlib(C(body)),
                                                AD = "ownvault/v1/grant-manifest" || id || gen(u32 BE))
                  sig = Ed25519(signing, "ownvault/v1/grant-manifest" || id || gen || box)

    revocation    "OVGR" || 0x01 || sig(64) || C({"grant", "revoked"})
                  sig = Ed25519(signing, "ownvault/v1/grant-revocation" || id || C(...))

``C(x)`` is canonical JSON: keys sorted, no spaces, UTF-8. The header is the grant without
``key`` and ``sig``. Pure: no clock (callers pass ``now``), no I/O.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from ownvault.core import crypto
from ownvault.core.capability import ReadCapability
from ownvault.core.keys import (
    VaultKeys,
    ed25519_from_did_key,
    x25519_from_multibase,
    x25519_multibase,
)
from ownvault.errors import (
    FormatError,
    GrantExpiredError,
    GrantRecipientError,
    IntegrityError,
    UsageError,
)

__all__ = [
    "GRANT_PREFIX",
    "MAX_GRANT_SIZE",
    "ContactCard",
    "Grant",
    "canonical",
    "decode_manifest",
    "decode_revocation",
    "encode_manifest",
    "encode_revocation",
    "grant_object_prefix",
    "manifest_name",
    "revocation_name",
]

CARD_FORMAT = "ownvault-contact"
GRANT_FORMAT = "ownvault-grant"
VERSION = 1
GRANT_PREFIX = "ovgrant1:"
CARD_LABEL = b"ownvault/v1/contact\x00"
GRANT_LABEL = b"ownvault/v1/grant\x00"
GRANT_INFO = b"ownvault/v1/grant"
KEY_MAGIC = b"OVGK\x01"
MANIFEST_MAGIC = b"OVGM\x01"
MANIFEST_BODY_MAGIC = b"OVGB\x01"
MANIFEST_AD = b"ownvault/v1/grant-manifest"
REVOCATION_MAGIC = b"OVGR\x01"
REVOCATION_AD = b"ownvault/v1/grant-revocation"
MAX_CARD_SIZE = 16 * 1024
MAX_GRANT_SIZE = 64 * 1024
MAX_MANIFEST_SIZE = 64 * 1024 * 1024
MAX_MANIFEST_PLAIN = 256 * 1024 * 1024
MAX_PROVIDERS = 64
GRANT_ID_SIZE = 16
SIG_SIZE = 64


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: object, what: str) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_GRANT_SIZE:
        raise FormatError(f"{what} is not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise FormatError(f"{what} is not base64url text") from None


def _json_object(text: str | bytes, limit: int, what: str) -> dict[str, Any]:
    if len(text) > limit:
        raise FormatError(f"{what} too large")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; deep nesting
        raise FormatError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise FormatError(f"{what} is not a JSON object")
    return value


# -- contact cards ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactCard:
    """A person's or service's public identity: did:key (Ed25519) and X25519 key, self-signed."""

    did: str
    agreement: bytes
    name: str | None
    created: int
    sig: bytes = field(repr=False)

    @classmethod
    def create(cls, keys: VaultKeys, name: str | None, now: int) -> ContactCard:
        if name is not None and (len(name) > 200 or not name.strip()):
            raise UsageError("a contact name has 1..200 characters")
        unsigned = cls(keys.did, keys.agreement_public, name, now, b"")
        return cls(
            keys.did,
            keys.agreement_public,
            name,
            now,
            keys.sign(CARD_LABEL + canonical(unsigned._body())),
        )

    def _body(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "version": VERSION,
            "did": self.did,
            "agreement": x25519_multibase(self.agreement),
            "name": self.name,
            "created": self.created,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self._body(), "sig": _b64(self.sig)}

    @classmethod
    def from_json(cls, text: str | bytes) -> ContactCard:
        """Parse and verify a card: ``FormatError`` if malformed, ``IntegrityError`` if forged."""
        d = _json_object(text, MAX_CARD_SIZE, "contact card")
        if d.get("format") != CARD_FORMAT:
            raise FormatError("not an ownvault contact card")
        if d.get("version") != VERSION:
            raise FormatError(f"unsupported contact card version {d.get('version')!r}")
        if set(d) != {"format", "version", "did", "agreement", "name", "created", "sig"}:
            raise FormatError("contact card has missing or unknown fields")
        name = d["name"]
        if name is not None and (not isinstance(name, str) or len(name) > 200):
            raise FormatError("contact card name is invalid")
        if not isinstance(d["created"], int):
            raise FormatError("contact card created time is invalid")
        card = cls(
            str(d["did"]),
            x25519_from_multibase(d["agreement"]),
            name,
            d["created"],
            _unb64(d["sig"], "signature"),
        )
        public = ed25519_from_did_key(card.did)
        if not crypto.ed25519_verify(public, card.sig, CARD_LABEL + canonical(card._body())):
            raise IntegrityError("contact card signature does not verify (forged or altered)")
        return card


# -- grants -------------------------------------------------------------------------------


_GRANT_FIELDS = frozenset(
    {
        "format",
        "version",
        "id",
        "from",
        "to",
        "to_agreement",
        "created",
        "expires",
        "access",
        "providers",
        "key",
        "sig",
    }
)


def _grant_document(text: str | bytes) -> dict[str, Any]:
    """A grant's JSON object (from its file or its ``ovgrant1:`` string), with the format,
    version and exact set of fields checked; nothing verified yet."""
    if isinstance(text, bytes):
        try:
            text = text.decode()
        except UnicodeDecodeError:
            raise FormatError("grant is not UTF-8 text") from None
    text = text.strip()
    if len(text) > MAX_GRANT_SIZE:
        raise FormatError("grant too large")
    if text.startswith(GRANT_PREFIX):
        raw = _unb64(text[len(GRANT_PREFIX) :], "grant")
        d = _json_object(raw, MAX_GRANT_SIZE, "grant")
    else:
        d = _json_object(text, MAX_GRANT_SIZE, "grant")
    if d.get("format") != GRANT_FORMAT:
        raise FormatError("not an ownvault grant")
    if d.get("version") != VERSION:
        raise FormatError(f"unsupported grant version {d.get('version')!r}")
    if set(d) - {"capability"} != _GRANT_FIELDS:
        raise FormatError("grant has missing or unknown fields")
    return d


def _grant_providers(provs: object) -> list[tuple[str, str]]:
    """A grant's ``providers`` list: 1 to MAX_PROVIDERS ``{"kind", "url"}`` string pairs."""
    if not isinstance(provs, list) or not 0 < len(provs) <= MAX_PROVIDERS:
        raise FormatError("grant providers malformed")
    providers = []
    for p in provs:
        if (
            not isinstance(p, dict)
            or set(p) != {"kind", "url"}
            or not all(isinstance(v, str) and 0 < len(v) <= 2048 for v in p.values())
        ):
            raise FormatError("grant provider entry malformed")
        providers.append((p["kind"], p["url"]))
    return providers


@dataclass(frozen=True, slots=True)
class Grant:
    """A signed grant: who shares with whom, until when, where, and the wrapped manifest key."""

    grant_id: bytes
    sender: str
    recipient: str
    recipient_agreement: bytes
    created: int
    expires: int | None
    access: str
    providers: tuple[tuple[str, str], ...]  # (kind, url)
    wrapped_key: bytes = field(repr=False)
    sig: bytes = field(repr=False)
    capability: str | None = None  # a read capability for storage nodes (core.capability)

    @property
    def id_hex(self) -> str:
        return self.grant_id.hex()

    def header(self) -> dict[str, Any]:
        return {
            "format": GRANT_FORMAT,
            "version": VERSION,
            "id": self.grant_id.hex(),
            "from": self.sender,
            "to": self.recipient,
            "to_agreement": x25519_multibase(self.recipient_agreement),
            "created": self.created,
            "expires": self.expires,
            "access": self.access,
            "providers": [{"kind": k, "url": u} for k, u in self.providers],
        } | ({"capability": self.capability} if self.capability is not None else {})

    def _info(self) -> bytes:
        return GRANT_INFO + crypto.sha256(canonical(self.header()))

    def _signed(self) -> bytes:
        return GRANT_LABEL + canonical({**self.header(), "key": _b64(self.wrapped_key)})

    @classmethod
    def create(
        cls,
        keys: VaultKeys,
        recipient: ContactCard,
        grant_id: bytes,
        manifest_key: bytes,
        *,
        created: int,
        expires: int | None,
        providers: list[tuple[str, str]],
        access: str = "read",
        capability: str | None = None,
    ) -> Grant:
        if len(grant_id) != GRANT_ID_SIZE or len(manifest_key) != crypto.KEY_SIZE:
            raise UsageError("grant id must be 16 bytes and the manifest key 32")
        if expires is not None and expires <= created:
            raise UsageError("a grant must expire after it is created")
        if not providers or len(providers) > MAX_PROVIDERS:
            raise UsageError(f"a grant names 1..{MAX_PROVIDERS} providers")
        draft = cls(
            grant_id,
            keys.did,
            recipient.did,
            recipient.agreement,
            created,
            expires,
            access,
            tuple(providers),
            b"",
            b"",
            capability,
        )
        wrapped = crypto.hpke_seal(recipient.agreement, KEY_MAGIC + manifest_key, draft._info())
        unsigned = cls(
            grant_id,
            keys.did,
            recipient.did,
            recipient.agreement,
            created,
            expires,
            access,
            tuple(providers),
            wrapped,
            b"",
            capability,
        )
        return replace(unsigned, sig=keys.sign(unsigned._signed()))

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "key": _b64(self.wrapped_key), "sig": _b64(self.sig)}

    def to_string(self) -> str:
        return GRANT_PREFIX + _b64(canonical(self.to_json()))

    @classmethod
    def parse(cls, text: str | bytes) -> Grant:
        """A grant from its JSON file or its ``ovgrant1:`` string, signature verified.

        ``FormatError`` when malformed; ``IntegrityError`` when the signature fails (tampered).
        """
        d = _grant_document(text)
        try:
            grant_id = bytes.fromhex(d["id"])
        except (TypeError, ValueError):
            raise FormatError("grant id is not hex") from None
        if len(grant_id) != GRANT_ID_SIZE:
            raise FormatError("grant id must be 16 bytes")
        created, expires = d["created"], d["expires"]
        if not isinstance(created, int) or not (expires is None or isinstance(expires, int)):
            raise FormatError("grant times must be integers")
        if d["access"] != "read":
            raise FormatError(f"unsupported grant access {d['access']!r}")
        providers = _grant_providers(d["providers"])
        grant = cls(
            grant_id,
            str(d["from"]),
            str(d["to"]),
            x25519_from_multibase(d["to_agreement"]),
            created,
            expires,
            "read",
            tuple(providers),
            _unb64(d["key"], "grant key"),
            _unb64(d["sig"], "grant signature"),
            d.get("capability"),
        )
        if not crypto.ed25519_verify(
            ed25519_from_did_key(grant.sender), grant.sig, grant._signed()
        ):
            raise IntegrityError("grant signature does not verify: the grant was altered or forged")
        if "capability" in d:
            if not isinstance(d["capability"], str):
                raise FormatError("grant capability malformed")
            cap = ReadCapability.parse(d["capability"])
            if (cap.account, cap.reader, cap.grant) != (
                grant.sender,
                grant.recipient,
                grant.id_hex,
            ):
                raise FormatError("grant capability is for another grant, sender or recipient")
        return grant

    def check_usable(self, keys: VaultKeys, now: int) -> None:
        """Raise if this grant is not for ``keys`` or has expired."""
        if self.recipient != keys.did or self.recipient_agreement != keys.agreement_public:
            raise GrantRecipientError(
                f"this grant is for {self.recipient}, not for this vault ({keys.did})"
            )
        if self.expires is not None and now >= self.expires:
            raise GrantExpiredError(f"this grant expired at {self.expires} (unix time)")

    def open_key(self, keys: VaultKeys, now: int) -> bytes:
        """The manifest key, after :meth:`check_usable`."""
        self.check_usable(keys, now)
        plain = crypto.hpke_open(keys.agreement, self.wrapped_key, self._info())
        if len(plain) != len(KEY_MAGIC) + crypto.KEY_SIZE or plain[: len(KEY_MAGIC)] != KEY_MAGIC:
            raise FormatError("grant key payload malformed")
        return plain[len(KEY_MAGIC) :]


# -- manifests and revocations on the providers -----------------------------------------------


def grant_object_prefix(grant_id: bytes) -> str:
    return f"grants/{grant_id.hex()}/"


def manifest_name(grant_id: bytes, generation: int) -> str:
    return f"grants/{grant_id.hex()}/m.{generation:08x}"


def revocation_name(grant_id: bytes) -> str:
    return f"grants/{grant_id.hex()}/revoked"


def _manifest_ad(grant_id: bytes, generation: int) -> bytes:
    return MANIFEST_AD + grant_id + struct.pack(">I", generation)


def encode_manifest(
    keys: VaultKeys, manifest_key: bytes, grant_id: bytes, generation: int, body: dict[str, Any]
) -> bytes:
    plain = MANIFEST_BODY_MAGIC + zlib.compress(canonical(body), 6)
    box = crypto.seal(manifest_key, plain, _manifest_ad(grant_id, generation))
    sig = keys.sign(_manifest_ad(grant_id, generation) + box)
    return MANIFEST_MAGIC + sig + box


def decode_manifest(
    sender_did: str, manifest_key: bytes, grant_id: bytes, generation: int, data: bytes
) -> dict[str, Any]:
    """Verify (sender signature, then AEAD) and decode a manifest object (bounded)."""
    if len(data) > MAX_MANIFEST_SIZE:
        raise FormatError("grant manifest too large")
    if data[: len(MANIFEST_MAGIC)] != MANIFEST_MAGIC or len(data) < len(MANIFEST_MAGIC) + SIG_SIZE:
        raise FormatError("not a grant manifest")
    sig = data[len(MANIFEST_MAGIC) : len(MANIFEST_MAGIC) + SIG_SIZE]
    box = data[len(MANIFEST_MAGIC) + SIG_SIZE :]
    ad = _manifest_ad(grant_id, generation)
    if not crypto.ed25519_verify(ed25519_from_did_key(sender_did), sig, ad + box):
        raise IntegrityError("grant manifest signature does not verify (tampered)")
    plain = crypto.open_box(manifest_key, box, ad)
    if plain[: len(MANIFEST_BODY_MAGIC)] != MANIFEST_BODY_MAGIC:
        raise FormatError("grant manifest body malformed")
    d = zlib.decompressobj()
    try:
        raw = d.decompress(plain[len(MANIFEST_BODY_MAGIC) :], MAX_MANIFEST_PLAIN)
    except zlib.error:
        raise FormatError("grant manifest body is corrupt") from None
    if d.unconsumed_tail or not d.eof:
        raise FormatError("grant manifest body too large or truncated")
    body = _json_object(raw, MAX_MANIFEST_PLAIN, "grant manifest")
    if body.get("grant") != grant_id.hex() or body.get("generation") != generation:
        raise FormatError("grant manifest belongs to another grant or generation")
    return body


def encode_revocation(keys: VaultKeys, grant_id: bytes, revoked: int) -> bytes:
    body = canonical({"grant": grant_id.hex(), "revoked": revoked})
    return REVOCATION_MAGIC + keys.sign(REVOCATION_AD + grant_id + body) + body


def decode_revocation(sender_did: str, grant_id: bytes, data: bytes) -> int:
    """The revocation time of a verified revocation notice; ``IntegrityError`` if forged."""
    if len(data) > MAX_CARD_SIZE or data[: len(REVOCATION_MAGIC)] != REVOCATION_MAGIC:
        raise FormatError("not a grant revocation notice")
    sig = data[len(REVOCATION_MAGIC) : len(REVOCATION_MAGIC) + SIG_SIZE]
    body = data[len(REVOCATION_MAGIC) + SIG_SIZE :]
    if not crypto.ed25519_verify(
        ed25519_from_did_key(sender_did), sig, REVOCATION_AD + grant_id + body
    ):
        raise IntegrityError("grant revocation notice signature does not verify")
    d = _json_object(body, MAX_CARD_SIZE, "revocation notice")
    if d.get("grant") != grant_id.hex() or not isinstance(d.get("revoked"), int):
        raise FormatError("revocation notice malformed")
    return int(d["revoked"])
