"""Identity, contacts and tag policies: who this vault is, whom it knows, what it never shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ownvault.core.grants import ContactCard
from ownvault.core.keys import x25519_multibase
from ownvault.engine.store.context import VaultContext
from ownvault.errors import NotFoundError, UsageError

__all__ = [
    "Contact",
    "ContactAdded",
    "Identity",
    "TagPolicy",
    "add_contact",
    "contact_card",
    "contacts",
    "identity",
    "never_share_tags",
    "remove_contact",
    "resolve_contact",
    "set_tag_policy",
    "tag_policies",
    "vault_now",
]


@dataclass(frozen=True, slots=True)
class Identity:
    """The vault's public identity; ``card`` is its signed contact card (JSON document)."""

    did: str
    agreement: str
    card: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ContactAdded:
    did: str
    name: str | None
    agreement: str


@dataclass(frozen=True, slots=True)
class Contact:
    did: str
    name: str | None
    added: int


@dataclass(frozen=True, slots=True)
class TagPolicy:
    tag: str
    never_share: bool


def vault_now(ctx: VaultContext) -> int:
    """Now in whole seconds, from the vault's clock (``ctx.hooks.clock``; tests set it)."""
    return int(ctx.hooks.clock())


# -- identity and contacts --------------------------------------------------------------


def contact_card(ctx: VaultContext, name: str | None = None) -> ContactCard:
    return ContactCard.create(ctx.keys, name, vault_now(ctx))


def identity(ctx: VaultContext, name: str | None = None) -> Identity:
    """The vault's public identity: did:key, X25519 key-agreement key, and a contact card."""
    return Identity(
        ctx.keys.did,
        x25519_multibase(ctx.keys.agreement_public),
        contact_card(ctx, name).to_json(),
    )


async def add_contact(
    ctx: VaultContext, card_text: str | bytes, name: str | None = None
) -> ContactAdded:
    """Import a contact card (verified: its signature must match its did:key)."""
    card = ContactCard.from_json(card_text)
    label = name or card.name
    if card.did == ctx.keys.did:
        raise UsageError("that is this vault's own card")
    async with ctx.write():
        with ctx.catalog.transaction():
            if label is not None and ctx.catalog.contacts.name_taken(label, card.did):
                raise UsageError(f"another contact is already called {label!r}")
            ctx.catalog.contacts.add(
                card.did,
                label,
                card_text if isinstance(card_text, str) else card_text.decode(),
                vault_now(ctx),
            )
    return ContactAdded(card.did, label, x25519_multibase(card.agreement))


def contacts(ctx: VaultContext) -> list[Contact]:
    return [Contact(r.did, r.name, r.added_at) for r in ctx.catalog.contacts.all()]


def resolve_contact(ctx: VaultContext, who: str) -> ContactCard:
    """A contact by did:key or by name; ``NotFoundError`` with what to do otherwise."""
    card = ctx.catalog.contacts.card(who)
    if card is None:
        raise NotFoundError(
            f"no contact {who!r}: import their card first (ownvault contacts add CARD.json)",
            name=who,
        )
    return ContactCard.from_json(card)


async def remove_contact(ctx: VaultContext, who: str) -> None:
    card = resolve_contact(ctx, who)
    async with ctx.write():
        with ctx.catalog.transaction():
            ctx.catalog.contacts.remove(card.did)


# -- tag policies ---------------------------------------------------------------------------


async def set_tag_policy(ctx: VaultContext, tag: str, *, never_share: bool) -> TagPolicy:
    if not tag or len(tag) > 64 or any(ch.isspace() for ch in tag):
        raise UsageError(f"invalid tag {tag!r}")
    async with ctx.write():
        with ctx.catalog.transaction():
            ctx.catalog.contacts.set_policy(tag, never_share=never_share)
    return TagPolicy(tag, never_share)


def tag_policies(ctx: VaultContext) -> list[TagPolicy]:
    return [TagPolicy(r.tag, r.never_share) for r in ctx.catalog.contacts.policies()]


def never_share_tags(ctx: VaultContext) -> set[str]:
    return ctx.catalog.contacts.never_share()
