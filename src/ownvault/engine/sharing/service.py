"""The sharing feature: identity, contacts, tag policies, grants; follows moved shares."""

from __future__ import annotations

from ownvault.engine.sharing import contacts as c
from ownvault.engine.sharing import grants as g
from ownvault.engine.store.context import PacksRewritten
from ownvault.engine.store.service import Service, op

__all__ = ["Sharing"]


class Sharing(Service):
    """``vault.sharing``: who may read what. Grants carry share places, so when shares move
    (a ``PacksRewritten`` event from repair, rebalance, revocation or shredding) the
    affected grants get new manifests: the vault facade subscribes :meth:`packs_rewritten`
    when it opens, before this feature is first used."""

    async def packs_rewritten(self, event: PacksRewritten) -> None:
        await g.refresh_grants(self.ctx, None if event.grants is None else set(event.grants))

    identity = op(c.identity)
    contact_card = op(c.contact_card)
    add_contact = op(c.add_contact)
    contacts = op(c.contacts)
    resolve_contact = op(c.resolve_contact)
    remove_contact = op(c.remove_contact)
    set_tag_policy = op(c.set_tag_policy)
    tag_policies = op(c.tag_policies)
    share = op(g.share)
    grants = op(g.grants)
    grant_token = op(g.grant_token)
    revoke = op(g.revoke)
    refresh_grants = op(g.refresh_grants)
