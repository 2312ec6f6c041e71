"""HTTP for the IPFS providers: one client per event loop, bodies bounded by bytes read,
JSON and CIDs from answers, bearer tokens from the environment."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from ownvault.core.cid import CID
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import FormatError, ProviderPermanentError, ProviderUnavailableError
from ownvault.providers.contentcoding import BadContentCoding, BodyTooLarge, decoded_body
from ownvault.providers.loopclients import LoopClients

__all__ = [
    "MAX_JSON_RESPONSE",
    "HttpTransport",
    "ndjson",
    "parse_cid",
    "parse_json",
    "read_cid",
    "token_from_env",
]

MAX_JSON_RESPONSE = 64 * 1024 * 1024


def token_from_env(var: str | None, what: str) -> str | None:
    """The secret held in environment variable ``var`` (never stored in the catalog)."""
    if not var:
        return None
    value = os.environ.get(var)
    if not value:
        raise ProviderPermanentError(f"{what}: environment variable {var} is not set")
    return value.strip()


class HttpTransport:
    """One ``httpx.AsyncClient`` per running event loop, closed with the loop or by ``aclose``.

    Providers may be used from several ``asyncio.run`` calls in turn (the CLI, the tests);
    a watcher task, cancelled when its loop shuts down, closes that loop's client.
    Transport failures (refused, reset, timeout) become ``ProviderUnavailableError``.
    """

    def __init__(self, label: str, *, timeout: float = 60.0, connect_timeout: float = 5.0) -> None:
        self.label = label
        self._clients = LoopClients(httpx.Timeout(timeout, connect=connect_timeout))

    def client(self) -> httpx.AsyncClient:
        return self._clients.get()

    async def request(
        self,
        method: str,
        url: str,
        *,
        limit: int,
        params: Mapping[str, str | Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | AsyncIterator[bytes] | None = None,
        json_body: object = None,
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body). Bodies over ``limit`` bytes (counted as
        they are decoded: :mod:`ownvault.providers.contentcoding`) are refused."""
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        elif content is not None:
            kwargs["content"] = content
        try:
            async with self.client().stream(method, url, **kwargs) as resp:
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise FormatError(f"response from {self.label} over {limit} bytes")
                body = bytearray()
                async for chunk in decoded_body(resp, limit):
                    body += chunk
                return resp.status_code, bytes(body)
        except BodyTooLarge:
            raise FormatError(f"response from {self.label} over {limit} bytes") from None
        except BadContentCoding as exc:
            raise ProviderPermanentError(f"{self.label}: {exc}", provider=self.label) from None
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(
                f"{self.label} unreachable: {type(exc).__name__}: {exc}", provider=self.label
            ) from exc

    async def aclose(self) -> None:
        await self._clients.aclose()


def parse_json(body: bytes, label: str) -> JSONValue:
    try:
        doc: JSONValue = json.loads(body)
    except ValueError as exc:
        raise ProviderPermanentError(f"{label} sent malformed JSON", provider=label) from exc
    return doc


def ndjson(body: bytes, label: str) -> list[JSONValue]:
    return [parse_json(line, label) for line in body.splitlines() if line.strip()]


def read_cid(value: object) -> CID | None:
    """A CID (as CIDv1) from a JSON value (``"bafy..."`` or ``{"/": "bafy..."}``), or None."""
    if isinstance(value, dict):
        value = value.get("/")
    if not isinstance(value, str):
        return None
    try:
        return CID.parse(value).to_v1()
    except FormatError:
        return None


def parse_cid(value: object, label: str) -> CID:
    cid = read_cid(value)
    if cid is None:
        raise ProviderPermanentError(f"{label} sent an invalid CID: {value!r:.80}", provider=label)
    return cid
