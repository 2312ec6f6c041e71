"""Collecting an NFT: read its token URI from the chain, fetch and check its metadata and
every asset it references, and say what each part is (the report).

A SOURCE is a token ``eth:CHAIN_ID:CONTRACT:TOKEN_ID`` (read through ``--rpc``), a token
URI (``ipfs://``, ``http(s)://``, ``ar://``, ``data:``) or a local metadata JSON file.

Per part, the **status**:

| status | meaning |
|---|---|
| ``verified`` | IPFS content whose every block matched its CID (through a trustless gateway) |
| ``embedded`` | a ``data:`` URI: the content is inside the token itself |
| ``unverifiable_origin`` | fetched from an ``http(s)://`` server or through an Arweave gateway: kept with its SHA-256 and fetch time, but nothing proves it is what the creator published |
| ``unreachable`` | no answer, an HTTP error, a timeout, a path that does not resolve |
| ``too_large`` | over the per-asset or per-token limit |
| ``wrong_type`` | an origin answered with the wrong kind of content (HTML where an image belongs: an error page) |
| ``refused`` | a scheme that is never fetched, a private address, too many redirects |
| ``mismatch`` | every gateway that answered sent bytes that do not match the CID |

A part is **at risk** when it depends on a single HTTP(S) server: an ``http(s)://`` URI
that is not a gateway URL of IPFS content.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownvault.core.cid import CID
from ownvault.core.jsonvalue import JSONValue
from ownvault.core.nftmeta import (
    INTERFACE_ERC721,
    INTERFACE_ERC1155,
    SELECTOR_TOKEN_URI,
    SELECTOR_URI,
    ParsedUri,
    TokenRef,
    check_media_type,
    decode_abi_bool,
    decode_abi_string,
    decode_data_uri,
    encode_supports_interface,
    encode_uint256_call,
    erc1155_uri,
    extension_for,
    extract_uris,
    parse_json_bounded,
    parse_metadata,
    parse_uri,
    summarize,
)
from ownvault.engine.nft.ipfs import fetch_ipfs
from ownvault.errors import FormatError, UsageError
from ownvault.providers.webfetch import Fetcher, FetchError, FetchLimits, NetworkPolicy

__all__ = [
    "GOOD",
    "AssetReport",
    "Collected",
    "NftOptions",
    "Staged",
    "collect",
    "name_for",
    "parse_source",
    "read_token_uri",
]

_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*\Z")
GOOD = ("verified", "embedded", "unverifiable_origin")


@dataclass(frozen=True)
class NftOptions:
    """How to reach things: gateways, the chain, Arweave, the network policy and limits.

    ``hosts`` maps host names to addresses instead of DNS (tests use it to give loopback
    servers names).
    """

    gateways: tuple[str, ...] = ()
    rpc: str | None = None
    arweave_gateway: str = "https://arweave.net"
    network: NetworkPolicy = field(default_factory=NetworkPolicy)
    limits: FetchLimits = field(default_factory=FetchLimits)
    concurrency: int = 4
    hosts: Mapping[str, Sequence[str]] | None = None

    def fetcher(self) -> Fetcher:
        return Fetcher(self.network, self.limits, hosts=self.hosts)


@dataclass
class AssetReport:
    """One part of a token (its metadata, or a URI in it) and what became of it."""

    uri: str
    role: str  # metadata | image | animation | external | other
    pointers: list[str]
    status: str = "unreachable"
    cid: str | None = None
    path: str | None = None  # where it is in the preserved folder
    size: int | None = None
    sha256: str | None = None
    content_type: str | None = None
    fetched_at: str | None = None
    fetched_from: str | None = None
    error: str | None = None
    at_risk: bool = False
    attempts: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri if len(self.uri) <= 300 else self.uri[:300] + "...",
            "role": self.role,
            "pointers": self.pointers,
            "status": self.status,
            "cid": self.cid,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "fetched_at": self.fetched_at,
            "fetched_from": self.fetched_from,
            "error": self.error,
            "at_risk": self.at_risk,
            "attempts": self.attempts,
        }


@dataclass
class Staged:
    """Fetched content on disk: a verified IPFS DAG (``car``) or plain bytes (``file``)."""

    kind: str  # car | file
    path: Path
    root: CID | None = None
    tsize: int = 0
    is_directory: bool = False
    extension: str = ""
    content: Path | None = None  # the rebuilt file or directory of a DAG


@dataclass
class Collected:
    source: str
    name: str  # where it is stored in the vault
    token: TokenRef | None
    standard: str | None  # erc721 | erc1155
    token_uri: str | None
    metadata: dict[str, Any] | None
    metadata_raw: bytes | None
    parts: list[AssetReport]  # parts[0] is the metadata
    staged: dict[int, Staged]

    @property
    def at_risk(self) -> list[str]:
        return [p.uri for p in self.parts if p.at_risk]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "token": str(self.token) if self.token else None,
            "standard": self.standard,
            "token_uri": self.token_uri
            if not self.token_uri or len(self.token_uri) <= 300
            else self.token_uri[:300] + "...",
            "metadata": summarize(self.metadata) if self.metadata is not None else None,
            "parts": [p.to_json() for p in self.parts],
            "at_risk": self.at_risk,
        }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_source(text: str) -> tuple[str, str, TokenRef | None]:
    """SOURCE -> (kind 'token'|'uri'|'file', canonical source, token)."""
    value = text.strip()
    if value.startswith("eth:"):
        token = TokenRef.parse(value)
        return "token", str(token), token
    try:
        uri = parse_uri(value)
    except FormatError as exc:
        raise UsageError(f"bad token URI: {exc.message}") from None
    if uri is not None and uri.kind != "other":
        return "uri", value, None
    path = Path(value)
    if path.is_file():
        return "file", str(path.resolve()), None
    if uri is not None:
        raise UsageError(f"scheme {uri.scheme!r} is not a token URI ownvault reads")
    raise UsageError(f"not a token (eth:CHAIN:CONTRACT:ID), a token URI or a file: {value!r:.100}")


def name_for(kind: str, canonical: str, token: TokenRef | None) -> str:
    if token is not None:
        return token.vault_name
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return f"nft/{kind}/{digest}"


# -- the chain --------------------------------------------------------------------------------


async def _rpc(fetcher: Fetcher, rpc: str, method: str, params: list[object]) -> JSONValue:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    got = await fetcher.get(
        rpc,
        post_json=body,
        max_bytes=fetcher.limits.max_rpc_bytes,
        headers={"Accept": "application/json"},
    )
    assert got.data is not None
    doc = parse_json_bounded(got.data, max_bytes=fetcher.limits.max_rpc_bytes, max_depth=16)
    if not isinstance(doc, dict):
        raise FormatError(f"{method}: the RPC answer is not a JSON object")
    if doc.get("error") is not None:
        err = doc["error"]
        message = err.get("message") if isinstance(err, dict) else err
        raise FetchError("unreachable", f"{method} failed: {str(message)[:200]}")
    return doc.get("result")


async def _call(fetcher: Fetcher, rpc: str, contract: str, data: bytes) -> bytes:
    result = await _rpc(
        fetcher, rpc, "eth_call", [{"to": contract, "data": "0x" + data.hex()}, "latest"]
    )
    if not isinstance(result, str) or not _HEX.match(result):
        raise FormatError("eth_call returned no hex data")
    return bytes.fromhex(result[2:])


async def _supports(fetcher: Fetcher, rpc: str, contract: str, interface: bytes) -> bool:
    try:
        return decode_abi_bool(
            await _call(fetcher, rpc, contract, encode_supports_interface(interface))
        )
    except (FetchError, FormatError):  # reverted or no ERC-165: not supported
        return False


async def read_token_uri(fetcher: Fetcher, rpc: str, token: TokenRef) -> tuple[str, str]:
    """(standard, token URI) by ERC-165 detection; ERC-1155's ``{id}`` substituted."""
    chain = await _rpc(fetcher, rpc, "eth_chainId", [])
    if not isinstance(chain, str) or not re.match(r"^0x[0-9a-fA-F]{1,16}\Z", chain):
        raise FormatError("eth_chainId returned no chain id")
    if int(chain, 16) != token.chain_id:
        raise UsageError(f"the RPC endpoint serves chain {int(chain, 16)}, not {token.chain_id}")
    limit = fetcher.limits.max_rpc_bytes
    if await _supports(fetcher, rpc, token.contract, INTERFACE_ERC721):
        order = [("erc721", SELECTOR_TOKEN_URI)]
    elif await _supports(fetcher, rpc, token.contract, INTERFACE_ERC1155):
        order = [("erc1155", SELECTOR_URI)]
    else:  # no ERC-165: try both
        order = [("erc721", SELECTOR_TOKEN_URI), ("erc1155", SELECTOR_URI)]
    errors: list[str] = []
    for standard, selector in order:
        try:
            raw = await _call(
                fetcher, rpc, token.contract, encode_uint256_call(selector, token.token_id)
            )
            uri = decode_abi_string(raw, max_bytes=limit).strip()
        except (FetchError, FormatError) as exc:
            errors.append(exc.message)
            continue
        if not uri:
            raise FetchError("unreachable", f"{token}: the contract returns an empty URI")
        return standard, erc1155_uri(uri, token.token_id) if standard == "erc1155" else uri
    raise FetchError("unreachable", f"{token}: no token URI: {'; '.join(errors)}")


# -- fetching one part ------------------------------------------------------------------------


class _Budget:
    """The per-token byte budget shared by the concurrent fetches of one token."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self, size: int) -> bool:
        if size > self.left:
            return False
        self.left -= size
        return True


async def _fetch_part(
    fetcher: Fetcher,
    opts: NftOptions,
    part: AssetReport,
    uri: ParsedUri,
    work: Path,
    max_bytes: int,
    budget: _Budget,
) -> Staged | None:
    """Fetch one URI into ``work``; fill ``part``; the staged content, or None on failure."""
    work.mkdir(parents=True, exist_ok=True)
    part.fetched_at = _now()
    try:
        if uri.kind == "data":
            part.at_risk = False
            media, data = decode_data_uri(uri.text, max_bytes=max_bytes)
            dest = work / "data"
            dest.write_bytes(data)
            part.status, part.content_type = "embedded", media
            part.size, part.sha256 = len(data), hashlib.sha256(data).hexdigest()
            staged = Staged("file", dest, extension=extension_for(media, data))
        elif uri.kind == "ipfs":
            assert uri.cid is not None
            gateways = list(opts.gateways)
            if uri.url is not None and not gateways:  # a gateway URL: that gateway, trustlessly
                gateways = [uri.url.split("/ipfs/", 1)[0]]
            asset = await fetch_ipfs(
                fetcher, gateways, uri.cid, uri.path, work, max_bytes=max_bytes
            )
            part.attempts = asset.attempts
            part.status, part.cid, part.size = "verified", str(asset.root), asset.size
            part.fetched_from = asset.gateway
            head = b""
            if not asset.is_directory:
                part.sha256, head = _file_sha256(asset.staged)
            staged = Staged(
                "car",
                asset.car,
                asset.root,
                asset.tsize,
                asset.is_directory,
                "" if asset.is_directory else extension_for(None, head),
                asset.staged,
            )
        elif uri.kind in ("http", "ar"):
            part.at_risk = uri.kind == "http"
            url = uri.url if uri.kind == "http" else f"{opts.arweave_gateway.rstrip('/')}/{uri.url}"
            assert url is not None
            dest = work / "body"
            got = await fetcher.get(url, max_bytes=max_bytes, dest=dest)
            part.fetched_from, part.size, part.sha256 = got.url, got.size, got.sha256
            part.content_type = got.content_type
            with open(dest, "rb") as fh:
                head = fh.read(4096)
            wrong = check_media_type(part.role, got.content_type, head)
            if wrong is not None:
                raise FetchError("wrong_type", wrong, url=url)
            part.status = "unverifiable_origin"
            staged = Staged("file", dest, extension=extension_for(got.content_type, head))
        else:
            raise FetchError("refused", f"scheme {uri.scheme!r} is never fetched")
    except FetchError as exc:
        part.status, part.error = exc.status, exc.message
        part.attempts = exc.attempts or part.attempts
        return None
    except FormatError as exc:  # a malformed data: URI
        part.status, part.error = "wrong_type", exc.message
        return None
    if not budget.take(part.size or 0):
        part.status = "too_large"
        part.error = (
            f"the token's parts exceed the per-token limit of {opts.limits.max_token_bytes} bytes"
        )
        return None
    return staged


# -- the whole token --------------------------------------------------------------------------


async def collect(
    source: str, opts: NftOptions, work: Path, fetcher: Fetcher | None = None
) -> Collected:
    """Read a token's metadata and fetch every part into ``work``; never raises for a part
    that fails (it is in the report), only for a bad SOURCE or RPC."""
    kind, canonical, token = parse_source(source)
    own = fetcher is None
    f = fetcher or opts.fetcher()
    try:
        return await _collect(f, opts, work, kind, canonical, token)
    finally:
        if own:
            await f.aclose()


async def _collect(
    fetcher: Fetcher,
    opts: NftOptions,
    work: Path,
    kind: str,
    canonical: str,
    token: TokenRef | None,
) -> Collected:
    limits = opts.limits
    standard: str | None = None
    token_uri: str | None = None
    budget = _Budget(limits.max_token_bytes)
    staged: dict[int, Staged] = {}
    meta_part = AssetReport(canonical, "metadata", [""])
    raw: bytes | None = None
    if kind == "file":
        raw = _read_metadata_file(Path(canonical), limits, meta_part, budget)
        (work / "meta").mkdir(parents=True, exist_ok=True)
        staged[0] = Staged("file", work / "meta" / "metadata.json")
        staged[0].path.write_bytes(raw)
    else:
        if token is not None:
            if not opts.rpc:
                raise UsageError("reading a token needs --rpc URL (an Ethereum JSON-RPC endpoint)")
            standard, token_uri = await read_token_uri(fetcher, opts.rpc, token)
        else:
            token_uri = canonical
        got = await _fetch_metadata(fetcher, opts, meta_part, token_uri, work, budget)
        if got is not None:
            staged[0] = got
            raw = (got.content or got.path).read_bytes()
    metadata: dict[str, Any] | None = None
    parts = [meta_part]
    if raw is not None:
        metadata = _parse_metadata(meta_part, raw, limits)
        if metadata is None:
            staged.pop(0, None)
    if metadata is not None:
        targets = _asset_targets(metadata, meta_part, parts, limits, standard, token)
        await _fetch_assets(fetcher, opts, work, targets, staged, budget)
    return Collected(
        canonical,
        name_for(kind, canonical, token),
        token,
        standard,
        token_uri,
        metadata,
        raw,
        parts,
        staged,
    )


def _read_metadata_file(
    path: Path, limits: FetchLimits, meta_part: AssetReport, budget: _Budget
) -> bytes:
    """The metadata of a local file (``nft preserve ./metadata.json``), within the limit."""
    if path.stat().st_size > limits.max_metadata_bytes:
        raise UsageError(
            f"{path}: larger than the metadata limit of {limits.max_metadata_bytes} bytes"
        )
    raw = path.read_bytes()
    meta_part.status, meta_part.size = "embedded", len(raw)
    meta_part.sha256, meta_part.fetched_at = hashlib.sha256(raw).hexdigest(), _now()
    meta_part.fetched_from = str(path)
    budget.take(len(raw))
    return raw


async def _fetch_metadata(
    fetcher: Fetcher,
    opts: NftOptions,
    meta_part: AssetReport,
    token_uri: str,
    work: Path,
    budget: _Budget,
) -> Staged | None:
    """The metadata document fetched from ``token_uri`` (None: ``meta_part`` says why)."""
    meta_part.uri = token_uri
    try:
        uri = parse_uri(token_uri)
    except FormatError as exc:
        uri, meta_part.status, meta_part.error = None, "refused", exc.message
    if uri is None and meta_part.error is None:
        meta_part.status, meta_part.error = "refused", "the token URI is not a URI"
    if uri is None:
        return None
    got = await _fetch_part(
        fetcher, opts, meta_part, uri, work / "meta", opts.limits.max_metadata_bytes, budget
    )
    if got is not None and got.is_directory:
        meta_part.status = "wrong_type"
        meta_part.error = "the metadata's CID is a directory, not a JSON file"
        return None
    return got


def _parse_metadata(
    meta_part: AssetReport, raw: bytes, limits: FetchLimits
) -> dict[str, Any] | None:
    """The metadata as a JSON object (None, with ``meta_part`` saying why, if it is not)."""
    try:
        wrong = check_media_type("metadata", meta_part.content_type, raw[:4096])
        if wrong is not None:
            raise FormatError(wrong)
        return parse_metadata(
            raw, max_bytes=limits.max_metadata_bytes, max_depth=limits.max_json_depth
        )
    except FormatError as exc:
        meta_part.status, meta_part.error = "wrong_type", f"metadata: {exc.message}"
        return None


def _asset_targets(
    metadata: dict[str, Any],
    meta_part: AssetReport,
    parts: list[AssetReport],
    limits: FetchLimits,
    standard: str | None,
    token: TokenRef | None,
) -> list[tuple[AssetReport, ParsedUri]]:
    """One report (appended to ``parts``) and one URI to fetch per distinct URI in the
    metadata; ERC-1155 ``{id}`` templates are filled in."""
    try:
        refs = extract_uris(metadata, max_uris=limits.max_uris)
    except FormatError as exc:
        meta_part.status, meta_part.error = "refused", exc.message
        refs = []
    by_text: dict[str, AssetReport] = {}
    targets: list[tuple[AssetReport, ParsedUri]] = []
    for ref in refs:
        existing = by_text.get(ref.uri.text)
        if existing is not None:
            existing.pointers.append(ref.pointer)
            continue
        part = AssetReport(ref.uri.text, ref.role, [ref.pointer])
        by_text[ref.uri.text] = part
        parts.append(part)
        uri = ref.uri
        if standard == "erc1155" and token is not None and "{id}" in uri.text:
            uri = parse_uri(erc1155_uri(uri.text, token.token_id)) or uri
        targets.append((part, uri))
    return targets


async def _fetch_assets(
    fetcher: Fetcher,
    opts: NftOptions,
    work: Path,
    targets: list[tuple[AssetReport, ParsedUri]],
    staged: dict[int, Staged],
    budget: _Budget,
) -> None:
    """Fetch every asset (``opts.concurrency`` at a time) into ``staged[1...]``."""
    sem = asyncio.Semaphore(max(1, opts.concurrency))

    async def one(i: int, part: AssetReport, uri: ParsedUri) -> None:
        async with sem:
            got = await _fetch_part(
                fetcher, opts, part, uri, work / f"asset-{i}", opts.limits.max_asset_bytes, budget
            )
        if got is not None:
            staged[i] = got

    async with asyncio.TaskGroup() as tg:
        for i, (part, uri) in enumerate(targets, start=1):
            tg.create_task(one(i, part, uri))


def _file_sha256(path: Path) -> tuple[str, bytes]:
    """SHA-256 of a file and its first 512 bytes (for type sniffing)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        head = fh.read(512)
        digest.update(head)
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest(), head
