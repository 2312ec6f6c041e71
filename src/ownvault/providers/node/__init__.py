"""The ownvault storage node as a provider: the wire protocol and its client.

:mod:`.protocol` is shared with the server (``ownvault.server.node``); :mod:`.client` is
the :class:`NodeProvider`.
"""

from ownvault.providers.node.client import NodeProvider, SeedSigner, Signer, sign_request
from ownvault.providers.node.protocol import NodeInfo

__all__ = ["NodeInfo", "NodeProvider", "SeedSigner", "Signer", "sign_request"]
