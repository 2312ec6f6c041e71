"""The IPFS feature: publishing stored content as UnixFS DAGs, CARs in and out, pinning."""

from __future__ import annotations

from ownvault.engine.ipfs import carimport as car_import
from ownvault.engine.ipfs import pinning as pins
from ownvault.engine.ipfs import publish as publishing
from ownvault.engine.store.service import Service, op

__all__ = ["Ipfs"]


class Ipfs(Service):
    """``vault.ipfs``: the vault as IPFS content (CIDs, gateway blocks, CARs, pins)."""

    publish = op(publishing.publish)
    unpublish = op(publishing.unpublish)
    dags = op(publishing.dags)
    verify_cid = op(publishing.verify_cid)
    export_car = op(publishing.export_car)
    dag_index = op(publishing.dag_index)
    import_car = op(car_import.import_car)
    pin_published = op(pins.pin_published)
    ipfs_providers = op(pins.ipfs_providers)
