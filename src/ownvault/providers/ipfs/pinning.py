"""A provider on an IPFS Pinning Service API (``ipfs+pinning://HOST/PATH``, spec v1.0.0).

Pinata, Filebase, IPFS Cluster and others speak this API: ``POST /pins`` asks the service to
fetch a CID from the network (``origins`` hints where) and keep it; ``GET /pins`` lists
pins, filtered by ``cid``, ``name`` (+ ``match``), ``status``, ``meta`` and time, newest
first. A pinning service stores no bytes it is handed directly, so:

* the blocks go first to an **upload node** (``upload``: a Kubo RPC URL, often the user's
  own Kubo, or the service's Kubo-compatible endpoint) with ``block/put``;
* the pin request names the object: ``name`` = the object name, ``meta`` =
  ``{"ownvault": "object/1", "ns": NAMESPACE, "size": "N"}``, ``origins`` = the upload
  node's addresses (``id``) unless configured, either way only those whose host is
  globally routable (:mod:`ownvault.providers.ipfs.multiaddr`: a loopback, LAN or
  link-local address is never sent unless ``allow_networks`` lists its network), at most
  :data:`MAX_ORIGINS`;
* the service answers with ``delegates``, the peers that will fetch the data: the upload
  node is asked to ``swarm/connect`` to each (at most :data:`MAX_DELEGATES`, valid
  multiaddrs ending in ``/p2p/PEER`` whose host passes the same check, each dialed at
  most once per :data:`REDIAL_AFTER` seconds); a failed dial is noted, not fatal (the
  service may still find the data through the DHT);
* ``put`` returns once the service reports ``pinned`` (``queued`` -> ``pinning`` ->
  ``pinned``), within ``pin_timeout``; ``failed`` or a timeout withdraws the request and
  raises ``ProviderUnavailableError`` (retryable);
* reads go through the configured trustless **gateways** (then the upload node), each
  block re-hashed against its CID.

Immutability is enforced by the client, since the API has no conditional create: ``put``
refuses a name that has a live pin (queued, pinning or pinned), and after its own pin is
made it looks again; if an *older* live pin of that name exists (two writers raced), it
withdraws its own and raises ``ObjectExistsError``: the first request (by ``created``, then
``requestid``) wins, and readers always read that one. ``created`` is compared as a time
(RFC 3339 parsed to an aware datetime), never as text: ``...T10:00:00+02:00`` is before
``...T09:00:00Z``, and ``.5Z`` after ``Z``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import urlparse

from ownvault.core.cid import CID
from ownvault.core.jsonvalue import JSONValue
from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
    ProviderUnavailableError,
    UsageError,
)
from ownvault.providers.base import (
    ObjectInfo,
    ProviderInfo,
    PutData,
    joined,
    validate_name,
    validate_prefix,
)
from ownvault.providers.httpstatus import error_for_status
from ownvault.providers.ipfs.multiaddr import Multiaddr, parse_multiaddr, reachable
from ownvault.providers.ipfs.objects import BlockGetter, encode_object, fetch_verified, read_range
from ownvault.providers.ipfs.pins import PIN_STATES, PinState, PinStatus
from ownvault.providers.ipfs.rpc import KuboRpc, gateway_getter
from ownvault.providers.ipfs.transport import (
    HttpTransport,
    parse_cid,
    parse_json,
    token_from_env,
)
from ownvault.providers.ipfs.urls import gateways_of, number, parse_pinning_url, url_options
from ownvault.providers.webfetch import NetworkPolicy

__all__ = ["META_OBJECT", "META_PUBLISH", "PinningProvider", "RemotePin"]

META_OBJECT = "object/1"
META_PUBLISH = "publish/1"
LIVE: tuple[PinState, ...] = ("queued", "pinning", "pinned")
PAGE = 1000  # the spec's maximum ``limit``
# A hostile service can answer without end: each answer is bounded by bytes read (1000 pins
# of a few hundred bytes each fit many times over) and a query by the pins it gathers.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
MAX_QUERY_PINS = 100_000
MAX_ORIGINS = 20  # the spec's maxItems for origins and delegates
MAX_DELEGATES = 8  # swarm/connect calls for one pin request
REDIAL_AFTER = 300.0  # seconds before a delegate dialed once is dialed again


def _object(value: object) -> dict[str, JSONValue]:
    """A JSON object of a service's answer, or ``TypeError`` (a malformed answer)."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return cast(dict[str, JSONValue], value)


def parse_created(text: object) -> datetime:
    """An RFC 3339 timestamp as an aware datetime; ``ValueError`` without an offset."""
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError(f"bad created {str(text)[:64]!r}")
    # RFC 3339 allows a lower-case 't' and 'z'; fromisoformat wants 'T' (3.11 reads 'Z')
    when = datetime.fromisoformat(text.strip().upper())
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"created has no time offset: {text!r}")
    return when


def rfc3339(when: datetime) -> str:
    """``when`` in UTC as RFC 3339 with a ``Z`` (what ``before``/``after`` take)."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RemotePin:
    """One pin request as the service reports it."""

    requestid: str
    status: PinState
    created: datetime
    cid: CID
    name: str | None
    meta: dict[str, str]
    detail: str | None
    delegates: tuple[str, ...] = ()

    @property
    def order(self) -> tuple[datetime, str]:
        return (self.created, self.requestid)


class PinningProvider:
    """Objects as named pins on an IPFS Pinning Service. See the module docstring."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        upload: str | None = None,
        upload_token: str | None = None,
        gateways: Sequence[str] = (),
        origins: Sequence[str] | None = None,
        allow_networks: NetworkPolicy | None = None,
        namespace: str = "default",
        pin_timeout: float = 600.0,
        label: str | None = None,
        timeout: float = 60.0,
        url: str | None = None,
    ) -> None:
        if not namespace or len(namespace) > 64:
            raise UsageError("namespace must be 1..64 characters")
        if upload is None and not gateways:
            raise UsageError("a pinning provider needs an upload node or a gateway")
        self.endpoint = endpoint.rstrip("/")
        self._url = url or self.endpoint
        self._label = label or self._url
        self._http = HttpTransport(self._label, timeout=timeout)
        self._auth = {"Authorization": f"Bearer {token}"}
        self.upload = (
            KuboRpc(upload, self._http, token=upload_token, label=f"{self._label} upload node")
            if upload
            else None
        )
        self._sources: list[BlockGetter] = [gateway_getter(g, self._http) for g in gateways]
        if self.upload is not None:
            self._sources.append(self.upload.block_get)
        self._network = allow_networks or NetworkPolicy()
        self._origins: list[str] | None = None
        if origins is not None:
            for o in origins:
                try:
                    parse_multiaddr(o)
                except ValueError as exc:
                    raise UsageError(f"{self._label}: origins: {exc}") from None
            self._origins = [a.text for a in reachable(origins, self._network, limit=MAX_ORIGINS)]
        self._dialed: dict[str, float] = {}  # delegate multiaddr -> when it was last dialed
        self.last_dials: dict[str, str | None] = {}  # delegate -> error of the last dial, or None
        self.namespace = namespace
        self.pin_timeout = pin_timeout
        self.last_statuses: list[PinState] = []  # what the last put saw, for tests and logs

    @classmethod
    def from_url(
        cls, url: str, config: dict[str, Any], label: str | None = None
    ) -> PinningProvider:
        endpoint = parse_pinning_url(url)
        config = url_options(url, config)
        what = f"provider {label or url}"
        token = token_from_env(config.get("token_env"), what)
        if token is None:
            raise UsageError(f"{what}: a pinning service needs token_env (the bearer token)")
        upload = config.get("upload")
        if upload is not None and (
            not isinstance(upload, str) or urlparse(upload).scheme not in ("http", "https")
        ):
            raise UsageError(f"{what}: upload is the http(s) URL of a Kubo RPC API")
        origins = config.get("origins")
        if origins is not None and (
            not isinstance(origins, list) or not all(isinstance(o, str) for o in origins)
        ):
            raise UsageError(f"{what}: origins is a list of multiaddrs")
        networks = config.get("allow_networks", [])
        if isinstance(networks, str):
            networks = [n for n in networks.split(",") if n]
        if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
            raise UsageError(f"{what}: allow_networks is a list of networks (CIDR)")
        return cls(
            endpoint,
            token,
            upload=upload,
            upload_token=token_from_env(config.get("upload_token_env"), what),
            gateways=gateways_of(config),
            origins=origins,
            allow_networks=NetworkPolicy.parse(False, networks) if networks else None,
            namespace=str(config.get("namespace", "default")),
            pin_timeout=number(config, "pin_timeout", 600.0),
            label=label,
            timeout=number(config, "timeout", 60.0),
            url=url,
        )

    @property
    def kind(self) -> str:
        return "ipfs"

    @property
    def location(self) -> str:
        return self._url

    # -- the Pinning Service API -----------------------------------------------------------

    async def _api(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Mapping[str, object] | None = None,
        name: str | None = None,
    ) -> JSONValue:
        status, raw = await self._http.request(
            method,
            f"{self.endpoint}{path}",
            params=params,
            headers=self._auth,
            json_body=body,
            limit=MAX_ANSWER_BYTES,
        )
        if status in (200, 202):
            return parse_json(raw, self._label) if raw.strip() else None
        try:
            err = json.loads(raw).get("error", {})
            reason, details = str(err.get("reason", "")), str(err.get("details", ""))
        except (ValueError, AttributeError):
            reason, details = "", raw[:200].decode("utf-8", "replace")
        text = f"{self._label} {method} {path}: HTTP {status} {reason}: {details}"[:400]
        # The Pinning Service API answers 409 INSUFFICIENT_FUNDS when the account is full
        full = (status,) if status == 409 or reason == "INSUFFICIENT_FUNDS" else ()
        raise error_for_status(
            status, text, provider=self._label, share=name, not_found=(404,), conflict=(), full=full
        )

    def _parse_pin(self, doc: object) -> RemotePin:
        try:
            d = _object(doc)
            pin = _object(d["pin"])
            status = d["status"]
            if not isinstance(status, str) or status not in PIN_STATES:
                raise ValueError(status)
            meta = _object(pin.get("meta") or {})
            info = _object(d.get("info") or {})
            delegates = d.get("delegates") or []
            if not isinstance(delegates, list):
                raise TypeError("delegates is not a list")
            name = pin.get("name")
            return RemotePin(
                requestid=str(d["requestid"]),
                status=status,
                created=parse_created(d["created"]),
                cid=parse_cid(pin["cid"], self._label),
                name=name if isinstance(name, str) else None,
                meta={str(k): str(v) for k, v in meta.items()},
                detail=str(info.get("status_details"))[:300]
                if info.get("status_details")
                else None,
                delegates=tuple(str(d) for d in delegates[:MAX_ORIGINS]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderPermanentError(
                f"{self._label} sent a malformed PinStatus: {exc}", provider=self._label
            ) from exc

    async def _query(
        self,
        *,
        name: str | None = None,
        match: str = "exact",
        statuses: Sequence[PinState] = ("pinned",),
        meta: dict[str, str] | None = None,
        cid: CID | None = None,
    ) -> list[RemotePin]:
        """Every pin that matches, following the spec's ``before`` paging (newest first)."""
        params = {"status": ",".join(statuses), "limit": str(PAGE)}
        if name is not None:
            params["name"] = name
            params["match"] = match
        if meta:
            params["meta"] = json.dumps(meta, separators=(",", ":"), sort_keys=True)
        if cid is not None:
            params["cid"] = str(cid)
        seen: dict[str, RemotePin] = {}
        while True:
            doc = await self._api("GET", "/pins", params=params)
            results = doc.get("results") if isinstance(doc, dict) else None
            if not isinstance(results, list):
                raise ProviderPermanentError(
                    f"{self._label}: bad /pins answer", provider=self._label
                )
            fresh = 0
            for item in results:
                pin = self._parse_pin(item)
                if pin.requestid not in seen:
                    seen[pin.requestid] = pin
                    fresh += 1
            if len(results) < PAGE or not fresh:
                break
            if len(seen) >= MAX_QUERY_PINS:
                raise ProviderPermanentError(
                    f"{self._label}: more than {MAX_QUERY_PINS} pins match one query",
                    provider=self._label,
                )
            # `before` is exclusive: asking below the oldest time seen would skip the unseen
            # pins that share it (a page boundary inside a run of equal timestamps), so ask
            # below that time plus 1 us; the pins seen again are deduplicated by requestid,
            # and a page with nothing new ends the query
            oldest = min(p.created for p in seen.values())
            params["before"] = rfc3339(oldest + timedelta(microseconds=1))
        return list(seen.values())

    def _object_meta(self) -> dict[str, str]:
        return {"ownvault": META_OBJECT, "ns": self.namespace}

    async def _current(self, name: str) -> RemotePin:
        pins = await self._query(name=name, meta=self._object_meta())
        pins = [p for p in pins if p.name == name]
        if not pins:
            raise ObjectNotFoundError(f"object not found: {name}", provider=self._label, share=name)
        return min(pins, key=lambda p: p.order)

    async def _origins_list(self) -> list[str]:
        if self._origins is None:
            found: list[str] = []
            if self.upload is not None:
                try:
                    doc = await self.upload.call_json("id")
                    addrs = doc.get("Addresses") if isinstance(doc, dict) else None
                    listed = addrs if isinstance(addrs, list) else []
                    found = [a.text for a in reachable(listed, self._network, limit=MAX_ORIGINS)]
                except ProviderError:
                    found = []
            self._origins = found
        return self._origins

    async def _create(self, cid: CID, name: str, meta: dict[str, str]) -> RemotePin:
        body = {"cid": str(cid), "name": name, "origins": await self._origins_list(), "meta": meta}
        pin = self._parse_pin(await self._api("POST", "/pins", body=body, name=name))
        await self._connect_delegates(pin.delegates)
        return pin

    def _dialable(self, delegates: Sequence[str]) -> list[Multiaddr]:
        """The delegates worth a ``swarm/connect``: valid, with a peer id, reachable, bounded."""
        with_peer = []
        for text in delegates:
            try:
                addr = parse_multiaddr(text)
            except ValueError:
                continue
            if addr.peer_id is not None:
                with_peer.append(addr.text)
        return reachable(with_peer, self._network, limit=MAX_DELEGATES)

    async def _connect_delegates(self, delegates: Sequence[str]) -> None:
        """Connect the upload node to the service's delegates (module docstring)."""
        if self.upload is None or not delegates:
            return
        now = time.monotonic()
        todo = [
            a.text
            for a in self._dialable(delegates)
            if now - self._dialed.get(a.text, -REDIAL_AFTER) >= REDIAL_AFTER
        ]
        if not todo:
            return
        upload = self.upload

        async def dial(text: str) -> None:
            try:
                await upload.call("swarm/connect", {"arg": text})
                self.last_dials[text] = None
                self._dialed[text] = time.monotonic()
            except ProviderError as exc:  # the service may find the data some other way
                self.last_dials[text] = exc.message[:200]

        await asyncio.gather(*(dial(t) for t in todo))

    async def _wait(self, pin: RemotePin, name: str) -> RemotePin:
        deadline = time.monotonic() + self.pin_timeout
        delay = 0.05
        self.last_statuses = [pin.status]
        while pin.status in ("queued", "pinning"):
            if time.monotonic() > deadline:
                await self._withdraw(pin.requestid)
                raise ProviderUnavailableError(
                    f"{self._label}: {name} not pinned within {self.pin_timeout:.0f} s",
                    provider=self._label,
                    share=name,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.6, 2.0)
            pin = self._parse_pin(await self._api("GET", f"/pins/{pin.requestid}", name=name))
            if pin.status != self.last_statuses[-1]:
                self.last_statuses.append(pin.status)
        if pin.status == "failed":
            await self._withdraw(pin.requestid)
            raise ProviderUnavailableError(
                f"{self._label}: pinning {name} failed: {pin.detail or 'no details'}",
                provider=self._label,
                share=name,
            )
        return pin

    async def _withdraw(self, requestid: str) -> None:
        with contextlib.suppress(ObjectNotFoundError):
            await self._api("DELETE", f"/pins/{requestid}")

    # -- the contract ----------------------------------------------------------------------

    async def put(self, name: str, data: PutData) -> None:
        validate_name(name)
        if await self._query(name=name, statuses=LIVE, meta=self._object_meta()):
            raise ObjectExistsError(f"object exists: {name}", provider=self._label, share=name)
        if self.upload is None:
            raise ProviderPermanentError(
                f"{self._label}: no upload node configured (config 'upload')", provider=self._label
            )
        # Joined: the UnixFS importer copies every byte into its leaf blocks anyway.
        obj = await asyncio.to_thread(encode_object, joined(data))
        await self.upload.put_blocks(obj.blocks)
        meta = {**self._object_meta(), "size": str(obj.size)}
        mine = await self._wait(await self._create(obj.root, name, meta), name)
        rivals = [
            p
            for p in await self._query(name=name, statuses=LIVE, meta=self._object_meta())
            if p.name == name and p.requestid != mine.requestid and p.order < mine.order
        ]
        if rivals:
            await self._withdraw(mine.requestid)
            raise ObjectExistsError(
                f"object exists: {name} (a concurrent put won)", provider=self._label, share=name
            )

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate_name(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        pin = await self._current(name)

        async def block(cid: CID) -> bytes:
            return await fetch_verified(self._sources, cid, provider=self._label, name=name)

        return await read_range(block, pin.cid, offset, length, provider=self._label, name=name)

    async def stat(self, name: str) -> ObjectInfo:
        validate_name(name)
        return ObjectInfo(name, self._size(await self._current(name)))

    def _size(self, pin: RemotePin) -> int:
        raw = pin.meta.get("size", "")
        if not raw.isdigit() or len(raw) > 15:
            raise ProviderPermanentError(
                f"{self._label}: pin {pin.requestid} has no valid size", provider=self._label
            )
        return int(raw)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        pins = await self._query(name=prefix or None, match="partial", meta=self._object_meta())
        first: dict[str, RemotePin] = {}
        for p in pins:
            if p.name is None or not p.name.startswith(prefix):
                continue
            try:
                validate_name(p.name)
            except UsageError:
                continue
            if p.name not in first or p.order < first[p.name].order:
                first[p.name] = p
        for n in sorted(first):
            try:
                size = self._size(first[n])
            except ProviderPermanentError:
                continue
            yield ObjectInfo(n, size)

    async def delete(self, name: str) -> None:
        validate_name(name)
        pins = await self._query(name=name, statuses=PIN_STATES, meta=self._object_meta())
        for p in pins:
            if p.name == name:
                await self._withdraw(p.requestid)

    async def info(self) -> ProviderInfo:
        await self._api("GET", "/pins", params={"limit": "1"})
        return ProviderInfo("ipfs", self.location, None)

    async def close(self) -> None:
        await self._http.aclose()

    # -- publishing (DagPinner) ------------------------------------------------------------

    async def import_blocks(self, root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> int:
        if self.upload is None:
            raise ProviderPermanentError(
                f"{self._label}: no upload node configured (config 'upload')", provider=self._label
            )
        return await self.upload.dag_import(root, blocks)

    def _status(self, pin: RemotePin) -> PinStatus:
        return PinStatus(
            self._label,
            pin.cid,
            pin.status,
            name=pin.name,
            requestid=pin.requestid,
            created=rfc3339(pin.created),
            detail=pin.detail,
        )

    async def pin(self, root: CID, name: str) -> PinStatus:
        if len(name) > 255:
            raise UsageError("a pin name is at most 255 characters")
        return self._status(await self._create(root, name, {"ownvault": META_PUBLISH}))

    async def pin_status(self, cid: CID) -> PinStatus | None:
        pins = await self._query(cid=cid, statuses=PIN_STATES, meta={"ownvault": META_PUBLISH})
        if not pins:
            return None
        return self._status(max(pins, key=lambda p: p.order))

    async def unpin(self, cid: CID) -> None:
        for p in await self._query(cid=cid, statuses=PIN_STATES, meta={"ownvault": META_PUBLISH}):
            await self._withdraw(p.requestid)

    async def pins(self) -> AsyncIterator[PinStatus]:
        found = await self._query(statuses=PIN_STATES, meta={"ownvault": META_PUBLISH})
        for p in sorted(found, key=lambda p: p.order):
            yield self._status(p)
