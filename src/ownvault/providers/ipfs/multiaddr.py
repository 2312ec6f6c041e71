"""Multiaddrs a pinning service is told about (``origins``) or asks us to dial (``delegates``).

Only the text form is handled, and only as far as the pinning client needs: a multiaddr is
split into ``/protocol/value`` components (protocols from the multiaddr table; a protocol
without a value, such as ``/http``, stands alone), its first component names the host
(``ip4``, ``ip6``, ``dns``, ``dns4``, ``dns6``, ``dnsaddr``), and the host decides whether
the address may leave this machine:

* an IP address must be globally routable, as :func:`ownvault.providers.webfetch.address_allowed`
  judges it (loopback, private, link-local, CGNAT, unique-local, multicast and IPv6 forms
  that embed such an IPv4 address are refused) unless the :class:`NetworkPolicy` lists its
  network;
* a DNS name must not be ``localhost``, end in ``.localhost``, ``.local`` (mDNS),
  ``.internal``, ``.home.arpa`` or ``.lan``, nor be a bare single label;
* anything else (``/unix/...``, a multiaddr with no host) never leaves.

Sending our own LAN addresses to a service leaks the network's layout and gains nothing
(the service cannot reach them); dialing the LAN addresses a hostile service names would
turn our node into its scanner.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ownvault.providers.webfetch import NetworkPolicy, address_allowed

__all__ = ["MAX_MULTIADDR", "Multiaddr", "is_reachable", "parse_multiaddr", "reachable"]

MAX_MULTIADDR = 1024  # characters of one text multiaddr
# protocols that carry a value, and those that do not (from multiaddr's protocols.csv: the
# ones a pinning service or a node's `id` plausibly uses)
_WITH_VALUE = frozenset(
    [
        "ip4",
        "ip6",
        "ip6zone",
        "dns",
        "dns4",
        "dns6",
        "dnsaddr",
        "tcp",
        "udp",
        "dccp",
        "sctp",
        "unix",
        "p2p",
        "ipfs",
        "onion",
        "onion3",
        "garlic64",
        "garlic32",
        "certhash",
        "sni",
        "http-path",
        "memory",
    ]
)
_NO_VALUE = frozenset(
    [
        "quic",
        "quic-v1",
        "webtransport",
        "ws",
        "wss",
        "tls",
        "noise",
        "http",
        "https",
        "p2p-circuit",
        "webrtc",
        "webrtc-direct",
        "utp",
        "udt",
        "p2p-webrtc-star",
        "p2p-webrtc-direct",
        "p2p-websocket-star",
    ]
)
_VALUE = re.compile(r"[A-Za-z0-9._~%_+=:\-]{1,256}\Z")
_PEER_ID = re.compile(
    r"(Qm[1-9A-HJ-NP-Za-km-z]{44}|1[1-9A-HJ-NP-Za-km-z]{40,60}|b[a-z2-7]{50,100})\Z"
)
_DNS_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan")
_HOSTS = ("ip4", "ip6", "dns", "dns4", "dns6", "dnsaddr")


@dataclass(frozen=True, slots=True)
class Multiaddr:
    """A parsed text multiaddr: its components, in order."""

    text: str
    parts: tuple[tuple[str, str | None], ...]

    @property
    def host(self) -> tuple[str, str] | None:
        """``(protocol, value)`` of the first component when it names a host."""
        proto, value = self.parts[0]
        return (proto, value) if proto in _HOSTS and value is not None else None

    @property
    def peer_id(self) -> str | None:
        """The ``/p2p/`` (or legacy ``/ipfs/``) peer id at the end, if any."""
        proto, value = self.parts[-1]
        return value if proto in ("p2p", "ipfs") else None


def parse_multiaddr(text: str) -> Multiaddr:
    """Parse a text multiaddr; ``ValueError`` when it is not one (or not a plausible one)."""
    if not isinstance(text, str) or not text.startswith("/") or len(text) > MAX_MULTIADDR:
        raise ValueError(f"not a multiaddr: {str(text)[:80]!r}")
    words = text[1:].split("/")
    parts: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        proto = words[i]
        if proto not in _WITH_VALUE and proto not in _NO_VALUE:
            raise ValueError(f"unknown multiaddr protocol {proto[:40]!r} in {text[:80]!r}")
        if proto in _WITH_VALUE:
            if i + 1 >= len(words) or not _VALUE.match(words[i + 1]):
                raise ValueError(f"multiaddr protocol {proto!r} needs a value in {text[:80]!r}")
            value: str | None = words[i + 1]
            i += 2
        else:
            value = None
            i += 1
        parts.append((proto, value))
    if not parts:
        raise ValueError("an empty multiaddr")
    for proto, value in parts:
        if proto == "ip4":
            ipaddress.IPv4Address(value)
        elif proto == "ip6":
            ipaddress.IPv6Address(value)
        elif proto in ("tcp", "udp", "dccp", "sctp") and not (
            value is not None and value.isdigit() and int(value) < 65536
        ):
            raise ValueError(f"bad port {value!r} in {text[:80]!r}")
        elif proto in ("p2p", "ipfs") and not (value is not None and _PEER_ID.match(value)):
            raise ValueError(f"bad peer id in {text[:80]!r}")
        elif proto.startswith("dns") and not _dns_name_ok(value or ""):
            raise ValueError(f"bad DNS name in {text[:80]!r}")
    return Multiaddr(text, tuple(parts))


def _dns_name_ok(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    return 0 < len(name) <= 253 and all(_DNS_LABEL.match(label) for label in labels)


def _public_name(name: str) -> bool:
    low = name.lower().rstrip(".")
    return "." in low and low != "localhost" and not low.endswith(_LOCAL_SUFFIXES)


def is_reachable(addr: Multiaddr, policy: NetworkPolicy) -> bool:
    """True when ``addr`` names a host that may be announced or dialed (module docstring)."""
    host = addr.host
    if host is None:
        return False
    proto, value = host
    if proto in ("ip4", "ip6"):
        return address_allowed(ipaddress.ip_address(value), policy)
    return _public_name(value)


def reachable(texts: Iterable[object], policy: NetworkPolicy, *, limit: int) -> list[Multiaddr]:
    """The first ``limit`` distinct valid multiaddrs of ``texts`` that are reachable.

    Invalid entries and non-reachable ones are dropped (a node's own `id` lists loopback
    and LAN addresses as a matter of course; a service may send anything).
    """
    out: list[Multiaddr] = []
    seen: set[str] = set()
    for text in texts:
        if len(out) >= limit:
            break
        if not isinstance(text, str) or text in seen:
            continue
        seen.add(text)
        try:
            addr = parse_multiaddr(text)
        except ValueError:
            continue
        if is_reachable(addr, policy):
            out.append(addr)
    return out
