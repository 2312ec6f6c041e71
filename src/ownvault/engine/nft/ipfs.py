"""IPFS content for NFT preservation, fetched through trustless gateways and trusting none.

For ``ipfs://CID/path``, each configured gateway is tried in turn:

1. **path**: the segments are resolved block by block (``?format=raw``), each block
   re-hashed against its CID before its links are read (basic and HAMT directories,
   :func:`ownvault.engine.ipfs.dagwalk.resolve`), giving the terminal CID;
2. **entity**: the whole DAG under the terminal CID as a CAR (``?format=car``,
   ``dag-scope=all``), written to disk within the size limit; if the gateway does not
   serve CARs, block by block (``?format=raw``) in depth-first order into a local CAR;
3. **verify**: the CAR is read back with :class:`~ownvault.core.car.CarReader` (every
   block re-hashed), its root must be the terminal CID, and the DAG is rebuilt as files
   (:func:`ownvault.engine.ipfs.carimport.rebuild_car`): every link present (complete),
   UnixFS consistent, names safe.

A gateway that sends a wrong block, a truncated or malformed CAR, or an incomplete DAG is
recorded (``attempts``) and the next one is tried; the asset is ``verified`` only when
one gateway's bytes passed every check.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownvault.core.car import CarReader, encode_header, encode_section
from ownvault.core.cid import CID, DAG_PB, IDENTITY
from ownvault.core.dagpb import MAX_BLOCK_SIZE, decode_node
from ownvault.engine.ipfs.carimport import rebuild_car
from ownvault.engine.ipfs.dagwalk import resolve
from ownvault.errors import IntegrityError, NotFoundError, UsageError
from ownvault.providers.webfetch import Fetcher, FetchError

__all__ = ["IpfsAsset", "fetch_ipfs"]

_CAR = "application/vnd.ipld.car"
_RAW = "application/vnd.ipld.raw"


@dataclass
class IpfsAsset:
    """A verified IPFS DAG: its CAR on disk and its rebuilt file or directory."""

    root: CID
    car: Path
    staged: Path
    is_directory: bool
    size: int  # file bytes under the root
    tsize: int  # the root's cumulative size, for a directory link to it
    gateway: str
    attempts: list[dict[str, str]] = field(default_factory=list)


class _GatewayBlocks:
    """Raw blocks from one gateway, each re-hashed; bounded in count and bytes."""

    def __init__(self, fetcher: Fetcher, gateway: str, max_blocks: int, max_bytes: int) -> None:
        self._fetcher = fetcher
        self._gateway = gateway
        self._left_blocks = max_blocks
        self._left_bytes = max_bytes

    async def get(self, cid: CID, *, sequential: bool = False) -> bytes:
        if cid.hash_code == IDENTITY:
            return cid.digest
        self._left_blocks -= 1
        if self._left_blocks < 0:
            raise FetchError("too_large", f"more blocks than the limit under {cid}")
        got = await self._fetcher.get(
            f"{self._gateway}/ipfs/{cid}?format=raw",
            headers={"Accept": _RAW},
            max_bytes=MAX_BLOCK_SIZE,
        )
        assert got.data is not None
        if not cid.verify(got.data):
            raise IntegrityError(
                f"gateway {self._gateway} sent a block that does not match {cid}", name=str(cid)
            )
        self._left_bytes -= len(got.data)
        if self._left_bytes < 0:
            raise FetchError("too_large", f"the DAG under {cid} is larger than the limit")
        return got.data


async def _car_by_blocks(source: _GatewayBlocks, root: CID, dest: Path) -> None:
    """Walk the DAG depth-first, block by block, into a CARv1 at ``dest``."""
    seen: set[bytes] = set()
    stack = [root]
    with open(dest, "wb") as out:
        out.write(encode_header([root]))
        while stack:
            cid = stack.pop()
            if cid.bytes in seen:
                continue
            seen.add(cid.bytes)
            block = await source.get(cid)
            if cid.hash_code != IDENTITY:
                out.write(encode_section(cid, block))
            if cid.codec == DAG_PB:
                stack.extend(link.cid for link in reversed(decode_node(block).links))


def _root_tsize(car: Path, root: CID) -> int:
    with open(car, "rb") as fh:
        for block in CarReader(iter(lambda: fh.read(1 << 20), b"")):
            if block.cid == root:
                if root.codec != DAG_PB:
                    return len(block.data)
                return len(block.data) + sum(lk.tsize or 0 for lk in decode_node(block.data).links)
    raise IntegrityError(f"the CAR lacks its root block {root}", name=str(root))


def _verify(car: Path, want: CID, staged: Path, max_bytes: int) -> tuple[int, int]:
    with open(car, "rb") as fh:
        roots = CarReader(iter(lambda: fh.read(1 << 20), b"")).roots
    if roots != (want,):
        raise IntegrityError(
            f"the CAR's root is {', '.join(map(str, roots))}, not {want}", name=str(want)
        )
    try:
        root, _files, size = rebuild_car(car, staged)
    except UsageError as exc:  # e.g. a symlink as root
        raise IntegrityError(exc.message, name=str(want)) from None
    if root != want:
        raise IntegrityError(f"the CAR's root is {root}, not {want}", name=str(want))
    if size > max_bytes:
        raise FetchError("too_large", f"{want}: {size} bytes, over the limit of {max_bytes}")
    return size, _root_tsize(car, want)


async def _from_gateway(
    fetcher: Fetcher, gateway: str, cid: CID, path: tuple[str, ...], work: Path, max_bytes: int
) -> IpfsAsset:
    limits = fetcher.limits
    blocks = _GatewayBlocks(
        fetcher, gateway, limits.max_blocks, max_bytes + max_bytes // 16 + (1 << 20)
    )
    terminal = cid
    if path:
        terminal = (await resolve(blocks, cid, list(path))).cid
    car = work / "dag.car"
    car_limit = max_bytes + max_bytes // 16 + (1 << 20)  # file bytes + node overhead
    try:
        got = await fetcher.get(
            f"{gateway}/ipfs/{terminal}?format=car&dag-scope=all",
            headers={"Accept": _CAR},
            max_bytes=car_limit,
            dest=car,
        )
        if not (got.content_type or "").lower().startswith(_CAR):
            raise FetchError("unreachable", f"gateway answered {got.content_type!r}, not a CAR")
    except FetchError as exc:
        if exc.status != "unreachable":
            raise
        await _car_by_blocks(blocks, terminal, car)  # the gateway may serve raw blocks only
    staged = work / "content"
    size, tsize = await asyncio.to_thread(_verify, car, terminal, staged, max_bytes)
    return IpfsAsset(terminal, car, staged, staged.is_dir(), size, tsize, gateway)


async def fetch_ipfs(
    fetcher: Fetcher,
    gateways: list[str],
    cid: CID,
    path: tuple[str, ...],
    work: Path,
    *,
    max_bytes: int,
) -> IpfsAsset:
    """Fetch and verify ``cid``/``path`` from the first gateway whose bytes pass every check.

    Raises :class:`FetchError` (``mismatch`` when some gateway sent bad data and none sent
    good data; else the last gateway's status), with each gateway's failure in ``attempts``.
    """
    if not gateways:
        raise FetchError(
            "unreachable", f"no IPFS gateway configured to fetch {cid} (--gateway URL)"
        )
    attempts: list[dict[str, str]] = []
    status: Any = "unreachable"
    for n, gateway in enumerate(gateways):
        gateway = gateway.rstrip("/")
        here = work / f"gw{n}"
        shutil.rmtree(here, ignore_errors=True)
        here.mkdir(parents=True)
        try:
            asset = await _from_gateway(fetcher, gateway, cid, path, here, max_bytes)
        except IntegrityError as exc:  # a wrong block, a bad CAR, an incomplete DAG
            attempts.append({"gateway": gateway, "status": "mismatch", "error": exc.message})
            status = "mismatch"
        except FetchError as exc:
            attempts.append({"gateway": gateway, "status": exc.status, "error": exc.message})
            if status != "mismatch":
                status = exc.status
        except NotFoundError as exc:  # the path does not resolve under the CID
            attempts.append({"gateway": gateway, "status": "unreachable", "error": exc.message})
        else:
            asset.attempts = attempts
            return asset
        shutil.rmtree(here, ignore_errors=True)
    raise FetchError(
        status, "; ".join(f"{a['gateway']}: {a['error']}" for a in attempts), attempts=attempts
    )
