"""Pinning a preserved NFT folder to the IPFS services the user chose (``--pin TARGET``).

* ``TARGET`` = an ``http(s)://`` URL: a Kubo RPC endpoint (Kubo, or anything speaking its
  ``/api/v0/dag/import``): the folder is exported from the vault as a CAR (every block
  regenerated and re-hashed) and imported with ``pin-roots=true``; the answer must name
  the root with no pin error.
* ``TARGET`` = a provider name: pinned with ``ownvault.engine.ipfs.pinning.pin_dag`` when that
  module is present (the IPFS providers); otherwise refused with a message saying so.

Each attempt gives ``{"target", "ok", "how", "error"}``; nothing here raises for a
failed pin (the report says where the folder is pinned and where it is not).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ownvault.core.cid import CID
from ownvault.engine.ipfs.pinning import pin_published
from ownvault.engine.ipfs.publish import export_car
from ownvault.engine.nft.results import PinHow, PinOutcome
from ownvault.engine.store.context import VaultContext
from ownvault.errors import OwnvaultError
from ownvault.providers.webfetch import Fetcher

__all__ = ["pin"]


async def _pin_rpc(ctx: VaultContext, fetcher: Fetcher, root: str, url: str) -> None:
    with tempfile.TemporaryDirectory(prefix=".nft-pin-", dir=ctx.path) as tmp:
        car = Path(tmp) / f"{root}.car"
        with open(car, "wb") as fh:
            await export_car(ctx, root, fh.write)
        body = await fetcher.post_file(f"{url.rstrip('/')}/api/v0/dag/import?pin-roots=true", car)
    pinned = False
    for line in body.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            raise OwnvaultError(
                f"{url}: dag/import answered something that is not NDJSON"
            ) from None
        entry = doc.get("Root") if isinstance(doc, dict) else None
        if isinstance(entry, dict):
            cid = (entry.get("Cid") or {}).get("/")
            if cid is not None and CID.parse(cid).to_v1() == CID.parse(root).to_v1():
                error = str(entry.get("PinErrorMsg") or "")
                if error and "already pinned" not in error.lower():  # re-pinning is success
                    raise OwnvaultError(f"{url}: pin failed: {error}")
                pinned = True
    if not pinned:
        raise OwnvaultError(f"{url}: dag/import did not report the root {root} as pinned")


async def pin(ctx: VaultContext, fetcher: Fetcher, root: str, target: str) -> PinOutcome:
    """Pin the DAG ``root`` (stored and published in ``vault``) to ``target``."""
    how: PinHow = "kubo-rpc" if target.lower().startswith(("http://", "https://")) else "provider"
    try:
        if how == "kubo-rpc":
            await _pin_rpc(ctx, fetcher, root, target)
        else:
            await pin_published(ctx, root, target)
    except OwnvaultError as exc:
        return PinOutcome(target, False, how, exc.message)
    return PinOutcome(target, True, how, None)
