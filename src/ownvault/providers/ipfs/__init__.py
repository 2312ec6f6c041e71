"""IPFS providers: objects as UnixFS DAGs on a Kubo node or a pinning service.

An object (a share, a locator, ...) is stored as a UnixFS file DAG built by
:mod:`ownvault.core.unixfs` with the ``unixfs-v1-2025`` profile: CIDv1, raw leaves of 1 MiB,
up to 1024 links per node. An object of at most 1 MiB is therefore one raw block (its CID is
``bafkrei...``); a 16 MiB share is 16 raw leaves under one dag-pb root. No block exceeds
1 MiB, within Kubo's ``block/put`` limit (1 MiB) and bitswap's (2 MiB), and the root is an
ordinary UnixFS file that any gateway serves (``/ipfs/ROOT``, with ``Range``).

Reads are *trustless*: every block, from the RPC API or from any gateway, is re-hashed against
the CID that asked for it before a single byte is used (:func:`fetch_verified`); a block that
does not match is a :class:`~ownvault.errors.ShareCorruptError` naming the provider and the
object. Ranged reads fetch only the leaves under the range (:func:`read_range`), checking the
UnixFS sizes on the way (a lying ``blocksizes`` list is corruption too).

Which name maps to which root CID is each provider's business: Kubo keeps it in MFS
(:mod:`ownvault.providers.ipfs.kubo`), a pinning service in the pins' ``name`` and ``meta``
(:mod:`ownvault.providers.ipfs.pinning`). See ``docs/design.md``, "IPFS providers".

Modules: ``objects`` (objects as DAGs, verified and ranged reads, CAR streams), ``pins``
(pin states, the ``DagPinner`` port), ``transport`` (bounded HTTP, JSON, CIDs and tokens
from answers and the environment), ``rpc`` (the Kubo RPC API, trustless gateways),
``urls`` (provider URLs and their options), ``kubo`` and ``pinning`` (the two providers).
"""
