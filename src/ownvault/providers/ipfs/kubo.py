"""A provider on a Kubo-compatible IPFS node, through its RPC API (``ipfs+kubo://HOST:PORT``).

Names map to CIDs in the node's MFS (Kubo's "Mutable File System", ``files/*``): object
``NAME`` is the MFS entry ``ROOT/NAME`` (``ROOT`` defaults to ``/ownvault``; ``/`` in names
are MFS directories), pointing at the object's UnixFS DAG (:mod:`ownvault.providers.ipfs.objects`).

``put``     ``files/stat`` (refuse early), ``dag/import`` of the object's blocks as one CAR
            with ``pin-roots`` (so GC cannot take them meanwhile), ``files/cp /ipfs/ROOTCID
            ROOT/NAME`` with ``parents``, ``pin/rm ROOTCID``. MFS refuses to replace an
            existing entry, atomically (``files`` commands are serialised in the node),
            which is what makes the object immutable. Kubo flushes MFS and keeps its root in
            the datastore; MFS content is a GC root, so it needs no pin of its own.
``get``     ``files/stat`` for the root CID, then the blocks under the range, each re-hashed,
            from the RPC API first and the configured trustless gateways after it.
``list``    walks the MFS directories under the prefix (``files/ls --long``).
``delete``  ``files/stat`` (a directory is no object), ``files/rm`` (never ``--force``, which
            implies ``-r`` in Kubo). The blocks stay in the node's blockstore until its next
            garbage collection; copies others fetched are out of our hands.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlparse

from ownvault.core.cid import CID
from ownvault.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    ProviderError,
    ProviderPermanentError,
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
from ownvault.providers.ipfs.objects import BlockGetter, encode_object, fetch_verified, read_range
from ownvault.providers.ipfs.pins import PinStatus
from ownvault.providers.ipfs.rpc import KuboRpc, gateway_getter
from ownvault.providers.ipfs.transport import HttpTransport, parse_cid, token_from_env
from ownvault.providers.ipfs.urls import (
    DEFAULT_ROOT,
    MFS_ROOT_RE,
    gateways_of,
    number,
    parse_kubo_url,
    url_options,
)

__all__ = ["KuboProvider"]


class KuboProvider:
    """Objects as MFS entries of a Kubo (or Kubo-RPC-compatible) node. See the module doc."""

    def __init__(
        self,
        api: str,
        *,
        root: str = DEFAULT_ROOT,
        gateways: Sequence[str] = (),
        token: str | None = None,
        label: str | None = None,
        timeout: float = 60.0,
        url: str | None = None,
    ) -> None:
        if not MFS_ROOT_RE.match(root):
            raise UsageError(f"bad MFS root {root!r}")
        self.api = api.rstrip("/")
        self.root = root
        self._url = url or f"ipfs+kubo://{urlparse(self.api).netloc}{root}"
        self._label = label or self._url
        self._http = HttpTransport(self._label, timeout=timeout)
        self.rpc = KuboRpc(self.api, self._http, token=token, label=self._label)
        self._sources: list[BlockGetter] = [self.rpc.block_get]
        self._sources += [gateway_getter(g, self._http) for g in gateways]

    @classmethod
    def from_url(cls, url: str, config: dict[str, Any], label: str | None = None) -> KuboProvider:
        api, root = parse_kubo_url(url)
        config = url_options(url, config)
        token = token_from_env(config.get("token_env"), f"provider {label or url}")
        timeout = number(config, "timeout", 60.0)
        return cls(
            api,
            root=root,
            gateways=gateways_of(config),
            token=token,
            label=label,
            timeout=timeout,
            url=url.split("?")[0],
        )

    @property
    def kind(self) -> str:
        return "ipfs"

    @property
    def location(self) -> str:
        return self._url

    def _path(self, name: str) -> str:
        return f"{self.root}/{validate_name(name)}"

    # -- the contract ----------------------------------------------------------------------

    async def _stat_entry(self, name: str) -> tuple[CID, int]:
        doc = await self.rpc.call_json("files/stat", {"arg": self._path(name)}, name=name)
        if not isinstance(doc, dict) or doc.get("Type") != "file":
            raise ObjectNotFoundError(f"object not found: {name}", provider=self._label, share=name)
        size = doc.get("Size")
        if not isinstance(size, int) or size < 0:
            raise ProviderPermanentError(
                f"{self._label}: bad size for {name}", provider=self._label
            )
        return parse_cid(doc.get("Hash"), self._label), size

    async def _exists(self, name: str) -> bool:
        try:
            await self.rpc.call("files/stat", {"arg": self._path(name)}, name=name)
        except ObjectNotFoundError:
            return False
        return True

    async def put(self, name: str, data: PutData) -> None:
        path = self._path(name)
        if await self._exists(name):
            raise ObjectExistsError(f"object exists: {name}", provider=self._label, share=name)
        # Joined: the UnixFS importer copies every byte into its leaf blocks anyway.
        obj = await asyncio.to_thread(encode_object, joined(data))
        # One CAR, imported with its root pinned: no GC can take the fresh blocks before
        # the MFS entry (itself a GC root) holds them; the temporary pin goes afterwards.
        await self.rpc.import_pinned(obj.root, obj.blocks, name=name)
        try:
            await self.rpc.call(
                "files/cp", {"arg": [f"/ipfs/{obj.root}", path], "parents": "true"}, name=name
            )
        except ObjectExistsError:
            raise ObjectExistsError(
                f"object exists: {name}", provider=self._label, share=name
            ) from None
        except ObjectNotFoundError as exc:  # a parent segment is a file ("not a directory")
            raise ProviderPermanentError(
                f"cannot create {name}: {exc.message}", provider=self._label, share=name
            ) from exc
        finally:
            await self.unpin(obj.root)

    async def get(self, name: str, offset: int = 0, length: int | None = None) -> bytes:
        validate_name(name)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError("negative range")
        root, _size = await self._stat_entry(name)

        async def block(cid: CID) -> bytes:
            return await fetch_verified(self._sources, cid, provider=self._label, name=name)

        return await read_range(block, root, offset, length, provider=self._label, name=name)

    async def stat(self, name: str) -> ObjectInfo:
        _root, size = await self._stat_entry(name)
        return ObjectInfo(name, size)

    async def _ls(self, path: str) -> list[tuple[str, int, int]]:
        try:
            doc = await self.rpc.call_json("files/ls", {"arg": path, "long": "true", "U": "true"})
        except ObjectNotFoundError:
            return []
        entries = doc.get("Entries") if isinstance(doc, dict) else None
        out = []
        for e in entries or ():
            if not isinstance(e, dict):
                continue
            ename, etype, esize = e.get("Name"), e.get("Type"), e.get("Size", 0)
            if isinstance(ename, str) and isinstance(etype, int) and isinstance(esize, int):
                out.append((ename, etype, esize))
        return out

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        head = prefix.rpartition("/")[0]
        found: list[ObjectInfo] = []
        stack = [head]
        while stack:
            rel = stack.pop()
            path = f"{self.root}/{rel}" if rel else self.root
            for ename, etype, esize in await self._ls(path):
                full = f"{rel}/{ename}" if rel else ename
                if etype == 1:
                    if full.startswith(prefix) or prefix.startswith(full + "/"):
                        stack.append(full)
                elif full.startswith(prefix):
                    try:
                        validate_name(full)
                    except UsageError:
                        continue  # not ours (put there by hand)
                    found.append(ObjectInfo(full, esize))
        found.sort(key=lambda o: o.name)
        for item in found:
            yield item

    async def delete(self, name: str) -> None:
        path = self._path(name)
        # Never `--force` or `-r`: in Kubo they remove directories, and `delete("a")` must not
        # take "a/1" with it. A directory is not an object: nothing to delete.
        try:
            doc = await self.rpc.call_json("files/stat", {"arg": path}, name=name)
            if isinstance(doc, dict) and doc.get("Type") == "directory":
                return
            await self.rpc.call("files/rm", {"arg": path}, name=name)
        except ObjectNotFoundError:
            return

    async def info(self) -> ProviderInfo:
        await self.rpc.call_json("version")
        free: int | None = None
        try:
            doc = await self.rpc.call_json("repo/stat", {"size-only": "true"})
            if isinstance(doc, dict):
                used, cap = doc.get("RepoSize"), doc.get("StorageMax")
                if isinstance(used, int) and isinstance(cap, int) and cap > 0:
                    free = max(0, cap - used)
        except ProviderError:
            free = None
        return ProviderInfo("ipfs", self.location, free)

    async def close(self) -> None:
        await self._http.aclose()

    # -- publishing (DagPinner) ------------------------------------------------------------

    async def import_blocks(self, root: CID, blocks: AsyncIterator[tuple[CID, bytes]]) -> int:
        return await self.rpc.dag_import(root, blocks)

    async def pin(self, root: CID, name: str) -> PinStatus:
        await self.rpc.call("pin/add", {"arg": str(root), "name": name, "recursive": "true"})
        return PinStatus(self._label, root, "pinned", name=name)

    async def pin_status(self, cid: CID) -> PinStatus | None:
        try:
            doc = await self.rpc.call_json("pin/ls", {"arg": str(cid), "names": "true"})
        except ProviderError as exc:
            if "not pinned" in exc.message or isinstance(exc, ObjectNotFoundError):
                return None
            raise
        keys = doc.get("Keys") if isinstance(doc, dict) else None
        if not isinstance(keys, dict) or not keys:
            return None
        entry = next(iter(keys.values()))
        name = entry.get("Name") if isinstance(entry, dict) else None
        return PinStatus(self._label, cid, "pinned", name=name or None)

    async def unpin(self, cid: CID) -> None:
        try:
            await self.rpc.call("pin/rm", {"arg": str(cid)})
        except ProviderError as exc:
            if "not pinned" not in exc.message and not isinstance(exc, ObjectNotFoundError):
                raise

    async def pins(self) -> AsyncIterator[PinStatus]:
        doc = await self.rpc.call_json("pin/ls", {"type": "recursive", "names": "true"})
        keys = doc.get("Keys") if isinstance(doc, dict) else None
        for key, entry in sorted((keys or {}).items()):
            cid = parse_cid(key, self._label)
            name = entry.get("Name") if isinstance(entry, dict) else None
            yield PinStatus(self._label, cid, "pinned", name=name or None)
