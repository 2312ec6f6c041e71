"""NFT metadata, purely: token references, the three contract calls, token URIs, ``data:``
URIs, bounded JSON, URI extraction and rewriting, media-type checks.

* **Tokens** are named ``eth:CHAIN_ID:CONTRACT:TOKEN_ID`` (:class:`TokenRef`).
* **ABI** (Solidity contract ABI, head/tail encoding): ownvault makes exactly three calls,
  each with one static argument — ``supportsInterface(bytes4)`` (ERC-165),
  ``tokenURI(uint256)`` (ERC-721), ``uri(uint256)`` (ERC-1155) — and decodes a ``bool``
  or one dynamic ``string``. Encoded by hand: that is ~60 lines with every length checked
  against a bound before use, whereas ``eth-abi`` brings ``eth-utils``, ``eth-typing``,
  ``parsimonious`` and more for general decoding we must not accept from a hostile
  contract. The selectors are the first 4 bytes of keccak-256 of the signatures (Python's
  ``hashlib`` has SHA-3, not keccak); they are constants here, checked in the tests
  against the selectors solc reports for the OpenZeppelin contracts.
* **URIs** found in metadata (:func:`extract_uris`): ``ipfs://CID[/path]`` (also the
  legacy ``ipfs://ipfs/CID`` and gateway URLs ``http(s)://HOST/ipfs/CID[/path]``, which
  are content-addressed too), ``http(s)://`` (verifiable only by trusting the server),
  ``ar://TXID`` (Arweave, through an Arweave gateway), ``data:`` (RFC 2397, decoded
  here, bounded). Any other scheme (``file:``, ``ipns:``, ``javascript:``...) is
  reported and never fetched.
* **JSON** is parsed only after its size and nesting depth were checked on the raw text
  (Python's parser recurses), with duplicate keys, NaN/Infinity and huge integers refused.

Everything here raises :class:`~ownvault.errors.FormatError` on malformed or oversized
input; nothing does I/O.
"""

from __future__ import annotations

import binascii
import copy
import json
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from ownvault.core.cid import CID
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError, UsageError

__all__ = [
    "INTERFACE_ERC721",
    "INTERFACE_ERC1155",
    "SELECTOR_SUPPORTS_INTERFACE",
    "SELECTOR_TOKEN_URI",
    "SELECTOR_URI",
    "ParsedUri",
    "TokenRef",
    "UriRef",
    "check_media_type",
    "decode_abi_bool",
    "decode_abi_string",
    "decode_data_uri",
    "encode_supports_interface",
    "encode_uint256_call",
    "erc1155_uri",
    "extension_for",
    "extract_uris",
    "json_depth",
    "parse_json_bounded",
    "parse_metadata",
    "parse_uri",
    "rewrite_uris",
    "sniff_media_type",
    "summarize",
]

SELECTOR_SUPPORTS_INTERFACE = bytes.fromhex("01ffc9a7")  # supportsInterface(bytes4)
SELECTOR_TOKEN_URI = bytes.fromhex("c87b56dd")  # tokenURI(uint256)
SELECTOR_URI = bytes.fromhex("0e89341c")  # uri(uint256)
INTERFACE_ERC721 = bytes.fromhex("80ac58cd")
INTERFACE_ERC1155 = bytes.fromhex("d9b67a26")

MAX_URI_LENGTH = 8192  # any URI but data:
MAX_UINT256 = (1 << 256) - 1
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}\Z")
_ARWEAVE_TX = re.compile(r"^[A-Za-z0-9_-]{43}\Z")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31}):")
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\Z")


# -- tokens and the ABI --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenRef:
    """``eth:CHAIN_ID:CONTRACT:TOKEN_ID``: a token on an EVM chain (contract lower-cased)."""

    chain_id: int
    contract: str
    token_id: int

    def __post_init__(self) -> None:
        if not 0 < self.chain_id < 1 << 64:
            raise UsageError(f"chain id out of range: {self.chain_id}")
        if not _ADDRESS.match(self.contract) or self.contract != self.contract.lower():
            raise UsageError(f"contract must be 0x + 40 lower-case hex digits: {self.contract!r}")
        if not 0 <= self.token_id <= MAX_UINT256:
            raise UsageError("token id must be a uint256")

    @classmethod
    def parse(cls, text: str) -> TokenRef:
        parts = text.strip().split(":")
        if len(parts) != 4 or parts[0] != "eth":
            raise UsageError(f"a token is eth:CHAIN_ID:CONTRACT:TOKEN_ID, not {text!r:.100}")
        try:
            chain = int(parts[1], 10)
            token = int(parts[3], 16) if parts[3].lower().startswith("0x") else int(parts[3], 10)
        except ValueError:
            raise UsageError(f"bad chain id or token id in {text!r:.100}") from None
        if not _ADDRESS.match(parts[2]):
            raise UsageError(f"bad contract address in {text!r:.100}")
        return cls(chain, parts[2].lower(), token)

    def __str__(self) -> str:
        return f"eth:{self.chain_id}:{self.contract}:{self.token_id}"

    @property
    def vault_name(self) -> str:
        """Where a preserved token is stored in the vault."""
        return f"nft/eth-{self.chain_id}/{self.contract}/{self.token_id}"


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def encode_uint256_call(selector: bytes, value: int) -> bytes:
    """Calldata of ``f(uint256)``: selector || value as a 32-byte big-endian word."""
    if len(selector) != 4 or not 0 <= value <= MAX_UINT256:
        raise UsageError("bad selector or uint256")
    return selector + _word(value)


def encode_supports_interface(interface_id: bytes) -> bytes:
    """Calldata of ``supportsInterface(bytes4)``: bytes4 is left-aligned, zero-padded."""
    if len(interface_id) != 4:
        raise UsageError("an interface id is 4 bytes")
    return SELECTOR_SUPPORTS_INTERFACE + interface_id + bytes(28)


def decode_abi_bool(data: bytes) -> bool:
    """A returned ``bool``: exactly one word, 0 or 1 (anything else is not a bool)."""
    if len(data) != 32 or data[:31] != bytes(31) or data[31] > 1:
        raise FormatError("contract did not return an ABI bool")
    return data[31] == 1


def decode_abi_string(data: bytes, *, max_bytes: int) -> str:
    """A returned ``string``: offset word (32), length word, the bytes, zero padding.

    Offset and length are checked against the data before use (a hostile contract can
    return any bytes); the string must be UTF-8 and at most ``max_bytes`` long.
    """
    if len(data) < 64 or len(data) % 32:
        raise FormatError("contract did not return an ABI string (short or unaligned)")
    offset = int.from_bytes(data[:32], "big")
    if offset != 32:
        raise FormatError(f"ABI string offset {offset} is not 32")
    length = int.from_bytes(data[32:64], "big")
    if length > max_bytes:
        raise FormatError(f"returned string longer than {max_bytes} bytes")
    padded = (length + 31) // 32 * 32
    if len(data) != 64 + padded:
        raise FormatError("ABI string length does not match the returned data")
    body = data[64 : 64 + length]
    if any(data[64 + length :]):
        raise FormatError("ABI string padding is not zero")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("returned string is not UTF-8") from None


def erc1155_uri(template: str, token_id: int) -> str:
    """EIP-1155: replace every ``{id}`` by the id as 64 lower-case hex digits, zero-padded."""
    if not 0 <= token_id <= MAX_UINT256:
        raise UsageError("token id must be a uint256")
    return template.replace("{id}", f"{token_id:064x}")


# -- URIs -----------------------------------------------------------------------------------

UriKind = Literal["ipfs", "http", "ar", "data", "other"]


@dataclass(frozen=True, slots=True)
class ParsedUri:
    """A URI found in a token: what it names and how it could be fetched.

    ``ipfs``: ``cid`` + ``path`` (segments), ``url`` = the gateway URL it came from, if any;
    ``http``: ``url``; ``ar``: ``url`` = the transaction id; ``data``: nothing parsed yet
    (:func:`decode_data_uri`); ``other``: a scheme ownvault never fetches (``scheme``).
    """

    kind: UriKind
    text: str
    scheme: str
    cid: CID | None = None
    path: tuple[str, ...] = ()
    url: str | None = None

    @property
    def ipfs_uri(self) -> str:
        """``ipfs://CID/path`` for IPFS content (the canonical form)."""
        assert self.cid is not None
        tail = "".join("/" + urllib.parse.quote(s, safe="") for s in self.path)
        return f"ipfs://{self.cid}{tail}"


def _ipfs_path(rest: str) -> tuple[CID, tuple[str, ...]] | None:
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    segments = [urllib.parse.unquote(s) for s in rest.split("/")]
    while segments and segments[-1] == "":
        segments.pop()
    if not segments:
        return None
    try:
        cid = CID.parse(segments[0])
    except FormatError:
        return None
    path = tuple(segments[1:])
    if any(s in ("", ".", "..") or "\0" in s for s in path):
        raise FormatError(f"IPFS path with an empty, '.' or '..' segment: {rest!r:.100}")
    return cid, path


def parse_uri(text: str) -> ParsedUri | None:
    """Classify a string from metadata; ``None`` when it is not a URI (plain text)."""
    value = text.strip()
    m = _SCHEME.match(value)
    if m is None:
        return None
    scheme = m.group(1).lower()
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\\udc80" in JSON): no URI, no file name
        raise FormatError(f"URI is not valid Unicode text: {value!r:.100}") from None
    if scheme == "data":
        return ParsedUri("data", value, scheme)
    if len(value) > MAX_URI_LENGTH:
        raise FormatError(f"URI longer than {MAX_URI_LENGTH} characters")
    rest = value[m.end() :]
    if scheme == "ipfs":
        body = rest[2:] if rest.startswith("//") else rest
        if body.startswith("ipfs/"):
            body = body[5:]
        found = _ipfs_path(body)
        if found is None:
            raise FormatError(f"ipfs URI without a valid CID: {value!r:.100}")
        return ParsedUri("ipfs", value, scheme, found[0], found[1])
    if scheme in ("http", "https"):
        if not rest.startswith("//"):
            return ParsedUri("other", value, scheme)
        try:
            parts = urllib.parse.urlsplit(value)
            hostname = parts.hostname
        except ValueError as exc:  # "Invalid IPv6 URL": an unbalanced "[" or "]"
            raise FormatError(f"malformed URL ({exc}): {value!r:.100}") from None
        if not hostname:
            raise FormatError(f"URL without a host: {value!r:.100}")
        if parts.path.startswith("/ipfs/"):
            found = _ipfs_path(parts.path[6:])
            if found is not None:
                return ParsedUri("ipfs", value, scheme, found[0], found[1], value)
        return ParsedUri("http", value, scheme, url=value)
    if scheme == "ar":
        tx = rest[2:] if rest.startswith("//") else rest
        tx = tx.split("/", 1)[0].split("?", 1)[0]
        if not _ARWEAVE_TX.match(tx):
            raise FormatError(f"ar URI without a valid transaction id: {value!r:.100}")
        return ParsedUri("ar", value, scheme, url=tx)
    if not rest.startswith("//") and scheme not in ("javascript", "file", "mailto", "urn"):
        return None  # "note: something" in a description is not a URI
    return ParsedUri("other", value, scheme)


def decode_data_uri(text: str, *, max_bytes: int) -> tuple[str, bytes]:
    """RFC 2397 ``data:[<mediatype>][;base64],<data>`` -> (media type, bytes), bounded.

    The encoded length is checked before anything is decoded (base64 expands by at most
    3/4, percent-decoding only shrinks). Base64 must be valid (padding may be missing).
    """
    if text[:5].lower() != "data:":
        raise FormatError("not a data: URI")
    if len(text) > max_bytes * 4 // 3 + 4096:
        raise FormatError(f"data: URI larger than {max_bytes} bytes")
    header, comma, payload = text[5:].partition(",")
    if not comma:
        raise FormatError("data: URI without a comma")
    if len(header) > 1024:
        raise FormatError("data: URI header too long")
    params = [p.strip() for p in header.split(";")]
    is_base64 = len(params) > 1 and params[-1].lower() == "base64"
    if is_base64:
        params.pop()
    media = urllib.parse.unquote(params[0]).strip().lower() or "text/plain"
    if not _MEDIA_TYPE.match(media):
        raise FormatError(f"data: URI with an invalid media type {media!r:.60}")
    try:
        raw = urllib.parse.unquote_to_bytes(payload) if "%" in payload else payload.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON text ("\\ud800") can carry
        raise FormatError("data: URI is not valid Unicode text") from None
    if is_base64:
        compact = b"".join(raw.split())
        compact += b"=" * (-len(compact) % 4)
        try:
            data = binascii.a2b_base64(compact, strict_mode=True)
        except binascii.Error:
            raise FormatError("data: URI with invalid base64") from None
    else:
        data = raw
    if len(data) > max_bytes:
        raise FormatError(f"data: URI larger than {max_bytes} bytes")
    return media, data


# -- JSON ----------------------------------------------------------------------------------


def json_depth(text: str) -> int:
    """The nesting depth of JSON text, counted on the raw characters (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise FormatError(f"JSON object repeats the key {key!r:.60}")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise FormatError(f"JSON with {name}")


def parse_json_bounded(raw: bytes, *, max_bytes: int, max_depth: int) -> JSONValue:
    """Parse UTF-8 JSON after checking its size and nesting depth."""
    if len(raw) > max_bytes:
        raise FormatError(f"JSON larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError("JSON is not UTF-8") from None
    if json_depth(text) > max_depth:
        raise FormatError(f"JSON nested deeper than {max_depth} levels")
    try:
        doc: JSONValue = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except FormatError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, int digit limit
        raise FormatError(f"invalid JSON: {str(exc)[:120]}") from None
    return doc


def parse_metadata(raw: bytes, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """ERC-721 / ERC-1155 metadata: a JSON object (name, description, image, ...)."""
    doc = parse_json_bounded(raw, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(doc, dict):
        raise FormatError("token metadata is not a JSON object")
    return doc


def summarize(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The standard fields, for reports (strings cut to 200 characters)."""

    def text(key: str) -> str | None:
        value = doc.get(key)
        return value[:200] if isinstance(value, str) else None

    attrs = doc.get("attributes", doc.get("properties"))
    return {
        "name": text("name"),
        "description": text("description"),
        "image": text("image"),
        "animation_url": text("animation_url"),
        "external_url": text("external_url"),
        "image_data": isinstance(doc.get("image_data"), str),
        "attributes": len(attrs) if isinstance(attrs, list | dict) else 0,
    }


# -- URIs inside metadata ---------------------------------------------------------------------

Role = Literal["image", "animation", "external", "other"]
_ROLES: dict[str, Role] = {
    "image": "image",
    "image_url": "image",
    "animation_url": "animation",
    "external_url": "external",
    "external_link": "external",
}


@dataclass(frozen=True, slots=True)
class UriRef:
    """One URI in a metadata document: where (RFC 6901 JSON pointer) and what role."""

    pointer: str
    role: Role
    uri: ParsedUri


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _walk(value: object, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield pointer, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{pointer}/{_escape(key)}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{pointer}/{i}")


def extract_uris(doc: Mapping[str, Any], *, max_uris: int) -> list[UriRef]:
    """Every string value of the document that is a URI, in document order."""
    out: list[UriRef] = []
    for pointer, value in _walk(dict(doc), ""):
        uri = parse_uri(value)
        if uri is None:
            continue
        if len(out) >= max_uris:
            raise FormatError(f"metadata holds more than {max_uris} URIs")
        top = pointer.split("/")[1] if pointer.count("/") == 1 else ""
        out.append(UriRef(pointer, _ROLES.get(top, "other"), uri))
    return out


def rewrite_uris(doc: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``doc`` where every string value equal (after strip) to a key of
    ``mapping`` is replaced by its value; everything else is unchanged."""

    def fix(value: object) -> object:
        if isinstance(value, str):
            return mapping.get(value.strip(), value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return copy.copy(value)

    return {key: fix(value) for key, value in doc.items()}


# -- media types ------------------------------------------------------------------------------

_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftyp", 4, "video/mp4"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"glTF", 0, "model/gltf-binary"),
    (b"%PDF-", 0, "application/pdf"),
]
_EXT = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/svg+xml": ".svg",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "model/gltf-binary": ".glb",
    "model/gltf+json": ".gltf",
    "application/pdf": ".pdf",
    "text/html": ".html",
    "application/json": ".json",
    "text/plain": ".txt",
}


def sniff_media_type(data: bytes) -> str | None:
    """The media type the first bytes show, for the types NFTs use; ``None`` if unknown."""
    for magic, at, media in _MAGIC:
        if data[at : at + len(magic)] == magic:
            return media
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    if head[:1] in (b"{", b"["):
        return "application/json"
    return None


_ALLOWED: dict[str, tuple[str, ...]] = {
    # role -> accepted media type prefixes (a declared type outside these is "wrong type")
    "metadata": ("application/json", "application/ld+json", "text/plain", "text/json"),
    "image": ("image/",),
    "animation": ("image/", "video/", "audio/", "model/", "text/html", "application/json"),
}
_NEUTRAL = ("application/octet-stream", "binary/octet-stream", "")


def check_media_type(role: str, declared: str | None, data: bytes) -> str | None:
    """Why ``data`` (declared as ``declared``) is the wrong type for ``role``; ``None`` if it fits.

    ``external``/``other`` URIs accept anything. A neutral or missing declared type is
    judged by the bytes: HTML where an image is expected is wrong.
    """
    allowed = _ALLOWED.get(role)
    if allowed is None:
        return None
    media = (declared or "").split(";", 1)[0].strip().lower()
    if (
        media not in _NEUTRAL
        and not media.startswith(allowed)
        and not (role == "metadata" and media.endswith("+json"))
    ):
        return f"served as {media}, expected {' or '.join(allowed)}"
    sniffed = sniff_media_type(data)
    if sniffed is not None and not sniffed.startswith(allowed) and role != "metadata":
        return f"content looks like {sniffed}, expected {' or '.join(allowed)}"
    if role == "image" and sniffed is None and media in _NEUTRAL and data[:1] in (b"<", b"{"):
        return "content is markup, not an image"
    return None


def extension_for(declared: str | None, data: bytes) -> str:
    """A file name extension for an asset: from its declared type, else from its bytes."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    return _EXT.get(media) or _EXT.get(sniff_media_type(data) or "", "")
