"""The storage node's wire protocol, ``ownvault-node/1``, shared by client and server.

Specified in docs/node-protocol.md. This module holds what both ends must agree on and
nothing that does I/O: paths, header names, the signature parameters (label, tag,
covered components, the ``ed25519`` algorithm over a ``did:key``), size limits, the
stable error codes, and the codecs of the node's JSON documents (error bodies, listings,
``/v1/info``, audit requests). Decoders treat their input as hostile: sizes, depth,
types, name validity and listing order are checked, and a bad document raises
:class:`~ownvault.errors.FormatError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from http_message_signatures import HTTPSignatureAlgorithm, InvalidSignature

from ownvault.core import crypto
from ownvault.core.proofs import MAX_CHALLENGES
from ownvault.errors import FormatError, UsageError
from ownvault.providers.base import ObjectInfo, validate_name

__all__ = [
    "AUDIT_PATH",
    "COVERED_COMPONENTS",
    "DEFAULT_MAX_OBJECT",
    "ERROR_HEADER",
    "HEALTH_PATH",
    "INFO_PATH",
    "MAX_AUDIT_BODY",
    "MAX_JSON_DEPTH",
    "MAX_JSON_RESPONSE",
    "MAX_LIST_PAGE",
    "MAX_RANGE",
    "NODE_HEADER",
    "OBJECTS_PATH",
    "PROTOCOL",
    "SIGNATURE_LABEL",
    "DidKeyEd25519",
    "ErrorCode",
    "Listing",
    "NodeInfo",
    "decode_challenges",
    "decode_error",
    "decode_info",
    "decode_listing",
    "encode_challenges",
    "encode_error",
    "encode_info",
    "encode_listing",
    "load_json",
    "object_path",
]

PROTOCOL = "ownvault-node/1"
SIGNATURE_LABEL = "ov"
NODE_HEADER = "ownvault-node"
ERROR_HEADER = "ownvault-error"
COVERED_COMPONENTS = ("@method", "@authority", "@path", "@query", NODE_HEADER, "content-digest")

HEALTH_PATH = "/healthz"
INFO_PATH = "/v1/info"
OBJECTS_PATH = "/v1/objects"
AUDIT_PATH = "/v1/audit"

MAX_JSON_RESPONSE = 4 * 1024 * 1024
MAX_AUDIT_BODY = 128 * 1024
MAX_JSON_DEPTH = 8
MAX_LIST_PAGE = 1000
DEFAULT_MAX_OBJECT = 64 * 1024 * 1024
MAX_RANGE = 1 << 40
"""The largest ``offset`` or ``length`` of a ranged GET (larger: 400)."""


class ErrorCode:
    """The stable ``error.code`` strings of the node (docs/node-protocol.md, "Errors")."""

    BAD_REQUEST = "bad_request"
    BAD_NAME = "bad_name"
    DIGEST_MISMATCH = "digest_mismatch"
    LENGTH_REQUIRED = "length_required"
    TOO_LARGE = "too_large"
    OBJECT_NOT_FOUND = "object_not_found"
    OBJECT_EXISTS = "object_exists"
    QUOTA_EXCEEDED = "quota_exceeded"
    STORAGE_FULL = "storage_full"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    INTERNAL = "internal"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    ACCOUNT_NOT_ALLOWED = "account_not_allowed"
    CHAOS = "chaos"
    TIMEOUT = "timeout"


def object_path(name: str) -> str:
    """The path of one object (``name`` already validated: no escaping is needed)."""
    return f"{OBJECTS_PATH}/{name}"


class DidKeyEd25519(HTTPSignatureAlgorithm):  # type: ignore[misc]
    """RFC 9421 ``ed25519`` whose public key is the raw key inside a ``did:key``.

    Only verification happens here (signing goes through the client's ``Signer``), and
    it is done by :func:`ownvault.core.crypto.ed25519_verify`.
    """

    algorithm_id = "ed25519"

    def __init__(self, public_key: bytes | None = None, private_key: object = None) -> None:
        if private_key is not None:
            raise UsageError("DidKeyEd25519 never holds a private key")
        self.public_key = public_key

    def sign(self, message: bytes) -> bytes:
        raise UsageError("sign through a Signer, not the algorithm object")

    def verify(self, signature: bytes, message: bytes) -> None:
        if self.public_key is None or not crypto.ed25519_verify(
            self.public_key, signature, message
        ):
            raise InvalidSignature("Ed25519 signature does not verify")


# -- JSON ------------------------------------------------------------------------------------


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in a JSON text (brackets inside strings skipped)."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def load_json(body: bytes, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """A JSON object of at most ``max_bytes`` and ``max_depth`` levels, else FormatError.

    The depth is checked on the text before parsing, so a deeply nested document never
    reaches the recursive parser.
    """
    if len(body) > max_bytes:
        raise FormatError(f"JSON document over {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("JSON document is not UTF-8") from None
    if _depth(text) > max_depth:
        raise FormatError(f"JSON document nested deeper than {max_depth} levels")
    try:
        doc = json.loads(text)
    except ValueError:
        raise FormatError("malformed JSON document") from None
    if not isinstance(doc, dict):
        raise FormatError("JSON document is not an object")
    return doc


def _dumps(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


# -- errors ----------------------------------------------------------------------------------


def encode_error(code: str, message: str) -> bytes:
    return _dumps({"error": {"code": code, "message": message}})


def decode_error(body: bytes, header_code: str = "") -> tuple[str, str]:
    """``(code, message)`` of an error answer; a HEAD answer's code is in ``ownvault-error``."""
    code, message = header_code[:64], ""
    try:
        doc = load_json(body, max_bytes=MAX_JSON_RESPONSE) if body else {}
    except FormatError:
        return code, ""
    err = doc.get("error", {})
    if isinstance(err, dict):
        code = str(err.get("code", code))[:64]
        message = str(err.get("message", ""))[:200]
    return code, message


# -- listings --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of ``GET /v1/objects``: objects in name order, and the cursor of the next."""

    objects: tuple[ObjectInfo, ...]
    next: str | None


def encode_listing(objects: Sequence[ObjectInfo], more: bool) -> bytes:
    items = [{"name": o.name, "size": o.size} for o in objects]
    return _dumps({"objects": items, "next": objects[-1].name if more and objects else None})


def decode_listing(body: bytes, *, prefix: str, after: str, limit: int) -> Listing:
    """A listing page, checked: at most ``limit`` valid names, in order, under ``prefix``,
    after ``after``, and a ``next`` cursor equal to the last name (or null)."""
    doc = load_json(body, max_bytes=MAX_JSON_RESPONSE)
    items, nxt = doc.get("objects"), doc.get("next")
    if not isinstance(items, list) or len(items) > limit:
        raise FormatError("malformed listing")
    out: list[ObjectInfo] = []
    last = after
    for item in items:
        if not isinstance(item, dict):
            raise FormatError("listing entry is not an object")
        name, size = item.get("name"), item.get("size")
        if not isinstance(name, str):
            raise FormatError("bad name")
        try:
            validate_name(name)
        except UsageError as exc:
            raise FormatError(exc.message) from None
        if not name.startswith(prefix) or name <= last:
            raise FormatError("name out of order or outside the prefix")
        if _count(size) is None:
            raise FormatError("bad size")
        assert isinstance(size, int)
        out.append(ObjectInfo(name, size))
        last = name
    if nxt is not None and (not isinstance(nxt, str) or not out or nxt != last):
        raise FormatError("malformed listing cursor")
    return Listing(tuple(out), nxt)


# -- /healthz and /v1/info -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node says about itself and the signer's account (``GET /v1/info``)."""

    node_id: str
    jurisdiction: str | None
    free_bytes: int | None
    quota_bytes: int | None
    used_bytes: int | None
    max_object_bytes: int | None


def encode_info(info: NodeInfo) -> bytes:
    return _dumps(
        {
            "protocol": PROTOCOL,
            "node_id": info.node_id,
            "jurisdiction": info.jurisdiction,
            "free_bytes": info.free_bytes,
            "quota_bytes": info.quota_bytes,
            "used_bytes": info.used_bytes,
            "max_object_bytes": info.max_object_bytes,
        }
    )


def decode_info(body: bytes) -> NodeInfo:
    """``/v1/info``, leniently: a field of the wrong type reads as unknown (None)."""
    doc = load_json(body, max_bytes=MAX_JSON_RESPONSE)
    jurisdiction = doc.get("jurisdiction")
    return NodeInfo(
        node_id=str(doc.get("node_id", ""))[:64],
        jurisdiction=jurisdiction[:2] if isinstance(jurisdiction, str) else None,
        free_bytes=_count(doc.get("free_bytes")),
        quota_bytes=_count(doc.get("quota_bytes")),
        used_bytes=_count(doc.get("used_bytes")),
        max_object_bytes=_count(doc.get("max_object_bytes")),
    )


# -- audits ----------------------------------------------------------------------------------


def encode_challenges(challenges: Sequence[tuple[str, int]]) -> bytes:
    return _dumps({"challenges": [{"name": n, "block": b} for n, b in challenges]})


def decode_challenges(body: bytes) -> list[tuple[str, int]]:
    """The ``(name, block)`` pairs of an audit request: 1..MAX_CHALLENGES entries.

    A malformed document raises FormatError, an invalid name UsageError.
    """
    try:
        doc = load_json(body, max_bytes=MAX_AUDIT_BODY)
        items = doc["challenges"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_CHALLENGES:
            raise ValueError
        out = []
        for item in items:
            name, block = item["name"], item["block"]
            if not isinstance(name, str) or not isinstance(block, int) or isinstance(block, bool):
                raise ValueError
            if not 0 <= block < 2**40:
                raise ValueError
            out.append((name, block))
    except (ValueError, KeyError, TypeError, FormatError):
        raise FormatError(
            f'audit body must be {{"challenges": [{{"name": NAME, "block": INDEX}}, ...]}} '
            f"with 1..{MAX_CHALLENGES} entries"
        ) from None
    for name, _block in out:
        validate_name(name)  # UsageError: the node answers bad_name
    return out
