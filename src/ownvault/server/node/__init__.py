"""The ownvault storage node (``ownvault node serve``): holds opaque shares for accounts.

Modules: :mod:`.config` (settings, chaos modes), :mod:`.auth` (request signatures and
replay protection), :mod:`.store` (accounts on disk, quotas), :mod:`.audit` (storage
proofs), :mod:`.metrics`, :mod:`.errors`, :mod:`.app` (the endpoints) and :mod:`.server`
(the socket and uvicorn). The wire protocol is ``ownvault.providers.node.protocol``.
"""

from ownvault.providers.node.protocol import DEFAULT_MAX_OBJECT
from ownvault.server.node.app import create_app
from ownvault.server.node.config import (
    CHAOS_MODES,
    DEFAULT_QUOTA,
    NodeConfig,
    chaos_dropped,
    parse_allowlist,
)
from ownvault.server.node.server import serve

__all__ = [
    "CHAOS_MODES",
    "DEFAULT_MAX_OBJECT",
    "DEFAULT_QUOTA",
    "NodeConfig",
    "chaos_dropped",
    "create_app",
    "parse_allowlist",
    "serve",
]
