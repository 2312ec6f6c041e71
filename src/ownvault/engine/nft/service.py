"""The NFT feature: preserving tokens' files in the vault and re-verifying them."""

from __future__ import annotations

from ownvault.engine.nft import preserve as preservation
from ownvault.engine.store.service import Service, op

__all__ = ["Nft"]


class Nft(Service):
    """``vault.nft``: preserved tokens (``verify_token`` needs no vault: ``nft.preserve``)."""

    preserve = op(preservation.preserve_token)
    preserve_token = op(preservation.preserve_token)
    preserve_collection = op(preservation.preserve_collection)
    list_preserved = op(preservation.list_preserved)
    reverify_preserved = op(preservation.reverify_preserved)
