"""Bounded, guarded HTTP fetching for NFT preservation: a hostile token names the URLs.

Every request made on behalf of a token goes through :class:`Fetcher`:

* **schemes**: only ``http`` and ``https``, checked on the first URL and on every redirect
  target (``Location`` resolved against the current URL); at most ``max_redirects`` hops;
* **addresses**: the host is resolved and *every* address it resolves to is checked
  before a connection is made; loopback, private, link-local, CGNAT, multicast, reserved
  and unspecified ranges (anything not globally routable; IPv6 addresses that embed an
  IPv4 address, NAT64, 6to4, mapped, compatible, translated, unwrapped and the IPv4
  address checked; Teredo and local-use NAT64, which cannot be unwrapped, refused) are
  refused unless :class:`NetworkPolicy` allows them (``allow_private`` or listed
  networks). The check sits in the connection layer (an ``httpcore`` network backend), so
  the address that is checked is the address that is connected to: a DNS answer cannot
  change between check and use, and redirects get the same check. TLS still verifies the
  host name. Proxy variables from the environment are ignored;
* **sizes**: ``Content-Length`` above the limit is refused before the body is read, and
  the body is counted as it is decoded, piece by piece, and cut at the limit: content
  codings are undone by :mod:`ownvault.providers.contentcoding` (bounded inflaters, unknown
  codings refused), never by httpx, whose decoder inflates a whole chunk through every
  layer first (a decompression bomb);
* **time**: connect and read timeouts per request, and a deadline for the whole fetch.

Failures are :class:`FetchError` with a ``status`` that NFT reports use: ``unreachable``,
``too_large``, ``refused``.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpcore
import httpx

from ownvault.errors import ProviderError, UsageError
from ownvault.providers.contentcoding import BadContentCoding, BodyTooLarge, decoded_body

__all__ = [
    "FetchError",
    "FetchLimits",
    "Fetched",
    "Fetcher",
    "NetworkPolicy",
    "address_allowed",
    "embedded_ipv4",
]

FetchStatus = Literal["unreachable", "too_large", "refused", "wrong_type", "mismatch"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SNIPPET = 300  # bytes of an error body quoted in a message


class FetchError(ProviderError):
    """A fetch failed; ``status`` says how (for reports), the message says why."""

    code = "fetch"

    def __init__(
        self,
        status: FetchStatus,
        message: str,
        *,
        url: str | None = None,
        attempts: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message, name=url)
        self.status: FetchStatus = status
        self.attempts: list[dict[str, str]] = attempts or []


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds on everything fetched for a token (sizes in bytes, times in seconds)."""

    max_asset_bytes: int = 256 * 1024 * 1024
    max_token_bytes: int = 1024 * 1024 * 1024
    max_metadata_bytes: int = 2 * 1024 * 1024
    max_json_depth: int = 32
    max_uris: int = 256
    max_redirects: int = 5
    max_blocks: int = 100_000  # blocks of one IPFS asset fetched block by block
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    fetch_timeout: float = 300.0  # one asset, all redirects and retries at one server
    max_rpc_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in (
            "max_asset_bytes",
            "max_token_bytes",
            "max_metadata_bytes",
            "max_json_depth",
            "max_uris",
            "max_blocks",
            "max_rpc_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if not 0 <= self.max_redirects <= 20:
            raise ValueError("max_redirects must be 0..20")
        if min(self.connect_timeout, self.read_timeout, self.fetch_timeout) <= 0:
            raise ValueError("timeouts must be > 0")


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which addresses fetches may connect to besides globally routable ones."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow_private: bool, networks: Iterable[str] = ()) -> NetworkPolicy:
        try:
            nets = tuple(ipaddress.ip_network(n, strict=False) for n in networks)
        except ValueError as exc:
            raise UsageError(f"--allow-network: {exc}") from None
        return cls(allow_private, nets)


# IPv6 prefixes that carry an IPv4 address in their low 32 bits (RFC 6052 NAT64, RFC 4291
# IPv4-mapped and IPv4-compatible, RFC 2765 SIIT IPv4-translated): a packet to them may end
# up at that IPv4 address, so the IPv4 address is what is checked.
_LOW32_EMBEDDING = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "::/96")
)
# Prefixes whose IPv4 address cannot be recovered from the address alone (local-use NAT64
# with an operator-chosen prefix length, RFC 8215) or that tunnel to a relay (Teredo,
# RFC 4380): never public.
_OPAQUE_EMBEDDING = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "2001::/32"))
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | Literal["opaque"] | None:
    """The IPv4 address an IPv6 address embeds (NAT64, mapped, compatible, translated,
    6to4), ``"opaque"`` for prefixes that embed one that cannot be checked, else None."""
    if any(ip in net for net in _OPAQUE_EMBEDDING):
        return "opaque"
    if ip in _SIXTOFOUR:
        return ip.sixtofour
    if any(ip in net for net in _LOW32_EMBEDDING):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(ip: IPAddress, policy: NetworkPolicy) -> bool:
    """True when ``policy`` lets a fetch connect to ``ip``.

    An IPv6 address embedding an IPv4 address is judged by that IPv4 address (unless the
    IPv6 address itself is in an allowed network); one whose IPv4 address cannot be
    recovered is never public.
    """
    if policy.allow_private or _listed(ip, policy):
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner == "opaque":
            return False
        if inner is not None:
            return _listed(inner, policy) or (inner.is_global and not inner.is_multicast)
    return ip.is_global and not ip.is_multicast


def _listed(ip: IPAddress, policy: NetworkPolicy) -> bool:
    return any(ip in net for net in policy.allowed_networks if net.version == ip.version)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked address."""

    def __init__(self, policy: NetworkPolicy, hosts: Mapping[str, Sequence[str]]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._policy = policy
        self._hosts = hosts

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        name = host.strip("[]")
        try:
            return [ipaddress.ip_address(name)]
        except ValueError:
            pass
        if name.lower() in self._hosts:
            texts = list(self._hosts[name.lower()])
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    name, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except OSError as exc:
                raise FetchError("unreachable", f"cannot resolve {name}: {exc}") from None
            texts = [str(info[4][0]) for info in infos]
        addrs = [ipaddress.ip_address(t.split("%", 1)[0]) for t in texts]
        if not addrs:
            raise FetchError("unreachable", f"{name} resolves to no address")
        return addrs

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addrs = await self._resolve(host, port)
        bad = [str(a) for a in addrs if not address_allowed(a, self._policy)]
        if bad:
            raise FetchError(
                "refused",
                f"{host} resolves to a private, loopback or otherwise non-public address "
                f"({', '.join(bad)}); pass --allow-private-network to allow it",
            )
        last: Exception | None = None
        for addr in addrs:
            try:
                return await self._inner.connect_tcp(
                    str(addr),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise FetchError("refused", "unix sockets are never used for fetches")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: NetworkPolicy, hosts: Mapping[str, Sequence[str]]) -> None:
        super().__init__(trust_env=False)
        # httpx builds its connection pool without a network backend parameter: swap in a
        # pool (same defaults) whose every TCP connection goes through the address guard.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=32,
            max_keepalive_connections=8,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(policy, hosts),
        )


@dataclass
class Fetched:
    """One successful fetch: the final URL, the declared type, size and SHA-256."""

    url: str
    content_type: str | None
    size: int
    sha256: str
    data: bytes | None  # when fetched to memory
    redirects: list[str] = field(default_factory=list)


class Fetcher:
    """The one way NFT code reaches the network (see the module docstring)."""

    def __init__(
        self,
        policy: NetworkPolicy,
        limits: FetchLimits,
        *,
        hosts: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.policy = policy
        self.limits = limits
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(policy, {k.lower(): v for k, v in (hosts or {}).items()}),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(limits.read_timeout, connect=limits.connect_timeout),
            headers={"User-Agent": "ownvault-nft/1", "Accept-Encoding": "identity"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        dest: Path | None = None,
        headers: Mapping[str, str] | None = None,
        post_json: object = None,
        ok_status: Iterable[int] = (200,),
    ) -> Fetched:
        """GET (or POST ``post_json``) ``url``, following checked redirects, into memory
        or ``dest``; a non-accepted status is ``unreachable`` (``FetchError``)."""
        try:
            async with asyncio.timeout(self.limits.fetch_timeout):
                return await self._get(
                    url, max_bytes, dest, headers or {}, post_json, set(ok_status)
                )
        except TimeoutError:
            raise FetchError(
                "unreachable",
                f"{_short(url)}: no complete answer within {self.limits.fetch_timeout:g} s",
                url=url,
            ) from None

    async def post_file(
        self, url: str, path: Path, *, field: str = "file", max_response: int = 1 << 20
    ) -> bytes:
        """POST ``path`` as ``multipart/form-data`` (no redirects); the bounded response body."""
        _check_scheme(url)
        try:
            async with asyncio.timeout(self.limits.fetch_timeout):
                with open(path, "rb") as fh:
                    request = self._client.build_request(
                        "POST", url, files={field: (path.name, fh, "application/octet-stream")}
                    )
                    response = await self._client.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        body = await _snippet(response)
                        raise FetchError(
                            "unreachable",
                            f"{_short(url)}: HTTP {response.status_code} {body}",
                            url=url,
                        )
                    got = await self._body(response, url, max_response, None, [])
                finally:
                    await response.aclose()
        except TimeoutError:
            raise FetchError("unreachable", f"{_short(url)}: timed out", url=url) from None
        except httpx.HTTPError as exc:
            raise FetchError(
                "unreachable", f"{_short(url)}: {type(exc).__name__}: {exc}", url=url
            ) from None
        assert got.data is not None
        return got.data

    async def _get(
        self,
        url: str,
        max_bytes: int,
        dest: Path | None,
        headers: Mapping[str, str],
        post_json: object,
        ok: set[int],
    ) -> Fetched:
        redirects: list[str] = []
        current = url
        while True:
            _check_scheme(current)
            try:
                if post_json is not None:
                    request = self._client.build_request(
                        "POST", current, json=post_json, headers=headers
                    )
                else:
                    request = self._client.build_request("GET", current, headers=headers)
                response = await self._client.send(request, stream=True)
            except FetchError:
                raise
            except httpx.TimeoutException:
                raise FetchError(
                    "unreachable", f"{_short(current)}: timed out", url=current
                ) from None
            except (httpx.HTTPError, httpcore.ConnectError, OSError) as exc:
                raise FetchError(
                    "unreachable", f"{_short(current)}: {type(exc).__name__}: {exc}", url=current
                ) from None
            try:
                if response.is_redirect and post_json is None:
                    location = response.headers.get("location", "")
                    if len(redirects) >= self.limits.max_redirects:
                        raise FetchError(
                            "refused",
                            f"{_short(url)}: more than {self.limits.max_redirects} redirects",
                            url=url,
                        )
                    current = urllib.parse.urljoin(current, location)
                    redirects.append(current)
                    continue
                if response.status_code not in ok:
                    raise FetchError(
                        "unreachable",
                        f"{_short(current)}: HTTP {response.status_code}",
                        url=current,
                    )
                return await self._body(response, current, max_bytes, dest, redirects)
            finally:
                await response.aclose()

    async def _body(
        self,
        response: httpx.Response,
        url: str,
        max_bytes: int,
        dest: Path | None,
        redirects: list[str],
    ) -> Fetched:
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise FetchError(
                "too_large",
                f"{_short(url)}: {int(declared)} bytes, over the limit of {max_bytes}",
                url=url,
            )
        digest = hashlib.sha256()
        size = 0
        buf = bytearray()
        out = open(dest, "wb") if dest is not None else None  # noqa: SIM115 - closed below
        try:
            try:
                async for chunk in decoded_body(response, max_bytes):
                    size += len(chunk)
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                    else:
                        buf += chunk
            except BodyTooLarge:
                raise FetchError(
                    "too_large", f"{_short(url)}: more than {max_bytes} bytes", url=url
                ) from None
            except BadContentCoding as exc:
                raise FetchError("refused", f"{_short(url)}: {exc}", url=url) from None
            except httpx.TimeoutException:
                raise FetchError("unreachable", f"{_short(url)}: read timed out", url=url) from None
            except httpx.HTTPError as exc:
                raise FetchError(
                    "unreachable", f"{_short(url)}: {type(exc).__name__}: {exc}", url=url
                ) from None
        finally:
            if out is not None:
                out.close()
        return Fetched(
            url,
            response.headers.get("content-type"),
            size,
            digest.hexdigest(),
            bytes(buf) if dest is None else None,
            redirects,
        )


async def _snippet(response: httpx.Response) -> str:
    """The start of an error body, for a message (decoded within the same bounds)."""
    out = bytearray()
    try:
        async for piece in decoded_body(response, 1 << 20):
            out += piece[: _SNIPPET - len(out)]
            if len(out) >= _SNIPPET:
                break
    except (BodyTooLarge, BadContentCoding, httpx.HTTPError):
        pass
    return out.decode("utf-8", "replace")


def _check_scheme(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(
            "refused",
            f"{_short(url)}: scheme {parts.scheme or '(none)'!r} is never "
            "fetched (only http and https)",
            url=url,
        )
    if not parts.hostname:
        raise FetchError("refused", f"{_short(url)}: no host", url=url)


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
